"""window.py: pure screen geometry, and finding real X windows by title under Xvfb.

``XTestWindow`` (also used by test_capture.py) is a real X11 window made with
python-xlib: a title, a solid background colour, and move/resize/map/unmap.
"""

from __future__ import annotations

import re
import subprocess
import time

import pytest

from toonvision_live.capture.window import GameWindow, X11WindowFinder
from toonvision_live.geometry import ScreenRect, visible_part
from toonvision_live.settings import DEFAULT_WINDOW_PATTERN

SCREEN = ScreenRect(0, 0, 1920, 1080)


class XTestWindow:
    """A real top-level X window with a title and a solid colour, driven from the test."""

    def __init__(self, title: str, rect: ScreenRect, rgb: tuple[int, int, int] = (220, 30, 30)) -> None:
        from Xlib import X, display

        self.conn = display.Display()
        screen = self.conn.screen()
        pixel = (rgb[0] << 16) | (rgb[1] << 8) | rgb[2]  # TrueColor 24-bit
        self.window = screen.root.create_window(
            rect.left,
            rect.top,
            rect.width,
            rect.height,
            0,
            screen.root_depth,
            X.InputOutput,
            X.CopyFromParent,
            background_pixel=pixel,
            override_redirect=False,
        )
        self.window.set_wm_name(title)
        self.window.change_property(
            self.conn.intern_atom("_NET_WM_NAME"),
            self.conn.intern_atom("UTF8_STRING"),
            8,
            title.encode("utf-8"),
        )
        self.window.map()
        self.conn.sync()
        self.id = self.window.id

    def move(self, x: int, y: int) -> None:
        self.window.configure(x=x, y=y)
        self.conn.sync()

    def resize(self, width: int, height: int) -> None:
        self.window.configure(width=width, height=height)
        self.conn.sync()

    def unmap(self) -> None:
        self.window.unmap()
        self.conn.sync()

    def map(self) -> None:
        self.window.map()
        self.conn.sync()

    def close(self) -> None:
        self.window.destroy()
        self.conn.sync()
        self.conn.close()


# ---- pure geometry ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "screens", "expected"),
    [
        (ScreenRect(100, 50, 640, 480), [SCREEN], ScreenRect(100, 50, 640, 480)),  # inside
        (ScreenRect(-100, 50, 640, 480), [SCREEN], ScreenRect(0, 50, 540, 480)),  # off the left edge
        (ScreenRect(1800, 1000, 640, 480), [SCREEN], ScreenRect(1800, 1000, 120, 80)),  # off bottom-right
        (ScreenRect(0, 0, 3840, 2160), [SCREEN], SCREEN),  # a 4K window on a 1080p screen
        (ScreenRect(-2000, 0, 100, 100), [SCREEN], None),  # entirely off screen
        (ScreenRect(10, 10, 0, 100), [SCREEN], None),  # empty
        # two monitors, the second left of the primary (negative virtual coordinates)
        (
            ScreenRect(-1500, 100, 800, 600),
            [ScreenRect(-1920, 0, 1920, 1080), SCREEN],
            ScreenRect(-1500, 100, 800, 600),
        ),
        (
            ScreenRect(-400, 100, 800, 600),
            [ScreenRect(-1920, 0, 1920, 1080), SCREEN],
            ScreenRect(-400, 100, 800, 600),
        ),  # straddling both monitors
        (
            ScreenRect(-2000, -50, 800, 600),
            [ScreenRect(-1920, 0, 1920, 1080), SCREEN],
            ScreenRect(-1920, 0, 720, 550),
        ),
        (ScreenRect(5, 5, 1, 1), [SCREEN], ScreenRect(5, 5, 1, 1)),  # tiny
        (ScreenRect(5, 5, 10, 10), [], None),  # no screen at all
    ],
)
def test_visible_part(window, screens, expected):
    assert visible_part(window, screens) == expected


def test_screen_rect_helpers():
    rect = ScreenRect.from_xyxy(-10, -20, 30, 40)
    assert rect == ScreenRect(-10, -20, 40, 60)
    assert rect.xyxy == (-10, -20, 30, 40)
    assert rect.as_mss() == {"left": -10, "top": -20, "width": 40, "height": 60}
    assert ScreenRect(0, 0, 0, 5).is_empty


# ---- real X11 windows -------------------------------------------------------------------------


@pytest.fixture
def finder(x_display):
    finder = X11WindowFinder()
    yield finder
    finder.close()


def _pattern(text: str = DEFAULT_WINDOW_PATTERN) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


def test_finds_the_game_window_by_title_and_reads_its_client_area(finder):
    decoy = XTestWindow("notes about Toontown Rewritten", ScreenRect(0, 0, 200, 200))
    game = XTestWindow("Corporate Clash [1.4.2]", ScreenRect(300, 120, 640, 360))
    try:
        found = finder.find(_pattern())
        assert found == GameWindow(game.id, "Corporate Clash [1.4.2]", ScreenRect(300, 120, 640, 360), True)
        assert finder.find(_pattern("^Toontown Rewritten$")) is None
    finally:
        decoy.close()
        game.close()


