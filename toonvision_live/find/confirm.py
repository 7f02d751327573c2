"""The detector's proposals confirmed by the nametag verifier: the detector as a crop-stage full search.

The learned detector (:mod:`toonvision_live.find.detector`) finds Cogs at any size, but its nametag box is
only roughly placed (on the demo streets a median IoU of 0.48 with the real tag, mostly 0.5-3 tag heights too
low), and the nametag reader and the tracker's tag following need the tag itself. So each detection's tag is
looked for *locally* with the nametag stage's verifier (:func:`~toonvision_live.find.nametags.verify_nametag`:
three dark text lines on a grey card) at a few vertical offsets from the predicted tag, nearest first; the
first tag found there replaces the predicted one, except where it fits badly (more so where detections
overlap): there every offset is looked at and the tags go to the detections they fit best
(:mod:`toonvision_live.find.assign`: the front Cog's detection finds the tag of the one behind it first), and
a tag seen there that no detection takes, or that fits none (the Cog hidden by a detected one, or hiding it),
is a Cog of its own (body measured under it); one detection per tag. The frame's verifications are remembered
(:class:`FrameVerifier`). Such a tag's lines may be down to SNAP_MIN_LINE_PX high at any frame size. A
detection whose body is only a few pixels high in the detector's working image (a far Cog in a large frame) is
first detected again in a small zoomed window of the full-resolution frame around it (:func:`zoom_refine`),
whose tighter boxes replace its own. A confirmed Cog's body box is the mean of the detector's box and the box
measured under the tag the nametag stage's way (:mod:`toonvision_live.find.body`) when the two agree; a Cog
whose tag cannot be read (distant, blurred, cut) keeps the detector's boxes. :class:`CombinedSearch` adds the
nametag search's Cogs whose tags no detection claimed (a small Cog in front of a bigger one gets no peak of
its own, its tag is still read). Measured in docs/detector.md.
"""

from __future__ import annotations

import cv2
import numpy as np

from toonvision_live.crops import check_frame
from toonvision_live.find.assign import (
    CROWD_FIT,
    FIT_MAX,
    FIT_SCAN,
    SAME_TAG_IOU,
    assign_tags,
    drop_line_off,
    fit_cost,
    left_over,
    overlapping,
)
from toonvision_live.find.body import RowGround
from toonvision_live.find.detector import NMS_IOU, CogDetector, Detection, decode, working_size
from toonvision_live.find.nametags import (
    MIN_LINE_FRAC,
    SNAP_MIN_LINE_PX,
    Nametag,
    Proposal,
    proposal_of,
    propose_cog_boxes,
    verify_nametag,
)
from toonvision_live.find.proposers import FullSearch
from toonvision_live.geometry import MIN_FRAME_SIDE, XYXY, clip_xyxy, iou_matrix, max_iou
from toonvision_live.settings import CROP_STAGE_SEARCHES

#: offsets (in predicted tag heights) at which the tag is looked for, nearest first: the detector
#: places tags too low more often than too high
TAG_SHIFTS = (0.0, -0.5, 0.5, -1.0, -1.5, -2.0, -2.5, -3.0, 1.0)
#: the verifier's candidate is the text block inside the card: this share of the card's width, height
TEXT_W, TEXT_H = 0.9, 0.8
#: bodies for a confirmed tag: "mean" of the detector's and the measured one (measured best),
#: "detector" or "tag" (measured under the tag, as the nametag stage does)
BODY_MODES = ("mean", "detector", "tag")
#: the body measured under a confirmed tag is used only when it overlaps the detector's this much
AGREE_IOU = 0.6
#: detections scoring from this up to the detector's threshold are kept when the verifier confirms their tag
LOW_THRESHOLD = 0.25
#: a weak detection's tag is looked for at these offsets only (at the predicted size)
WEAK_SHIFTS = TAG_SHIFTS[:2]
#: such a weak detection overlapping a kept box this much is that box's duplicate
WEAK_SAME_IOU = 0.3
#: a Cog whose tag was never confirmed (its tag box is the detector's guess) is shown only when the classifier
#: names its body at least this sure (pipeline, predict, label).  0.5 until 2026-12-03 (every false box on the
#: real frames of tto/ was such a Cog at <= 50 %, docs/detector.md); live-like replays then showed guessed-tag
#: cards as the main source of cards naming a Cog that is not there: at 0.8 instead of 0.5, seed 0 for 20 s
#: -126 such cards and -97 other wrong ones for -48 right (of 400 right guessed-tag cards), seeds 9 and 12 for 10 s
#: -115 / -237 for -3 right; demo replay: named right, found unchanged, body precision 92.8 -> 94.7 %, live-like
#: (bench --replay) 92.1 -> 93.6 %; tto/: the small Toon named Pencil Pusher (76 %) and the misnamed Bean Counter
#: (Money Bags, 54 %) are no longer shown
GUESSED_MIN_CONFIDENCE = 0.8


