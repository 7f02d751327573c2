"""Crop stage: nametag-anchored Cog proposals (DESIGN.md "Crop"); the 600x200 stretch is toonvision_live.crops.

Every Cog carries a nametag above its head: a light-grey, low-saturation, semi-transparent
card with three lines of dark text (name, department, "Level N").  Toon tags are one line of
coloured text; the overlay draws its labels on saturated suit-colour cards.  So:

1. Candidates (:func:`_coarse_candidates`), on the frame scaled to WORK_ROWS rows: a black-hat
   filter marks small dark strokes with card-like (light, low-saturation) pixels close by; long
   vertical strokes (window frames, posts) are dropped; a horizontal closing joins letters into
   text lines; stacks of three centred lines with an even pitch are candidates, and so are
   tag-shaped blobs (for lines merged with clutter).  Candidates that are mostly not card-like
   are dropped.
2. Verification (:func:`verify_nametag`) around each candidate at full resolution (large tags on
   a 2x-4x smaller copy): dark letter strokes on a light low-saturation card, exactly three text
   bands of similar height and even pitch, centred on one axis, plausible widths, a light card
   under dark text.  Toon tags (one line) and the overlay's cards (saturated, white text) fail.
3. The body under each tag is measured (:mod:`toonvision_live.find.body`): the head about one text
   line below the card, down while the columns around the tag's axis differ from their row's ground.
4. Duplicates are merged and boxes clipped to the frame (:func:`propose_cog_boxes`, pure).

All of it is pure (no state, no threads; the video proposers are in :mod:`toonvision_live.find.proposers`).
:func:`toonvision_live.find.evaluate.evaluate_proposals` measures precision and recall against VOC truth.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from toonvision_live.crops import check_frame
from toonvision_live.find.body import RowGround, refine_body_xyxy
from toonvision_live.geometry import (
    MIN_FRAME_SIDE,
    XYXY,
    box_area,
    clip_xyxy,
    covered_fraction,
    iou_matrix,
    max_iou,
)

#: the coarse pass works on a frame scaled to about this many rows
WORK_ROWS = 540
#: text line height (full-resolution pixels) accepted for a nametag, as a fraction of frame rows
MIN_LINE_FRAC, MAX_LINE_FRAC = 0.008, 0.09
#: a known tag (snapped to a detection, or followed) may have lines this low at any size (MIN_LINE_FRAC: 17 px at 4K)
SNAP_MIN_LINE_PX = 4.0
#: candidates taller than this many times this are checked on a copy scaled down by that integer
VERIFY_BLOB_ROWS = 36
#: a nametag card's non-text pixels: saturation at most, value at least (0..255, OpenCV HSV); the
#: card is grey 204 at half opacity, so its mean value stays under CARD_MAX_VAL even over white,
#: unlike the game's opaque white speech balloons
CARD_MAX_SAT, CARD_MIN_VAL, CARD_MAX_VAL = 125, 110, 236
#: text pixels are darker than this fraction of the card's value
TEXT_REL_VAL = 0.65


@dataclass(frozen=True, slots=True)
class Nametag:
    """A verified Cog nametag: its card box, the height of one text line, and a 0..1 score."""

    tag_xyxy: XYXY
    line_height: float
    score: float


@dataclass(frozen=True, slots=True)
class Proposal:
    """A Cog's body box and nametag box; ``tag_verified`` is False when the tag box is only the learned
    detector's guess (the verifier did not confirm it): such a box is never read as a nametag."""

    body_xyxy: XYXY
    tag_xyxy: XYXY
    score: float
    tag_verified: bool = True


def _compare(image: np.ndarray, value: float, op: int) -> np.ndarray:
    """cv2.compare against a scalar: 255 where ``image op value`` holds, else 0 (uint8)."""
    return cv2.compare(image, value, op)  # type: ignore[call-overload]  # the stubs lack the scalar form


