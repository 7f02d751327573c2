"""Tracks: which proposal is which Cog from frame to frame, and each Cog's label votes.

:class:`CogTracker` follows every Cog on every frame but classifies it only now and then
(DESIGN.md "Inference": a tracked Cog is classified when it appears and re-checked at a modest
rate).  Each frame:

1. :meth:`CogTracker.associate` matches the frame's proposals with the live tracks.  A track's
   boxes are first moved by its velocity (a walking Cog keeps walking), then proposals and tracks
   are matched greedily on the better of the body-box IoU and the nametag IoU, highest first.
   Measured on the 8 replayed demo streets, the motion step keeps identities through crossings that
   plain IoU matching swaps (see docs/bench.md); tracks unseen for ``max_age_s`` are dropped.
2. :meth:`CogTracker.due` says which tracks to classify now: new ones first, then those whose
   box jumped, that cross another track, whose label is unsure, and the rest once ``recheck_s``
   has passed since their last check.
3. :meth:`CogTracker.vote` adds a prediction to its track's votes (the last ``window_s`` seconds);
   the label is the best consistent Cog and suit of the averaged probabilities
   (:func:`~toonvision_live.classify.classifier.joint_labels`).
4. :meth:`CogTracker.tracked` gives the overlay one :class:`TrackedCog` per labelled track, its box
   size the median of the last ``size_frames`` sizes around the newest box's centre (steady boxes
   that do not lag behind a walking Cog).

:class:`LabelSmoother` is the same with a prediction for every proposal on every frame, matched
without the motion step: the behaviour before tracks were classified (``toonvision bench
--baseline``), kept for that comparison.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from toonvision_live.classify.classifier import CogPrediction, joint_labels, predictions_from_probs
from toonvision_live.classify.fusion import FusedLabel, fuse
from toonvision_live.classify.reader import TagReading, average_readings
from toonvision_live.find.nametags import Proposal
from toonvision_live.geometry import XYXY, greedy_matches, iou_matrix
from toonvision_live.taxonomy import COG_KEYS, COG_SUIT_INDEX, SUIT_CODES


@dataclass(frozen=True, slots=True)
class TrackedCog:
    """A Cog as the overlay shows it: a stable id, its box and its smoothed labels."""

    track_id: int
    body_xyxy: XYXY
    suit: str
    cog: str
    confidence: float
    agree: bool
    hits: int = 1  # how many frames this track has been seen in
    tag_xyxy: XYXY | None = None
    fused: FusedLabel | None = None  # body votes and the nametag's reading together (None: tag not read)


#: a track's tag is read again when it has grown this many times as high as when it was read
READ_AGAIN_GROWTH = 1.5
#: reads of one tag kept and averaged
MAX_READS = 4
#: a read whose heads together are less sure than this (TagReading.confidence) is unsure: on the demo street
#: such reads come from tag boxes cut by the frame edge or a text line off (the level line outside the crop)
READ_SURE = 0.5


@dataclass(slots=True)
class Track:
    """One followed Cog: where it was last seen, how it moves, and its label votes."""

    track_id: int
    body_xyxy: XYXY
    tag_xyxy: XYXY
    last_t: float
    born_t: float
    hits: int = 0
    velocity: tuple[float, float] = (0.0, 0.0)  # pixels per second
    times: deque[float] = field(default_factory=deque)  # when each kept vote was made
    suit: deque[np.ndarray] = field(default_factory=deque)
    entity: deque[np.ndarray] = field(default_factory=deque)
    sizes: deque[tuple[int, int]] = field(default_factory=deque)
    checked_t: float = -math.inf  # when it was last classified
    crossing: bool = False  # its box overlaps another track's now
    crossed: bool = False  # it crossed since its last check
    jumped: bool = False  # its tag landed away from where its velocity put it since its last check
    label: tuple[str, str, float, bool] | None = None  # (suit, cog, confidence, agree) of its votes
    readings: list[TagReading] = field(default_factory=list)  # reads of its nametag (the last few)
    read_h: int = 0  # the tag's height in pixels when it was last read
    looks: int = 0  # reads made since its reads were last replaced (kept or dropped)
    fused: FusedLabel | None = None  # its votes and reads fused, kept until either changes ...
    fused_stale: bool = True  # ... which sets this

    @property
    def reading(self) -> TagReading | None:
        """The track's nametag: its reads averaged (None before the first)."""
        return average_readings(self.readings) if self.readings else None

    @property
    def needs_reading(self) -> bool:
        """Read the tag when the track is checked and it has no read yet, may have changed Cog (a crossing
        or a jump), its tag has grown by half since the last read (a sharper read), its reads are all
        unsure (a box cut by the frame edge or a line off: a better one may come), or the read names
        another Cog than the body's votes (a second look settles it, up to MAX_READS looks)."""
        if not self.readings or self.crossed or self.jumped:
            return True
        if self.tag_xyxy[3] - self.tag_xyxy[1] >= READ_AGAIN_GROWTH * self.read_h:
            return True
        last = self.readings[-1]
        if not _sure(last):
            return True
        return self.label is not None and last.name != self.label[1] and self.looks < MAX_READS

    def add_reading(self, reading: TagReading, tag_h: int) -> None:
        """Keep a new read.  A sure read replaces unsure ones, and every old one after a crossing or a jump
        (the Cog under the track may have changed).  An unsure read (a box cut by the frame edge or a text
        line off) is dropped where sure reads are kept, unless the track jumped: in a crowd tracks cross all
        the time, and a sure read must not give way to one that says next to nothing (on the demo street
        that showed guessed levels); a jump is likelier a swap (letting it in at crossings only misnamed
        Cogs on streets 8-15)."""
        self.looks += 1
        kept_sure = bool(self.readings) and _sure(self.readings[-1])
        if kept_sure and not _sure(reading) and not self.jumped:
            return
        if self.crossed or self.jumped or (_sure(reading) and not kept_sure):
            self.readings.clear()
            self.looks = 1
        self.readings = [*self.readings, reading][-MAX_READS:]
        self.read_h = tag_h
        self.fused_stale = True

    @property
    def labelled(self) -> bool:
        return self.label is not None


