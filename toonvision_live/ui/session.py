"""The Qt side of a live session: ``LiveSession`` wires a ``Pipeline`` (worker threads) to the overlay,
the hotkeys and the saver through queued Qt signals (worker threads never touch widgets), and
``run_until_finished`` runs the Qt loop with Ctrl-C and a time limit.
"""

from __future__ import annotations

import logging
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from PyQt6.QtCore import QObject, Qt, QTimer, pyqtBoundSignal, pyqtSignal
from PyQt6.QtWidgets import QApplication

from toonvision_live.errors import SaveError
from toonvision_live.frames import FrameSource
from toonvision_live.pipeline import FrameResult, Pipeline, Tuning
from toonvision_live.saver import FrameSaver, SavedFrame
from toonvision_live.settings import Settings
from toonvision_live.ui.overlay import OverlayWindow

if TYPE_CHECKING:
    from toonvision_live.classify.reader import TagReader
    from toonvision_live.pipeline import Classifier
    from toonvision_live.ui.hotkeys import HotkeyListener

log = logging.getLogger(__name__)

SAVE_CLEAN_DELAY_S = 0.1  # after hiding the overlay, for the compositor to repaint without it
SAVE_TIMEOUT_S = 3.0


def _connect_queued(signal: pyqtBoundSignal, slot: Callable[..., object]) -> None:
    """Connect so ``slot`` runs in the receiver's (the GUI) thread, whichever thread emits."""
    signal.connect(slot, Qt.ConnectionType.QueuedConnection)  # type: ignore[call-arg]  # stubs lack the type


