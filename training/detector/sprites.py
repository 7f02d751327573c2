"""A cache of Cog sprites rendered once from the game's 3D models (panda3d, training.render.cogs).

Each Cog is rendered ``per_cog`` times: random yaw (all round), walk or neutral frame, camera elevation
0-35 degrees, random light or none, at ``SPRITE_PX`` pixels for the Cog's height.  Sprites are cropped
tight to alpha > 32 by the renderer and carry the ground point under the feet.  Rendering runs in worker
processes (one panda3d per process); the cache is one ``.npz`` (RGBA sheets + metadata) reused by every
scene worker.
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

SPRITE_PX = 270.0  # the Cog's height (head top above the ground) in sprite pixels
RENDER_WH = (300, 360)


@dataclass(frozen=True, slots=True)
class CogSprite:
    key: str
    rgba: np.ndarray  # (h, w, 4) uint8, tight to alpha > 32
    foot_xy: tuple[float, float]
    world_height: float


def _render_cog(task: tuple[str, str, int, int]) -> list[tuple[str, np.ndarray, tuple[float, float], float]]:
    """Worker: ``per_cog`` sprites of one Cog, deterministic for (seed, key)."""
    resources, key, per_cog, seed = task
    from training.render.cogs import CogRenderer, Light

    rng = np.random.default_rng([seed, sum(map(ord, key)), len(key)])
    out = []
    renderer = CogRenderer(resources, size_wh=RENDER_WH)
    try:
        spec = renderer.resources.spec(key)
        px_height = SPRITE_PX  # every Cog SPRITE_PX high: sharp when scaled up for near Cogs
        for _ in range(per_cog):
            anim = "walk" if rng.random() < 0.6 else "neutral"
            frame = int(rng.integers(renderer.num_frames(key, anim)))
            yaw = float(rng.uniform(-180, 180))
            elevation = float(rng.uniform(0.0, 35.0))
            light = None
            if rng.random() < 0.7:
                amb = float(rng.uniform(0.55, 0.95))
                sun = float(rng.uniform(0.1, 0.45))
                light = Light((amb,) * 3, (sun,) * 3, (float(rng.uniform(0, 360)), float(rng.uniform(-70, -20))))
            try:
                rgba, foot = renderer.render_sprite(
                    key, yaw, anim, frame, px_height, elevation_deg=elevation, light=light
                )
            except ValueError:  # does not fit the buffer at this pose: skip it
                continue
            out.append((key, rgba, foot, float(spec.height)))
    finally:
        renderer.close()
    return out


def render_sprite_cache(resources: Path, out_npz: Path, per_cog: int = 24, seed: int = 0,
                        workers: int = 2) -> tuple[int, float]:
    """Render ``per_cog`` sprites of each of the 32 Cogs into ``out_npz``; returns (sprites, seconds)."""
    from toonvision_live.fileio import atomic_write_bytes
    from toonvision_live.taxonomy import COG_KEYS

    start = time.perf_counter()
    tasks = [(str(resources), key, per_cog, seed) for key in COG_KEYS]
    sprites: list[tuple[str, np.ndarray, tuple[float, float], float]] = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for chunk in pool.map(_render_cog, tasks):
            sprites.extend(chunk)
    arrays = {f"s{i}": s[1] for i, s in enumerate(sprites)}
    meta = [{"key": s[0], "foot": list(s[2]), "world_height": s[3]} for s in sprites]
    import io

    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
    out_npz.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out_npz, buf.getvalue(), overwrite=True)
    return len(sprites), time.perf_counter() - start


def load_sprite_cache(path: Path) -> list[CogSprite]:
    with np.load(path) as data:
        meta = json.loads(bytes(data["meta"]).decode())
        return [
            CogSprite(m["key"], data[f"s{i}"], (float(m["foot"][0]), float(m["foot"][1])), float(m["world_height"]))
            for i, m in enumerate(meta)
        ]
