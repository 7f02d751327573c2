"""A private virtual X screen (Xvfb + the xcompmgr compositor) for machines without a desktop.

``toonvision demo --xvfb`` and ``toonvision bench --xvfb`` use it so the real pipeline
(mss capture of a real window, the translucent Qt overlay) runs on a headless machine.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import time

from toonvision_live.errors import CaptureError

log = logging.getLogger(__name__)


class VirtualScreen:
    """Xvfb (+ xcompmgr when installed) started for one command; sets DISPLAY until closed."""

    def __init__(self, size_wh: tuple[int, int]) -> None:
        if shutil.which("Xvfb") is None:
            raise CaptureError(
                "--xvfb needs Xvfb, which is not installed: install it (Debian/Ubuntu: apt install xvfb) "
                "or run in a desktop session."
            )
        width, height = max(1920, size_wh[0] + 64), max(1080, size_wh[1] + 64)
        read_fd, write_fd = os.pipe()
        self.xvfb = subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", f"{width}x{height}x24", "-nolisten", "tcp",
             "+extension", "Composite", "+extension", "RANDR"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        if not number:
            self.xvfb.kill()
            raise CaptureError("Xvfb did not start: run 'Xvfb :99' by hand to see why.")
        self.display = f":{number}"
        self._old = os.environ.get("DISPLAY")
        os.environ["DISPLAY"] = self.display
        self.compositor = None
        if shutil.which("xcompmgr"):
            self.compositor = subprocess.Popen(
                ["xcompmgr", "-n"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            time.sleep(0.3)
        else:
            log.warning("xcompmgr is not installed: the overlay cannot be translucent on this Xvfb")

    def close(self) -> None:
        for proc in (self.compositor, self.xvfb):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
        if self._old is None:
            os.environ.pop("DISPLAY", None)
        else:
            os.environ["DISPLAY"] = self._old

    def __enter__(self) -> VirtualScreen:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
