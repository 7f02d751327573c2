"""Screen capture: ``ScreenSource`` (game window, monitor or region through mss) and ``CaptureThread``.

The mss object and the X connection are created inside the capture thread
(neither is thread-safe).  The game window's client area is re-read every
``requery_every`` frames and after any failure, so moves and resizes are
followed; while the window is minimised, hidden, off screen or gone, grabs
pause, the reason is reported once, and the search goes on until it is back.
Frames are paced by deadline (missed slots are skipped, never queued) and
converted BGRA -> RGB with one ``cv2.cvtColor`` (no other full-frame copy).

On X11 with a compositing manager the game window is grabbed by itself
(:class:`~toonvision_live.capture.x11grab.X11WindowGrabber`): its own pixels, without the
overlay or any other window on top; such frames are marked ``overlay_free``.  Without
a compositor, on Windows, and for ``--monitor``/``--region`` the screen is grabbed.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import cv2
import numpy as np

from toonvision_live.capture.window import GameWindow, WindowFinder, open_window_finder, title_matcher
from toonvision_live.errors import CaptureError
from toonvision_live.frames import Frame, FrameSource, LatestFrame, StageThread, next_frame_id
from toonvision_live.geometry import ScreenRect, visible_part
from toonvision_live.settings import Settings

if TYPE_CHECKING:
    import mss

    from toonvision_live.capture.x11grab import X11WindowGrabber

log = logging.getLogger(__name__)

#: seconds between checks whether a compositor runs (window grabs need one to leave the overlay out)
COMPOSITOR_CHECK_S = 2.0


def bgra_to_rgb(bgra: np.ndarray) -> np.ndarray:
    """A new contiguous HxWx3 RGB array from an HxWx4 BGRA view (one pass, no extra copy)."""
    return cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)


class ScreenSource:
    """Frames of the game window (by title pattern), a monitor, or a fixed region, via mss."""

    def __init__(
        self,
        *,
        window_pattern: str | None = None,
        monitor: int | None = None,
        region: ScreenRect | None = None,
        requery_every: int = 1,
        finder_factory: Callable[[], WindowFinder] = open_window_finder,
    ) -> None:
        if sum(x is not None for x in (window_pattern, monitor, region)) != 1:
            raise ValueError("choose exactly one of window_pattern, monitor, region")
        self._pattern = title_matcher(window_pattern) if window_pattern is not None else None
        self._monitor = monitor
        self._region = region
        self._requery_every = max(1, requery_every)
        self._finder_factory = finder_factory
        self._finder: WindowFinder | None = None
        self._sct: mss.MSS | None = None
        # X11: grabs the game window by itself (None: grab the screen)
        self._window_grabber: X11WindowGrabber | None = None
        self._composited = False
        self._composited_checked = float("-inf")  # perf_counter() of the last compositor check
        self._screen: ScreenRect | None = None
        self._window: GameWindow | None = None
        self._since_query = 0
        self._reason = ""
        if region is not None:
            self.description = f"region {region.left},{region.top},{region.width},{region.height}"
        elif monitor is not None:
            self.description = f"monitor {monitor}"
        else:
            self.description = f"window /{window_pattern}/"

    @classmethod
    def from_settings(cls, settings: Settings) -> ScreenSource:
        if settings.region_xywh is not None:
            return cls(region=ScreenRect(*settings.region_xywh), requery_every=settings.requery_every)
        if settings.monitor is not None:
            return cls(monitor=settings.monitor, requery_every=settings.requery_every)
        return cls(window_pattern=settings.window_pattern, requery_every=settings.requery_every)

    @property
    def window(self) -> GameWindow | None:
        """The game window as last seen (None before it is found)."""
        return self._window

    @property
    def waiting_reason(self) -> str:
        return self._reason

    def open(self) -> None:
        import mss
        import mss.exception

        self._mss_error = mss.exception.ScreenShotError
        try:
            self._sct = sct = mss.MSS()
        except mss.exception.ScreenShotError as exc:
            raise CaptureError(f"Cannot open the screen for capture ({exc}); is a display running?") from None
        monitors = sct.monitors
        self._screen = ScreenRect(**{k: int(monitors[0][k]) for k in ("left", "top", "width", "height")})
        if self._monitor is not None and not 1 <= self._monitor < len(monitors):
            raise CaptureError(
                f"Monitor {self._monitor} does not exist: this screen has {len(monitors) - 1} "
                f"monitor(s); use --monitor 1..{len(monitors) - 1}."
            )
        if self._pattern is not None:
            self._finder = self._finder_factory()
            if sys.platform.startswith("linux"):
                self._window_grabber = self._open_window_grabber()

    def _open_window_grabber(self) -> X11WindowGrabber | None:
        try:
            from toonvision_live.capture.x11grab import X11WindowGrabber

            return X11WindowGrabber()
        except Exception as exc:  # an mss without the XCB backend, an odd visual: the screen grab still works
            log.warning("cannot grab the game window by itself (%s); grabbing the screen", exc)
            return None

    def _check_compositor(self, force: bool = False) -> None:
        """Whether a compositor runs, asked again every COMPOSITOR_CHECK_S (one X round trip), so a
        compositor started or stopped mid-run switches between window and screen grabs."""
        now = time.perf_counter()
        if self._finder is None:
            return
        if force or now - self._composited_checked >= COMPOSITOR_CHECK_S:
            self._composited_checked = now
            was, self._composited = self.grabs_window_itself, self._finder.composited()
            if self.grabs_window_itself != was and not force:
                log.info("compositor %s: %s", "started" if self._composited else "gone",
                         "grabbing the game window by itself" if self._composited else "grabbing the screen")

    @property
    def grabs_window_itself(self) -> bool:
        """Whether frames hold the game window's own pixels (nothing stacked on top of it)."""
        return self._window_grabber is not None and self._composited

    def close(self) -> None:
        if self._window_grabber is not None:
            self._window_grabber.close()
            self._window_grabber = None
        if self._finder is not None:
            self._finder.close()
            self._finder = None
        if self._sct is not None:
            self._sct.close()
            self._sct = None

    def _window_rect(self) -> ScreenRect | None:
        assert self._finder is not None and self._pattern is not None
        self._since_query += 1
        if self._window is None or self._since_query >= self._requery_every or not self._window.visible:
            self._since_query = 0
            seen = self._finder.refresh(self._window.handle) if self._window is not None else None
            if seen is None or not self._pattern.search(seen.title):
                seen = self._finder.find(self._pattern)
                if seen is not None and (self._window is None or seen.handle != self._window.handle):
                    self._check_compositor(force=True)
                    log.info("found the game window '%s' at %s (%s)", seen.title, seen.client,
                             "grabbing it by itself" if self.grabs_window_itself else "grabbing the screen")
            self._window = seen
        window = self._window
        if window is not None:
            self._check_compositor()
        if window is None:
            self._reason = f"No window titled like /{self._pattern.pattern}/ is open: start the game (still looking)."
            return None
        if not window.visible:
            self._reason = f"The window '{window.title}' is minimised or hidden: paused until it is shown."
            return None
        assert self._screen is not None, "open() first"
        part = visible_part(window.client, [self._screen])
        if part is None:
            self._reason = f"The window '{window.title}' is off screen: paused until it is back."
        return part

    def _target_rect(self) -> ScreenRect | None:
        assert self._sct is not None and self._screen is not None, "open() first"
        if self._region is not None:
            part = visible_part(self._region, [self._screen])
            if part is None:
                self._reason = f"The region {self.description[7:]} is outside the screen {self._screen}."
            return part
        if self._monitor is not None:
            mon = self._sct.monitors[self._monitor]
            return ScreenRect(int(mon["left"]), int(mon["top"]), int(mon["width"]), int(mon["height"]))
        return self._window_rect()

    def grab(self) -> Frame | None:
        if self._sct is None:
            raise RuntimeError("ScreenSource.grab() before open()")
        start = time.perf_counter()
        rect = self._target_rect()
        if rect is None:
            return None
        own = self.grabs_window_itself and self._window is not None
        try:
            if own and self._window is not None and self._window_grabber is not None:
                client = self._window.client
                inside = ScreenRect(rect.left - client.left, rect.top - client.top, rect.width, rect.height)
                rgb = self._window_grabber.grab_window_rgb(self._window.handle, inside)
            else:
                rgb = bgra_to_rgb(np.asarray(self._sct.grab(rect.as_mss())))
        except self._mss_error as exc:  # the window moved or closed between query and grab
            self._reason = f"Capture of {rect} failed ({exc}); retrying."
            self._window = None if self._pattern is not None else self._window
            return None
        now = time.perf_counter()
        self._reason = ""
        title = self._window.title if self._window is not None else self.description
        return Frame(next_frame_id(), rgb, now, now - start, rect, title, overlay_free=own)