def _sure(reading: TagReading) -> bool:
    return reading.confidence >= READ_SURE


def prediction_vectors(p: CogPrediction) -> tuple[np.ndarray, np.ndarray]:
    """(suit [4], entity [32]) probabilities of a prediction; one-hots at its confidences if it has none."""
    if p.suit_probs is not None and p.entity_probs is not None:
        return np.asarray(p.suit_probs, np.float64), np.asarray(p.entity_probs, np.float64)
    suit = np.zeros(len(SUIT_CODES))
    entity = np.zeros(len(COG_KEYS))
    suit[SUIT_CODES.index(p.suit)] = p.suit_conf
    entity[COG_KEYS.index(p.cog)] = p.cog_conf
    return suit, entity


def smoothed_label(suits: Sequence[np.ndarray],
                   entities: Sequence[np.ndarray]) -> tuple[str, str, float, bool]:
    """(suit, cog, confidence, agree) of averaged probability vectors, as :func:`joint_labels` (pure)."""
    suit_mean = np.mean(np.asarray(suits), axis=0)
    entity_mean = np.mean(np.asarray(entities), axis=0)
    (e,), (confidence,), (agree,) = joint_labels(suit_mean[None], entity_mean[None])
    return SUIT_CODES[COG_SUIT_INDEX[e]], COG_KEYS[e], float(confidence), bool(agree)


def resize_about_centre(box: XYXY, size_wh: tuple[float, float]) -> XYXY:
    """``box`` given the width and height ``size_wh``, keeping its centre x and its top (pure)."""
    cx = (box[0] + box[2]) / 2
    w, h = size_wh
    return (int(round(cx - w / 2)), box[1], int(round(cx + w / 2)), int(round(box[1] + h)))


