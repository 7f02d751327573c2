"""The Cog's body under a verified nametag: where it starts, how far down and how wide it is.

The head sits about one text line under the card; the body runs down while the columns around the
tag's axis differ from their row's ground colour (:class:`RowGround`), the drop shadow and thin lines
(the overlay's own box, captured on X11) excluded; its width is measured and pulled towards the
typical 1:2.5.  Pure functions of the frame and the tag.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from toonvision_live.geometry import XYXY

if TYPE_CHECKING:
    from toonvision_live.find.nametags import Nametag


#: body geometry in text-line heights: gap from the tag's bottom to the head; default, least and
#: largest height; default and largest half-width
BODY_GAP, BODY_H, BODY_H_MIN, BODY_H_MAX, BODY_HALF_W, BODY_HALF_W_MAX = 1.2, 16.0, 8.0, 34.0, 4.0, 12.0


def body_prior_xyxy(tag_xyxy: XYXY, line_height: float) -> tuple[float, float, float, float]:
    """The body box guessed from the tag alone (not clipped): centred under it, BODY_H lines tall."""
    cx = (tag_xyxy[0] + tag_xyxy[2]) / 2
    top = tag_xyxy[3] + BODY_GAP * line_height
    return (cx - BODY_HALF_W * line_height, top, cx + BODY_HALF_W * line_height, top + BODY_H * line_height)


@dataclass(frozen=True, slots=True)
class RowGround:
    """Each row's typical colour over the whole frame (its median), on a copy scaled to GROUND_COLS wide.

    Where Cogs stand, most of a row is ground, so the row's median is the ground's colour and its
    median absolute deviation the ground's texture; a body differs from it, its drop shadow is the
    same colour darker.
    """

    small: np.ndarray  # int16 [h, GROUND_COLS, 3]
    median: np.ndarray  # int16 [h, 3]
    spread: np.ndarray  # float32 [h]: per-row colour tolerance
    scale: float  # full-resolution pixels per small pixel

    @classmethod
    def of(cls, frame_rgb: np.ndarray) -> RowGround:
        fh, fw = frame_rgb.shape[:2]
        # halvings by bilinear resize average 2x2 blocks, much faster than OpenCV's area resize
        small_u8, scale = frame_rgb, 1.0
        while small_u8.shape[1] > 1.5 * GROUND_COLS and min(small_u8.shape[:2]) >= 4:
            small_u8 = cv2.resize(small_u8, (small_u8.shape[1] // 2, small_u8.shape[0] // 2),
                                  interpolation=cv2.INTER_LINEAR)
            scale *= 2.0
        sample = np.ascontiguousarray(small_u8[:, ::4])
        mid = sample.shape[1] // 2
        median = np.partition(sample, mid, axis=1)[:, mid].astype(np.int16)
        dev = cv2.absdiff(sample, np.ascontiguousarray(np.broadcast_to(median[:, None, :], sample.shape), np.uint8))
        dev_max = np.maximum(np.maximum(dev[..., 0], dev[..., 1]), dev[..., 2])
        spread = np.clip(2.0 * np.partition(dev_max, mid, axis=1)[:, mid], 24, 60).astype(np.float32)
        small = small_u8.astype(np.int16)
        return cls(small, median, spread, scale)


#: width of the copy the body search works on
GROUND_COLS = 320
_KERNEL_V3 = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 3))
_KERNEL_H3 = cv2.getStructuringElement(cv2.MORPH_RECT, (3, 1))
#: body width as a fraction of its height: bounds (real boxes: 1:1.3 to 1:4) and the typical value
WIDTH_MIN, WIDTH_MAX, WIDTH_TYPICAL = 0.25, 0.8, 0.4
#: the body goes on across gaps of up to this many text lines without body pixels near the axis
BODY_GAP_LINES = 3.5


def refine_body_xyxy(frame_rgb: np.ndarray, tag: Nametag,
                     ground: RowGround | None = None) -> tuple[float, float, float, float]:
    """The body under ``tag``: from the head (just under the tag) down to where the ground shows again.

    Body pixels are those unlike their row's ground colour (:class:`RowGround`) and not merely
    darker ground (the drop shadow).  Going down from the head, the body lasts while the columns
    near the tag's axis hold body pixels (gaps up to 1.5 lines); its width is the run of columns
    holding body around the axis, kept within the 1:1.3 to 1:4.5 width:height of real Cog boxes.
    Falls back to :func:`body_prior_xyxy` when the evidence is thin.
    """
    ground = ground or RowGround.of(frame_rgb)
    line = tag.line_height
    prior = body_prior_xyxy(tag.tag_xyxy, line)
    small, k = ground.small, ground.scale
    sh, sw = small.shape[:2]
    lp = line / k  # one text line in small pixels
    axis = (prior[0] + prior[2]) / 2 / k
    y0 = int(round(prior[1] / k))
    y1 = min(sh, int(round((prior[1] + BODY_H_MAX * line) / k)))
    half = BODY_HALF_W_MAX * lp
    x0, x1 = max(0, int(axis - half)), min(sw, int(np.ceil(axis + half)) + 1)
    if y1 - y0 < 4 or x1 - x0 < 3 or y0 >= sh:
        return prior
    zone = small[y0:y1, x0:x1]
    bg = ground.median[y0:y1]
    # per channel (numpy reductions over a last axis of 3 are slow)
    zc = [zone[..., c] for c in range(3)]
    bc = [bg[:, c, None] for c in range(3)]
    diff = np.maximum(np.maximum(np.abs(zc[0] - bc[0]), np.abs(zc[1] - bc[1])), np.abs(zc[2] - bc[2]))
    ratio = [(zc[c] + 4).astype(np.float32) / (bc[c] + 4).astype(np.float32) for c in range(3)]
    r_max = np.maximum(np.maximum(ratio[0], ratio[1]), ratio[2])
    r_min = np.minimum(np.minimum(ratio[0], ratio[1]), ratio[2])
    shadow = (r_max < 0.92) & (r_max - r_min < 0.2) & (r_min > 0.25)
    body_u8 = ((diff > ground.spread[y0:y1, None]) & ~shadow).astype(np.uint8)
    # thin straight lines are not bodies (the overlay's own box, seen in the next capture): rows are
    # read without 1-2 pixel high lines, columns without 1-2 pixel wide ones
    body = body_u8.astype(bool)
    body_rows_only = cv2.morphologyEx(body_u8, cv2.MORPH_OPEN, _KERNEL_V3).astype(bool)
    body_cols = cv2.morphologyEx(body_u8, cv2.MORPH_OPEN, _KERNEL_H3).astype(bool)
    near = slice(max(0, int(axis - 2.5 * lp) - x0), max(1, int(np.ceil(axis + 2.5 * lp)) + 1 - x0))
    row_frac = body[:, near].mean(axis=1)
    body_rows = row_frac >= 0.2
    max_gap = max(1.0, BODY_GAP_LINES * lp)
    bottom, gap = -1, 0
    for y in range(len(body_rows)):
        if body_rows[y]:
            bottom, gap = y, 0
        else:
            gap += 1
            if gap > max_gap and (bottom >= 0 or y > 3 * lp):
                break
    # the feet end the body: trim rows at the bottom that only a thin line reaches
    thick = body_rows_only[:, near].mean(axis=1) >= 0.2
    while bottom > 0 and not thick[bottom]:
        bottom -= 1
    height = (bottom + 1) * k
    if bottom < 0 or height < BODY_H_MIN * line:
        return prior
    # width: the columns holding body in the torso rows, run out from the axis, centred on it
    torso = body_cols[int(0.12 * (bottom + 1)): max(int(0.55 * (bottom + 1)), 1)]
    col_frac = torso.mean(axis=0) if len(torso) else body_cols[: bottom + 1].mean(axis=0)
    cols = col_frac >= max(0.15, 0.35 * float(col_frac[near].max(initial=0.0)))
    c = int(np.clip(round(axis) - x0, 0, len(cols) - 1))
    a, b = c, c
    while a > 0 and (cols[a - 1] or (a > 1 and cols[a - 2])):
        a -= 1
    while b < len(cols) - 1 and (cols[b + 1] or (b < len(cols) - 2 and cols[b + 2])):
        b += 1
    reach = max(c - a, b - c) + 0.5
    # the measured reach overshoots on arms and neighbours: pull it towards the typical width
    measured = 2 * reach * k
    width = float(np.clip(measured ** 0.35 * (WIDTH_TYPICAL * height) ** 0.65, WIDTH_MIN * height, WIDTH_MAX * height))
    cx = axis * k
    return (cx - width / 2, prior[1], cx + width / 2, prior[1] + height)