class CaptureThread(StageThread):
    """Grabs frames from a ``FrameSource`` into a ``LatestFrame``, paced by deadline.

    With ``on_demand`` (the default) a frame is grabbed only once the consumer waits
    for one, and never more often than ``fps_cap``: no grab is wasted on a frame that
    would be replaced unread, and the consumer gets a frame that has not waited in
    the mailbox.  Without it, frames are grabbed at ``fps_cap`` and unread ones dropped.
    ``on_status(message)`` is called (from this thread) when capture pauses for a
    reason (window gone, minimised) and with "" when it resumes.
    """

    name = "capture"

    def __init__(
        self,
        source: FrameSource,
        latest: LatestFrame[Frame],
        *,
        fps_cap: float = 60.0,
        on_status: Callable[[str], None] | None = None,
        retry_s: float = 0.25,
        on_demand: bool = True,
    ) -> None:
        super().__init__()
        self.source = source
        self.latest = latest
        self.period_s = 1.0 / fps_cap
        self.on_status = on_status or (lambda message: None)
        self.retry_s = retry_s
        self.on_demand = on_demand
        self.frames = 0
        self.skipped_slots = 0
        self.on_grabbed: list[Callable[[Frame], None]] = []  # called with each frame grabbed (this thread)
        self._paused = False
        self.waiting = ""

    def set_paused(self, paused: bool) -> None:
        """Pause or resume grabbing (the pause hotkey)."""
        self._paused = paused

    @property
    def paused(self) -> bool:
        return self._paused

    def _report(self, message: str) -> None:
        if message != self.waiting:
            self.waiting = message
            if message:
                log.warning("%s", message)
            else:
                log.info("capture resumed")
            self.on_status(message)

    def run_stage(self) -> None:
        self.source.open()
        next_at = time.perf_counter()
        while not self.stopping and not self.latest.closed:
            if self._paused:
                self._stop.wait(0.05)
                next_at = time.perf_counter()
                continue
            if self.on_demand and not self.latest.wait_for_consumer(0.1):
                continue
            frame = self.source.grab()
            if frame is None:
                self._report(self.source.waiting_reason or "Nothing to capture yet; still looking.")
                self._stop.wait(self.retry_s)
                next_at = time.perf_counter()
                continue
            self._report("")
            for callback in self.on_grabbed:
                callback(frame)
            self.latest.put(frame)
            self.frames += 1
            next_at += self.period_s
            now = time.perf_counter()
            if next_at < now:  # late (or waiting on demand): skip the missed slots, never burst
                missed = int((now - next_at) / self.period_s) + 1
                self.skipped_slots += missed
                next_at += missed * self.period_s
            self._stop.wait(max(0.0, next_at - time.perf_counter()))

    def cleanup(self) -> None:
        self.latest.close()
        self.source.close()