#: zoom refinement: a detection whose body is under ZOOM_MAX_WORK working pixels high is detected again in a
#: ZOOM_SIZE x ZOOM_SIZE window of the full-resolution frame around its body and tag (ZOOM_CONTEXT times their
#: extent), scaled so its body is about ZOOM_BODY pixels high, when that enlarges it ZOOM_MIN_GAIN times over
#: the working image; the window's detection best overlapping it (IoU >= ZOOM_SAME_IOU, scores over
#: ZOOM_THRESHOLD) gives its boxes
ZOOM_SIZE, ZOOM_BODY, ZOOM_MAX_WORK, ZOOM_CONTEXT, ZOOM_MIN_GAIN = 192, 60.0, 40.0, 1.3, 1.2
ZOOM_THRESHOLD, ZOOM_SAME_IOU = 0.2, 0.3


def zoom_window(d: Detection, scale: float) -> tuple[float, float, float] | None:
    """(x0, y0, zoom) of the window in which ``d`` is detected again (frame pixels -> window pixels:
    (x - x0) * zoom), or None when its body is large enough in the working image (``scale``)."""
    bx0, by0, bx1, by1 = d.body_xyxy
    bh = by1 - by0
    if bh < 2 or bh * scale >= ZOOM_MAX_WORK:
        return None
    tx0, ty0, tx1, ty1 = d.tag_xyxy
    ux0, uy0, ux1, uy1 = min(bx0, tx0), min(by0, ty0), max(bx1, tx1), max(by1, ty1)
    side = max(ZOOM_SIZE * bh / ZOOM_BODY, ZOOM_CONTEXT * (ux1 - ux0), ZOOM_CONTEXT * (uy1 - uy0))
    zoom = ZOOM_SIZE / side
    if zoom < ZOOM_MIN_GAIN * scale:
        return None
    return (ux0 + ux1) / 2 - side / 2, (uy0 + uy1) / 2 - side / 2, zoom