def test_follows_moves_resizes_and_hiding(finder):
    game = XTestWindow("Toontown Rewritten", ScreenRect(50, 60, 320, 240))
    try:
        subprocess.run(["xdotool", "windowmove", str(game.id), "700", "400"], check=True)
        subprocess.run(["xdotool", "windowsize", str(game.id), "800", "500"], check=True)
        seen = finder.refresh(game.id)
        assert seen is not None and seen.client == ScreenRect(700, 400, 800, 500) and seen.visible
        game.move(-150, -30)  # partly off the top-left corner
        assert finder.refresh(game.id).client == ScreenRect(-150, -30, 800, 500)
        subprocess.run(["xdotool", "windowunmap", "--sync", str(game.id)], check=True)
        hidden = finder.refresh(game.id)
        assert hidden is not None and not hidden.visible
        assert finder.find(_pattern()) == hidden  # still found, but known to be hidden
    finally:
        game.close()
    deadline = time.monotonic() + 2
    while finder.refresh(game.id) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert finder.refresh(game.id) is None
    assert finder.find(_pattern()) is None


def test_prefers_a_visible_window_over_a_hidden_one(finder):
    hidden = XTestWindow("Toontown Rewritten", ScreenRect(0, 0, 100, 100))
    hidden.unmap()
    shown = XTestWindow("Toontown Rewritten", ScreenRect(200, 200, 100, 100))
    try:
        assert finder.find(_pattern()).handle == shown.id
    finally:
        hidden.close()
        shown.close()


# ---- the Windows backend's logic, against a fake user32 -----------------------------------------


class FakeUser32:
    """Stands in for user32.dll (Windows APIs cannot run here): a few windows with titles, client
    rectangles and states; ``byref`` arguments are filled like the real functions do."""

    def __init__(self, windows: dict[int, dict]) -> None:
        self.windows = windows

    def EnumWindows(self, proc, lparam):  # noqa: N802 - Win32 names
        for hwnd in list(self.windows):
            if not proc(hwnd, lparam):
                break
        return 1

    def GetWindowTextLengthW(self, hwnd):  # noqa: N802
        return len(self.windows[hwnd]["title"]) if hwnd in self.windows else 0

    def GetWindowTextW(self, hwnd, buffer, size):  # noqa: N802
        buffer.value = self.windows.get(hwnd, {}).get("title", "")[: size - 1]
        return len(buffer.value)

    def IsWindow(self, hwnd):  # noqa: N802
        return hwnd in self.windows

    def GetClientRect(self, hwnd, rect_ref):  # noqa: N802
        if hwnd not in self.windows:
            return 0
        rect = rect_ref._obj
        rect.left, rect.top = 0, 0
        rect.right, rect.bottom = self.windows[hwnd]["client"][2:]
        return 1

    def ClientToScreen(self, hwnd, point_ref):  # noqa: N802
        point = point_ref._obj
        point.x, point.y = self.windows[hwnd]["client"][:2]
        return 1

    def IsWindowVisible(self, hwnd):  # noqa: N802
        return self.windows[hwnd].get("visible", True)

    def IsIconic(self, hwnd):  # noqa: N802
        return self.windows[hwnd].get("minimised", False)

    def GetSystemMetrics(self, index):  # noqa: N802
        return {76: -1920, 77: 0, 78: 3840, 79: 1080}[index]


def test_win32_finder_logic_with_a_fake_user32():
    from toonvision_live.capture.window import Win32WindowFinder

    user32 = FakeUser32(
        {
            0x7FFF_0000_1234: {"title": "Toontown Rewritten", "client": (-1800, 40, 1280, 720), "minimised": True},
            0x7FFF_0000_5678: {"title": "Toontown Rewritten", "client": (-1500, 100, 1280, 720)},
            0x10: {"title": "Notepad", "client": (0, 0, 100, 100)},
        }
    )
    finder = Win32WindowFinder(user32)
    found = finder.find(_pattern())
    # the visible window wins over the minimised one; negative coordinates (left monitor) are kept
    assert found == GameWindow(0x7FFF_0000_5678, "Toontown Rewritten", ScreenRect(-1500, 100, 1280, 720), True)
    assert finder.screens() == [ScreenRect(-1920, 0, 3840, 1080)]
    assert visible_part(found.client, finder.screens()) == ScreenRect(-1500, 100, 1280, 720)
    del user32.windows[0x7FFF_0000_5678]  # closed
    assert finder.refresh(0x7FFF_0000_5678) is None
    hidden = finder.find(_pattern())
    assert hidden is not None and hidden.handle == 0x7FFF_0000_1234 and not hidden.visible
    assert finder.find(_pattern("^Corporate Clash")) is None
