"""``toonvision run`` (the overlay on the real game) and ``toonvision demo`` (the same on a demo street).

Only argparse at import time; Qt, onnxruntime and pynput are imported inside
the handlers.  Before anything touches Qt, :func:`require_display` checks that
there is a screen to draw on, so a headless machine gets one sentence instead
of a Qt abort.
"""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import time
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from toonvision_live.errors import CaptureError, ConfigError
from toonvision_live.settings import Settings, parse_size_wh

if TYPE_CHECKING:
    from PyQt6.QtWidgets import QApplication

    from toonvision_live.classify.classifier import CogClassifier
    from toonvision_live.classify.reader import TagReader
    from toonvision_live.ui.session import LiveSession

log = logging.getLogger(__name__)


def require_display(environ: dict[str, str] | None = None) -> None:
    """Raise CaptureError (one sentence) when no X display can be reached (Linux) — before Qt is imported."""
    if sys.platform == "win32" or sys.platform == "darwin":
        return
    env = os.environ if environ is None else environ
    display = env.get("DISPLAY", "")
    if not display:
        wayland = " (a Wayland session needs XWayland)" if env.get("WAYLAND_DISPLAY") else ""
        raise CaptureError(
            "No display found: ToonVision Live draws over the game on screen, so run it in a "
            f"desktop session{wayland}; DISPLAY is not set."
        )
    if not _display_answers(display):
        raise CaptureError(
            f"Cannot open the display '{display}': no X server answers there; start the desktop session or fix DISPLAY."
        )


def _display_answers(display: str) -> bool:
    """Whether an X server answers at ``display``.  python-xlib leaves the sockets of a failed connection
    to the garbage collector: they are released here, where their ResourceWarning is expected, instead
    of wherever the collector happens to run next."""
    from Xlib import display as xdisplay

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        try:
            xdisplay.Display(display).close()
            return True
        except Exception:
            pass  # the traceback, and the sockets its frames hold, go at the end of this block
        gc.collect()
    return False


def _classifier(settings: Settings) -> CogClassifier:
    from toonvision_live.classify.classifier import CogClassifier, providers_for
    from toonvision_live.model_card import default_model_path

    model = settings.model_path or default_model_path()
    return CogClassifier(Path(model), providers_for(settings.provider))


def _reader(settings: Settings) -> TagReader | None:
    """The shipped nametag reader on the classifier's provider; None (with a log line) if it is missing."""
    from toonvision_live.classify.classifier import providers_for
    from toonvision_live.classify.reader import TagReader, default_reader_path

    if not default_reader_path().is_file():
        log.warning("no nametag reader at %s: labels come from the body alone", default_reader_path())
        return None
    return TagReader(default_reader_path(), providers_for(settings.provider))


def _qt_app() -> QApplication:
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    return app if isinstance(app, QApplication) else QApplication(["toonvision"])


def _warn_if_no_compositor() -> None:
    from toonvision_live.capture.window import x11_compositor_running

    if x11_compositor_running() is False:
        log.warning(
            "no X11 compositor is running: the overlay cannot be translucent and will hide the game; "
            "start one (picom, xcompmgr) or use your desktop's compositing."
        )


def _check_dataset(settings: Settings) -> None:
    if not settings.dataset_dir.is_dir():
        log.warning(
            "the save hotkey writes into %s, which does not exist yet: create it (or pass --dataset) before saving.",
            settings.dataset_dir,
        )


def run_command(args: argparse.Namespace) -> int:
    """The overlay on the real game window (or a monitor / region)."""
    from toonvision_live.settings import settings_from_args

    settings = settings_from_args(args)
    require_display()
    classifier = _classifier(settings)
    from toonvision_live.capture.stage import ScreenSource
    from toonvision_live.ui.session import LiveSession, run_until_finished

    app = _qt_app()
    _warn_if_no_compositor()
    _check_dataset(settings)
    session = LiveSession(settings, ScreenSource.from_settings(settings), classifier, hotkeys=not args.no_hotkeys,
                          reader=_reader(settings))
    print(
        f"ToonVision Live: watching {settings.capture_target} with {classifier.provider}; "
        f"{settings.hotkeys.quit} or Ctrl-C quits.",
        file=sys.stderr,
    )
    reason = run_until_finished(app, session, seconds=args.seconds)
    return _exit_code(session, reason)


def _exit_code(session: LiveSession, reason: str) -> int:
    """0 after a normal stop; a user error's code (2) or 1 when a stage died."""
    if not reason:
        return 0
    from toonvision_live.errors import ToonVisionError

    error = session.pipeline.error
    return error.exit_code if isinstance(error, ToonVisionError) else 1




