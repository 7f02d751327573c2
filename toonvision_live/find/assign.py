"""Which detection owns which nametag where the learned detector's Cogs overlap (crop stage ``detector``).

The detector's nametag box is a rough guess, so :mod:`toonvision_live.find.confirm` looks for the real tag
at a few vertical offsets from it.  Where two Cogs overlap, their tags are both near each guess, and the
first one found (the offsets are tried nearest first) is often the other Cog's: a small Cog in front of
a taller one gets the taller one's tag, its track is read and scored as that Cog, and the taller Cog's
own detection finds its tag taken.  So a detection whose body overlaps another detection's has its tag
looked for at every offset unless the first tag found fits it well (cost at most ``CROWD_FIT``), and the
tags found go to the detections they fit best, cheapest first (:func:`assign_tags`), one tag per detection
and one detection per tag; a tag costing over ``FIT_MAX`` is no detection's (a Cog of its own).  How well a
tag fits a detection (:func:`fit_cost`) is how far it is from where a Cog's own tag sits: its bottom about
``GAP_LINES`` text lines above the top of the body, centred over the body, near the detector's own guess.
A detection overlapping none keeps the first tag found unless it fits badly (over ``FIT_SCAN``).
Measured in docs/bench.md ("Crop stages against issue 15's fusion target").
"""

from __future__ import annotations

from collections.abc import Sequence

from toonvision_live.find.detector import Detection
from toonvision_live.find.nametags import Nametag
from toonvision_live.geometry import XYXY, iou_matrix

#: a Cog's own tag: its bottom this many text lines above the top of the body (the median on the demo streets)
GAP_LINES = 1.3
#: weights of the three distances in :func:`fit_cost`: gap (in text lines), vertical offset from the detector's
#: guess (in guessed tag heights), horizontal offset from the body's centre (in body widths)
GAP_WEIGHT, GUESS_WEIGHT, CENTRE_WEIGHT = 0.5, 1.0, 5.0
#: two tags overlapping this much (IoU) are the same card
SAME_TAG_IOU = 0.3
#: ... and so are two boxes sharing text lines: one over the other's columns (this share of the narrower width)
#: and rows (this share of the lower box's height), e.g. a box a text line up from its card (IoU about 0.25)
SAME_CARD_COLUMNS, SAME_CARD_ROWS = 0.8, 0.4
#: a detection overlapping no other whose first tag found costs more than this has every offset looked at too
FIT_SCAN = 2.0
#: a detection overlapping another keeps the first tag found when it costs at most this, else every offset is
#: looked at (on 152 demo street frames 178 of 415 such detections had a first tag this cheap, and the tags then
#: assigned differed for 2 of them; 62 % of the verifications where detections overlap are saved)
CROWD_FIT = 1.0
#: a tag costing more than this is not a detection's own at all (the Cog it hides, or the one hiding it): that
#: detection keeps its guessed tag and the tag is a Cog of its own (own tags on the demo streets: 97 % cost less)
FIT_MAX = 4.0

Box = tuple[float, float, float, float]


def fit_cost(detection: Detection, tag: Nametag) -> float:
    """How unlike ``detection``'s own nametag ``tag`` is placed (0: exactly where it belongs); see the module."""
    b, guess, t = detection.body_xyxy, detection.tag_xyxy, tag.tag_xyxy
    gap = (b[1] - t[3]) / max(1.0, tag.line_height)
    dy = ((t[1] + t[3]) - (guess[1] + guess[3])) / 2 / max(1.0, guess[3] - guess[1])
    dx = ((t[0] + t[2]) - (b[0] + b[2])) / 2 / max(1.0, b[2] - b[0])
    return GAP_WEIGHT * abs(gap - GAP_LINES) + GUESS_WEIGHT * abs(dy) + CENTRE_WEIGHT * abs(dx)


def same_card(a: XYXY, b: XYXY) -> bool:
    """Whether tag boxes ``a`` and ``b`` are boxes of one card: IoU over SAME_TAG_IOU, or :func:`line_off` (pure)."""
    return _same_box(a, b) or _shares_lines(a, b)


def line_off(a: XYXY, b: XYXY) -> bool:
    """Whether ``a`` and ``b`` share a card's text lines (SAME_CARD_COLUMNS, SAME_CARD_ROWS) without being one box
    (IoU at most SAME_TAG_IOU), as a box a text line off its card does (pure)."""
    return _shares_lines(a, b) and not _same_box(a, b)


def _same_box(a: XYXY, b: XYXY) -> bool:
    return bool(iou_matrix([a], [b])[0, 0] > SAME_TAG_IOU)


def _shares_lines(a: XYXY, b: XYXY) -> bool:
    cols = min(a[2], b[2]) - max(a[0], b[0])
    rows = min(a[3], b[3]) - max(a[1], b[1])
    return (cols >= SAME_CARD_COLUMNS * min(a[2] - a[0], b[2] - b[0])
            and rows >= SAME_CARD_ROWS * min(a[3] - a[1], b[3] - b[1]))


def overlapping(bodies: Sequence[Box | XYXY]) -> list[bool]:
    """For each box, whether it overlaps (any shared area) another box of ``bodies``."""
    out = []
    for i, a in enumerate(bodies):
        out.append(any(min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])
                       for j, b in enumerate(bodies) if j != i))
    return out


def drop_line_off(found: Sequence[tuple[int, Nametag, float]]) -> list[tuple[int, Nametag, float]]:
    """``found`` = (detection index, tag, cost) triples without the tags that share a card's text lines with a
    better scored tag without being its box (:func:`line_off`): a box a text line off its card, verified because
    the lines it holds are real (the verifier's own score prefers the card's box, as its line-over look does); two
    detections of one Cog each got one of the two, and the line-off box made a second card whose read lacked the
    level line."""
    tags = sorted({id(t): t for _, t, _ in found}.values(), key=lambda t: -t.score)
    off: set[int] = set()
    for i, tag in enumerate(tags):
        for better in tags[:i]:
            if id(better) not in off and line_off(tag.tag_xyxy, better.tag_xyxy):
                off.add(id(tag))
                break
    return [f for f in found if id(f[1]) not in off]


def assign_tags(found: Sequence[tuple[int, Nametag, float]]) -> dict[int, Nametag]:
    """Tags for detections from ``found`` = (detection index, tag, cost) triples: cheapest first, each
    detection at most one tag, each card (:func:`same_card`) at most one detection."""
    got: dict[int, Nametag] = {}
    taken: list[XYXY] = []
    for j, tag, _cost in sorted(found, key=lambda f: f[2]):
        if j in got or any(same_card(tag.tag_xyxy, t) for t in taken):
            continue
        got[j] = tag
        taken.append(tag.tag_xyxy)
    return got


def left_over(seen: Sequence[Nametag], taken: Sequence[XYXY]) -> list[Nametag]:
    """The distinct tags of ``seen`` on no taken tag's card (:func:`same_card`): Cogs of their own that no
    detection claimed (the Cog behind or in front of a detected one; its body is measured under it)."""
    out: list[Nametag] = []
    for tag in sorted(seen, key=lambda t: -t.score):
        others = [*taken, *(t.tag_xyxy for t in out)]
        if not any(same_card(tag.tag_xyxy, o) for o in others):
            out.append(tag)
    return out
