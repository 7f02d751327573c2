"""Find the game window by title and read its client area in screen coordinates.

Window geometry (``ScreenRect``, ``visible_part``) is in toonvision_live.geometry.  A
``WindowFinder`` backend per platform does the OS calls:

- X11 (python-xlib): the clients listed in ``_NET_CLIENT_LIST`` (or a walk of the
  window tree when no window manager is running), titles from ``_NET_WM_NAME`` or
  ``WM_NAME``, the client area through ``translate_coords`` to the root window,
  hidden when unmapped, not viewable or ``_NET_WM_STATE_HIDDEN`` (minimised).
- Windows (ctypes user32): ``EnumWindows``, ``GetWindowTextW``, ``GetClientRect`` +
  ``ClientToScreen``, ``IsIconic``.  It cannot run here, so it is kept small and is
  untested on this machine.

An X display connection is not thread-safe: open a finder in the thread that uses it.
"""

from __future__ import annotations

import contextlib
import re
import sys
from dataclasses import dataclass
from typing import Any, Protocol

from toonvision_live.errors import CaptureError
from toonvision_live.geometry import ScreenRect


@dataclass(frozen=True, slots=True)
class GameWindow:
    """A window seen at one moment: its OS handle, title, client area and whether it is shown."""

    handle: int
    title: str
    client: ScreenRect
    visible: bool


