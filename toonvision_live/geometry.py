"""Box maths, the one copy: pixel boxes ``(x0, y0, x1, y1)`` with exclusive ends, screen rectangles,
clipping, areas, intersections, IoU and one-to-one matching.

Two shapes of the same thing: ``XYXY`` is one integer box (plain Python, for per-box work), and the
``*_matrix`` functions take any [N, 4] sequence or array of boxes and answer with float64 numpy arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: one pixel box (x0, y0, x1, y1): x0, y0 inclusive, x1, y1 exclusive
XYXY = tuple[int, int, int, int]
#: many boxes, as [N, 4] (a list of XYXY, or an array)
Boxes = Sequence[Sequence[float]] | np.ndarray

#: frames smaller than this on a side show no Cog worth naming (no nametag is readable in them)
MIN_FRAME_SIDE = 32


@dataclass(frozen=True, slots=True)
class ScreenRect:
    """A rectangle in virtual-screen pixels; left/top may be negative."""

    left: int
    top: int
    width: int
    height: int

    @property
    def xyxy(self) -> XYXY:
        return (self.left, self.top, self.left + self.width, self.top + self.height)

    @property
    def is_empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def as_mss(self) -> dict[str, int]:
        return {"left": self.left, "top": self.top, "width": self.width, "height": self.height}

    @classmethod
    def from_xyxy(cls, x0: int, y0: int, x1: int, y1: int) -> ScreenRect:
        return cls(int(x0), int(y0), int(x1 - x0), int(y1 - y0))


def visible_part(window: ScreenRect, screens: Sequence[ScreenRect]) -> ScreenRect | None:
    """The part of ``window`` that can be captured: its intersection with the bounding box of
    ``screens`` (the virtual screen).  ``None`` when nothing of it is on screen."""
    if window.is_empty or not screens:
        return None
    bounds = (
        min(s.left for s in screens),
        min(s.top for s in screens),
        max(s.left + s.width for s in screens),
        max(s.top + s.height for s in screens),
    )
    part = intersection(window.xyxy, bounds)
    return None if part is None else ScreenRect.from_xyxy(*part)


# ---- one box (plain Python) -------------------------------------------------------------------


def clip_box(box: Sequence[float], size_wh: tuple[int, int]) -> XYXY | None:
    """``box`` (rounded down to whole pixels) clipped to an image of ``size_wh``; None when nothing of it
    is inside (or it is empty)."""
    width, height = size_wh
    x0, y0, x1, y1 = (int(v) for v in box)
    return intersection((x0, y0, x1, y1), (0, 0, width, height))


def intersection(a: XYXY, b: XYXY) -> XYXY | None:
    """The box both ``a`` and ``b`` cover; None when they do not overlap."""
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def overlap(a: XYXY, b: XYXY) -> int:
    """Intersection area of two boxes (plain Python: cheap enough to call for every candidate pair)."""
    return max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))


def area(box: XYXY) -> int:
    return max(0, box[2] - box[0]) * max(0, box[3] - box[1])


def grow(box: XYXY, by: int) -> XYXY:
    """``box`` grown by ``by`` pixels on every side (shrunk when negative)."""
    return (box[0] - by, box[1] - by, box[2] + by, box[3] + by)


def covered_fraction(box: XYXY, others: Sequence[XYXY]) -> float:
    """The largest fraction of ``box`` that one of ``others`` covers."""
    return max((overlap(box, o) for o in others), default=0) / max(1, area(box))


def union_covered_fraction(box: XYXY, others: Sequence[XYXY]) -> float:
    """The fraction of ``box`` that ``others`` cover together (each pixel counted once)."""
    if not others or area(box) == 0:
        return 0.0
    x0, y0, x1, y1 = box
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for other in others:
        part = intersection(box, other)
        if part is not None:
            mask[part[1] - y0 : part[3] - y0, part[0] - x0 : part[2] - x0] = True
    return float(mask.mean())


def max_iou(box: XYXY, others: Sequence[XYXY]) -> float:
    """The highest IoU of ``box`` with one of ``others`` (0 when there are none)."""
    best = 0.0
    for other in others:
        inter = overlap(box, other)
        union = area(box) + area(other) - inter
        best = max(best, inter / union if union > 0 else 0.0)
    return best


# ---- many boxes (numpy) -----------------------------------------------------------------------


def as_xyxy_array(boxes: Boxes) -> np.ndarray:
    """Boxes as a float64 [N, 4] array (an empty input gives shape [0, 4])."""
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 4), np.float64)
    if arr.ndim != 2 or arr.shape[1] != 4:
        raise ValueError(f"boxes must be [N, 4] xyxy, got shape {arr.shape}")
    return arr


def clip_xyxy(boxes: Boxes, frame_wh: tuple[int, int]) -> np.ndarray:
    """Boxes clipped to a frame of ``frame_wh`` (width, height), float64 [N, 4]; a box outside it becomes
    empty (zero width or height) and keeps its place."""
    arr = as_xyxy_array(boxes).copy()
    w, h = frame_wh
    arr[:, [0, 2]] = np.clip(arr[:, [0, 2]], 0, w)
    arr[:, [1, 3]] = np.clip(arr[:, [1, 3]], 0, h)
    return arr


def box_area(boxes: Boxes) -> np.ndarray:
    arr = as_xyxy_array(boxes)
    return np.clip(arr[:, 2] - arr[:, 0], 0, None) * np.clip(arr[:, 3] - arr[:, 1], 0, None)


def intersection_matrix(a_xyxy: Boxes, b_xyxy: Boxes) -> np.ndarray:
    """Intersection area of every box in ``a`` with every box in ``b``: [len(a), len(b)]."""
    a, b = as_xyxy_array(a_xyxy), as_xyxy_array(b_xyxy)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    return np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)


def iou_matrix(a_xyxy: Boxes, b_xyxy: Boxes) -> np.ndarray:
    """Intersection over union of every box in ``a`` with every box in ``b``: [len(a), len(b)]."""
    a, b = as_xyxy_array(a_xyxy), as_xyxy_array(b_xyxy)
    inter = intersection_matrix(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_matches(iou: np.ndarray, min_iou: float) -> list[tuple[int, int]]:
    """(row, col) pairs matched one-to-one, highest IoU first, each with IoU >= ``min_iou``."""
    if iou.size == 0:
        return []
    order = np.argsort(-iou, axis=None, kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    pairs = []
    for flat in order:
        r, c = divmod(int(flat), iou.shape[1])
        if iou[r, c] < min_iou:
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


def match_boxes(pred_xyxy: Boxes, truth_xyxy: Boxes, iou: float = 0.5) -> tuple[int, int, int]:
    """(true positives, false positives, false negatives) of a one-to-one match at IoU >= ``iou``."""
    pred, truth = as_xyxy_array(pred_xyxy), as_xyxy_array(truth_xyxy)
    tp = len(greedy_matches(iou_matrix(pred, truth), iou))
    return tp, len(pred) - tp, len(truth) - tp
