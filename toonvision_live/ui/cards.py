"""What the overlay draws for each Cog, laid out without a widget: its corner brackets, its caption and
where its label card goes (:func:`place_label_cards`, kept clear of every nametag); ui/overlay.py paints it.

Pure functions and plain data (Qt is used only for colours and rectangles), so they are tested without a
screen; :class:`CardPlacer` remembers the last placement, since a game that did not redraw (or Cogs that
stand still) hands the same boxes over frame after frame.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PyQt6.QtCore import QRect
from PyQt6.QtGui import QColor

from toonvision_live.geometry import XYXY, as_xyxy_array, intersection_matrix
from toonvision_live.taxonomy import COG_BY_KEY, SUIT_BY_CODE

if TYPE_CHECKING:
    from toonvision_live.track import TrackedCog

UNKNOWN_BG = QColor(120, 40, 160, 235)  # a Cog whose confidence is below the threshold


@dataclass(frozen=True, slots=True)
class CogDrawing:
    """What the overlay draws for one Cog, in Qt logical pixels: its box brackets and its label card."""

    body: XYXY
    card: XYXY
    caption: str
    color: QColor

    @property
    def card_rect(self) -> QRect:
        return QRect(self.card[0], self.card[1], self.card[2] - self.card[0], self.card[3] - self.card[1])

    @property
    def extent(self) -> QRect:
        """Every pixel the drawing touches (the brackets sit a few pixels outside the box)."""
        x0, y0, x1, y1 = self.body
        return QRect(x0 - 6, y0 - 6, x1 - x0 + 12, y1 - y0 + 12).united(self.card_rect)

    def parts(self) -> list[QRect]:
        """The pixels the drawing touches, piece by piece: its four corner brackets (3 pixels of pen
        and margin round each) and its card; the inside of the box is never drawn on."""
        x0, y0, x1, y1, arm = bracket_frame(self.body)
        side = arm + 7
        return [QRect(x0 - 3, y0 - 3, side, side), QRect(x1 - arm - 3, y0 - 3, side, side),
                QRect(x0 - 3, y1 - arm - 3, side, side), QRect(x1 - arm - 3, y1 - arm - 3, side, side),
                self.card_rect]


def bracket_frame(box: XYXY) -> tuple[int, int, int, int, int]:
    """Where a Cog's corner brackets go: just outside its box, arms of 4-16 pixels."""
    x0, y0, x1, y1 = box[0] - 3, box[1] - 3, box[2] + 2, box[3] + 2
    return x0, y0, x1, y1, max(4, min(16, (x1 - x0) // 3, (y1 - y0) // 3))


def suit_color(code: str, alpha: int = 235) -> QColor:
    color = QColor(SUIT_BY_CODE[code].color) if code in SUIT_BY_CODE else QColor(UNKNOWN_BG)
    color.setAlpha(alpha)
    return color


@functools.lru_cache(maxsize=16)
def card_color(code: str) -> QColor:
    """A card's colour: its suit's, or UNKNOWN_BG for "" (shared: never changed after this)."""
    return suit_color(code) if code else QColor(UNKNOWN_BG)


def cog_caption(cog: TrackedCog, min_confidence: float) -> str:
    """``Cold Caller · Sellbot 97%`` (``?`` for an unsure Cog, ``!`` when the two heads disagree); once its
    nametag is read: ``Head Hunter · Lv 10 · 132 HP`` (v2.0: ``Lv 10 v2.0 · 132+132 HP``; a Skelecog,
    Boardbot or unknown Cog by that name; a level too unsure to show: the first form), ``!`` also when body and tag
    disagree."""
    if cog.fused is not None and (cog.fused.level is not None or cog.fused.kind != "cog"):
        text = cog.fused.card_text()
        if cog.confidence < min_confidence:
            text = text.replace(" · ", "? · ", 1)
        return text + ("" if cog.agree else " !")
    known = COG_BY_KEY.get(cog.cog)
    suit = SUIT_BY_CODE.get(cog.suit)
    name = known.name if known else cog.cog
    if cog.confidence < min_confidence:
        name = f"{name}?"
    flag = "" if cog.agree else " !"
    return f"{name} · {suit.name if suit else cog.suit} {cog.confidence * 100:.0f}%{flag}"


def cogs_summary(cogs: Sequence[TrackedCog], min_confidence: float = 0.0) -> str:
    """The status line's count of what is on screen: ``3 Cogs · 132 HP`` (the HP of every Cog whose level is
    shown and whose label is at least ``min_confidence`` sure, v2.0 Cogs' two layers both; ``132+ HP`` when some
    are not known); "" without Cogs."""
    if not cogs:
        return ""
    known = [c.fused.total_hp for c in cogs
             if c.fused is not None and c.fused.total_hp is not None and c.confidence >= min_confidence]
    text = f"{len(cogs)} Cog" + ("s" if len(cogs) > 1 else "")
    if known:
        text += f" · {sum(known)}{'' if len(known) == len(cogs) else '+'} HP"
    return text


def place_label_cards(
    bodies_xyxy: Sequence[XYXY],
    tags_xyxy: Sequence[XYXY | None],
    cards_wh: Sequence[tuple[int, int]],
    size_wh: tuple[int, int],
    gap: int = 8,
    avoid_xyxy: Sequence[XYXY] | np.ndarray = (),
) -> list[XYXY]:
    """Where to draw each Cog's label card (pure).

    Where the overlay is captured with the game (X11 monitor and region grabs, or no compositor), a
    card must not hide what the crop stage looks for: every card keeps clear of all nametags (the
    worst case: a hidden tag loses its Cog),
    also of ``avoid_xyxy`` (tags seen lately but missing from this frame: a card over a tag the
    crop stage missed once would keep it missed), of the other cards, and as far as it can of the
    bodies (a card over a Cog spoils its next crop).  Tried in order: above the Cog's own tag, below
    its feet, left and right of its tag; the first with the least cover wins.  The cover of every spot
    by tags, lost tags and bodies is one array operation (``avoid_xyxy`` holds a few hundred recent
    tags at 60+ fps); only the cover by the cards placed before depends on the order.
    """
    if not bodies_xyxy:
        return []
    tags = as_xyxy_array([t for t in tags_xyxy if t is not None]) + _GROW6
    return _placed(bodies_xyxy, tags_xyxy, cards_wh, size_wh, gap, tags, lost_tags(avoid_xyxy, tags))


def lost_tags(avoid_xyxy: Sequence[XYXY] | np.ndarray, grown_tags: np.ndarray) -> np.ndarray:
    """The tags of ``avoid_xyxy`` that overlap none of ``grown_tags``, grown by 6 pixels: a Cog's own
    earlier tags trail behind it as it walks, so only tags of Cogs missing now count."""
    avoid = as_xyxy_array(avoid_xyxy)
    return avoid[~(intersection_matrix(avoid, grown_tags) > 0).any(axis=1)] + _GROW6


def _placed(bodies_xyxy: Sequence[XYXY], tags_xyxy: Sequence[XYXY | None], cards_wh: Sequence[tuple[int, int]],
            size_wh: tuple[int, int], gap: int, tags: np.ndarray, lost: np.ndarray) -> list[XYXY]:
    width, height = size_wh
    spots: list[XYXY] = []  # four per Cog (a Cog without a tag repeats its second, which never wins a tie)
    for body, tag, (w, h) in zip(bodies_xyxy, tags_xyxy, cards_wh, strict=True):
        x0, y0, x1, y1 = body
        centre = (x0 + x1) // 2
        top = tag[1] if tag is not None else y0
        tries = [(centre - w // 2, top - gap - h), (centre - w // 2, y1 + gap)]
        tries += [(tag[0] - gap - w, tag[1]), (tag[2] + gap, tag[1])] if tag is not None else tries[1:] * 2
        for left, upper in tries:
            left = max(0, min(left, width - w))
            upper = max(0, min(upper, height - h))
            spots.append((left, upper, left + w, upper + h))
    fixed = (
        100.0 * intersection_matrix(spots, tags).sum(axis=1)
        + 30.0 * intersection_matrix(spots, lost).sum(axis=1)
        + 4.0 * intersection_matrix(spots, bodies_xyxy).sum(axis=1)
    )
    between = 10.0 * intersection_matrix(spots, spots)  # spot x spot: the cover by a card placed there
    chosen: list[int] = []
    for i in range(0, len(spots), 4):
        costs = fixed[i : i + 4] + between[i : i + 4, chosen].sum(axis=1)
        chosen.append(i + int(np.argmin(costs)))  # the first of equal costs, as tried in order
    return [spots[i] for i in chosen]


_GROW6 = np.array([-6.0, -6.0, 6.0, 6.0])


def scaled(xyxy: XYXY, factor: float) -> XYXY:
    """``xyxy`` times ``factor``, rounded (frame pixels <-> Qt logical pixels on a HiDPI screen)."""
    x0, y0, x1, y1 = xyxy
    return (round(x0 * factor), round(y0 * factor), round(x1 * factor), round(y1 * factor))


class CardPlacer:
    """:func:`place_label_cards` that remembers its last answer: the same boxes, cards and lost tags
    give the same places, found without the placement's array work."""

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._cards: list[XYXY] = []

    def __call__(self, bodies_xyxy: Sequence[XYXY], tags_xyxy: Sequence[XYXY | None],
                 cards_wh: Sequence[tuple[int, int]], size_wh: tuple[int, int], gap: int,
                 avoid_xyxy: np.ndarray) -> list[XYXY]:
        if not bodies_xyxy:
            return []
        tags = as_xyxy_array([t for t in tags_xyxy if t is not None]) + _GROW6
        lost = lost_tags(avoid_xyxy, tags)
        key = (tuple(bodies_xyxy), tuple(tags_xyxy), tuple(cards_wh), size_wh, gap, lost.shape, lost.tobytes())
        if key != self._key:
            self._key, self._cards = key, _placed(bodies_xyxy, tags_xyxy, cards_wh, size_wh, gap, tags, lost)
        return list(self._cards)
