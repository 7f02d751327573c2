"""The PyQt6 overlay: boxes and label cards drawn over the game (the session is ui/session.py).

``OverlayWindow`` is frameless, translucent, always on top, a tool window and
transparent to input; it sits exactly on the captured rectangle (the game
window's client area) and draws, per Cog, corner brackets round its box and a label card: Cog name,
suit and confidence in white on a SATURATED suit-colour card (never a
light-grey, nametag-like one), placed by :func:`~toonvision_live.ui.cards.place_label_cards` clear of
every nametag (above the Cog's tag, else below its feet or beside the tag): the
player keeps seeing the game's nametags, and where the overlay is captured with
the game (X11 without a window grab) the crop stage must still see every tag and body.  A status line shows FPS,
provider and pause state; a flash confirms a save (or says why it failed).  On
Windows it excludes itself from capture (SetWindowDisplayAffinity); on X11
translucency needs a compositor (:func:`~toonvision_live.capture.window.x11_compositor_running`),
and with one the game window is grabbed by itself (:mod:`toonvision_live.capture.x11grab`), which
leaves the overlay out too; monitor and region captures still see it.

Only the Qt main thread touches it; the worker learns where its cards are from ``cards``, a
:class:`~toonvision_live.frames.Board` the overlay publishes to.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PyQt6.QtCore import QLine, QRect, Qt, QTimer
from PyQt6.QtGui import (
    QColor,
    QFont,
    QFontMetrics,
    QHideEvent,
    QImage,
    QPainter,
    QPaintEvent,
    QPen,
    QRegion,
    QShowEvent,
)
from PyQt6.QtWidgets import QWidget

from toonvision_live.frames import Board
from toonvision_live.geometry import XYXY, ScreenRect, as_xyxy_array
from toonvision_live.pipeline import FrameResult
from toonvision_live.settings import MIN_CONFIDENCE
from toonvision_live.ui.cards import (  # noqa: F401 - place_label_cards, cog_caption, cogs_summary, suit_color: used from here too
    UNKNOWN_BG,
    CardPlacer,
    CogDrawing,
    bracket_frame,
    card_color,
    cog_caption,
    cogs_summary,
    place_label_cards,
    scaled,
    suit_color,
)

log = logging.getLogger(__name__)

OVERLAY_TITLE = "ToonVision Live overlay"
WDA_EXCLUDEFROMCAPTURE = 0x00000011
STATUS_BG = QColor(20, 30, 90, 220)  # dark saturated blue, never light grey
SAVED_BG = QColor(20, 130, 40, 235)
ERROR_BG = QColor(190, 20, 20, 235)
FLASH_SECONDS = 2.5
CARD_GAP = 8  # pixels between a Cog's nametag and the overlay's label card above it
#: tags seen this many seconds back are kept clear of label cards even when missing from the newest result
RECENT_TAGS_S = 0.7
#: the status strip (its fps figure) is repainted at most this often while results stream in
STATUS_EVERY_S = 0.25
CARDS_KEPT = 64  # card sizes and drawn cards kept by caption, the least recently used forgotten (~1.5 MB)


@dataclass(frozen=True, slots=True)
class PaintRecord:
    """When the overlay finished painting a result (for latency figures)."""

    result_index: int
    frame_id: int
    grab_time: float
    painted_at: float  # perf_counter() after painting
    paint_ms: float

    @property
    def latency_ms(self) -> float:
        """From the grab to the overlay painted."""
        return (self.painted_at - self.grab_time) * 1000.0


def _keep(cache: OrderedDict, key: object, value: object) -> None:
    """Keep ``value`` as the most recently used entry of ``cache``, which holds at most CARDS_KEPT."""
    cache[key] = value
    cache.move_to_end(key)
    if len(cache) > CARDS_KEPT:
        cache.popitem(last=False)


def exclude_from_capture(widget: QWidget) -> bool:  # pragma: no cover - Windows only
    """Windows 10 2004+: keep the overlay out of screen captures (ours included)."""
    if sys.platform == "win32":
        import ctypes
        from ctypes import wintypes

        set_affinity = ctypes.windll.user32.SetWindowDisplayAffinity
        set_affinity.argtypes = [wintypes.HWND, wintypes.DWORD]
        return bool(set_affinity(int(widget.winId()), WDA_EXCLUDEFROMCAPTURE))
    return False


class OverlayWindow(QWidget):
    """Click-through boxes and labels over the captured rectangle."""

    def __init__(self, *, provider: str = "", min_confidence: float = MIN_CONFIDENCE,
                 lean: bool = True) -> None:
        flags = (
            Qt.WindowType.FramelessWindowHint
            | Qt.WindowType.WindowStaysOnTopHint
            | Qt.WindowType.Tool
            | Qt.WindowType.WindowTransparentForInput
            | Qt.WindowType.WindowDoesNotAcceptFocus
        )
        super().__init__(None, flags)
        self.setWindowTitle(OVERLAY_TITLE)
        for attribute in (
            Qt.WidgetAttribute.WA_TranslucentBackground,
            Qt.WidgetAttribute.WA_ShowWithoutActivating,
            Qt.WidgetAttribute.WA_TransparentForMouseEvents,
            Qt.WidgetAttribute.WA_NoSystemBackground,
        ):
            self.setAttribute(attribute, True)
        self.provider = provider
        self.min_confidence = min_confidence
        # repaint only the brackets and cards that changed (False: each Cog's whole box, as before)
        self.lean = lean
        self.excluded_from_capture = False  # True once Windows keeps it out of screen captures
        self.result: FrameResult | None = None
        self._summary = ""  # the status line's "5 Cogs · 320 HP" of the result laid out last
        self.fps = 0.0
        self.paused = False
        self.message = ""
        self._flash_text = ""
        self._flash_ok = True
        self._flash_until = 0.0
        self._done_times: deque[float] = deque(maxlen=120)
        # (grab time, its tags as an [N, 4] array) of recent results
        self._recent_tags: deque[tuple[float, np.ndarray]] = deque(maxlen=256)
        # label cards of the last two paints in frame pixels, published to ``cards`` for the worker
        # thread; the capture may show either while the compositor catches up
        self.drawn_cards: tuple[XYXY, ...] = ()
        self.cards: Board[tuple[XYXY, ...]] = Board(())
        self.degraded = ""  # why the pipeline runs at lowered rates (shown in the status strip)
        self._status_key: tuple[str, bool, str, str] | None = None  # what the status strip last showed ...
        self._status_at = float("-inf")  # ... and when it was last repainted
        self._last_cards: tuple[XYXY, ...] = ()
        self._drawings: list[CogDrawing] = []  # the newest result laid out (show_result), drawn by paintEvent
        self.paint_records: deque[PaintRecord] = deque(maxlen=1_000)  # recent paints only: bounded memory on long runs
        self.on_painted: list[Callable[[PaintRecord], None]] = []
        self._label_font = QFont("DejaVu Sans", 11, QFont.Weight.Bold)
        self._status_font = QFont("DejaVu Sans", 10, QFont.Weight.Bold)
        self._label_metrics = QFontMetrics(self._label_font)
        # captions recur frame after frame: their card sizes and drawn cards are kept (bounded)
        self._card_sizes: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._card_images: OrderedDict[tuple[str, int, float], QImage] = OrderedDict()
        self._place = CardPlacer()  # place_label_cards, remembering its last answer
        self._drawn_key: tuple | None = None  # what the newest drawings were made of

    def hideEvent(self, event: QHideEvent | None) -> None:  # noqa: N802 - Qt name
        super().hideEvent(event)
        self.drawn_cards = self._last_cards = ()
        self.cards.publish(())

    def showEvent(self, event: QShowEvent | None) -> None:  # noqa: N802 - Qt name
        super().showEvent(event)
        self.excluded_from_capture = self.excluded_from_capture or exclude_from_capture(self)
        self._lay_out(self.result)  # its cards are in the capture again

    def follow(self, rect: ScreenRect) -> None:
        """Sit exactly on ``rect`` (screen pixels; Qt's logical pixels at a device ratio of 1)."""
        ratio = self.devicePixelRatioF() or 1.0
        target = QRect(
            round(rect.left / ratio),
            round(rect.top / ratio),
            max(1, round(rect.width / ratio)),
            max(1, round(rect.height / ratio)),
        )
        if self.geometry() != target:
            self.setGeometry(target)

    def show_result(self, result: FrameResult) -> None:
        self.result = result
        self.message = ""
        self.degraded = result.degraded
        now = result.frame.grab_time
        self._recent_tags.append((now, as_xyxy_array([c.tag_xyxy for c in result.cogs if c.tag_xyxy is not None])))
        while self._recent_tags and self._recent_tags[0][0] < now - RECENT_TAGS_S:
            self._recent_tags.popleft()
        self._done_times.append(result.done_time)
        if len(self._done_times) >= 2:
            span = self._done_times[-1] - self._done_times[0]
            self.fps = (len(self._done_times) - 1) / span if span > 0 else 0.0
        self.follow(result.frame.rect)
        self._lay_out(result)

    def _lay_out(self, result: FrameResult | None) -> None:
        """Place the boxes and cards of ``result`` and repaint only what changed: the old drawings, the
        new ones and the status line (a full-window repaint of a translucent window costs the X
        server and the compositor a whole-window copy per frame, which the game would feel)."""
        old = self._drawings
        self._drawings = self._drawings_of(result)
        ratio = self.devicePixelRatioF() or 1.0
        # a hidden overlay is not in the capture: its cards cover nothing
        painted = tuple(scaled(d.card, ratio) for d in self._drawings) if self.isVisible() else ()
        self.drawn_cards, self._last_cards = self._last_cards + painted, painted
        self.cards.publish(self.drawn_cards)
        self._summary = cogs_summary(result.cogs, self.min_confidence) if result is not None else ""
        key = (self.message, self.paused, self.degraded, self._summary)
        now = time.perf_counter()
        if key != self._status_key or now - self._status_at >= STATUS_EVERY_S:
            self.update(self._status_rect())
            self._status_key, self._status_at = key, now
        if self.lean:  # Qt gathers the rects into one dirty region and paints it once
            if self._drawings == old:
                return  # the same boxes and cards (the game did not redraw, or no Cog moved): nothing to repaint
            for drawing in (*old, *self._drawings):
                for part in drawing.parts():
                    self.update(part)
        else:
            region = QRegion()
            for drawing in (*old, *self._drawings):
                region = region.united(QRegion(drawing.extent))
            self.update(region)

    def _drawings_of(self, result: FrameResult | None) -> list[CogDrawing]:
        if result is None or not result.cogs:
            self._drawn_key = None
            return []
        ratio = self.devicePixelRatioF() or 1.0
        # the same Cogs, boxes and labels as last time: the same drawings (a tag lost since is in the
        # key, as its Cog's tag or the Cog itself is missing; a tag that aged out only leaves its card
        # clear of a place that need not be kept clear any more)
        key = (self.width(), self.height(), ratio,
               tuple((c.track_id, c.body_xyxy, c.tag_xyxy, c.suit, c.cog, c.confidence, c.agree, c.fused)
                     for c in result.cogs))
        if self.lean and key == self._drawn_key:
            return self._drawings
        self._drawn_key = key
        # frame pixels -> Qt logical pixels (they differ on a HiDPI screen)
        bodies = [scaled(cog.body_xyxy, 1 / ratio) for cog in result.cogs]
        tags = [None if cog.tag_xyxy is None else scaled(cog.tag_xyxy, 1 / ratio) for cog in result.cogs]
        captions = [cog_caption(cog, self.min_confidence) for cog in result.cogs]
        sizes = [self._card_size(c) for c in captions]
        recent = np.concatenate([tags for _, tags in self._recent_tags])
        recent = recent if ratio == 1.0 else np.round(recent / ratio)
        cards = self._place(bodies, tags, sizes, (self.width(), self.height()), CARD_GAP, recent)
        return [
            CogDrawing(body, card, caption, card_color(cog.suit if cog.confidence >= self.min_confidence else ""))
            for cog, body, card, caption in zip(result.cogs, bodies, cards, captions, strict=True)
        ]

    def _card_size(self, caption: str) -> tuple[int, int]:
        size = self._card_sizes.get(caption)
        if size is None:
            metrics = self._label_metrics
            size = (metrics.horizontalAdvance(caption) + 10, metrics.height() + 4)
        _keep(self._card_sizes, caption, size)
        return size

    def _card_image(self, drawing: CogDrawing, ratio: float) -> QImage:
        """The card of ``drawing`` drawn once (caption in white on its colour) and kept while it recurs."""
        key = (drawing.caption, drawing.color.rgba(), ratio)
        image = self._card_images.get(key)
        if image is None:
            rect = drawing.card_rect.translated(-drawing.card[0], -drawing.card[1])
            image = QImage(round(rect.width() * ratio), round(rect.height() * ratio),
                           QImage.Format.Format_ARGB32_Premultiplied)
            image.setDevicePixelRatio(ratio)
            image.fill(drawing.color)
            painter = QPainter(image)
            painter.setFont(self._label_font)
            painter.setPen(QColor(255, 255, 255))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, drawing.caption)
            painter.end()
        _keep(self._card_images, key, image)
        return image

    def _status_rect(self) -> QRect:
        """Where the status line (and a flash under it) may be drawn: the top strip of the window."""
        metrics = QFontMetrics(self._status_font)
        return QRect(0, 0, self.width(), 2 * metrics.height() + 24)

    def set_message(self, message: str) -> None:
        """A waiting message (window gone, minimised): boxes are cleared while it shows."""
        self.message = message
        if message:
            self.result = None
            self._lay_out(None)
        self.update()

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self.update()

    def flash(self, text: str, ok: bool = True, seconds: float = FLASH_SECONDS) -> None:
        self._flash_text, self._flash_ok = text, ok
        self._flash_until = time.perf_counter() + seconds
        self.update()
        QTimer.singleShot(int(seconds * 1000) + 50, self.update)

    @property
    def flash_text(self) -> str:
        return self._flash_text if time.perf_counter() < self._flash_until else ""

    def status_text(self) -> str:
        parts = ["ToonVision Live", f"{self.fps:.0f} fps", self.provider or "?"]
        if self._summary:
            parts.append(self._summary)
        if self.paused:
            parts.append("PAUSED")
        if self.degraded:
            parts.append(self.degraded)
        return " · ".join(parts)

    def _card(
        self,
        painter: QPainter,
        x: int,
        y: int,
        text: str,
        background: QColor,
        font: QFont,
        anchor: str = "top-left",
    ) -> QRect:
        metrics = QFontMetrics(font)
        rect = QRect(x, y, metrics.horizontalAdvance(text) + 10, metrics.height() + 4)
        if anchor == "bottom-centre":
            rect.moveLeft(x - rect.width() // 2)
            rect.moveBottom(y)
        rect.moveLeft(max(0, min(rect.left(), self.width() - rect.width())))
        rect.moveTop(max(0, min(rect.top(), self.height() - rect.height())))
        painter.setFont(font)
        painter.fillRect(rect, background)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
        return rect

    @staticmethod
    def _corners(painter: QPainter, box: XYXY, color: QColor) -> None:
        """Corner brackets just outside the box: the Cog stays clean for the next crop, and short
        strokes rarely cross another Cog's nametag."""
        x0, y0, x1, y1, arm = bracket_frame(box)
        painter.setPen(QPen(color, 3))
        painter.drawLines(QLine(x0, y0, x0 + arm, y0), QLine(x0, y0, x0, y0 + arm),
                           QLine(x1, y0, x1 - arm, y0), QLine(x1, y0, x1, y0 + arm),
                           QLine(x0, y1, x0 + arm, y1), QLine(x0, y1, x0, y1 - arm),
                           QLine(x1, y1, x1 - arm, y1), QLine(x1, y1, x1, y1 - arm))

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802 - Qt name
        start = time.perf_counter()
        painter = QPainter(self)
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_Source)
        painter.fillRect(self.rect(), QColor(0, 0, 0, 0))
        painter.setCompositionMode(QPainter.CompositionMode.CompositionMode_SourceOver)
        result = self.result
        ratio = self.devicePixelRatioF() or 1.0
        for drawing in self._drawings:
            self._corners(painter, drawing.body, drawing.color)
            painter.drawImage(drawing.card[0], drawing.card[1], self._card_image(drawing, ratio))
        status = self.message or self.status_text()
        self._card(painter, 4, 4, status, STATUS_BG, self._status_font)
        flash = self.flash_text
        if flash:
            metrics = QFontMetrics(self._status_font)
            x = (self.width() - metrics.horizontalAdvance(flash)) // 2
            self._card(
                painter,
                x,
                4 + metrics.height() + 10,
                flash,
                SAVED_BG if self._flash_ok else ERROR_BG,
                self._status_font,
            )
        painter.end()
        if result is not None:
            done = time.perf_counter()
            record = PaintRecord(
                result.index, result.frame.frame_id, result.frame.grab_time, done, (done - start) * 1000.0
            )
            if not self.paint_records or self.paint_records[-1].result_index != record.result_index:
                self.paint_records.append(record)
                for callback in self.on_painted:
                    callback(record)