class LiveSession(QObject):
    """Pipeline + overlay + hotkeys + saver, glued by queued signals on the Qt main thread.

    ``exit_reason`` is "" after a normal stop (quit hotkey, Ctrl-C, time up) and a
    sentence when a stage died; ``finished`` is emitted once either way.
    """

    result_ready = pyqtSignal()
    status_changed = pyqtSignal(str)
    pipeline_stopped = pyqtSignal(str)
    hotkey_pressed = pyqtSignal(str)
    save_finished = pyqtSignal(object)
    finished = pyqtSignal(str)

    def __init__(
        self,
        settings: Settings,
        source: FrameSource,
        classifier: Classifier,
        *,
        hotkeys: bool = True,
        show_overlay: bool = True,
        tuning: Tuning | None = None,
        reader: TagReader | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.pipeline = Pipeline(
            source,
            classifier,
            settings,
            on_result_ready=self.result_ready.emit,
            on_status=self.status_changed.emit,
            on_stopped=self.pipeline_stopped.emit,
            tuning=tuning,
            reader=reader,
        )
        self.overlay = OverlayWindow(provider=classifier.provider, min_confidence=settings.min_confidence,
                                     lean=self.pipeline.tuning.lean_paint)
        self.overlay.cards = self.pipeline.cards  # the worker reads the drawn cards from there
        self.saver = FrameSaver(settings.dataset_dir)
        self.saves: list[SavedFrame | SaveError] = []
        self.last_result: FrameResult | None = None
        self.exit_reason: str | None = None
        self._waiting_since = 0.0
        self._save_after: float | None = None  # save the first frame grabbed after this time
        self._save_token = 0
        self._restore_overlay = False
        self._want_hotkeys = hotkeys
        self._hotkeys: HotkeyListener | None = None
        self._show_overlay = show_overlay
        # results are shown at most Tuning.show_hz times a second (a screen refresh): one that comes
        # sooner waits in the pipeline's mailbox, where a newer one replaces it, until this timer
        self._shown_at = float("-inf")
        self._show_timer = QTimer(self)
        self._show_timer.setSingleShot(True)
        self._show_timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._show_timer.timeout.connect(self._show_newest)
        _connect_queued(self.result_ready, self._on_result_ready)
        _connect_queued(self.status_changed, self._on_status)
        _connect_queued(self.pipeline_stopped, self._on_pipeline_stopped)
        _connect_queued(self.hotkey_pressed, self.on_action)
        _connect_queued(self.save_finished, self._on_saved)

    # ---- lifecycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._want_hotkeys:
            from toonvision_live.ui.hotkeys import HotkeyListener

            self._hotkeys = hotkeys = HotkeyListener(self.settings.hotkeys, self.hotkey_pressed.emit)
            hotkeys.start()
        if self._show_overlay:
            self.overlay.show()
        self.pipeline.start()
        log.info("capturing %s with %s", self.settings.capture_target, self.pipeline.provider)

    def stop(self, reason: str = "") -> None:
        """Stop everything (idempotent); emits ``finished(reason)`` once."""
        if self.exit_reason is not None:
            return
        self.exit_reason = reason
        if self._hotkeys is not None:
            self._hotkeys.stop()
        ended = self.pipeline.stop()
        if not ended:
            log.error("a pipeline thread did not stop within 5 s; exiting anyway")
        self.saver.close()
        self.overlay.hide()
        self.finished.emit(reason)

    # ---- slots (main thread) ------------------------------------------------------------------
    def _on_result_ready(self) -> None:
        hz = self.pipeline.tuning.show_hz
        wait = self._shown_at + 1.0 / hz - time.perf_counter() if hz > 0 else 0.0
        if wait > 0.0005:
            if not self._show_timer.isActive():
                self._show_timer.start(max(1, round(wait * 1000)))
            return
        self._show_newest()

    def _show_newest(self) -> None:
        result = self.pipeline.take_result()
        if result is None:
            return
        if self.overlay.message and result.frame.grab_time < self._waiting_since:
            return  # grabbed before capture paused: its window may be gone
        self.last_result = result
        self._shown_at = time.perf_counter()
        self.overlay.show_result(result)
        if self._save_after is not None and result.frame.grab_time >= self._save_after:
            self._save_result(result)

    def _on_status(self, message: str) -> None:
        self._waiting_since = time.perf_counter()
        self.overlay.set_message(message)

    def _on_pipeline_stopped(self, reason: str) -> None:
        if reason:
            print(f"toonvision: error: {reason}", file=sys.stderr)
        self.stop(reason)

    def on_action(self, action: str) -> None:
        """A hotkey action: save, toggle_overlay, pause or quit."""
        if action == "save":
            self.save_current()
        elif action == "toggle_overlay":
            self.overlay.setVisible(not self.overlay.isVisible())
        elif action == "pause":
            paused = not self.pipeline.paused
            self.pipeline.set_paused(paused)
            self.overlay.set_paused(paused)
        elif action == "quit":
            self.stop("")

    def save_current(self) -> bool:
        """Save a labelled frame (written on the saver thread); False when it cannot start.

        Where the overlay shows up in screen captures (X11), it is hidden first and the first
        frame grabbed after that is saved with its own labels, so no overlay drawing ends up in
        the dataset; on Windows (excluded from capture) the next frame is saved at once.
        """
        if self._save_after is not None:
            return True  # a save is already on its way
        if self.pipeline.paused:
            self.overlay.flash("Paused: resume capture before saving, so a fresh frame is saved.", ok=False)
            return False
        self._restore_overlay = self.overlay.isVisible() and not self.overlay.excluded_from_capture
        if self._restore_overlay:
            self.overlay.hide()
        self._save_after = time.perf_counter() + (SAVE_CLEAN_DELAY_S if self._restore_overlay else 0.0)
        self._save_token += 1
        token = self._save_token
        QTimer.singleShot(int(SAVE_TIMEOUT_S * 1000), lambda: self._save_timed_out(token))
        return True

    def _save_result(self, result: FrameResult) -> None:
        self._save_after = None
        if self._restore_overlay:
            self.overlay.show()
        self.saver.save(result.frame.rgb, result.cogs, self.save_finished.emit)

    def _save_timed_out(self, token: int) -> None:
        if self._save_after is None or token != self._save_token or self.exit_reason is not None:
            return
        self._save_after = None
        if self._restore_overlay:
            self.overlay.show()
        self.overlay.flash("Nothing saved: no new frame came (is the game window shown?).", ok=False)

    def _on_saved(self, outcome: SavedFrame | SaveError) -> None:
        self.saves.append(outcome)
        if isinstance(outcome, SaveError):
            print(f"toonvision: {outcome}", file=sys.stderr)
            self.overlay.flash(str(outcome), ok=False, seconds=6.0)
        else:
            text = f"Saved {outcome.screenshot.name} with {len(outcome.crops)} Cog crop(s)"
            log.info("%s in %s", text, Path(outcome.screenshot).parents[2])
            self.overlay.flash(text, ok=True)


def run_until_finished(
    app: QApplication,
    session: LiveSession,
    *,
    seconds: float | None = None,
    on_timeout: Callable[[], None] | None = None,
) -> str:
    """Run the Qt loop until the session finishes, Ctrl-C, or ``seconds`` pass; the exit reason.

    Ctrl-C works because a short timer lets Python run its signal handler while Qt waits.
    """
    session.finished.connect(lambda reason: app.quit())

    def interrupted(signum: int, frame: FrameType | None) -> None:
        log.info("interrupted: stopping")
        session.stop("")

    previous = signal.signal(signal.SIGINT, interrupted)
    keep_python_awake = QTimer()
    keep_python_awake.timeout.connect(lambda: None)
    keep_python_awake.start(100)
    if seconds is not None:

        def time_up() -> None:
            if on_timeout is not None:
                on_timeout()
            session.stop("")

        QTimer.singleShot(int(seconds * 1000), time_up)
    try:
        session.start()
        if session.exit_reason is None:
            app.exec()
    finally:
        keep_python_awake.stop()
        signal.signal(signal.SIGINT, previous)
        session.stop("")
    return session.exit_reason or ""