def _line_rects(frame_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Runs of small dark strokes (text lines) as xywh boxes [N, 4], the stroke mask, the integral
    image of light low-saturation (card-like) pixels, and the scale; all on the frame scaled to
    WORK_ROWS rows."""
    h, w = frame_rgb.shape[:2]
    scale = max(1.0, h / WORK_ROWS)
    sw, sh = max(1, round(w / scale)), max(1, round(h / scale))
    small = cv2.resize(frame_rgb, (sw, sh), interpolation=cv2.INTER_LINEAR) if scale > 1.0 else frame_rgb
    _, sat, val = cv2.split(cv2.cvtColor(small, cv2.COLOR_RGB2HSV))
    blackhat = cv2.morphologyEx(val, cv2.MORPH_BLACKHAT, _KERNEL_5)
    # dark strokes on a lighter ground with some low-saturation (card) pixels close by
    strokes = cv2.bitwise_and(
        cv2.bitwise_and(_compare(blackhat, STROKE_CONTRAST, cv2.CMP_GT), _compare(val, 170, cv2.CMP_LT)),
        _compare(cv2.erode(sat, _KERNEL_5), CARD_MAX_SAT, cv2.CMP_LE))
    # letters are short: drop long vertical strokes (window and door frames, posts) first
    tall = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, _KERNEL_TALL)
    lines = cv2.morphologyEx(cv2.subtract(strokes, tall), cv2.MORPH_CLOSE, _KERNEL_LINE)
    card = cv2.bitwise_and(_compare(sat, CARD_MAX_SAT, cv2.CMP_LE), _compare(val, CARD_MIN_VAL, cv2.CMP_GE))
    card_sum = cv2.integral(card // 255)
    contours, _ = cv2.findContours(lines, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return np.zeros((0, 4), np.int32), strokes, card_sum, scale
    rects = _split_stacked(np.array([cv2.boundingRect(c) for c in contours], np.int32), lines)
    max_line = 1.3 * MAX_LINE_FRAC * h / scale
    bw, bh = rects[:, 2], rects[:, 3]
    keep = (bh >= 2) & (bh <= max_line) & (bw >= np.maximum(4, bh)) & (bw <= 30 * bh)
    return rects[keep], strokes, card_sum, scale


def _split_stacked(rects: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Line boxes split where two text lines touch (a descender meeting the ascender below it):
    at the rows of a box much emptier than its fullest row, each part kept if at least 2 rows high.

    Which boxes split at all is found for all of them at once (their row profiles from one integral
    image); only those are cut up row by row."""
    splits = _splitting(rects, lines)
    if not splits.any():
        return rects.reshape(-1, 4)
    out = []
    for (x, y, w, h), split in zip(rects.tolist(), splits.tolist(), strict=True):
        if not split:
            out.append((x, y, w, h))
            continue
        profile = np.count_nonzero(lines[y:y + h, x:x + w], axis=1)
        parts = _runs(profile > 0.2 * profile.max())
        if len(parts) < 2:
            out.append((x, y, w, h))
            continue
        for a, b in parts:
            if b - a >= 2:
                cols = np.flatnonzero(np.count_nonzero(lines[y + a:y + b, x:x + w], axis=0))
                out.append((x + int(cols[0]), y + a, int(cols[-1] - cols[0] + 1), b - a))
    return np.array(out, np.int32).reshape(-1, 4)


def _splitting(rects: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Whether each box (at least 5 rows high) has two or more runs of rows fuller than a fifth of its
    fullest row: the boxes :func:`_split_stacked` cuts up."""
    rects = rects.reshape(-1, 4).astype(np.int64)
    tall = np.flatnonzero(rects[:, 3] >= 5)
    splits = np.zeros(len(rects), bool)
    if not len(tall):
        return splits
    x, y, w, h = (rects[tall, i] for i in range(4))
    ii = cv2.integral(_compare(lines, 0, cv2.CMP_GT) // 255)
    owner = np.repeat(np.arange(len(tall)), h)  # one entry per row of every tall box
    starts = np.cumsum(h) - h
    row = y[owner] + np.arange(len(owner)) - starts[owner]
    x0, x1 = x[owner], x[owner] + w[owner]
    count = ii[row + 1, x1] - ii[row + 1, x0] - ii[row, x1] + ii[row, x0]
    full = count > 0.2 * np.maximum.reduceat(count, starts)[owner]
    begins = full & ~np.concatenate(([False], full[:-1]))
    begins[starts] = full[starts]  # a run at a box's first row begins there
    splits[tall] = np.add.reduceat(begins.astype(np.int64), starts) >= 2
    return splits


def _block_candidates(strokes: np.ndarray, frame_h: int, scale: float) -> list[XYXY]:
    """Blobs of strokes closed into blocks of about a tag's shape (catches tags whose lines merged)."""
    blobs = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, _KERNEL_5)
    contours, _ = cv2.findContours(blobs, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    min_h, max_h = 3 * MIN_LINE_FRAC * frame_h / scale, 3.6 * MAX_LINE_FRAC * frame_h / scale
    out = []
    for contour in contours:
        x, y, bw, bh = cv2.boundingRect(contour)
        if min_h <= bh <= max_h and 0.9 * bh <= bw <= 10 * bh \
                and np.count_nonzero(blobs[y:y + bh, x:x + bw]) >= 0.25 * bw * bh:
            out.append((int(x * scale), int(y * scale), int(np.ceil((x + bw) * scale)),
                        int(np.ceil((y + bh) * scale))))
    return out


def _coarse_candidates(frame_rgb: np.ndarray) -> tuple[list[XYXY], float]:
    """Stacks of three centred text lines with an even pitch, as full-resolution xyxy boxes."""
    rects, strokes, card_sum, scale = _line_rects(frame_rgb)
    blocks = _block_candidates(strokes, frame_rgb.shape[0], scale)
    if len(rects) < 3:
        return _on_cards(blocks, card_sum, scale), scale
    x, y, w, h = (rects[:, i].astype(np.float32) for i in range(4))
    cx, cy = x + w / 2, y + h / 2
    hmax = np.maximum(h[:, None], h[None, :])
    dy = cy[None, :] - cy[:, None]  # [i, j]: j below i
    # j is the next line under i: centred on it, one line pitch lower, of a similar height
    below = ((dy >= 0.8 * hmax) & (dy <= 2.6 * hmax + 1)
             & (np.abs(cx[None, :] - cx[:, None]) <= 0.2 * np.maximum(w[:, None], w[None, :]) + 2)
             & (np.minimum(h[:, None], h[None, :]) >= 0.4 * hmax))
    out = []
    for i, j in zip(*np.nonzero(below), strict=True):
        for k in np.flatnonzero(below[j]):
            if abs(dy[j, k] - dy[i, j]) > 0.35 * max(dy[i, j], dy[j, k]) + 1:
                continue
            idx = [i, j, k]
            x0, y0 = x[idx].min(), y[idx].min()
            x1, y1 = (x[idx] + w[idx]).max(), (y[idx] + h[idx]).max()
            if x1 - x0 < 0.9 * (y1 - y0):
                continue  # three lines of a tag are wider than tall; stacked window sills are not
            out.append((int(x0 * scale), int(y0 * scale), int(np.ceil(x1 * scale)), int(np.ceil(y1 * scale))))
    return _on_cards(out + blocks, card_sum, scale), scale


def _on_cards(candidates: list[XYXY], card_sum: np.ndarray, scale: float) -> list[XYXY]:
    """The candidates whose box is mostly light, low-saturation pixels (a tag is mostly card)."""
    out = []
    for x0, y0, x1, y1 in candidates:
        a, b, c, d = int(x0 / scale), int(y0 / scale), int(x1 / scale), int(y1 / scale)
        area = (c - a) * (d - b)
        if area > 0 and card_sum[d, c] - card_sum[b, c] - card_sum[d, a] + card_sum[b, a] >= MIN_CARD_FRAC * area:
            out.append((x0, y0, x1, y1))
    return out


_KERNEL_5 = cv2.getStructuringElement(cv2.MORPH_RECT, (5, 5))
_KERNEL_LINE = cv2.getStructuringElement(cv2.MORPH_RECT, (7, 1))
_KERNEL_TALL = cv2.getStructuringElement(cv2.MORPH_RECT, (1, 12))
#: black-hat response (0..255) of a letter stroke on the scaled frame
STROKE_CONTRAST = 32
#: least fraction of card-like pixels in a candidate's box
MIN_CARD_FRAC = 0.4


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in a 1-D boolean array."""
    padded = np.zeros(mask.shape[0] + 2, np.bool_)  # (np.diff with prepend/append costs 4x as much here)
    padded[1:-1] = mask
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


def _text_extent(cols: np.ndarray, max_gap: float, centre: float) -> tuple[int, int] | None:
    """The group of text columns (gaps under ``max_gap``) with the most columns, nearest ``centre``."""
    runs = _runs(cols)
    if not runs:
        return None
    groups: list[list[int]] = [[runs[0][0], runs[0][1], runs[0][1] - runs[0][0]]]
    for a, b in runs[1:]:
        if a - groups[-1][1] <= max_gap:
            groups[-1][1] = b
            groups[-1][2] += b - a
        else:
            groups.append([a, b, b - a])
    best = max(groups, key=lambda g: g[2] - 0.5 * max(0.0, g[0] - centre, centre - g[1]))
    return best[0], best[1]


def _line_triples(bands: list[tuple[int, int]]) -> list[tuple[int, float]]:
    """(index of the first band, pitch) of every three consecutive bands spaced like tag lines, best first."""
    found = []
    for i in range(len(bands) - 2):
        (a1, e1), (a2, e2), (a3, e3) = bands[i:i + 3]
        hs = (e1 - a1, e2 - a2, e3 - a3)
        med = sorted(hs)[1]
        if med < 3 or min(hs) < 0.5 * med or max(hs) > 1.8 * med:
            continue
        p1, p2 = a2 - a1, a3 - a2
        pitch = (p1 + p2) / 2
        if abs(p1 - p2) > 0.3 * pitch + 1 or pitch > 2.2 * med or a2 - e1 < 1 or a3 - e2 < 1:
            continue
        mean = sum(hs) / 3
        spread = (sum((h - mean) ** 2 for h in hs) / 3) ** 0.5
        found.append((abs(p1 - p2) / pitch + spread / med, i, pitch))
    return [(i, pitch) for _, i, pitch in sorted(found)]


def _line_extents(text: np.ndarray, lines: list[tuple[int, int]], pitch: float, centre: float,
                  frame_sides: tuple[bool, bool] = (False, False)) -> list[tuple[int, int]] | str:
    """The x extent of each line's text, or why these bands are not a tag's three centred lines.

    ``frame_sides``: whether the region's left / right edge is the frame's; a tag cut by the frame
    edge is accepted without the centring and width checks its cut lines cannot pass.
    """
    extents = []
    for a, b in lines:
        ext = _text_extent(np.asarray(text[a:b].any(axis=0)), max_gap=1.2 * pitch, centre=centre)
        if ext is None:
            return "empty line"
        extents.append(ext)
    widths = np.array([e[1] - e[0] for e in extents], float)
    centres = np.array([(e[0] + e[1]) / 2 for e in extents], float)
    cut = (frame_sides[0] and min(e[0] for e in extents) <= 1) or \
        (frame_sides[1] and max(e[1] for e in extents) >= text.shape[1] - 1)
    if cut:
        return extents if 1.0 * pitch <= widths.max() <= 16 * pitch else f"cut line widths {widths / pitch}"
    if widths.min() < 2.0 * pitch or widths.max() > 16 * pitch:
        return f"line widths {np.round(widths / pitch, 1)}"
    if np.ptp(centres) > 0.12 * widths.max() + 0.5 * pitch:
        return f"not centred {np.round(centres / pitch, 1)}"
    return extents


def verify_nametag(frame_rgb: np.ndarray, candidate_xyxy: XYXY, min_line_px: float | None = None) -> Nametag | None:
    """Check, at full resolution around a candidate blob, for a Cog nametag; None if it is not one.
    Its text lines must be at least ``min_line_px`` high (default ``MIN_LINE_FRAC`` of the frame's rows)."""
    found = _verify(frame_rgb, candidate_xyxy, min_line_px)
    return found if isinstance(found, Nametag) else None


def _text_mask(sat: np.ndarray, val: np.ndarray, inner_xyxy: XYXY) -> np.ndarray:
    """Dark letter strokes on a light, low-saturation card, in a region around a candidate blob."""
    x0, y0, x1, y1 = inner_xyxy
    ch = y1 - y0
    inner = val[y0:y1, x0:x1].ravel()
    card_val = float(np.partition(inner, int(0.8 * (inner.size - 1)))[int(0.8 * (inner.size - 1))])
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, int(ch / 7) | 1),) * 2)
    blackhat = cv2.morphologyEx(val, cv2.MORPH_BLACKHAT, kernel)
    # a card pixel close by: not window frames on a bright saturated wall
    card_near = cv2.erode(sat, kernel) <= CARD_MAX_SAT
    text = (val < TEXT_REL_VAL * card_val) & (blackhat > 0.2 * card_val) & card_near
    # letters are at most about one line tall: drop posts, door frames and other tall strokes
    _, labels, stats, _ = cv2.connectedComponentsWithStats(text.astype(np.uint8), connectivity=8)
    for i in np.flatnonzero(stats[1:, cv2.CC_STAT_HEIGHT] > 0.45 * ch) + 1:
        x, y, w, h = stats[i, :4]
        text[y:y + h, x:x + w] &= labels[y:y + h, x:x + w] != i
    return text


