"""Shared fixtures: paths to ../shared, a real X screen (Xvfb + xcompmgr), temp datasets.

Tests that need a screen take the ``x_display`` fixture: it starts one Xvfb
for the whole session (1920x1080, 24-bit) with the xcompmgr compositor, and
sets DISPLAY for this process and its children.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
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


def _start_xvfb(width: int = 1920, height: int = 1080) -> tuple[subprocess.Popen, str]:
    if shutil.which("Xvfb") is None:
        pytest.fail("Xvfb is not installed: run scripts/setup.sh (it installs the Debian package xvfb)")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24",
         "-nolisten", "tcp", "+extension", "Composite", "+extension", "RANDR"],
        pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not start")
    return proc, f":{number}"


@pytest.fixture(scope="session")
def x_display() -> Iterator[str]:
    """A real X screen with a compositor for the whole session; DISPLAY is set."""
    old = os.environ.get("DISPLAY")
    xvfb, display = _start_xvfb()
    os.environ["DISPLAY"] = display
    compositor = None
    if shutil.which("xcompmgr"):
        compositor = subprocess.Popen(["xcompmgr", "-n"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.2)
    try:
        yield display
    finally:
        for proc in (compositor, xvfb):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = old