def title_matcher(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as exc:
        raise CaptureError(f"The window pattern '{pattern}' is not a valid regular expression ({exc}).") from None


class WindowFinder(Protocol):
    def find(self, pattern: re.Pattern[str]) -> GameWindow | None:
        """The first window whose title matches, visible ones first; None if there is none."""

    def refresh(self, handle: int) -> GameWindow | None:
        """The same window now (it may have moved, resized or been hidden); None once it is gone."""

    def screens(self) -> list[ScreenRect]:
        """The monitors' rectangles (for :func:`visible_part`)."""

    def composited(self) -> bool:
        """Whether grabbing the window itself yields its own pixels, without the windows on top
        (X11 with a compositing manager running)."""

    def close(self) -> None: ...


def open_window_finder(display: str | None = None) -> WindowFinder:
    """The finder for this platform; CaptureError when no display can be opened."""
    if sys.platform == "win32":  # pragma: no cover - Windows only
        return Win32WindowFinder()
    return X11WindowFinder(display)


# ---- X11 -------------------------------------------------------------------------------------


def _compositor_owns_selection(conn: Any) -> bool:
    from Xlib import X

    atom = conn.intern_atom(f"_NET_WM_CM_S{conn.get_default_screen()}")
    return conn.get_selection_owner(atom) != X.NONE


def x11_compositor_running(display: str | None = None) -> bool | None:
    """Whether an X11 compositing manager owns _NET_WM_CM_S0 (None when not on X11)."""
    if sys.platform == "win32":
        return None
    try:
        from Xlib import display as xdisplay

        conn = xdisplay.Display(display)
    except Exception:
        return None
    try:
        return _compositor_owns_selection(conn)
    finally:
        conn.close()


class X11WindowFinder:
    """python-xlib backend; create and use it in one thread."""

    def __init__(self, display: str | None = None) -> None:
        from Xlib import X
        from Xlib import display as xdisplay
        from Xlib import error as xerror

        self._X = X
        self._xerror = xerror
        try:
            self._display = xdisplay.Display(display)
        except Exception as exc:  # Xlib raises DisplayError subclasses and OSError
            raise CaptureError(
                f"Cannot connect to the X display ({exc}); is DISPLAY set to a running X server?"
            ) from None
        self._root = self._display.screen().root
        atom = self._display.intern_atom
        names = ("_NET_CLIENT_LIST", "_NET_WM_NAME", "UTF8_STRING", "_NET_WM_STATE", "_NET_WM_STATE_HIDDEN")
        self._atoms = {name: atom(name) for name in names}

    def close(self) -> None:
        self._display.close()

    def composited(self) -> bool:
        return _compositor_owns_selection(self._display)

    def screens(self) -> list[ScreenRect]:
        geometry = self._root.get_geometry()
        return [ScreenRect(0, 0, geometry.width, geometry.height)]

    def _clients(self) -> list[int]:
        prop = self._root.get_full_property(self._atoms["_NET_CLIENT_LIST"], self._X.AnyPropertyType)
        if prop is not None and len(prop.value):
            return [int(w) for w in prop.value]
        # no window manager: top-level windows are the root's children (and, when reparented
        # by a non-EWMH manager, their children)
        found: list[int] = []
        for child in self._root.query_tree().children:
            found.append(child.id)
            try:
                found.extend(grand.id for grand in child.query_tree().children)
            except self._xerror.XError:
                continue
        return found

    def _title(self, window: Any) -> str:
        prop = window.get_full_property(self._atoms["_NET_WM_NAME"], self._atoms["UTF8_STRING"])
        if prop is not None and prop.value:
            value = prop.value
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
        name = window.get_wm_name()
        if isinstance(name, bytes):
            return name.decode("latin-1")
        return name or ""

    def _snapshot(self, window: Any, title: str | None = None) -> GameWindow:
        attrs = window.get_attributes()
        geometry = window.get_geometry()
        origin = self._root.translate_coords(window, 0, 0)  # the client's (0, 0) in root coordinates
        left, top = int(origin.x), int(origin.y)
        hidden = False
        state = window.get_full_property(self._atoms["_NET_WM_STATE"], self._X.AnyPropertyType)
        if state is not None and self._atoms["_NET_WM_STATE_HIDDEN"] in list(state.value):
            hidden = True
        visible = attrs.map_state == self._X.IsViewable and not hidden
        return GameWindow(
            handle=int(window.id),
            title=self._title(window) if title is None else title,
            client=ScreenRect(left, top, int(geometry.width), int(geometry.height)),
            visible=visible,
        )

    def find(self, pattern: re.Pattern[str]) -> GameWindow | None:
        hidden_match: GameWindow | None = None
        for wid in self._clients():
            window = self._display.create_resource_object("window", wid)
            try:
                title = self._title(window)
                if not title or not pattern.search(title):
                    continue
                snapshot = self._snapshot(window, title)
            except self._xerror.XError:
                continue  # it closed while we looked
            if snapshot.visible:
                return snapshot
            hidden_match = hidden_match or snapshot
        return hidden_match

    def refresh(self, handle: int) -> GameWindow | None:
        window = self._display.create_resource_object("window", handle)
        try:
            return self._snapshot(window)
        except self._xerror.XError:
            return None


# ---- Windows (the OS calls cannot run on this machine) ----------------------------------------


def _declare_user32(user32: Any, ctypes: Any, wintypes: Any, enum_proc: Any) -> None:  # pragma: no cover - Windows only
    """Argument types, so 64-bit window handles are passed whole."""
    hwnd = wintypes.HWND
    for name, argtypes in (
        ("GetWindowTextLengthW", [hwnd]),
        ("GetWindowTextW", [hwnd, wintypes.LPWSTR, ctypes.c_int]),
        ("IsWindow", [hwnd]),
        ("IsWindowVisible", [hwnd]),
        ("IsIconic", [hwnd]),
        ("GetClientRect", [hwnd, ctypes.POINTER(wintypes.RECT)]),
        ("ClientToScreen", [hwnd, ctypes.POINTER(wintypes.POINT)]),
        ("EnumWindows", [enum_proc, wintypes.LPARAM]),
        ("GetSystemMetrics", [ctypes.c_int]),
    ):
        getattr(user32, name).argtypes = argtypes


class Win32WindowFinder:
    """ctypes user32 backend.  On this (Linux) machine only its logic is tested, against a fake
    user32 (tests/test_window.py); the real calls need Windows."""

    def __init__(self, user32: Any = None) -> None:
        import ctypes
        from ctypes import wintypes

        self._ctypes, self._wintypes = ctypes, wintypes
        self._enum_proc = getattr(ctypes, "WINFUNCTYPE", ctypes.CFUNCTYPE)(
            wintypes.BOOL, wintypes.HWND, wintypes.LPARAM
        )
        if user32 is None:  # pragma: no cover - Windows only
            user32 = ctypes.WinDLL("user32", use_last_error=True)  # type: ignore[attr-defined,unused-ignore]
            _declare_user32(user32, ctypes, wintypes, self._enum_proc)
            with contextlib.suppress(AttributeError, OSError):  # per-monitor v2 DPI awareness: real pixels
                user32.SetProcessDpiAwarenessContext(ctypes.c_void_p(-4))
        self._user32 = user32

    def close(self) -> None:
        pass

    def composited(self) -> bool:
        return False  # the screen is grabbed; the overlay keeps itself out with SetWindowDisplayAffinity

    def screens(self) -> list[ScreenRect]:
        metrics = self._user32.GetSystemMetrics
        # SM_XVIRTUALSCREEN, SM_YVIRTUALSCREEN, SM_CXVIRTUALSCREEN, SM_CYVIRTUALSCREEN: all monitors
        return [ScreenRect(metrics(76), metrics(77), metrics(78), metrics(79))]

    def _title(self, hwnd: int) -> str:
        length = self._user32.GetWindowTextLengthW(hwnd)
        buffer = self._ctypes.create_unicode_buffer(length + 1)
        self._user32.GetWindowTextW(hwnd, buffer, length + 1)
        return buffer.value

    def _snapshot(self, hwnd: int) -> GameWindow | None:
        wintypes = self._wintypes
        if not self._user32.IsWindow(hwnd):
            return None
        rect = wintypes.RECT()
        point = wintypes.POINT(0, 0)
        if not self._user32.GetClientRect(hwnd, self._ctypes.byref(rect)):
            return None
        self._user32.ClientToScreen(hwnd, self._ctypes.byref(point))  # client (0, 0) on the virtual screen
        visible = bool(self._user32.IsWindowVisible(hwnd)) and not self._user32.IsIconic(hwnd)
        client = ScreenRect(point.x, point.y, rect.right - rect.left, rect.bottom - rect.top)
        return GameWindow(int(hwnd), self._title(hwnd), client, visible)

    def find(self, pattern: re.Pattern[str]) -> GameWindow | None:
        found: list[int] = []

        def collect(hwnd: int, _lparam: int) -> bool:
            if hwnd and pattern.search(self._title(hwnd)):
                found.append(int(hwnd))
            return True

        self._user32.EnumWindows(self._enum_proc(collect), 0)
        snapshots = [s for s in (self._snapshot(h) for h in found) if s is not None]
        visible = [s for s in snapshots if s.visible]
        best = visible or snapshots
        return best[0] if best else None

    def refresh(self, handle: int) -> GameWindow | None:
        return self._snapshot(handle)
