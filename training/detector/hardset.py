"""``toonvision hardset``: held-out rendered scenes (a scene seed and a sprite seed never trained on)
scored for a crop stage (the detector or today's nametag search) by toonvision_live.tools.hardset.

Three parts, each deterministic for its seed:
  degradations: ``per_group`` scenes at 1280x720 for each degradation (none, jpeg, blur, rescale, colour, noise);
  window sizes: ``per_group`` scenes, no degradation, at each of 640x480 ... 3840x2160;
  negatives: ``per_group`` Cog-free and ``per_group`` Toon-only frames at 1280x720.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from toonvision_live.tools.hardset import HardFrame, TrueCog

HARD_SEED = 7_000_001  # scenes; the shipped model trained on scene seed 1
HARD_SPRITE_SEED = 1  # poses; the shipped model trained on sprite seed 0
HARD_SIZES = ((640, 480), (1280, 720), (1920, 1080), (2560, 1440), (3840, 2160))


def hard_scenes(sprites: list, per_group: int, seed: int = HARD_SEED) -> Iterator[tuple[tuple[str, ...], object]]:
    """(groups, DetScene) for every hard-set frame, in a fixed order."""
    from training.detector.scenes import DEGRADATIONS, BackgroundPool, random_scene

    rng = np.random.default_rng([seed, 1])
    pool = BackgroundPool(np.random.default_rng([seed, 2]), size=6)
    for deg in DEGRADATIONS:
        for _ in range(per_group):
            s = random_scene(rng, sprites, pool, size_wh=(1280, 720), degradation=deg, kind="cogs")
            yield (f"degradation:{deg}", "size:1280x720", "kind:cogs"), s
    for w, h in HARD_SIZES:
        for _ in range(per_group):
            s = random_scene(rng, sprites, pool, size_wh=(w, h), degradation="none", kind="cogs")
            yield (f"size:{w}x{h}", "degradation:none", "kind:cogs"), s
    for kind in ("empty", "toons_only"):
        for _ in range(per_group):
            s = random_scene(rng, sprites, pool, size_wh=(1280, 720), degradation=None, kind=kind)
            yield (f"kind:{kind}",), s


def run_hardset(stage: Callable[[np.ndarray], list], sprites: list, per_group: int, seed: int = HARD_SEED,
                progress: Callable[[int], None] | None = None) -> tuple[list[HardFrame], dict]:
    """Run ``stage`` (frame RGB -> proposals with ``body_xyxy``) on every hard frame; returns the frames
    to score and timing facts (stage ms per frame by window size)."""
    frames: list[HardFrame] = []
    ms: dict[str, list[float]] = {}
    for i, (groups, scene) in enumerate(hard_scenes(sprites, per_group, seed)):
        t0 = time.process_time()
        props = stage(scene.rgb)
        took = (time.process_time() - t0) * 1000
        h, w = scene.rgb.shape[:2]
        ms.setdefault(f"{w}x{h}", []).append(took)
        truths = tuple(TrueCog(o.body_xyxy, o.line_px, o.covered, o.visible) for o in scene.objects)
        preds = tuple(tuple(float(v) for v in p.body_xyxy) for p in props)
        frames.append(HardFrame(groups, truths, preds))  # type: ignore[arg-type]
        if progress is not None:
            progress(i + 1)
    timing = {k: {"frames": len(v), "median_cpu_ms": float(np.median(v))} for k, v in sorted(ms.items())}
    return frames, timing


def sprite_cache(resources: Path | None, cache_dir: Path, seed: int, per_cog: int = 24) -> list:
    """The sprite cache for ``seed`` (rendered once into ``cache_dir``)."""
    from training.detector.sprites import load_sprite_cache, render_sprite_cache
    from training.render.resources import resolve_resources_path

    path = cache_dir / f"sprites_seed{seed}_n{per_cog}.npz"
    if not path.is_file():
        render_sprite_cache(resolve_resources_path(resources), path, per_cog=per_cog, seed=seed)
    return load_sprite_cache(path)
