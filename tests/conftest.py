"""Shared fixtures: paths to ../shared, a real X screen (Xvfb + xcompmgr), temp datasets.

Tests that need a screen take the ``x_display`` fixture: it starts one Xvfb
for the whole session (1920x1080, 24-bit) with the xcompmgr compositor, and
sets DISPLAY for this process and its children.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
GAME_RESOURCES = SHARED / "game-resources"
REAL_DATA = SHARED / "data" / "real"


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
