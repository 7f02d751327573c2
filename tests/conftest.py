"""Shared fixtures: paths to ../shared, a real X screen (Xvfb + xcompmgr), temp datasets, and a
guard that fails a test on any warning raised by the project's own code.

Tests that need a screen take the ``x_display`` fixture: it starts one Xvfb
for the whole session (1920x1080, 24-bit) with the xcompmgr compositor, and
sets DISPLAY for this process and its children.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GAME_RESOURCES = SHARED / "game-resources"
REAL_DATA = SHARED / "data" / "real"


#: modules that are ours: a warning attributed to one of them (raised there, or by a library called
#: from there with the usual stacklevel) is an error.  Test helpers are plain top-level modules.
OUR_MODULES = r"(toonvision_live|training|toonvision_assets|toonvision_models)(\.|$)|(test_|conftest|\w+_factory)"
#: third-party libraries whose own deprecation notices (about their internals and their dependencies)
#: are not ours to fix: silenced by module name so the summary shows what matters
THIRD_PARTY_DEPRECATIONS = (
    "keras", "keras_tuner", "tf2onnx", "tensorflow", "tensorboard", "onnx", "google.protobuf",
    "flatbuffers", "h5py", "absl", "matplotlib", "panda3d", "direct", "pynput", "Xlib", "jax", "ml_dtypes",
)


_DEPRECATIONS = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def _guard_filters() -> list[tuple[str, type[Warning], str]]:
    """(action, category, module regex), lowest priority first: third-party deprecations ignored, any
    warning attributed to our code an error."""
    ignored = [("ignore", c, rf"{m}(\.|$)") for m in THIRD_PARTY_DEPRECATIONS for c in _DEPRECATIONS]
    return [*ignored, ("error", Warning, OUR_MODULES)]


def pytest_configure(config: pytest.Config) -> None:
    """The same filters for everything pytest runs, module- and session-scoped fixtures included (the
    autouse fixture below only spans each test's own function-scoped part)."""
    for action, category, module in _guard_filters():
        config.addinivalue_line("filterwarnings", f"{action}::{category.__module__}.{category.__qualname__}:{module}")


@pytest.fixture(autouse=True)
def no_warnings_from_our_code() -> Iterator[None]:
    """Every warning raised by our code (any category, in any thread of the test) is an error; third-party
    deprecations are ignored by module name."""
    with warnings.catch_warnings():
        for action, category, module in _guard_filters():
            warnings.filterwarnings(action, category=category, module=module)
        yield


@pytest.fixture(scope="session")
def game_resources() -> Path:
    if not (GAME_RESOURCES / "cogs.json").is_file():
        pytest.fail(f"the game resources are missing at {GAME_RESOURCES}: clone ../shared beside the project")
    return GAME_RESOURCES


@pytest.fixture(scope="session")
def real_data() -> Path:
    if not (REAL_DATA / "sample_img0.xml").is_file():
        pytest.fail(f"the real reference screenshot is missing at {REAL_DATA}")
    return REAL_DATA


@pytest.fixture(scope="session")
def x_display() -> Iterator[str]:
    """A real X screen (1920x1080) with the xcompmgr compositor for the whole session; DISPLAY is set.

    The same VirtualScreen that `toonvision demo --xvfb` and `bench --xvfb` use."""
    from toonvision_live.demo.xscreen import VirtualScreen

    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed: run scripts/setup.sh (it installs the Debian package xvfb)")
    screen = VirtualScreen((1280, 720))  # at least 1920x1080
    try:
        yield screen.display
    finally:
        screen.close()
