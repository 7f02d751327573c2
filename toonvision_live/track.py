"""Per-Cog label smoothing across frames.

Proposals are associated with the tracks of earlier frames by box overlap (the better of the
body-box IoU and the nametag IoU: the tag box is the steadier of the two), greedily, highest
overlap first.  Each track keeps its predictions of the last ``window_s`` seconds (a Cog never
changes what it is, so a long window only costs a late change when two tracks swap; measured on
the demo street, 1 s instead of 5 frames names 4 points more Cogs right, because a Cog briefly
covered by another or caught mid-stride is outvoted by the frames around it); its label is the
best consistent Cog and suit of the averaged probabilities (``infer.joint_labels``; a
confidence-weighted vote when a prediction carries none), and its box size is the median of the
last ``size_frames`` sizes around the newest box's centre, which steadies the body box without
lagging behind a walking Cog.  Tracks unseen for ``max_age_s`` are dropped.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from toonvision_live.classify.classifier import CogPrediction, joint_labels
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


@dataclass(slots=True)
class _Track:
    track_id: int
    body_xyxy: XYXY
    tag_xyxy: XYXY
    last_t: float
    hits: int = 0
    times: deque[float] = field(default_factory=deque)  # when each kept prediction was made
    entity: deque[np.ndarray] = field(default_factory=deque)
    suit: deque[np.ndarray] = field(default_factory=deque)
    sizes: deque[tuple[int, int]] = field(default_factory=deque)


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


class LabelSmoother:
    """Associates proposals with tracks and smooths their labels over the last ``window_s`` seconds
    (at most ``max_predictions`` per track; 0 s follows each frame)."""

    def __init__(self, window_s: float = 1.0, min_iou: float = 0.3, max_age_s: float = 0.5, *,
                 size_frames: int = 5, max_predictions: int = 240) -> None:
        if not window_s >= 0:
            raise ValueError("window_s must be at least 0")
        if size_frames < 1 or max_predictions < 1:
            raise ValueError("size_frames and max_predictions must be at least 1")
        self.window_s = window_s
        self.size_frames = size_frames
        self.max_predictions = max_predictions
        self.min_iou = min_iou
        self.max_age_s = max_age_s
        self._tracks: list[_Track] = []
        self._next_id = 1

    @property
    def track_count(self) -> int:
        return len(self._tracks)

    def reset(self) -> None:
        self._tracks.clear()

    def update(self, proposals: Sequence[Proposal], predictions: Sequence[CogPrediction],
               t: float, unreliable: Collection[int] = ()) -> list[TrackedCog]:
        """One TrackedCog per proposal (same order), after matching them with the live tracks.

        The predictions at the indices in ``unreliable`` (crops partly covered by the overlay's own
        cards, say) move their track but do not vote on its label, unless the track has no vote yet."""
        if len(proposals) != len(predictions):
            raise ValueError(f"{len(proposals)} proposals but {len(predictions)} predictions")
        self._tracks = [tr for tr in self._tracks if t - tr.last_t <= self.max_age_s]
        body_iou = iou_matrix([p.body_xyxy for p in proposals], [tr.body_xyxy for tr in self._tracks])
        tag_iou = iou_matrix([p.tag_xyxy for p in proposals], [tr.tag_xyxy for tr in self._tracks])
        matches = dict(greedy_matches(np.maximum(body_iou, tag_iou), self.min_iou))
        out = []
        for i, (proposal, prediction) in enumerate(zip(proposals, predictions, strict=True)):
            if i in matches:
                track = self._tracks[matches[i]]
            else:
                track = _Track(self._next_id, proposal.body_xyxy, proposal.tag_xyxy, t)
                self._next_id += 1
                self._tracks.append(track)
            self._observe(track, proposal, prediction, t, vote=i not in unreliable or not track.entity)
            suit, cog, confidence, agree = smoothed_label(track.suit, track.entity)
            sizes = np.asarray(track.sizes, np.float64)
            box = resize_about_centre(proposal.body_xyxy, tuple(np.median(sizes, axis=0)))
            out.append(TrackedCog(track.track_id, box, suit, cog, confidence, agree, track.hits,
                                  proposal.tag_xyxy))
        return out

    def _observe(self, track: _Track, proposal: Proposal, prediction: CogPrediction, t: float,
                 vote: bool = True) -> None:
        suit, entity = prediction_vectors(prediction)
        x0, y0, x1, y1 = proposal.body_xyxy
        if vote:
            track.times.append(t)
            track.suit.append(suit)
            track.entity.append(entity)
        while len(track.times) > self.max_predictions or (len(track.times) > 1 and
                                                           track.times[0] <= t - self.window_s):
            for queue in (track.times, track.suit, track.entity):
                queue.popleft()
        track.sizes.append((x1 - x0, y1 - y0))
        while len(track.sizes) > self.size_frames:
            track.sizes.popleft()
        track.body_xyxy, track.tag_xyxy, track.last_t = proposal.body_xyxy, proposal.tag_xyxy, t
        track.hits += 1
