"""Rendered detection data at working size: ``toonvision render detscenes`` writes a folder with
``images.u8`` (a raw uint8 array [N, CANVAS_H, CANVAS_W, 3], each frame scaled so its long side is
WORK_LONG and padded with black) and ``labels.json`` (per frame: window size, scale, background,
degradation, kind and every Cog's body box, nametag box (or null) in working pixels, nametag line height in
frame pixels, covered share).  Scenes come from worker processes (one sprite cache each)."""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from toonvision_live.find.detector import WORK_LONG, to_working

CANVAS_W, CANVAS_H = WORK_LONG, WORK_LONG * 3 // 4
#: training mix of window sizes (smaller ones are cheaper to draw; the model sees them all at working size)
TRAIN_SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 720), (1366, 768), (1600, 900), (1920, 1080))
_worker: dict = {}


def _init(sprites_path: str) -> None:
    from training.detector.sprites import load_sprite_cache

    _worker["sprites"] = load_sprite_cache(Path(sprites_path))


def scene_record(scene, scale: float) -> dict:
    h, w = scene.rgb.shape[:2]
    return {
        "size": [w, h], "scale": scale, "background": scene.background, "degradation": scene.degradation,
        "kind": scene.kind,
        "objects": [
            {"key": o.key, "body": [round(v * scale, 2) for v in o.body_xyxy],
             "tag": None if o.tag_xyxy is None else [round(v * scale, 2) for v in o.tag_xyxy],
             "line_px": round(o.line_px, 2), "covered": round(o.covered, 3), "truncated": o.truncated}
            for o in scene.objects
        ],
        "toons": [[round(v * scale, 2) for v in b] for b in scene.toon_boxes],
    }


def _job(task: tuple[str, int, int, int, int]) -> list[dict]:
    images_path, total, seed, start, count = task
    from training.detector.scenes import BackgroundPool, random_scene

    rng = np.random.default_rng([seed, start])
    if "pool" not in _worker:
        _worker["pool"] = BackgroundPool(np.random.default_rng([seed, start, 7]), size=6)
    pool = _worker["pool"]
    images = np.memmap(images_path, np.uint8, "r+", shape=(total, CANVAS_H, CANVAS_W, 3))
    records = []
    for i in range(start, start + count):
        size = TRAIN_SIZES[int(rng.choice(len(TRAIN_SIZES), p=[.2, .15, .15, .2, .1, .1, .1]))]
        scene = random_scene(rng, _worker["sprites"], pool, size_wh=size)
        work, scale = to_working(scene.rgb)
        images[i] = 0
        hh, ww = min(work.shape[0], CANVAS_H), min(work.shape[1], CANVAS_W)
        images[i, :hh, :ww] = work[:hh, :ww]
        records.append(scene_record(scene, scale))
    images.flush()
    part = Path(images_path).parent / "parts" / f"{start:07d}.json"
    part.parent.mkdir(exist_ok=True)
    part.write_text(json.dumps(records))
    return records


def build_dataset(out: Path, count: int, sprites: Path, seed: int, workers: int = 2, chunk: int = 25) -> float:
    """Render ``count`` scenes into ``out``; returns scenes per second."""
    out.mkdir(parents=True, exist_ok=True)
    images_path = out / "images.u8"
    np.memmap(images_path, np.uint8, "w+", shape=(count, CANVAS_H, CANVAS_W, 3)).flush()
    tasks = [(str(images_path), count, seed, s, min(chunk, count - s)) for s in range(0, count, chunk)]
    start = time.perf_counter()
    records: list[dict] = []
    with ProcessPoolExecutor(max(1, workers), initializer=_init, initargs=(str(sprites),)) as pool:
        for recs in pool.map(_job, tasks):
            records.extend(recs)
    rate = count / (time.perf_counter() - start)
    meta = {"count": count, "canvas": [CANVAS_W, CANVAS_H], "seed": seed, "sprites": str(sprites),
            "scenes_per_s": round(rate, 2), "frames": records}
    (out / "labels.json").write_text(json.dumps(meta))
    return rate


def load_dataset(folder: Path) -> tuple[np.ndarray, dict]:
    """The images (memmap) and labels of a dataset folder; a folder still being written gives the frames
    of its finished chunks (``parts/``) only."""
    if (folder / "labels.json").is_file():
        meta = json.loads((folder / "labels.json").read_text())
        images = np.memmap(folder / "images.u8", np.uint8, "r", shape=(meta["count"], CANVAS_H, CANVAS_W, 3))
        return images, meta
    size = (folder / "images.u8").stat().st_size
    count = size // (CANVAS_H * CANVAS_W * 3)
    images = np.memmap(folder / "images.u8", np.uint8, "r", shape=(count, CANVAS_H, CANVAS_W, 3))
    index, frames = [], []
    for part in sorted((folder / "parts").glob("*.json")):
        start = int(part.stem)
        recs = json.loads(part.read_text())
        index += list(range(start, start + len(recs)))
        frames += recs
    return images[np.array(index, dtype=np.int64)] if index else images[:0], {"count": len(frames), "frames": frames}
