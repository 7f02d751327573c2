"""``toonvision demo``: a game-like window of walking Cogs, watched by the real pipeline.

``DemoWindow`` is an ordinary Qt window titled like the game ("Toontown
Rewritten [ToonVision demo]") that shows ``StreetScene`` frames (rendered Cog
sprites with nametags) at about 30-60 fps.  The live session then finds it by
title, captures it with mss, crops, classifies with the real model and draws the
real overlay on top, exactly as for the game.  The window remembers what it
showed and when (``shown_before``), so tests can score the pipeline's labels
against the scene's ground truth for the very frame that was grabbed.
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
from PyQt6.QtCore import Qt, QTimer, pyqtSignal
from PyQt6.QtGui import QImage, QPainter
from PyQt6.QtWidgets import QWidget

from toonvision_live.geometry import XYXY
from toonvision_live.voc import VocObject

if TYPE_CHECKING:
    from PyQt6.QtGui import QCloseEvent, QPaintEvent

    from toonvision_live.demo.scene import SceneFrame

log = logging.getLogger(__name__)

DEMO_TITLE = "Toontown Rewritten [ToonVision demo]"
#: matches the demo window only (not a real game window that may be open beside it)
DEMO_WINDOW_PATTERN = "^" + re.escape(DEMO_TITLE) + "$"


class DemoScene(Protocol):
    """What the window needs from toonvision_live.demo.scene.StreetScene."""

    size_wh: tuple[int, int]

    def frame(self, t_seconds: float) -> SceneFrame: ...


@dataclass(frozen=True, slots=True)
class ShownFrame:
    """A scene frame as it was put on screen: when, the scene time, and its ground truth."""

    shown_at: float  # perf_counter() after painting it
    t_scene: float
    objects: tuple[VocObject, ...]
    tags_xyxy: tuple[XYXY | None, ...]


class DemoWindow(QWidget):
    """Shows a scene animating in real time; fixed size = scene size (1 scene pixel = 1 screen pixel)."""

    closed = pyqtSignal()

    def __init__(self, scene: DemoScene, *, fps: float = 30.0, title: str = DEMO_TITLE) -> None:
        super().__init__()
        self.scene = scene
        self.fps = fps
        self.setWindowTitle(title)
        width, height = scene.size_wh
        self.setFixedSize(width, height)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent, True)
        self.history: deque[ShownFrame] = deque(maxlen=2000)
        self._timer = QTimer(self)
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.timeout.connect(self.advance)
        self._t0 = time.perf_counter()
        self._frozen_t: float | None = None
        self._frame: tuple[SceneFrame, np.ndarray, float] | None = None
        self._image: QImage | None = None
        self.frames_drawn = 0
        self.advance()

    def start(self) -> None:
        """Start animating (the scene clock starts now)."""
        self._t0 = time.perf_counter()
        self._timer.start(max(1, round(1000 / self.fps)))

    def stop(self) -> None:
        self._timer.stop()

    def freeze(self, t_scene: float | None) -> None:
        """Hold the scene at ``t_scene`` (None: run in real time again)."""
        self._frozen_t = t_scene
        self.advance()

    @property
    def scene_time(self) -> float:
        return self._frozen_t if self._frozen_t is not None else time.perf_counter() - self._t0

    def advance(self) -> None:
        frame = self.scene.frame(self.scene_time)
        rgb = np.ascontiguousarray(frame.rgb)
        height, width = rgb.shape[:2]
        self._frame = (frame, rgb, self.scene_time)
        # PyQt6's stubs ask for bytes; any buffer works, and this one lives in self._frame as long as the image
        self._image = QImage(rgb.data, width, height, rgb.strides[0], QImage.Format.Format_RGB888)  # type: ignore[call-overload]
        self.update()

    def closeEvent(self, event: QCloseEvent | None) -> None:  # noqa: N802 - Qt name
        self.stop()
        self.closed.emit()
        super().closeEvent(event)

    def paintEvent(self, event: QPaintEvent | None) -> None:  # noqa: N802 - Qt name
        if self._image is None or self._frame is None:
            return
        painter = QPainter(self)
        painter.drawImage(0, 0, self._image)
        painter.end()
        frame, _rgb, t_scene = self._frame
        self.frames_drawn += 1
        self.history.append(ShownFrame(time.perf_counter(), t_scene, tuple(frame.objects), tuple(frame.tags_xyxy)))

    def shown_before(self, when: float, slack_s: float = 0.0) -> ShownFrame | None:
        """The last frame painted at or before ``when - slack_s`` (what a grab at ``when`` saw)."""
        limit = when - slack_s
        for shown in reversed(self.history):
            if shown.shown_at <= limit:
                return shown
        return None

    def current_rgb(self) -> np.ndarray | None:
        return None if self._frame is None else self._frame[1]


def load_street_scene(size_wh: tuple[int, int], n_cogs: int, seed: int, n_toons: int = 2) -> DemoScene:
    """The StreetScene of the shipped sprite atlas (DataError when the atlas is missing)."""
    from toonvision_live.demo.scene import StreetScene
    from toonvision_live.demo.sprites import SpriteAtlas

    return StreetScene(SpriteAtlas.load(), size_wh=size_wh, n_cogs=n_cogs, n_toons=n_toons, seed=seed)


def grab_screen_png(rect_xywh: tuple[int, int, int, int], path: Path) -> Path:
    """Write what is on screen in ``rect`` (the demo window with the overlay composited on it) as PNG."""
    import mss

    from toonvision_live.capture.stage import bgra_to_rgb
    from toonvision_live.fileio import ensure_dir, write_png

    left, top, width, height = rect_xywh
    with mss.MSS() as sct:
        rgb = bgra_to_rgb(np.asarray(sct.grab({"left": left, "top": top, "width": width, "height": height})))
    ensure_dir(Path(path).parent)
    return write_png(Path(path), rgb, overwrite=True)
