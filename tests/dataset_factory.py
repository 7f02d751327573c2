"""Generate small real test datasets: synthetic screenshots with VOC files, and named crop files.

Screenshots are plain pictures (a gradient with one coloured block per labelled
box) written as real PNG or JPEG files with real labelImg-style XML beside them,
so the dataset tools read them exactly as they read game screenshots.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from toonvision_live.fileio import encode_png
from toonvision_live.taxonomy import COGS, STREETS, SUIT_BY_CODE
from toonvision_live.voc import VocAnnotation, VocObject, write_voc

TOON_ANIMALS = ("dog", "cat", "duck", "mouse", "rabbit", "bear")


@dataclass(frozen=True, slots=True)
class Screenshot:
    image: Path
    xml: Path
    street: str | None
    objects: tuple[VocObject, ...]


def _hex_rgb(color: str) -> tuple[int, int, int]:
    return (int(color[1:3], 16), int(color[3:5], 16), int(color[5:7], 16))


def synthetic_frame(size_wh: tuple[int, int], objects: Iterable[VocObject], seed: int) -> np.ndarray:
    """A gradient background with one block per object, coloured by its suit (RGB uint8)."""
    width, height = size_wh
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.stack([xs * 255 // max(1, width - 1), ys * 255 // max(1, height - 1),
                    np.full_like(xs, int(rng.integers(0, 256)))], axis=-1).astype(np.uint8)
    for obj in objects:
        x0, y0, x1, y1 = obj.xyxy
        parts = obj.name.split("_")
        color = _hex_rgb(SUIT_BY_CODE[parts[1]].color) if parts[0] == "cog" else (250, 200, 40)
        rgb[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = color
    return rgb


def make_screenshot_dataset(
    root: Path,
    n_screenshots: int,
    *,
    seed: int = 0,
    size_wh: tuple[int, int] = (320, 240),
    max_objects: int = 3,
    toon_every: int = 7,
    first_index: int = 0,
) -> list[Screenshot]:
    """Write ``n_screenshots`` labelled screenshots into ``root/raw/screenshots``.

    Cogs are drawn round-robin over all 32 so every Cog gets several boxes.
    Names rotate through the layouts the tools understand: ``<street>_<i>.png``,
    ``<street>/shot_<i>.png`` (street folder), ``shot_<i>.png`` (no street), and
    every third image holds JPEG data (every sixth named ``.png``, like the game).
    """
    rng = np.random.default_rng(seed)
    folder = root / "raw" / "screenshots"
    width, height = size_wh
    made = []
    cog_turn = first_index * max_objects
    for i in range(first_index, first_index + n_screenshots):
        objects = []
        column_w = width // max_objects  # one column per box, so boxes never overlap
        for column in range(int(rng.integers(1, max_objects + 1))):
            w = int(rng.integers(min(20, column_w - 2), column_w - 1))
            h = int(rng.integers(40, height - 10))
            x0 = column * column_w + int(rng.integers(0, column_w - w))
            y0 = int(rng.integers(0, height - h))
            if toon_every and (i + len(objects)) % toon_every == 0:
                name = f"toon_{TOON_ANIMALS[i % len(TOON_ANIMALS)]}"
            else:
                name = COGS[cog_turn % len(COGS)].label
                cog_turn += 1
            objects.append(VocObject(name, (x0, y0, x0 + w, y0 + h)))
        street = STREETS[(i // 3) % len(STREETS)]
        layout = i % 3
        if layout == 0:
            stem, sub = f"{street}_{i:04d}", folder
        elif layout == 1:
            stem, sub = f"shot_{i:04d}", folder / street
        else:
            stem, sub, street = f"shot_{i:04d}", folder, None
        sub.mkdir(parents=True, exist_ok=True)
        suffix = ".jpg" if i % 6 == 3 else ".png"
        image = sub / f"{stem}{suffix}"
        rgb = synthetic_frame(size_wh, objects, seed + i)
        if i % 3 == 0:  # JPEG data (in a .png file when i % 6 == 0)
            bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
            ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 90])
            assert ok
            image.write_bytes(buf.tobytes())
        else:
            write_input_png(image, rgb)
        xml = image.with_suffix(".xml")
        write_voc(xml, VocAnnotation(image.name, width, height, tuple(objects), folder="screenshots",
                                     path=str(image)))
        made.append(Screenshot(image, xml, street, tuple(objects)))
    return made


def write_input_png(path: Path, rgb: np.ndarray) -> Path:
    """A test's input image, written plainly: the product's atomic writer (fileio.write_png) syncs every
    file to the disk (~5 ms each here), and a generated dataset holds hundreds of crops."""
    path.write_bytes(encode_png(rgb))
    return path


def make_crop_files(
    folder: Path, counts: Mapping[str, int], *, seed: int = 0, order: str = "sorted"
) -> list[Path]:
    """Write ``counts[label]`` tiny PNG crops named ``<label>_<i>.png`` into ``folder``.

    Each crop is noise drawn from ``(seed, label, i)``, so its pixels do not depend on ``order``
    ("sorted" or "reversed"), which only changes the order the files are created in.
    """
    folder.mkdir(parents=True, exist_ok=True)
    names = [(label, i) for label in sorted(counts) for i in range(counts[label])]
    if order == "reversed":
        names.reverse()
    made = []
    for label, i in names:
        rng = np.random.default_rng([seed, zlib.crc32(label.encode()), i])
        rgb = rng.integers(0, 256, size=(30, 10, 3), dtype=np.uint8)
        made.append(write_input_png(folder / f"{label}_{i}.png", rgb))
    return made


TOONVISION = Path(sys.executable).with_name("toonvision")


def read_only_run(root: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the installed ``toonvision`` script with ``root`` bind-mounted read-only.

    ``unshare --user --map-root-user --mount`` gives a private mount namespace for root and for
    normal users alike, and a read-only mount stops root too (EROFS), unlike chmod.  Exit
    status 99 means the kernel refused the mount.
    """
    if shutil.which("unshare") is None:
        pytest.fail("util-linux 'unshare' is needed for the read-only dataset tests")
    script = 'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" "$1" || exit 99; shift; exec "$@"'
    return subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(root),
         str(TOONVISION), *args],
        capture_output=True, text=True, timeout=120,
    )