def _verify(frame_rgb: np.ndarray, candidate_xyxy: XYXY, min_line_px: float | None = None,
            again: bool = False) -> Nametag | str:
    """A Nametag, or why the candidate is not one.  Where text runs into the region's top (bottom) edge less
    than a line above (below) the three lines found, a line of this card may lie beyond it (a candidate a line
    too low or high: the three found then take clutter for a line), so the candidate moved up (down) by a line
    is looked at ``again`` and the better scored of the two tags kept."""
    fh, fw = frame_rgb.shape[:2]
    x0, y0, x1, y1 = candidate_xyxy
    ch, cw = y1 - y0, x1 - x0
    pad_y, pad_x = int(0.4 * ch) + 2, int(0.2 * cw + 0.35 * ch) + 2
    rx0, ry0, rx1, ry1 = max(0, x0 - pad_x), max(0, y0 - pad_y), min(fw, x1 + pad_x), min(fh, y1 + pad_y)
    if rx1 - rx0 < 8 or ry1 - ry0 < 8:
        return "tiny"
    roi = frame_rgb[ry0:ry1, rx0:rx1]
    f = float(max(1, ch // VERIFY_BLOB_ROWS))  # big tags are checked at a lower resolution
    if f > 1.0:
        roi = cv2.resize(roi, (max(8, round((rx1 - rx0) / f)), max(8, round((ry1 - ry0) / f))),
                         interpolation=cv2.INTER_AREA)
    _, sat, val = cv2.split(cv2.cvtColor(roi, cv2.COLOR_RGB2HSV))
    ix0, iy0 = int((x0 - rx0) / f), int((y0 - ry0) / f)
    ix1, iy1 = max(ix0 + 1, int((x1 - rx0) / f)), max(iy0 + 1, int((y1 - ry0) / f))
    text = _text_mask(sat, val, (ix0, iy0, ix1, iy1))
    row_count = text[:, ix0:ix1].sum(axis=1)
    q = int(0.95 * (len(row_count) - 1))
    row_min = max(2.0, 0.06 * float(np.partition(row_count, q)[q]))
    bands: list[tuple[int, int]] = []
    for a, b in _runs(row_count >= row_min):
        # a band may hold a line plus clutter touching it: split it at rows much emptier than its peak
        strong = row_count[a:b] >= max(row_min, 0.15 * float(row_count[a:b].max()))
        bands.extend((a + u, a + v) for u, v in _runs(strong) if v - u >= 2)
    if bands:  # descenders cut off below a line make thin bands of their own: drop them
        tall = 0.4 * sorted(b[1] - b[0] for b in bands)[len(bands) // 2]
        bands = [b for b in bands if b[1] - b[0] >= tall]
    triples = _line_triples(bands)
    if not triples:
        return "not three lines"
    why = ""
    for i, pitch in triples:
        lines = bands[i:i + 3]
        found = _line_extents(text, lines, pitch, centre=(ix0 + ix1) / 2, frame_sides=(rx0 == 0, rx1 == fw))
        if isinstance(found, str):
            why = why or found
            continue
        extents = found
        break
    else:
        return why
    widths = np.array([e[1] - e[0] for e in extents], float)
    centres = np.array([(e[0] + e[1]) / 2 for e in extents], float)
    if not ((MIN_LINE_FRAC * fh if min_line_px is None else min_line_px) <= pitch * f <= MAX_LINE_FRAC * fh):
        return "line height"
    tx0, tx1 = int(min(e[0] for e in extents)), int(max(e[1] for e in extents))
    ty0, ty1 = lines[0][0], lines[2][1]
    box_text = text[ty0:ty1, tx0:tx1]
    text_frac = float(box_text.mean())
    if not 0.06 <= text_frac <= 0.6:
        return "text fraction"
    text_u8 = box_text.astype(np.uint8)
    card_sat = cv2.mean(sat[ty0:ty1, tx0:tx1], mask=1 - text_u8)[0]
    card_v = cv2.mean(val[ty0:ty1, tx0:tx1], mask=1 - text_u8)[0]
    text_v = cv2.mean(val[ty0:ty1, tx0:tx1], mask=text_u8)[0]
    if card_sat > CARD_MAX_SAT or card_v < CARD_MIN_VAL or text_v > 0.7 * card_v:
        return "card colour"
    if card_v > CARD_MAX_VAL:
        return "opaque white card (a speech balloon)"
    mx, my = 0.45 * pitch, 0.3 * pitch
    tag = (max(0, int(rx0 + (tx0 - mx) * f)), max(0, int(ry0 + (ty0 - my) * f)),
           min(fw, int(np.ceil(rx0 + (tx1 + mx) * f))), min(fh, int(np.ceil(ry0 + (ty1 + my) * f))))
    score = float(np.clip(1.0 - np.ptp(centres) / widths.max() - card_sat / 510, 0.05, 1.0))
    nametag = Nametag(tag_xyxy=tag, line_height=float(pitch * f), score=score)
    up = not again and ry0 > 0 and lines[0][0] < pitch and text[: lines[0][0], tx0:tx1].sum() >= pitch
    down = not again and ry1 < fh and text.shape[0] - lines[2][1] < pitch and text[lines[2][1]:, tx0:tx1].sum() >= pitch
    if up != down:
        move = int(round(pitch * f)) * (1 if down else -1)
        other = _verify(frame_rgb, (x0, y0 + move, x1, y1 + move), min_line_px, again=True)
        if isinstance(other, Nametag) and other.score > nametag.score:
            return other
    return nametag


def merge_duplicate_tags(tags: Sequence[Nametag], min_iou: float = 0.3) -> list[Nametag]:
    """One tag per card: of tags overlapping by IoU >= ``min_iou`` (or nested), keep the best scored."""
    kept: list[Nametag] = []
    for tag in sorted(tags, key=lambda t: -t.score):
        if not kept:
            kept.append(tag)
            continue
        ious = iou_matrix([tag.tag_xyxy], [k.tag_xyxy for k in kept])[0]
        a = box_area([tag.tag_xyxy])[0]
        inter = ious * (a + box_area([k.tag_xyxy for k in kept])) / (1 + ious)
        nested = inter >= 0.8 * np.minimum(a, box_area([k.tag_xyxy for k in kept]))
        if not np.any((ious >= min_iou) | nested):
            kept.append(tag)
    return kept


# --- the crop stage ------------------------------------------------------------------------------

def find_nametags(frame_rgb: np.ndarray, known: Sequence[XYXY] = ()) -> list[Nametag]:
    """Every Cog nametag in an RGB frame, duplicates merged; with ``known`` (tags verified already, e.g. by
    the detector's confirmation), the candidates mostly inside one of them are not verified again and
    only the other tags are returned."""
    check_frame(frame_rgb)
    if min(frame_rgb.shape[:2]) < MIN_FRAME_SIDE:
        return []  # no nametag fits
    candidates, _ = _coarse_candidates(frame_rgb)
    tags: list[Nametag] = []
    tried: list[XYXY] = []
    for cand in candidates:
        if (tags or known) and covered_fraction(cand, [*known, *(t.tag_xyxy for t in tags)]) > 0.4:
            continue  # another candidate of a tag already verified
        if tried and max_iou(cand, tried) > 0.7:
            continue  # nearly the same region was checked already
        tried.append(cand)
        tag = verify_nametag(frame_rgb, cand)
        if tag is not None:
            tags.append(tag)
    return merge_duplicate_tags(tags)


def propose_cog_boxes(frame_rgb: np.ndarray, known: Sequence[XYXY] = ()) -> list[Proposal]:
    """Cog body boxes (tight, nametag excluded) anchored on the nametags in ``frame_rgb``, left to right
    (``known``: tags verified already, not proposed again; see :func:`find_nametags`)."""
    check_frame(frame_rgb)
    tags = find_nametags(frame_rgb, known)
    ground = RowGround.of(frame_rgb) if tags else None
    proposals = [p for p in (proposal_of(frame_rgb, tag, ground) for tag in tags) if p is not None]
    return sorted(proposals, key=lambda p: (p.body_xyxy[0], p.body_xyxy[1]))


def proposal_of(frame_rgb: np.ndarray, tag: Nametag, ground: RowGround | None) -> Proposal | None:
    """The proposal of a verified tag: its body measured under it, clipped; None if nothing is left."""
    fh, fw = frame_rgb.shape[:2]
    body = clip_xyxy([refine_body_xyxy(frame_rgb, tag, ground)], (fw, fh))[0]
    x0, y0, x1, y1 = (int(round(v)) for v in body)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return Proposal(body_xyxy=(x0, y0, x1, y1), tag_xyxy=tag.tag_xyxy, score=tag.score)
