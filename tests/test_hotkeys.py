"""hotkeys.py: real pynput GlobalHotKeys on Xvfb, keys sent with xdotool (XTEST)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from model_factory import make_tiny_model
from test_overlay import StaticScene
from test_pipeline import street_frame

from toonvision_live.capture.stage import ScreenSource
from toonvision_live.classify.classifier import CogClassifier
from toonvision_live.demo.window import DEMO_WINDOW_PATTERN, DemoWindow
from toonvision_live.errors import ConfigError
from toonvision_live.saver import SavedFrame
from toonvision_live.settings import Hotkeys, load_settings
from toonvision_live.ui.hotkeys import HotkeyListener
from toonvision_live.ui.session import LiveSession
from toonvision_live.voc import read_voc

ROOT = Path(__file__).resolve().parents[1]


def press(*keys: str) -> None:
    for key in keys:
        subprocess.run(["xdotool", "key", "--delay", "30", key], check=True)


def test_pynput_is_only_imported_when_hotkeys_start():
    """`import pynput` fails without a display, so nothing else may import it."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    code = (
        "import sys; import toonvision_live.ui.hotkeys, toonvision_live.ui.overlay, toonvision_live.commands; "
        "from toonvision_live.cli import build_parser; build_parser(); "
        "print('pynput' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_hotkeys_without_a_display_are_one_sentence():
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    code = (
        "from toonvision_live.ui.hotkeys import HotkeyListener; from toonvision_live.settings import Hotkeys\n"
        "try:\n    HotkeyListener(Hotkeys(), print).start()\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert done.stdout.startswith("CaptureError Global hotkeys cannot start (")
    assert done.stdout.strip().endswith("run with --no-hotkeys.") and len(done.stdout.strip().splitlines()) == 1


def test_only_the_configured_combinations_fire(x_display):
    fired: list[str] = []
    listener = HotkeyListener(
        Hotkeys(save="<ctrl>+<alt>+s", toggle_overlay="<ctrl>+<shift>+o", pause="<alt>+p", quit="<ctrl>+<alt>+x"),
        fired.append,
    )
    listener.start()
    try:
        assert listener.running
        press(
            "a",
            "ctrl+s",
            "alt+s",
            "ctrl+alt+s",
            "ctrl+o",
            "ctrl+shift+o",
            "p",
            "alt+p",
            "ctrl+x",
            "ctrl+alt+x",
        )
        deadline = time.monotonic() + 3
        while len(fired) < 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        listener.stop()
    assert fired == ["save", "toggle_overlay", "pause", "quit"]
    assert not listener.running


def test_a_key_pynput_does_not_know_is_a_config_error(x_display):
    listener = HotkeyListener(Hotkeys(save="<ctrl>+<nosuchkey>"), lambda action: None)
    with pytest.raises(ConfigError, match="<ctrl>\\+<nosuchkey>"):
        listener.start()
    assert not listener.running


@pytest.fixture
def demo_window(x_display, qtbot):
    window = DemoWindow(StaticScene(street_frame()))
    qtbot.addWidget(window)
    window.move(60, 60)
    window.show()
    window.start()
    qtbot.waitExposed(window)
    yield window
    window.stop()


def test_save_hotkey_writes_png_xml_and_named_crops_then_quit_hotkey_ends(demo_window, qtbot, tmp_path):
    classifier = CogClassifier(make_tiny_model(tmp_path / "model"), ["cpu"])
    dataset = tmp_path / "dataset"
    dataset.mkdir()
    # plain rectangles under real nametags (test_pipeline.street_frame): only the nametag search takes them
    # for Cogs; the learned detector (the default crop stage) rightly does not
    settings = load_settings(overrides={"window": DEMO_WINDOW_PATTERN, "crop_stage": "nametags",
                                        "dataset": str(dataset)})
    session = LiveSession(settings, ScreenSource.from_settings(settings), classifier, hotkeys=True)
    session.start()
    try:
        qtbot.waitUntil(lambda: session.last_result is not None and len(session.last_result.cogs) == 4, timeout=10000)
        press("ctrl+alt+s")
        qtbot.waitUntil(lambda: bool(session.saves), timeout=5000)
        saved = session.saves[0]
        assert isinstance(saved, SavedFrame)
        pngs = sorted((dataset / "raw" / "screenshots").glob("*.png"))
        assert pngs == [saved.screenshot] and saved.screenshot.with_suffix(".xml").is_file()
        voc = read_voc(saved.annotation)
        assert len(voc.objects) == 4 and (voc.width, voc.height) == (1280, 720)
        crops = sorted(p.name for p in (dataset / "unsorted" / "cog").iterdir())
        expected = []
        seen: dict[str, int] = {}
        for obj in voc.objects:
            expected.append(f"{obj.name}_{seen.get(obj.name, 0)}.png")
            seen[obj.name] = seen.get(obj.name, 0) + 1
        assert crops == sorted(expected)
        with qtbot.waitSignal(session.finished, timeout=5000) as ended:
            press("ctrl+alt+q")
        assert ended.args == [""]
    finally:
        session.stop()
    assert not session.pipeline.running
    # pynput's X11 listener thread ends at the next key event after stop(): send one, then check
    press("shift")
    deadline = time.monotonic() + 3
    while any(type(t).__name__ == "GlobalHotKeys" for t in threading.enumerate()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [t for t in threading.enumerate() if type(t).__name__ == "GlobalHotKeys"]