def zoom_refine(detector: CogDetector, frame_rgb: np.ndarray, found: list[Detection]) -> list[Detection]:
    """``found`` with the boxes of each small detection replaced by the ones the detector gives in a
    zoomed window around it (:func:`zoom_window`; one batched model run for all of them)."""
    fh, fw = frame_rgb.shape[:2]
    scale = working_size((fw, fh), detector.long_side)[4]
    windows = [(i, w) for i, w in enumerate(zoom_window(d, scale) for d in found) if w is not None]
    if not windows:
        return found
    batch = np.stack([cv2.warpAffine(frame_rgb, np.array([[z, 0, -x0 * z], [0, z, -y0 * z]], np.float32),
                                     (ZOOM_SIZE, ZOOM_SIZE), flags=cv2.INTER_AREA if z < 1 else cv2.INTER_LINEAR)
                      for _, (x0, y0, z) in windows])
    peaks, boxes = detector.session.run(None, {"image": batch.astype(np.float32)})
    out = list(found)
    for k, (i, (x0, y0, z)) in enumerate(windows):
        side = ZOOM_SIZE / z
        again = decode(peaks[k], boxes[k], z, (int(side), int(side)), ZOOM_THRESHOLD, NMS_IOU)
        if not again:
            continue
        bodies = clip_xyxy([(b[0] + x0, b[1] + y0, b[2] + x0, b[3] + y0) for b in (a.body_xyxy for a in again)],
                           (fw, fh))
        ious = iou_matrix([found[i].body_xyxy], bodies)[0]
        j = int(np.argmax(ious))
        if ious[j] >= ZOOM_SAME_IOU:
            t, b = again[j].tag_xyxy, bodies[j]
            out[i] = Detection((float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                               (t[0] + x0, t[1] + y0, t[2] + x0, t[3] + y0), found[i].score)
    return out


def _int_box(box: tuple[float, float, float, float]) -> XYXY:
    return (int(round(box[0])), int(round(box[1])), int(round(box[2])), int(round(box[3])))


#: when no tag is found at the predicted size, the box grown by this factor is tried at GROWN_SHIFTS
#: (the detector's tag boxes come out too small on large near tags: sample_img0's Cold Caller at 3x)
GROW = 1.3
GROWN_SHIFTS = (0.0, -0.5, 0.5, -1.0)


#: a candidate overlapping one verified already on the frame this much (IoU) gets the same answer
SAME_CANDIDATE_IOU = 0.7


class FrameVerifier:
    """The nametag verifier on one frame (lines down to SNAP_MIN_LINE_PX), remembering its answers: a candidate
    whose centre lies on a tag found already is that tag, and one overlapping a candidate verified already by IoU
    over SAME_CANDIDATE_IOU gets that answer, without verifying again (where detections overlap, or a badly
    fitting first tag has every offset looked at, the same cards are met again).  ``verified`` counts the calls
    of the verifier."""

    def __init__(self, frame_rgb: np.ndarray) -> None:
        self.frame_rgb = frame_rgb
        self.min_line_px = min(SNAP_MIN_LINE_PX, MIN_LINE_FRAC * frame_rgb.shape[0])
        self.candidates = np.zeros((0, 4), np.float64)
        self.answers: list[Nametag | None] = []
        self.verified = 0

    def __call__(self, cand: XYXY) -> Nametag | None:
        cx, cy = (cand[0] + cand[2]) / 2, (cand[1] + cand[3]) / 2
        for tag in self.answers:
            if tag is not None and (t := tag.tag_xyxy)[0] <= cx <= t[2] and t[1] <= cy <= t[3]:
                return tag
        if self.answers:  # (iou_matrix's checks cost more than the verifier saves on a frame of few tags)
            c = self.candidates
            inter = (np.clip(np.minimum(c[:, 2], cand[2]) - np.maximum(c[:, 0], cand[0]), 0, None)
                     * np.clip(np.minimum(c[:, 3], cand[3]) - np.maximum(c[:, 1], cand[1]), 0, None))
            union = (c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1]) + (cand[2] - cand[0]) * (cand[3] - cand[1]) - inter
            k = int(np.argmax(inter / union))
            if inter[k] > SAME_CANDIDATE_IOU * union[k]:
                return self.answers[k]
        self.verified += 1
        tag = verify_nametag(self.frame_rgb, cand, self.min_line_px)
        self.candidates = np.vstack([self.candidates, np.asarray(cand, np.float64)[None]])
        self.answers.append(tag)
        return tag


def snap_tag(frame_rgb: np.ndarray, tag_xyxy: tuple[float, float, float, float],
             shifts: tuple[float, ...] = TAG_SHIFTS, grown: bool = True,
             verify: FrameVerifier | None = None) -> Nametag | None:
    """The Cog nametag near a predicted tag box (verified at each offset in ``shifts``; then, if none and
    ``grown``, the box grown by ``GROW`` at ``GROWN_SHIFTS``), or None.  ``verify``: the frame's verifier
    (one remembering the answers of the frame's earlier calls; default a fresh one)."""
    verify = verify or FrameVerifier(frame_rgb)
    found = _snap_at(tag_xyxy, shifts, verify)
    if found is None and grown:
        found = _snap_at(_grown(tag_xyxy), GROWN_SHIFTS, verify)
    return found


