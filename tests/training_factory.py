"""A small generated crop dataset in the ToonVision layout, for the training tests.

Each Cog gets its own drawing (a suit-coloured body, a head whose shape, colour
and position depend on the Cog) on a noisy background, so a tiny model can learn
something in a few steps.  Files: DATASET/data/{train,validate,test}/cog/cog_<suit>_<key>_<i>.png
(600x200 RGB) and a few Toon crops under toon/, which training must ignore.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from toonvision_live.taxonomy import COGS, SUIT_CODES

SUIT_RGB = {"bb": (120, 80, 40), "lb": (40, 50, 120), "cb": (40, 110, 60), "sb": (110, 30, 30)}


def draw_cog_crop(index: int, rng: np.random.Generator) -> np.ndarray:
    """A 600x200 RGB crop standing in for Cog number ``index`` (taxonomy order)."""
    cog = COGS[index]
    img = rng.integers(150, 230, size=(600, 200, 3), dtype=np.uint8)
    body = np.array(SUIT_RGB[cog.suit]) + rng.integers(-15, 16, 3)
    cv2.rectangle(img, (40, 220), (160, 600), tuple(int(v) for v in body), -1)
    hue = (index * 37) % 180
    head = cv2.cvtColor(np.uint8([[[hue, 200, 220]]]), cv2.COLOR_HSV2RGB)[0, 0]
    size = 40 + (index % 4) * 15
    cx = 100 + int(rng.integers(-6, 7))
    if index % 2:
        cv2.circle(img, (cx, 120), size, tuple(int(v) for v in head), -1)
    else:
        cv2.rectangle(img, (cx - size, 120 - size), (cx + size, 120 + size), tuple(int(v) for v in head), -1)
    cv2.line(
        img,
        (40, 250 + SUIT_CODES.index(cog.suit) * 60),
        (160, 250 + SUIT_CODES.index(cog.suit) * 60),
        (255, 255, 255),
        12,
    )
    return img


def make_crop_dataset(
    root: Path, counts: tuple[int, int, int] = (3, 1, 1), seed: int = 0, cogs: range | None = None
) -> Path:
    """Write ``counts`` (train, validate, test) crops per Cog under ``root``; returns root."""
    rng = np.random.default_rng(seed)
    indices = range(len(COGS)) if cogs is None else cogs
    for split, n in zip(("train", "validate", "test"), counts, strict=True):
        folder = Path(root) / "data" / split / "cog"
        folder.mkdir(parents=True, exist_ok=True)
        for i in indices:
            for k in range(n):
                rgb = draw_cog_crop(i, rng)
                cv2.imwrite(str(folder / f"{COGS[i].label}_{k}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        toon = Path(root) / "data" / split / "toon"
        toon.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(toon / "toon_dog_0.png"), rng.integers(0, 255, (600, 200, 3), dtype=np.uint8))
    return Path(root)
