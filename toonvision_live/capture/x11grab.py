"""Grab an X11 window's own pixels (mss's XCB MIT-SHM backend aimed at one window, not the root).

Under a compositing manager every top-level window is redirected to an off-screen pixmap, and
GetImage on the window reads that pixmap: the game's own pixels, without the windows stacked on
top of it, our overlay included.  This is the X11 counterpart of the overlay excluding itself from
capture on Windows (``SetWindowDisplayAffinity``).  Without a compositor the server answers with
what is on screen there, overlay and all, exactly like a root grab, so nothing is lost.

mss 10.2 grabs only the root window ("single-window capture" is on its to-do list), so this
subclasses its XShmGetImage backend and points it at the game window; mss keeps doing the MIT-SHM
set-up, the plain GetImage fallback and the error handling.  ``grab_window_rgb`` converts to RGB
straight out of the shared segment instead of copying it out first.  Create and use it in one thread.
"""

from __future__ import annotations

import cv2
import numpy as np
from mss.exception import ScreenShotError
from mss.linux import xcb
from mss.linux.base import ALL_PLANES, SUPPORTED_DEPTHS
from mss.linux.xshmgetimage import MSSImplXShmGetImage, ShmStatus

from toonvision_live.geometry import ScreenRect


class X11WindowGrabber(MSSImplXShmGetImage):
    """``grab_window(window_id, rect)``: BGRA pixels of ``rect`` (window coordinates) of that window."""

    def __init__(self, display: str | None = None) -> None:
        super().__init__(display=display)
        self._target: int | None = None

    def _aim(self, window_id: int) -> None:
        """Point the backend at ``window_id``, taking the window's own depth and visual (a game's
        OpenGL window may use another visual than the root's)."""
        if window_id == self._target:
            return
        drawable = xcb.Window(window_id)
        if self.conn is None:
            raise ScreenShotError("the X connection is closed")
        probe = xcb.get_image(self.conn, xcb.ImageFormat.ZPixmap, drawable, 0, 0, 1, 1, ALL_PLANES)
        if probe.depth not in SUPPORTED_DEPTHS:
            raise ScreenShotError(f"the window's colour depth is {probe.depth}, not 24 or 32")
        self.drawable, self.drawable_depth, self.drawable_visual_id = drawable, probe.depth, probe.visual
        self._target = window_id

    def grab_window(self, window_id: int, rect: ScreenRect) -> np.ndarray:
        """HxWx4 BGRA of ``rect`` (in the window's own coordinates; it must lie inside the window).
        Raises mss's ScreenShotError when the window is gone or the rectangle no longer fits."""
        try:
            self._aim(window_id)
            data = self.grab(rect.as_mss())
        except ScreenShotError:
            self._target = None  # probe again next time: the handle may be reused by a new window
            raise
        return np.frombuffer(data, np.uint8).reshape(rect.height, rect.width, 4)

    def grab_window_rgb(self, window_id: int, rect: ScreenRect) -> np.ndarray:
        """A new HxWx3 RGB array of ``rect``: :meth:`grab_window` then BGRA -> RGB, but over MIT-SHM
        converted straight out of the segment the server wrote (mss copies it out first: 3.7 MB a frame
        at 1280x720); without MIT-SHM (a remote display) through mss's own path."""
        if self.shm_status == ShmStatus.UNAVAILABLE or self._buf is None or self._shmseg is None:
            return cv2.cvtColor(self.grab_window(window_id, rect), cv2.COLOR_BGRA2RGB)
        try:
            self._aim(window_id)
            if self.conn is None or rect.width * rect.height * 4 > self._bufsize:
                raise ScreenShotError("the X connection is closed or the rectangle outgrew the shared segment")
            reply = xcb.shm_get_image(self.conn, self.drawable, rect.left, rect.top, rect.width, rect.height,
                                      ALL_PLANES, xcb.ImageFormat.ZPixmap, self._shmseg, 0)
            if reply.depth != self.drawable_depth or reply.visual != self.drawable_visual_id:
                raise ScreenShotError("the server answered with another depth or visual than the window's")
        except ScreenShotError:  # XProtoError is one
            self._target = None  # as grab_window: probe again next time
            return cv2.cvtColor(self.grab_window(window_id, rect), cv2.COLOR_BGRA2RGB)  # mss's path decides
        with memoryview(self._buf) as segment:
            bgra = np.frombuffer(segment, np.uint8, rect.width * rect.height * 4).reshape(rect.height, rect.width, 4)
            rgb = cv2.cvtColor(bgra, cv2.COLOR_BGRA2RGB)
            del bgra  # no view of the segment outlives this block (mss closes it on close())
        self.shm_status = ShmStatus.AVAILABLE
        return rgb
