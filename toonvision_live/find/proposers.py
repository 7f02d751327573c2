"""The crop stage's stateful proposers: :func:`~toonvision_live.find.nametags.propose_cog_boxes` made
cheaper for a video.

:class:`IncrementalProposer` runs the full search every few frames and follows the known nametags by
template matching in between (about a third of the cost); :class:`BackgroundSearchProposer` runs the
full searches on a pipeline stage of their own (a ``StageThread`` fed through ``LatestFrame``
mailboxes, like every other stage), so no frame waits for one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import cv2
import numpy as np

from toonvision_live.crops import check_frame
from toonvision_live.find.body import RowGround
from toonvision_live.find.nametags import (
    MIN_LINE_FRAC,
    SNAP_MIN_LINE_PX,
    Nametag,
    Proposal,
    proposal_of,
    propose_cog_boxes,
    verify_nametag,
)
from toonvision_live.frames import LatestFrame, StageThread
from toonvision_live.geometry import MIN_FRAME_SIDE, XYXY, clip_box, max_iou


class LazyGrey:
    """The grey image of an RGB frame, converted a region at a time as it is sliced: following tags
    reads a few windows round them, not the whole frame (the same values as converting it all)."""

    def __init__(self, rgb: np.ndarray) -> None:
        self.rgb = rgb
        self.shape: tuple[int, int] = (int(rgb.shape[0]), int(rgb.shape[1]))

    def __getitem__(self, rows_cols: tuple[slice, slice]) -> np.ndarray:
        part = self.rgb[rows_cols]
        if part.size == 0:
            return np.zeros(part.shape[:2], np.uint8)
        return cv2.cvtColor(part, cv2.COLOR_RGB2GRAY)


#: a finished full search: its proposals and the (grey) frame it searched
Search = tuple[list[Proposal], LazyGrey]
#: a followed tag is looked for this many text lines round where it was before the wider search
NEAR_LINES = 1.0
#: a full-frame search: propose_cog_boxes, or the detector (find/confirm.py ConfirmedDetector)
FullSearch = Callable[[np.ndarray], list[Proposal]]
#: with a back-off (``backoff`` > 1), background searches run that many times as far apart while no Cog
#: came or went for QUIET_S seconds (off by default: pipeline.Tuning.search_backoff)
QUIET_S = 0.25
#: the search stage looks at its period this often while it rests
REST_STEP_S = 0.025
#: a search result older than FOLLOW_STEP_S (the frames of a busy machine come about this far apart and are
#: still followed within ``search_lines``) is followed into the current frame within ``search_lines`` times
#: its age over that (at most MAX_AGE_WIDEN times): its Cogs walked on meanwhile (bench --replay --search-delay)
FOLLOW_STEP_S, MAX_AGE_WIDEN = 0.05, 4.0


class IncrementalProposer:
    """:func:`propose_cog_boxes` made cheaper for a video: a full search every ``full_every`` frames and,
    in between, each known nametag followed by template matching in a small window around it.

    A tag moves a few pixels per frame and hardly changes, so a normalised cross-correlation of its
    last appearance (grey) finds it again; its body box moves with it.  A tag that no longer matches
    at ``min_match`` is dropped until the next full search, which also finds new Cogs (so a Cog that
    walks in is proposed at most ``full_every - 1`` frames late).  Callable like propose_cog_boxes;
    not thread-safe (one per pipeline).
    """

    def __init__(self, full_every: int = 4, min_match: float = 0.6, search_lines: float = 2.0, *,
                 keep_missing: bool = True, full_search: FullSearch = propose_cog_boxes) -> None:
        if full_every < 1:
            raise ValueError("full_every must be at least 1")
        self.full_search = full_search
        self.full_every = full_every
        self.min_match = min_match
        self.search_lines = search_lines
        self.keep_missing = keep_missing
        self._full_searches = 0
        self._since_full = 0
        self._shape: tuple[int, ...] | None = None
        self._tracked: list[tuple[Proposal, np.ndarray]] = []  # proposal, grey template of its tag

    @property
    def full_searches(self) -> int:
        """How many frames had the full search."""
        return self._full_searches

    def reset(self) -> None:
        self._tracked = []
        self._shape = None

    def __call__(self, frame_rgb: np.ndarray) -> list[Proposal]:
        check_frame(frame_rgb)
        if min(frame_rgb.shape[:2]) < MIN_FRAME_SIDE:
            self.reset()
            return []
        grey = LazyGrey(frame_rgb)
        if self._shape != frame_rgb.shape or self._since_full >= self.full_every - 1 or not self._tracked:
            found = self.full_search(frame_rgb)
            if self._shape == frame_rgb.shape:
                found += self._kept_missing(frame_rgb, grey, found)
            self._since_full = 0
            self._full_searches += 1
        else:
            found = self._followed(grey, self._tracked)
            self._since_full += 1
        return self._remember(frame_rgb.shape, grey, found)

    def _followed(self, grey: LazyGrey, entries: Iterable[tuple[Proposal, np.ndarray]],
                  lines: float | None = None) -> list[Proposal]:
        """Each known tag found again in ``grey`` by template matching (within ``lines`` text lines, default
        ``search_lines``); lost ones dropped."""
        return [q for q in (self._follow(grey, p, t, lines) for p, t in entries) if q is not None]

    def _kept_missing(self, frame_rgb: np.ndarray, grey: LazyGrey, found: Sequence[Proposal]) -> list[Proposal]:
        """Known tags a full search just missed, followed into this frame and verified there again
        (:func:`verify_nametag` at the followed box, body re-measured): the search's coarse pass is
        its weak link (a tag over a busy wall or a dark body now and then yields no candidate), while
        the verification at a known place rarely fails, so such a Cog keeps its box instead of
        blinking out; a tag that is really gone fails the template match or the verification."""
        if not self.keep_missing:
            return []
        fresh = [p.tag_xyxy for p in found]
        kept: list[Proposal] = []
        ground: RowGround | None = None
        missing = [e for e in self._tracked if not (fresh and max_iou(e[0].tag_xyxy, fresh) > 0.2)]
        # a known tag verifies down to the pixel floor the detector's snapping uses (the search's own bound,
        # a fraction of the rows, would drop a small 4K tag the detector stage confirmed)
        min_line = min(SNAP_MIN_LINE_PX, MIN_LINE_FRAC * frame_rgb.shape[0])
        for q in self._followed(grey, missing):
            tag = verify_nametag(frame_rgb, q.tag_xyxy, min_line)
            if tag is None or (fresh and max_iou(tag.tag_xyxy, fresh) > 0.2):
                continue
            if self.full_search is not propose_cog_boxes:  # the detector's body, carried with its tag
                proposal = _moved(q, tag, (frame_rgb.shape[1], frame_rgb.shape[0]))
            else:  # the nametag search measures the body under the tag: so here
                ground = ground or RowGround.of(frame_rgb)
                proposal = proposal_of(frame_rgb, tag, ground)
            if proposal is not None:
                kept.append(proposal)
                fresh.append(tag.tag_xyxy)
        return kept

    def _remember(self, shape: tuple[int, ...], grey: LazyGrey, proposals: list[Proposal]) -> list[Proposal]:
        self._shape = shape
        self._tracked = [(p, grey[p.tag_xyxy[1]:p.tag_xyxy[3], p.tag_xyxy[0]:p.tag_xyxy[2]])
                         for p in proposals]
        return sorted(proposals, key=lambda p: (p.body_xyxy[0], p.body_xyxy[1]))

    def _follow(self, grey: LazyGrey, last: Proposal, template: np.ndarray,
                lines: float | None = None) -> Proposal | None:
        """``last`` found again in ``grey``: first within NEAR_LINES of where it was (a tag moves a pixel
        or two a frame), then, when its best match there is weak or on the window's edge, within
        ``search_lines`` (about half the cost on the first try: the window is a quarter as large)."""
        fh, fw = grey.shape
        tx0, ty0, tx1, ty1 = last.tag_xyxy
        th, tw = template.shape[:2]
        if th < 4 or tw < 4:
            return None
        far = max(4, int((lines or self.search_lines) * th / 3.4))  # a tag is about 3.4 lines high
        near = min(far, max(4, int(NEAR_LINES * th / 3.4)))
        for m in (near, far) if near < far else (far,):
            wx0, wy0, wx1, wy1 = max(0, tx0 - m), max(0, ty0 - m), min(fw, tx1 + m), min(fh, ty1 + m)
            if wx1 - wx0 < tw or wy1 - wy0 < th:
                continue
            scores = cv2.matchTemplate(grey[wy0:wy1, wx0:wx1], template, cv2.TM_CCOEFF_NORMED)
            _, best, _, (bx, by) = cv2.minMaxLoc(scores)
            edge = (bx == 0 < wx0 or by == 0 < wy0 or bx == scores.shape[1] - 1 and wx1 < fw
                    or by == scores.shape[0] - 1 and wy1 < fh)  # the best may lie beyond the window
            if best >= self.min_match and (m == far or not edge):  # (also rejects NaN from a flat template)
                break
        else:
            return None
        dx, dy = wx0 + bx - tx0, wy0 + by - ty0
        body = _moved_body(last.body_xyxy, dx, dy, (fw, fh))
        if body is None:
            return None
        return Proposal(body_xyxy=body, tag_xyxy=(tx0 + dx, ty0 + dy, tx1 + dx, ty1 + dy),
                        score=float(min(last.score, best)), tag_verified=last.tag_verified)


def _moved_body(body_xyxy: XYXY, dx: int, dy: int, size_wh: tuple[int, int]) -> XYXY | None:
    """A body box moved with its tag by (dx, dy), clipped to the frame; None if under 2 px either way."""
    x0, y0, x1, y1 = body_xyxy
    body = clip_box((x0 + dx, y0 + dy, x1 + dx, y1 + dy), size_wh)
    if body is None or body[2] - body[0] < 2 or body[3] - body[1] < 2:
        return None
    return body


def _moved(followed: Proposal, tag: Nametag, size_wh: tuple[int, int]) -> Proposal | None:
    """``followed`` with its tag box replaced by the verified ``tag`` and its body moved as far (None if
    nothing of it is left in the frame)."""
    dx, dy = (tag.tag_xyxy[0] - followed.tag_xyxy[0]), (tag.tag_xyxy[3] - followed.tag_xyxy[3])
    body = _moved_body(followed.body_xyxy, dx, dy, size_wh)
    return None if body is None else Proposal(body_xyxy=body, tag_xyxy=tag.tag_xyxy, score=tag.score)


class _SearchStage(StageThread):
    """Runs the full search on each frame it is handed, at most once per ``min_period_s``."""

    name = "nametag-search"

    def __init__(self, min_period_s: float, full_search: FullSearch) -> None:
        super().__init__()
        self.min_period_s = min_period_s
        self.full_search = full_search
        self.frames: LatestFrame[np.ndarray] = LatestFrame()
        self.results: LatestFrame[Search] = LatestFrame()

    def run_stage(self) -> None:
        while not self.stopping:
            frame = self.frames.get()
            started = time.perf_counter()
            proposals = self.full_search(frame)
            self.results.put((proposals, LazyGrey(frame)))  # templates are cut from it by the caller
            # rest, in short steps: the caller may shorten the period meanwhile (a Cog came or went)
            while (rest := self.min_period_s - (time.perf_counter() - started)) > 0 and not self.stopping:
                self._stop.wait(min(rest, REST_STEP_S))

    @property
    def idle(self) -> bool:
        """Waiting for a frame (not searching, not resting)."""
        return self.frames.wait_for_consumer(0)

    def close(self, timeout: float) -> None:
        self.stop()
        self.frames.close()
        self.results.close()
        self.join(timeout)


class BackgroundSearchProposer(IncrementalProposer):
    """:class:`IncrementalProposer` whose full searches run on a stage of their own (the second core).

    The calling thread only follows known tags (template matching, ~1-2 ms) on every frame and
    hands the newest frame to the search stage whenever it is idle; the stage runs
    :func:`propose_cog_boxes` on it, at most ``max_searches_per_s`` times a second.  A finished
    search describes a frame one or two frames old, so its tags are followed from *that* frame's
    pixels into the current one before they replace the known set (a Cog that walked in appears
    one search later; one that left is dropped).  The slow full search is thus off the frame's
    critical path: no latency spike every N frames.  The first frame is searched synchronously.
    While the number of known Cogs has not changed for QUIET_S, searches run ``backoff`` times as
    far apart (1: never).  ``close()`` stops the stage; an exception in it is raised by the next call.
    """

    def __init__(self, max_searches_per_s: float = 30.0, min_match: float = 0.6, search_lines: float = 2.5, *,
                 keep_missing: bool = True, full_search: FullSearch = propose_cog_boxes,
                 backoff: float = 1.0) -> None:
        super().__init__(full_every=1, min_match=min_match, search_lines=search_lines, keep_missing=keep_missing,
                         full_search=full_search)
        self._search = _SearchStage(1.0 / max_searches_per_s if max_searches_per_s > 0 else 0.0, full_search)
        self.backoff = backoff
        self.clock = time.perf_counter
        self._period_s = self._search.min_period_s  # at full rate (the load governor sets it)
        self._full_rate_s = self._period_s  # ... before the governor lengthens it
        self._busy_until = float("-inf")  # searches at full rate until then (a Cog came or went)
        self._closed = False
        self._handed = False  # the frame of this call went to the search stage
        self._searched_t = 0.0  # when the frame the search in progress searches was handed (clock)

    @property
    def min_period_s(self) -> float:
        """The shortest time between two full searches at full rate (the load governor lowers the rate
        through it; while no Cog came or went for QUIET_S, searches run ``backoff`` times as far apart)."""
        return self._period_s

    @min_period_s.setter
    def min_period_s(self, value: float) -> None:
        self._period_s = value
        self._pace(0, 0)

    def _pace(self, before: int, after: int) -> None:
        """Full rate for QUIET_S after the number of known Cogs changed (one came, left, or was lost where
        Cogs cross: another may follow, or it may come back), else ``backoff`` times as far apart as the
        full-rate period (``max_searches_per_s``'s), but only at full rate: while the load governor has
        lengthened the period (CPU short), its period holds (there, searches further apart lose Cogs whose
        tags moved too far between frames to be followed)."""
        now = self.clock()
        if before != after:
            self._busy_until = now + QUIET_S
        quiet = now >= self._busy_until and self._period_s <= self._full_rate_s
        self._search.min_period_s = self._full_rate_s * self.backoff if quiet else self._period_s

    @property
    def full_searches(self) -> int:
        """Full searches finished by the search stage."""
        return self._search.results.put_count

    @property
    def searching(self) -> bool:
        """Whether the search stage's thread runs."""
        return self._search.is_alive()

    def close(self, timeout: float = 2.0) -> None:
        self._closed = True
        self._search.close(timeout)

    def reset(self) -> None:
        super().reset()
        self._search.results.take()

    def _handed_search(self, frame_rgb: np.ndarray) -> Search | None:
        """The search finished since the last call (if any); hands ``frame_rgb`` on when the stage is idle."""
        if self._search.error is not None:
            error = self._search.error
            raise RuntimeError(f"the nametag search thread failed: {error}") from error
        if self._closed:
            raise RuntimeError("BackgroundSearchProposer used after close()")
        if not self._search.is_alive() and not self._search.stopping:
            self._search.start()  # on first use, so a pipeline that never runs starts no thread
        result = self._search.results.take()
        self._handed = self._search.idle
        if self._handed:
            self._search.frames.put(frame_rgb)  # frames are never written after the grab
        return result

    def __call__(self, frame_rgb: np.ndarray) -> list[Proposal]:
        check_frame(frame_rgb)
        if min(frame_rgb.shape[:2]) < MIN_FRAME_SIDE:
            self.reset()
            return []
        result = self._handed_search(frame_rgb)
        now = self.clock()
        age_s = now - self._searched_t  # from the searched frame to this one
        if self._handed:
            self._searched_t = now
        grey = LazyGrey(frame_rgb)
        if self._shape != frame_rgb.shape:
            proposals = self.full_search(frame_rgb)  # first frame, or a resized window
        elif result is not None:
            found, found_grey = result
            if found_grey.shape != grey.shape:
                found = []
            templates = [found_grey[p.tag_xyxy[1]:p.tag_xyxy[3], p.tag_xyxy[0]:p.tag_xyxy[2]] for p in found]
            # a search that took several frames (a busy machine): its Cogs walked further meanwhile
            lines = self.search_lines * min(MAX_AGE_WIDEN, max(1.0, age_s / FOLLOW_STEP_S))
            proposals = self._followed(grey, zip(found, templates, strict=True), lines)
            proposals += self._kept_missing(frame_rgb, grey, proposals)
        else:
            proposals = self._followed(grey, self._tracked)
        self._pace(len(self._tracked), len(proposals))
        return self._remember(frame_rgb.shape, grey, proposals)
