"""The bench's screen and child processes: the display check, the demo street (the "game") and CPU hogs."""

from __future__ import annotations

import os
import subprocess
import sys

from toonvision_live.errors import CaptureError

# ---- the screen: an X display, or our own Xvfb (toonvision_live.demo.xscreen) ---------------------


def require_bench_display(environ: dict[str, str] | None = None) -> None:
    """One sentence (CaptureError) when no X display answers, naming --xvfb (before Qt is imported)."""
    from toonvision_live.commands import require_display

    env = os.environ if environ is None else environ
    try:
        require_display(dict(env))
    except CaptureError:
        display = env.get("DISPLAY", "")
        where = f"the display '{display}' does not answer" if display else "DISPLAY is not set"
        raise CaptureError(
            f"No display to capture ({where}): toonvision bench times a real window on screen, so run it "
            "in a desktop session or pass --xvfb to start its own virtual screen."
        ) from None


# ---- child processes: the demo street (the "game") and CPU hogs --------------------------------

_SCENE_CHILD = r"""
import sys
from PyQt6.QtWidgets import QApplication
from toonvision_live.demo.window import DemoWindow, load_street_scene
w, h, cogs, seed, fps, x, y = (float(v) for v in sys.argv[1:8])
app = QApplication(["toonvision-bench-scene"])
window = DemoWindow(load_street_scene((int(w), int(h)), int(cogs), int(seed)), fps=fps)
window.move(int(x), int(y))
window.show()
window.start()
app.processEvents()
print("ready", repr(window._t0), flush=True)
app.exec()
"""

HOG_CHILD = "while True:\n    pass\n"


def start_scene_process(size_wh: tuple[int, int], cogs: int, seed: int,
                        fps: float) -> tuple[subprocess.Popen, float]:
    """The demo street window in its own process (like the game), once it is on screen, and the
    ``perf_counter()`` at which its scene time was 0 (the monotonic clock both processes read)."""
    args = [sys.executable, "-c", _SCENE_CHILD, *(str(v) for v in (*size_wh, cogs, seed, fps, 0, 0))]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    word, _, t0 = line.strip().partition(" ")
    if word != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        tail = (err or "").strip().splitlines()[-1:] or ["no output"]
        raise CaptureError(f"The demo street window did not open ({tail[0]}); check the display and assets.")
    return proc, float(t0)


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