def median_size(sizes: Iterable[tuple[int, int]]) -> tuple[float, float]:
    """The median width and height of ``sizes`` (as numpy's median; a handful of boxes, so plain Python)."""
    ws, hs = sorted(w for w, _ in sizes), sorted(h for _, h in sizes)
    m = len(ws) // 2
    if len(ws) % 2:
        return float(ws[m]), float(hs[m])
    return (ws[m - 1] + ws[m]) / 2, (hs[m - 1] + hs[m]) / 2


def _centre(box: XYXY) -> tuple[float, float]:
    return ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)


def _shifted(box: XYXY, dx: float, dy: float) -> XYXY:
    return (int(round(box[0] + dx)), int(round(box[1] + dy)), int(round(box[2] + dx)), int(round(box[3] + dy)))


class CogTracker:
    """Follows Cogs from frame to frame and keeps each one's label votes (see the module's text).

    ``motion``: move tracks by their velocity before matching (False: match where they were last
    seen, as before).  ``recheck_s``: a labelled track is classified again after this long;
    ``low_confidence``: a label under it is re-checked twice as often; a track whose tag moved more
    than ``jump_lines`` times its tag's height from where its velocity put it, or that crosses another, is
    re-checked after ``min_recheck_s``, and so is a track with fewer than ``settle_votes`` votes.
    """

    def __init__(self, *, window_s: float = 1.0, min_iou: float = 0.3, max_age_s: float = 0.5,
                 motion: bool = True, recheck_s: float = 0.25, min_recheck_s: float = 0.1,
                 low_confidence: float = 0.6, jump_lines: float = 0.5, settle_votes: int = 1,
                 swap_confidence: float = 0.8, size_frames: int = 5, max_votes: int = 240) -> None:
        if not window_s >= 0:
            raise ValueError("window_s must be at least 0")
        if size_frames < 1 or max_votes < 1:
            raise ValueError("size_frames and max_votes must be at least 1")
        self.window_s = window_s
        self.min_iou = min_iou
        self.max_age_s = max_age_s
        self.motion = motion
        self.recheck_s = recheck_s
        self.min_recheck_s = min_recheck_s
        self.low_confidence = low_confidence
        self.jump_lines = jump_lines
        self.settle_votes = settle_votes
        self.swap_confidence = swap_confidence
        self.size_frames = size_frames
        self.max_votes = max_votes
        self._tracks: list[Track] = []
        self._next_id = 1

    @property
    def track_count(self) -> int:
        return len(self._tracks)

    def reset(self) -> None:
        self._tracks.clear()

    # ---- 1. association -----------------------------------------------------------------------

    def _predicted(self, track: Track, t: float) -> tuple[XYXY, XYXY]:
        if not self.motion:
            return track.body_xyxy, track.tag_xyxy
        dt = min(t - track.last_t, self.max_age_s)
        dx, dy = track.velocity[0] * dt, track.velocity[1] * dt
        return _shifted(track.body_xyxy, dx, dy), _shifted(track.tag_xyxy, dx, dy)

    def associate(self, proposals: Sequence[Proposal], t: float) -> list[Track]:
        """The track of each proposal (same order): matched with a live track or a new one."""
        self._tracks = [tr for tr in self._tracks if t - tr.last_t <= self.max_age_s]
        predicted = [self._predicted(tr, t) for tr in self._tracks]
        body_iou = iou_matrix([p.body_xyxy for p in proposals], [b for b, _ in predicted])
        tag_iou = iou_matrix([p.tag_xyxy for p in proposals], [g for _, g in predicted])
        matches = dict(greedy_matches(np.maximum(body_iou, tag_iou), self.min_iou))
        out = []
        for i, proposal in enumerate(proposals):
            if i in matches:
                track = self._tracks[matches[i]]
                (px, py), (cx, cy) = _centre(predicted[matches[i]][1]), _centre(proposal.tag_xyxy)
                tag_h = max(1.0, proposal.tag_xyxy[3] - proposal.tag_xyxy[1])
                track.jumped = track.jumped or math.hypot(cx - px, cy - py) > self.jump_lines * tag_h
                self._move(track, proposal, t)
            else:
                track = Track(self._next_id, proposal.body_xyxy, proposal.tag_xyxy, t, t)
                self._next_id += 1
                self._tracks.append(track)
            self._size(track, proposal)
            track.hits += 1
            out.append(track)
        self._mark_crossings(out)
        return out

    def _move(self, track: Track, proposal: Proposal, t: float) -> None:
        dt = t - track.last_t
        if dt > 0:
            (x0, y0), (x1, y1) = _centre(track.tag_xyxy), _centre(proposal.tag_xyxy)
            seen = ((x1 - x0) / dt, (y1 - y0) / dt)
            if track.hits <= 1:
                track.velocity = seen
            else:  # smoothed: a tag followed by template matching jitters by a pixel or two
                track.velocity = (0.5 * (track.velocity[0] + seen[0]), 0.5 * (track.velocity[1] + seen[1]))
        track.body_xyxy, track.tag_xyxy, track.last_t = proposal.body_xyxy, proposal.tag_xyxy, t

    def _size(self, track: Track, proposal: Proposal) -> None:
        x0, y0, x1, y1 = proposal.body_xyxy
        track.sizes.append((x1 - x0, y1 - y0))
        while len(track.sizes) > self.size_frames:
            track.sizes.popleft()

    @staticmethod
    def _mark_crossings(tracks: Sequence[Track]) -> None:
        """A track crosses another while their body boxes overlap by more than a fifth (IoU)."""
        if len(tracks) < 2:
            for track in tracks:
                track.crossing = False
            return
        overlap = iou_matrix([tr.body_xyxy for tr in tracks], [tr.body_xyxy for tr in tracks])
        np.fill_diagonal(overlap, 0.0)
        for track, row in zip(tracks, overlap, strict=True):
            track.crossing = bool(row.max() > 0.2)
            track.crossed = track.crossed or track.crossing

    # ---- 2. what to classify ------------------------------------------------------------------

    def due(self, tracks: Sequence[Track], t: float, *, unreliable: Collection[int] = (),
            limit: int | None = None, recheck_s: float | None = None) -> list[int]:
        """Indices of ``tracks`` to classify on this frame, most urgent first, at most ``limit``.

        A track without a label always is (whatever ``limit`` says); the tracks at the indices in
        ``unreliable`` (crops partly under the overlay's own cards) wait for a clean view."""
        recheck = self.recheck_s if recheck_s is None else recheck_s
        ranked: list[tuple[float, int]] = []
        for i, track in enumerate(tracks):
            urgency = self._urgency(track, t, recheck)
            if urgency is None or (i in unreliable and track.labelled):
                continue
            ranked.append((urgency, i))
        ranked.sort()
        new = [i for u, i in ranked if u < 0]
        rest = [i for u, i in ranked if u >= 0]
        room = len(rest) if limit is None else max(0, limit - len(new))
        return new + rest[:room]

    def _urgency(self, track: Track, t: float, recheck_s: float) -> float | None:
        """None when the track need not be classified now; else lower is more urgent (< 0: new)."""
        if not track.labelled:
            return -1.0
        since = t - track.checked_t
        if since < self.min_recheck_s:
            return None
        assert track.label is not None
        if track.crossing or track.crossed or track.jumped:
            return 0.0 - 1.0 / (1.0 + since)  # after a crossing or a jump (in [-1, 0): after new tracks)
        if len(track.times) < self.settle_votes:
            return 0.5 - since  # a young track: a few quick votes before the modest rate
        if track.label[2] < self.low_confidence and since >= recheck_s / 2:
            return 1.0 - since / recheck_s
        if since >= recheck_s:
            return 2.0 - since / recheck_s
        return None

    # ---- 3. votes -----------------------------------------------------------------------------

    def vote(self, track: Track, prediction: CogPrediction, t: float, *, counts: bool = True) -> None:
        """Add ``prediction`` (of the crop of ``track`` at ``t``) to the track's votes.  With
        ``counts=False`` it only labels a track that has no vote yet (an unreliable crop)."""
        # the first look after a crossing: a confident other Cog means the tracks swapped there
        if track.crossed and not track.crossing and track.label is not None and track.times \
                and prediction.cog != track.label[1] and prediction.cog_conf >= self.swap_confidence:
            for queue in (track.times, track.suit, track.entity):
                queue.clear()
            track.readings.clear()
            track.looks = 0
            track.fused_stale = True
        if counts or not track.times:
            suit, entity = prediction_vectors(prediction)
            track.times.append(t)
            track.suit.append(suit)
            track.entity.append(entity)
            while len(track.times) > self.max_votes or (len(track.times) > 1 and
                                                         track.times[0] <= t - self.window_s):
                for queue in (track.times, track.suit, track.entity):
                    queue.popleft()
            track.label = smoothed_label(track.suit, track.entity)
            track.fused_stale = True
        track.checked_t = t
        track.crossed, track.jumped = track.crossing, False

    # ---- 4. what the overlay shows ------------------------------------------------------------

    @staticmethod
    def tracked(tracks: Sequence[Track]) -> list[TrackedCog]:
        """One TrackedCog per labelled track, in the order given."""
        out = []
        for track in tracks:
            if track.label is None:
                continue
            suit, cog, confidence, agree = track.label
            box = resize_about_centre(track.body_xyxy, median_size(track.sizes))
            fused = None
            if track.readings and track.suit:
                if track.fused_stale:  # votes and reads change a few times a second, boxes every frame
                    body = predictions_from_probs(np.mean(np.asarray(track.suit), axis=0)[None],
                                                  np.mean(np.asarray(track.entity), axis=0)[None])[0]
                    track.fused, track.fused_stale = fuse(body, average_readings(track.readings)), False
                fused = track.fused
                assert fused is not None
                if fused.kind == "cog" and fused.cog is not None and fused.suit is not None:
                    suit, cog, confidence = fused.suit, fused.cog, fused.confidence
                    agree = agree if fused.agree is None else agree and fused.agree
            out.append(TrackedCog(track.track_id, box, suit, cog, confidence, agree, track.hits, track.tag_xyxy,
                                  fused))
        return out