def demo_command(args: argparse.Namespace) -> int:
    """The demo street window, the real pipeline on it, and the overlay on top (on a private Xvfb with --xvfb)."""
    if not args.xvfb:
        return _demo(args, hotkeys=not args.no_hotkeys)
    from toonvision_live.demo.xscreen import VirtualScreen

    with VirtualScreen(args.size):
        if args.position is None:
            args.position = [0, 0]
        return _demo(args, hotkeys=False)  # nobody types on a private screen


def _demo(args: argparse.Namespace, *, hotkeys: bool) -> int:
    from toonvision_live.demo.window import DEMO_WINDOW_PATTERN
    from toonvision_live.settings import settings_from_args

    if args.cogs < 0 or args.cogs > 64:
        raise ConfigError(f"--cogs {args.cogs} is out of range: use 0 to 64 Cogs.")
    settings = settings_from_args(args, window=DEMO_WINDOW_PATTERN)
    require_display()
    classifier = _classifier(settings)
    from toonvision_live.capture.stage import ScreenSource
    from toonvision_live.demo.window import DemoWindow, grab_screen_png, load_street_scene
    from toonvision_live.ui.session import LiveSession, run_until_finished

    app = _qt_app()
    _warn_if_no_compositor()
    scene = load_street_scene(args.size, args.cogs, args.seed)
    window = DemoWindow(scene, fps=args.scene_fps)
    if args.position:
        window.move(args.position[0], args.position[1])
    window.show()
    window.start()
    app.processEvents()
    session = LiveSession(settings, ScreenSource.from_settings(settings), classifier, hotkeys=hotkeys,
                          reader=_reader(settings))

    def shoot() -> None:
        if args.screenshot is not None:
            geometry = window.geometry()
            path = grab_screen_png((geometry.x(), geometry.y(), geometry.width(), geometry.height()), args.screenshot)
            print(f"Wrote {path}", file=sys.stderr)

    seconds = args.seconds if args.seconds is not None else (8.0 if args.screenshot is not None else None)
    print(
        f"ToonVision Live demo: {args.cogs} Cogs, model on {classifier.provider}; "
        f"{settings.hotkeys.quit}, Ctrl-C or closing the window quits.",
        file=sys.stderr,
    )
    window.closed.connect(lambda: session.stop(""))
    reason = run_until_finished(app, session, seconds=seconds, on_timeout=shoot)
    window.stop()
    window.close()
    counts = session.pipeline.counts()
    started = session.pipeline.started_at
    elapsed = time.perf_counter() - started if started is not None else 0.0
    fps = counts["processed"] / elapsed if elapsed > 0 else 0.0
    print(
        f"Processed {counts['processed']} of {counts['captured']} captured frames "
        f"({counts['dropped']} dropped, {counts['crops']} Cog crops) in {elapsed:.1f} s: {fps:.1f} fps.",
        file=sys.stderr,
    )
    return _exit_code(session, reason)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from toonvision_live.settings import add_settings_arguments

    run = subparsers.add_parser(
        "run",
        help="name the Cogs on your game window (the live overlay)",
        description="Find the Toontown window, name every Cog on it in real time and draw the labels on a "
        "click-through overlay.  Hotkeys save a labelled screenshot, toggle the overlay, pause and "
        "quit.",
    )
    add_settings_arguments(run)
    run.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds (default: run until quit)")
    run.add_argument("--no-hotkeys", action="store_true", help="do not listen for the global hotkeys")
    run.set_defaults(handler=run_command)

    demo = subparsers.add_parser(
        "demo",
        help="watch the overlay name Cogs walking on a demo street",
        description="Open a Toontown-like street window with rendered Cogs walking, and run the real "
        "pipeline on it: screen capture of that window, the model, and the overlay on top.",
    )
    demo.add_argument("--cogs", type=int, default=8, metavar="N", help="Cogs walking in the street (default 8)")
    demo.add_argument("--seconds", type=float, metavar="S", help="stop after S seconds (default: until quit)")
    demo.add_argument(
        "--screenshot",
        type=Path,
        metavar="FILE",
        help="after S seconds (default 8) write a PNG of the window with the overlay, then quit",
    )
    demo.add_argument(
        "--size", type=parse_size_wh, default=(1280, 720), metavar="WxH", help="demo window size (default 1280x720)"
    )
    demo.add_argument("--seed", type=int, default=0, help="street and Cog choice (default 0)")
    demo.add_argument(
        "--scene-fps",
        type=float,
        default=30.0,
        metavar="FPS",
        help="how often the street is redrawn (default 30)",
    )
    demo.add_argument("--position", type=int, nargs=2, metavar=("X", "Y"), help="where to put the window")
    demo.add_argument("--no-hotkeys", action="store_true", help="do not listen for the global hotkeys")
    demo.add_argument(
        "--xvfb",
        action="store_true",
        help="run on a private virtual screen (Xvfb + xcompmgr) for machines without a desktop; "
        "use with --screenshot to see the result",
    )
    add_settings_arguments(demo, capture=False)
    demo.set_defaults(handler=demo_command)
