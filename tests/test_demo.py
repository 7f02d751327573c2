"""demo.py and commands.py: the demo window, and the `toonvision run` / `demo` commands as a user runs
them (subprocesses on the Xvfb screen), including their error sentences."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from model_factory import make_mismatched_model, make_tiny_model, write_corrupt_model

from toonvision_live.capture.window import X11WindowFinder
from toonvision_live.commands import require_display
from toonvision_live.demo.window import DEMO_TITLE, DEMO_WINDOW_PATTERN, DemoWindow, load_street_scene
from toonvision_live.errors import CaptureError
from toonvision_live.fileio import read_image_rgb
from toonvision_live.settings import DEFAULT_WINDOW_PATTERN

ROOT = Path(__file__).resolve().parents[1]


def toonvision(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toonvision_live", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or dict(os.environ),
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("model"))


def test_demo_title_is_found_as_the_game_and_only_the_demo_pattern_matches_it():
    assert re.search(DEFAULT_WINDOW_PATTERN, DEMO_TITLE, re.IGNORECASE)
    assert re.search(DEMO_WINDOW_PATTERN, DEMO_TITLE, re.IGNORECASE)
    assert not re.search(DEMO_WINDOW_PATTERN, "Toontown Rewritten", re.IGNORECASE)


def test_demo_window_shows_the_street_and_remembers_what_it_showed(x_display, qtbot):
    scene = load_street_scene((640, 360), n_cogs=4, seed=1, n_toons=1)
    window = DemoWindow(scene, fps=30)
    qtbot.addWidget(window)
    window.move(10, 10)
    window.show()
    window.start()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.frames_drawn >= 5, timeout=5000)
    finder = X11WindowFinder()
    try:
        found = finder.find(re.compile(DEFAULT_WINDOW_PATTERN, re.IGNORECASE))
    finally:
        finder.close()
    assert found is not None and found.title == DEMO_TITLE and (found.client.width, found.client.height) == (640, 360)
    shown = window.shown_before(time.perf_counter())
    assert shown is not None and shown.shown_at <= time.perf_counter()
    names = [o.name for o in shown.objects]
    assert sum(n.startswith("cog_") for n in names) >= 1 and all(n.startswith(("cog_", "toon_")) for n in names)
    assert window.shown_before(window.history[0].shown_at - 1) is None
    t_before = shown.t_scene
    qtbot.waitUntil(lambda: window.shown_before(time.perf_counter()).t_scene > t_before, timeout=3000)
    window.freeze(1.5)
    qtbot.waitUntil(lambda: window.history[-1].t_scene == 1.5, timeout=3000)
    window.close()


def test_demo_command_runs_the_real_pipeline_and_writes_a_screenshot(x_display, tiny_model, tmp_path):
    shot = tmp_path / "demo.png"
    done = toonvision(
        "demo",
        "--model",
        str(tiny_model),
        "--provider",
        "cpu",
        "--seconds",
        "4",
        "--screenshot",
        str(shot),
        "--no-hotkeys",
        "--position",
        "0",
        "0",
        "--cogs",
        "6",
    )
    assert done.returncode == 0, done.stderr
    assert read_image_rgb(shot).shape == (720, 1280, 3)
    match = re.search(r"Processed (\d+) of (\d+) captured frames \((\d+) dropped", done.stderr)
    assert match, done.stderr
    processed, captured, dropped = (int(g) for g in match.groups())
    assert 0 < processed <= captured and dropped <= captured


def test_run_keeps_looking_for_a_missing_game_window(x_display, tiny_model):
    done = toonvision("run", "--window", "^No Such Game$", "--model", str(tiny_model), "--seconds", "2", "--no-hotkeys")
    assert done.returncode == 0, done.stderr
    assert "No window titled like /^No Such Game$/ is open: start the game (still looking)." in done.stderr


@pytest.mark.parametrize("kind", ["missing", "corrupt", "entity_size", "input_name"])
def test_bad_models_give_one_sentence(x_display, tmp_path, kind):
    if kind == "missing":
        model = tmp_path / "nowhere.onnx"
    elif kind == "corrupt":
        model = write_corrupt_model(tmp_path)
    else:
        model = make_mismatched_model(tmp_path, kind)
    done = toonvision("run", "--model", str(model), "--seconds", "1", "--no-hotkeys")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if "toonvision: error:" in line]
    assert len(lines) == 1 and "Traceback" not in done.stderr
    assert str(model.name) in lines[0]


def test_no_display_is_one_sentence(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    for command in ("run", "demo"):
        done = toonvision(command, "--seconds", "1", env=env)
        assert done.returncode == 2
        assert done.stderr.strip().splitlines()[-1] == (
            "toonvision: error: No display found: ToonVision Live draws over the game on screen, "
            "so run it in a desktop session; DISPLAY is not set."
        )
        assert "Traceback" not in done.stderr
    with pytest.raises(CaptureError, match="Cannot open the display ':97'"):
        require_display({"DISPLAY": ":97"})
    with pytest.raises(CaptureError, match="needs XWayland"):
        require_display({"WAYLAND_DISPLAY": "wayland-0"})


def test_bad_settings_are_one_sentence(tmp_path):
    config = tmp_path / "tv.toml"
    config.write_text("bach_size = 3\n", "utf-8")
    done = toonvision("run", "--config", str(config))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        f"toonvision: error: Unknown setting 'bach_size' in {config}: did you mean 'batch_size'?"
    )
    done = toonvision("demo", "--cogs", "-1")
    assert done.returncode == 2 and "--cogs -1 is out of range" in done.stderr


def test_ctrl_c_exits_cleanly(x_display, tiny_model):
    import signal

    proc = subprocess.Popen(
        [sys.executable, "-m", "toonvision_live", "demo", "--model", str(tiny_model), "--no-hotkeys", "--cogs", "3"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:  # wait until the demo is up and capturing
            line = proc.stderr.readline()
            lines.append(line)
            if "found the game window" in line or not line:
                break
        time.sleep(1.5)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, "".join(lines) + err
    assert "Traceback" not in err
    assert re.search(r"Processed [1-9]\d* of \d+ captured frames", err), err


def test_a_monitor_that_does_not_exist_is_one_sentence(x_display, tiny_model):
    done = toonvision("run", "--monitor", "3", "--model", str(tiny_model), "--seconds", "5", "--no-hotkeys")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "toonvision: error: Monitor 3 does not exist: this screen has 1 monitor(s); use --monitor 1..1."
    )
    assert "Traceback" not in done.stderr


def test_demo_runs_headless_on_its_own_virtual_screen(tmp_path, tiny_model):
    """What scripts/demo.sh does on a machine without a desktop: `demo --xvfb` starts Xvfb + xcompmgr,
    runs the real pipeline on the demo window and writes the screenshot; DISPLAY is unset throughout."""
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    shot = tmp_path / "demo.png"
    out = toonvision("demo", "--xvfb", "--seconds", "4", "--screenshot", str(shot), "--size", "640x360",
                     "--cogs", "3", "--model", str(tiny_model), env=env)
    assert out.returncode == 0, out.stderr
    assert "Processed" in out.stderr
    image = read_image_rgb(shot)
    assert image.shape == (360, 640, 3)
    assert image.std() > 10  # the street, not a blank screen
