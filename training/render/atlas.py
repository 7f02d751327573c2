"""The demo sprite atlas: walk (3/4 view, right and left) and neutral (front) frames of every Cog.

Layout of ``demo_atlas.json`` (CONTRACTS.md)::

    {"version": 1, "image": "demo_atlas.png" | "demo_atlas.webp", "source": "...", "px_per_unit": float,
     "cogs": {"<key>": {"world_height": float,
                        "clips": {"walk_right": [ids], "walk_left": [ids], "neutral_front": [ids]}}},
     "sprites": [{"x", "y", "w", "h", "foot": [fx, fy]}]}

Every sprite is RGBA, tight to the Cog's alpha (no shadow, no nametag), rendered orthographically at one
``px_per_unit`` so relative heights are true; ``foot`` is the ground point under the Cog in sprite pixels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.errors import ResourceError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir
from toonvision_live.taxonomy import COG_KEYS
from training.render.cogs import CogRenderer

TALLEST_PX = 360.0
RENDER_SIDE = int(TALLEST_PX / 0.7)  # px, square render buffer of each sprite (the tallest Cog fills 70 %)
WALK_FRAMES = 8
NEUTRAL_FRAMES = 4
#: yaw (degrees) of each clip: +45 turns the Cog to walk towards the camera and to the image's right
CLIP_YAWS: dict[str, float] = {"walk_right": 45.0, "walk_left": -45.0, "neutral_front": 0.0}
ATLAS_WIDTH = 2048
ELEVATION_DEG = 10.0
MAX_BYTES = 4_000_000  # sheet + JSON
JSON_RESERVE_BYTES = 120_000


@dataclass(frozen=True, slots=True)
class Sprite:
    rgba: np.ndarray
    foot_xy: tuple[float, float]


def render_atlas_sprites(
    renderer: CogRenderer, keys: Sequence[str] = COG_KEYS
) -> tuple[float, dict[str, dict], list[Sprite]]:
    """Render every clip of every Cog (of ``keys``); returns (px_per_unit, cogs JSON part, sprites in id order).
    ``px_per_unit`` is the same whichever Cogs are rendered (the tallest of all is TALLEST_PX high)."""
    px_per_unit = TALLEST_PX / renderer.resources.max_height
    cogs: dict[str, dict] = {}
    sprites: list[Sprite] = []
    for key in keys:
        spec = renderer.resources.spec(key)
        clips: dict[str, list[int]] = {}
        for clip, yaw in CLIP_YAWS.items():
            anim = "neutral" if clip == "neutral_front" else "walk"
            count = NEUTRAL_FRAMES if anim == "neutral" else WALK_FRAMES
            frames = renderer.num_frames(key, anim)
            ids = []
            for i in range(count):
                frame = (i * frames) // count
                rgba, foot = renderer.render_sprite(
                    key, yaw, anim, frame, px_per_unit * spec.height, elevation_deg=ELEVATION_DEG
                )
                ids.append(len(sprites))
                sprites.append(Sprite(rgba, (round(foot[0], 2), round(foot[1], 2))))
            clips[clip] = ids
        cogs[key] = {"world_height": spec.height, "clips": clips}
    return px_per_unit, cogs, sprites


def pack_shelves(sizes_wh: list[tuple[int, int]], width: int, pad: int = 1) -> tuple[list[tuple[int, int]], int]:
    """Shelf-pack boxes (tallest first) into ``width``; returns top-left corners (input order), height."""
    order = sorted(range(len(sizes_wh)), key=lambda i: (-sizes_wh[i][1], i))
    corners: list[tuple[int, int]] = [(0, 0)] * len(sizes_wh)
    x = y = shelf_h = 0
    for i in order:
        w, h = sizes_wh[i]
        if w + pad > width:
            raise ValueError(f"sprite {i} ({w} px) is wider than the atlas")
        if x + w + pad > width:
            y += shelf_h + pad
            x = shelf_h = 0
        corners[i] = (x, y)
        x += w + pad
        shelf_h = max(shelf_h, h)
    return corners, y + shelf_h


def encode_sheet(rgba: np.ndarray, max_bytes: int = MAX_BYTES) -> tuple[str, bytes]:
    """The sheet in full colour within ``max_bytes``: ``(file suffix, bytes)``.

    Lossless (PNG or WebP, the smaller) if it fits, else lossy WebP with lossless alpha at the highest
    quality that fits. (An earlier atlas was a 256-colour dithered palette PNG: its posterised look
    differed from the game's.) Transparent pixels are zeroed first so they cost nothing.
    cv2.imread(path, cv2.IMREAD_UNCHANGED) reads any of them back as 4-channel BGRA.
    """
    rgba = rgba.copy()
    rgba[rgba[:, :, 3] == 0] = 0
    bgra = cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA)
    candidates = []
    ok, png = cv2.imencode(".png", bgra, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if ok:
        candidates.append((".png", png.tobytes()))
    ok, webp = cv2.imencode(".webp", bgra, [cv2.IMWRITE_WEBP_QUALITY, 101])  # > 100: lossless
    if ok:
        candidates.append((".webp", webp.tobytes()))
    best = min(candidates, key=lambda c: len(c[1]))
    if len(best[1]) <= max_bytes:
        return best
    for quality in (95, 92, 90, 87, 84, 80, 75, 70):
        ok, webp = cv2.imencode(".webp", bgra, [cv2.IMWRITE_WEBP_QUALITY, quality])
        if ok and len(webp) <= max_bytes:
            return ".webp", webp.tobytes()
    return best


def build_atlas(resources_root: Path, out_folder: Path, keys: Sequence[str] = COG_KEYS) -> tuple[Path, Path]:
    """Render and write the sheet (``demo_atlas.webp`` or ``.png``, named in the JSON) + ``demo_atlas.json``;
    ``keys``: the Cogs in it (the demo needs all of them)."""
    renderer = CogRenderer(resources_root, (RENDER_SIDE, RENDER_SIDE))
    try:
        px_per_unit, cogs, sprites = render_atlas_sprites(renderer, keys)
    finally:
        renderer.close()
    sizes = [(s.rgba.shape[1], s.rgba.shape[0]) for s in sprites]
    corners, height = pack_shelves(sizes, ATLAS_WIDTH)
    sheet = np.zeros((height, ATLAS_WIDTH, 4), np.uint8)
    entries = []
    for sprite, (x, y), (w, h) in zip(sprites, corners, sizes, strict=True):
        sheet[y : y + h, x : x + w] = sprite.rgba
        entries.append({"x": x, "y": y, "w": w, "h": h, "foot": list(sprite.foot_xy)})
    suffix, image = encode_sheet(sheet, MAX_BYTES - JSON_RESERVE_BYTES)
    if len(image) > MAX_BYTES - JSON_RESERVE_BYTES:
        raise ResourceError(
            f"The demo atlas came out {len(image) / 1e6:.1f} MB, above the {MAX_BYTES / 1e6:.0f} MB limit; "
            "lower TALLEST_PX in training/render/atlas.py."
        )
    meta = {
        "version": 1,
        "image": f"demo_atlas{suffix}",
        "source": (
            "rendered by 'toonvision render atlas' from the game's own Cog models (see "
            "../shared/game-resources/README.md), orthographic camera "
            f"{ELEVATION_DEG:g} degrees above, unlit like the game; walk_right/walk_left: {WALK_FRAMES} walk frames "
            "at yaw "
            f"+45/-45 (3/4 view walking towards the viewer, to the right/left); "
            f"neutral_front: {NEUTRAL_FRAMES} "
            "neutral frames from the front"
        ),
        "px_per_unit": round(px_per_unit, 4),
        "cogs": cogs,
        "sprites": entries,
    }
    folder = ensure_dir(Path(out_folder))
    for stale in ("demo_atlas.png", "demo_atlas.webp"):
        if stale != meta["image"]:
            (folder / stale).unlink(missing_ok=True)
    png_path = atomic_write_bytes(folder / meta["image"], image, overwrite=True)
    json_path = atomic_write_bytes(
        folder / "demo_atlas.json", json.dumps(meta, indent=1).encode("utf-8"), overwrite=True
    )
    return png_path, json_path