class LabelSmoother:
    """Every proposal classified on every frame, matched with the tracks where they were last seen
    (no motion step) and smoothed over the last ``window_s`` seconds (0 s follows each frame)."""

    def __init__(self, window_s: float = 1.0, min_iou: float = 0.3, max_age_s: float = 0.5, *,
                 size_frames: int = 5, max_predictions: int = 240) -> None:
        self._tracker = CogTracker(window_s=window_s, min_iou=min_iou, max_age_s=max_age_s, motion=False,
                                   size_frames=size_frames, max_votes=max_predictions)

    @property
    def track_count(self) -> int:
        return self._tracker.track_count

    def reset(self) -> None:
        self._tracker.reset()

    def update(self, proposals: Sequence[Proposal], predictions: Sequence[CogPrediction],
               t: float, unreliable: Collection[int] = ()) -> list[TrackedCog]:
        """One TrackedCog per proposal (same order), after matching them with the live tracks.

        The predictions at the indices in ``unreliable`` (crops partly covered by the overlay's own
        cards, say) move their track but do not vote on its label, unless the track has no vote yet."""
        if len(proposals) != len(predictions):
            raise ValueError(f"{len(proposals)} proposals but {len(predictions)} predictions")
        tracks = self._tracker.associate(proposals, t)
        for i, (track, prediction) in enumerate(zip(tracks, predictions, strict=True)):
            self._tracker.vote(track, prediction, t, counts=i not in unreliable)
        return self._tracker.tracked(tracks)