def snap_tags(frame_rgb: np.ndarray, tag_xyxy: tuple[float, float, float, float],
              shifts: tuple[float, ...] = TAG_SHIFTS, grown: bool = True,
              verify: FrameVerifier | None = None) -> list[Nametag]:
    """Every distinct Cog nametag near a predicted tag box, nearest offset first: :func:`snap_tag`'s
    candidates where it stops at the first (the grown box too when none is found at the predicted size)."""
    verify = verify or FrameVerifier(frame_rgb)
    tags: list[Nametag] = []
    for box, offsets in ((tag_xyxy, shifts), (_grown(tag_xyxy), GROWN_SHIFTS if grown else ())):
        for shift in offsets:
            tag = _snap_at(box, (shift,), verify)
            if tag is not None and not (tags and max_iou(tag.tag_xyxy, [t.tag_xyxy for t in tags]) > SAME_TAG_IOU):
                tags.append(tag)
        if tags:
            break
    return tags


def _grown(tag_xyxy: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = tag_xyxy
    cx, cy, gw, gh = (x0 + x1) / 2, (y0 + y1) / 2, GROW * (x1 - x0) / 2, GROW * (y1 - y0) / 2
    return cx - gw, cy - gh, cx + gw, cy + gh


def _snap_at(tag_xyxy: tuple[float, float, float, float], shifts: tuple[float, ...],
             verify: FrameVerifier) -> Nametag | None:
    """The tag verified first at the offsets ``shifts``.  A tag found counts only if its centre is
    within half the predicted width across and 0.6 of the predicted height up or down of the candidate
    it was verified from."""
    fh, fw = verify.frame_rgb.shape[:2]
    x0, y0, x1, y1 = tag_xyxy
    w, h = x1 - x0, y1 - y0
    if w < 4 or h < 3:
        return None
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half_w, half_h = TEXT_W * w / 2, TEXT_H * h / 2
    for shift in shifts:
        c = cy + shift * h
        cand = (max(0, int(cx - half_w)), max(0, int(c - half_h)),
                min(fw, int(np.ceil(cx + half_w))), min(fh, int(np.ceil(c + half_h))))
        if cand[2] - cand[0] < 4 or cand[3] - cand[1] < 3:
            continue
        tag = verify(cand)
        if tag is None:
            continue
        t = tag.tag_xyxy
        if abs((t[0] + t[2]) / 2 - cx) < 0.5 * w and abs((t[1] + t[3]) / 2 - c) < 0.6 * h:
            return tag
    return None


class ConfirmedDetector:
    """The detector as a full search, its tags confirmed and snapped by the nametag verifier.

    Callable like :func:`~toonvision_live.find.nametags.propose_cog_boxes` (frame RGB uint8 ->
    proposals left to right), so the video proposers of :mod:`toonvision_live.find.proposers` run it
    in turn or on a thread of their own with tag following in between.  ``confirmed`` /
    ``detections`` count the detections whose tag was found / all of them.
    """

    def __init__(self, detector: CogDetector | None = None, *, body: str = "mean",
                 agree_iou: float = AGREE_IOU, low_threshold: float = LOW_THRESHOLD, zoom: bool = True) -> None:
        if body not in BODY_MODES:
            raise ValueError(f"body must be one of {BODY_MODES}")
        self.detector = detector or CogDetector()
        self.body = body
        self.agree_iou = float(agree_iou)
        self.low_threshold = float(low_threshold)
        self.zoom = zoom
        self.detections = 0
        self.confirmed = 0
        self.left_over = 0  # Cogs added for a tag seen near a detection that fitted none
        self.left_over_cogs = True

    def __call__(self, frame_rgb: np.ndarray) -> list[Proposal]:
        check_frame(frame_rgb)
        if min(frame_rgb.shape[:2]) < MIN_FRAME_SIDE:
            return []
        sure = self.detector.threshold
        low = min(sure, self.low_threshold)
        found = [d for d in self.detector.detect(frame_rgb, threshold=low)  # best scored first
                 if d.body_xyxy[2] - d.body_xyxy[0] >= 2 and d.body_xyxy[3] - d.body_xyxy[1] >= 2]
        if self.zoom:  # the weak ones are not worth it (measured)
            found = zoom_refine(self.detector, frame_rgb, [d for d in found if d.score >= sure]) + \
                [d for d in found if d.score < sure]
        sure_ones = [d for d in found if d.score >= sure]
        verify = FrameVerifier(frame_rgb)
        tags, seen = self._tags(frame_rgb, sure_ones, verify)
        ground: RowGround | None = None
        out: list[Proposal] = []
        for j, d in enumerate(sure_ones):  # best scored first
            self.detections += 1
            tag = tags.get(j)
            if tag is None:  # unread, or a better fitting detection's
                out.append(Proposal(_int_box(d.body_xyxy), _int_box(d.tag_xyxy), d.score, tag_verified=False))
            else:
                ground = ground or RowGround.of(frame_rgb)
                out.append(self._confirmed(frame_rgb, d, tag, ground))
        taken = [t.tag_xyxy for t in tags.values()]
        for d in found[len(sure_ones):]:  # weak ones: kept only if their tag is confirmed and no better one's
            if out and max_iou(_int_box(d.body_xyxy), [p.body_xyxy for p in out]) > WEAK_SAME_IOU:
                continue  # a kept box's duplicate
            tag = snap_tag(frame_rgb, d.tag_xyxy, WEAK_SHIFTS, grown=False, verify=verify)
            if tag is not None and not (taken and max_iou(tag.tag_xyxy, taken) > SAME_TAG_IOU):
                taken.append(tag.tag_xyxy)
                if self.zoom:  # kept now: its body is worth a zoom too
                    d = Detection(zoom_refine(self.detector, frame_rgb, [d])[0].body_xyxy, d.tag_xyxy, d.score)
                ground = ground or RowGround.of(frame_rgb)
                out.append(self._confirmed(frame_rgb, d, tag, ground))
        if self.left_over_cogs:
            for tag in left_over(seen, taken):  # a Cog of its own whose tag was seen near a detection
                ground = ground or RowGround.of(frame_rgb)
                p = proposal_of(frame_rgb, tag, ground)
                if p is not None:
                    out.append(p)
                    self.left_over += 1
        return sorted(out, key=lambda p: (p.body_xyxy[0], p.body_xyxy[1]))

    def _confirmed(self, frame_rgb: np.ndarray, d: Detection, tag: Nametag, ground: RowGround) -> Proposal:
        """The proposal of a detection with its confirmed tag (its body: see :meth:`_body`)."""
        self.confirmed += 1
        body = _int_box(d.body_xyxy)
        if self.body != "detector":
            body = self._body(frame_rgb, d, tag, ground) or body
        return Proposal(body, tag.tag_xyxy, max(d.score, tag.score))

    def _tags(self, frame_rgb: np.ndarray, found: list[Detection],
              verify: FrameVerifier) -> tuple[dict[int, Nametag], list[Nametag]]:
        """The confirmed tag of each detection of ``found`` (by index), and every tag seen: a detection whose
        first tag found fits it badly (cost over FIT_SCAN; over CROWD_FIT where it overlaps another detection)
        gets every tag found near its guess, and the tags go where they fit best
        (:func:`~toonvision_live.find.assign.assign_tags`); any other, the first tag found.  A tag costing
        more than FIT_MAX is no detection's (it stays seen: a Cog of its own).  ``verify`` remembers the
        frame's verifications (the offsets of overlapping detections meet the same cards)."""
        crowded = overlapping([d.body_xyxy for d in found])
        seen: list[tuple[int, Nametag, float]] = []
        for j, d in enumerate(found):
            first = snap_tag(frame_rgb, d.tag_xyxy, verify=verify)
            if first is not None and fit_cost(d, first) <= (CROWD_FIT if crowded[j] else FIT_SCAN):
                seen.append((j, first, fit_cost(d, first)))
            elif crowded[j] or first is not None:  # maybe the tag of a Cog it hides or stands in front of
                seen.extend((j, t, fit_cost(d, t)) for t in snap_tags(frame_rgb, d.tag_xyxy, verify=verify))
        seen = drop_line_off(seen)
        return assign_tags([f for f in seen if f[2] <= FIT_MAX]), [t for _, t, _ in seen]

    def _body(self, frame_rgb: np.ndarray, d: Detection, tag: Nametag, ground: RowGround) -> XYXY | None:
        """The body for a confirmed tag: measured under it (``body="tag"``) or the mean of that and the
        detector's box; None (keep the detector's box) when the measurement fails or disagrees with the
        detector (IoU under ``agree_iou``: a busy background, or a tag the detector placed on another Cog)."""
        measured = proposal_of(frame_rgb, tag, ground)
        if measured is None or iou_matrix([measured.body_xyxy], [d.body_xyxy])[0, 0] < self.agree_iou:
            return None
        if self.body == "tag":
            return measured.body_xyxy
        mean = [(a + b) / 2 for a, b in zip(measured.body_xyxy, d.body_xyxy, strict=True)]
        return _int_box((mean[0], mean[1], mean[2], mean[3]))


#: a search proposal whose body overlaps a detection with an unverified tag this much is that Cog (0.5 cost 3
#: Cogs on the replay, 0.65 none)
SAME_BODY_IOU = 0.65


class CombinedSearch:
    """The confirmed detector plus the nametag search on the same frame: the search's Cogs whose tag no
    detection claimed (tag IoU <= 0.3) are added, except one whose body overlaps a detection with an
    unverified tag (body IoU >= ``same_body_iou``): that is the same Cog, and the detection takes the
    search's verified tag instead of getting a duplicate box beside it (``merge="tag"``; ``"search"``
    replaces the detection by the search's proposal, ``"none"`` keeps both).  Callable like
    propose_cog_boxes; it costs the sum of both (docs/detector.md) and is the crop stage ``combined``."""

    def __init__(self, confirmed: ConfirmedDetector | None = None, *, merge: str = "tag",
                 same_body_iou: float = SAME_BODY_IOU) -> None:
        if merge not in ("tag", "search", "none"):
            raise ValueError("merge must be 'tag', 'search' or 'none'")
        self.confirmed = confirmed or ConfirmedDetector()
        self.merge, self.same_body_iou = merge, float(same_body_iou)
        self.skip_confirmed = True
        self.added = 0  # Cogs the nametag search added
        self.merged = 0  # detections that took the search's tag (or were replaced by its proposal)

    def __call__(self, frame_rgb: np.ndarray) -> list[Proposal]:
        out = self.confirmed(frame_rgb)
        tags = [p.tag_xyxy for p in out]
        # the search does not verify again what the detector confirmed (it would be dropped below anyway)
        known = [p.tag_xyxy for p in out if p.tag_verified] if self.skip_confirmed else []
        for p in propose_cog_boxes(frame_rgb, known):
            if tags and max_iou(p.tag_xyxy, tags) > 0.3:
                continue
            j = self._same_cog(p, out)
            if j is None:
                out.append(p)
                self.added += 1
            else:
                out[j] = p if self.merge == "search" else Proposal(out[j].body_xyxy, p.tag_xyxy,
                                                                   max(out[j].score, p.score))
                self.merged += 1
            tags.append(p.tag_xyxy)
        return sorted(out, key=lambda p: (p.body_xyxy[0], p.body_xyxy[1]))

    def _same_cog(self, p: Proposal, out: list[Proposal]) -> int | None:
        """The index of the unverified detection whose body is ``p``'s (best IoU >= same_body_iou), or None."""
        if self.merge == "none":
            return None
        unverified = [i for i, q in enumerate(out) if not q.tag_verified]
        if not unverified:
            return None
        ious = iou_matrix([p.body_xyxy], [out[i].body_xyxy for i in unverified])[0]
        k = int(np.argmax(ious))
        return unverified[k] if ious[k] >= self.same_body_iou else None


def full_search(stage: str, detector: CogDetector | None = None) -> FullSearch:
    """The whole-frame search of crop stage ``stage`` (one of :data:`~toonvision_live.settings.CROP_STAGES`
    or ``detector-raw``, the detector's own boxes); the detector stages use ``detector`` (default: the
    shipped model)."""
    if stage not in CROP_STAGE_SEARCHES:
        raise ValueError(f"crop stage must be one of {CROP_STAGE_SEARCHES}, not {stage!r}")
    if stage == "nametags":
        return propose_cog_boxes
    detector = detector or CogDetector()
    if stage == "detector-raw":
        return detector
    confirmed = ConfirmedDetector(detector)
    return confirmed if stage == "detector" else CombinedSearch(confirmed)
