"""Rendered detection data at working size: ``toonvision detscenes`` writes a folder with ``images.u8``
(a raw uint8 array [N, CANVAS_H, CANVAS_W, 3], each frame scaled to the detector's working size
(:func:`~toonvision_live.find.detector.work_long`) and padded with black; a working image larger than the
canvas (frames over 1536 px) gives a random canvas-sized window of it) and ``labels.json`` (per frame:
window size, scale, the stored window's corner and valid extent, background, degradation, kind and every
Cog's body box, nametag box (or null) in window pixels, nametag line height in frame pixels, covered
share).  Scenes come from worker processes (one sprite cache each)."""

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
SIZE_WEIGHTS = (.2, .15, .15, .2, .1, .1, .1)
#: the "hard" mix: more large windows (small tags at 1080p-4K), see scenes.random_scene(hard=True)
HARD_SIZES = ((640, 480), (1280, 720), (1600, 900), (1920, 1080), (2560, 1440), (3840, 2160))
HARD_WEIGHTS = (.1, .25, .1, .25, .15, .15)
_worker: dict = {}


def _init(sprites_path: str) -> None:
    from training.detector.sprites import load_sprite_cache

    _worker["sprites"] = load_sprite_cache(Path(sprites_path))


def scene_record(scene, scale: float, window: tuple[int, int, int, int] | None = None) -> dict:
    """The labels of ``scene`` in working pixels; ``window`` (x0, y0, w, h in working pixels) is the part
    of the working image stored (all of it when None), the boxes are relative to its corner."""
    h, w = scene.rgb.shape[:2]
    ox, oy, vw, vh = window or (0, 0, int(round(w * scale)), int(round(h * scale)))

    def at(box) -> list[float]:
        return [round(box[0] * scale - ox, 2), round(box[1] * scale - oy, 2), round(box[2] * scale - ox, 2),
                round(box[3] * scale - oy, 2)]

    return {
        "size": [w, h], "scale": scale, "valid": [min(vw, CANVAS_W), min(vh, CANVAS_H)], "window": [ox, oy],
        "background": scene.background, "degradation": scene.degradation, "kind": scene.kind,
        "objects": [
            {"key": o.key, "body": at(o.body_xyxy), "tag": None if o.tag_xyxy is None else at(o.tag_xyxy),
             "line_px": round(o.line_px, 2), "covered": round(o.covered, 3), "truncated": o.truncated}
            for o in scene.objects
        ],
        "toons": [at(b) for b in scene.toon_boxes],
    }


def _job(task: tuple[str, int, int, int, int, bool]) -> list[dict]:
    images_path, total, seed, start, count, hard = task
    from training.detector.scenes import BackgroundPool, random_scene

    rng = np.random.default_rng([seed, start])
    if "pool" not in _worker:
        _worker["pool"] = BackgroundPool(np.random.default_rng([seed, start, 7]), size=6)
    pool = _worker["pool"]
    images = np.memmap(images_path, np.uint8, "r+", shape=(total, CANVAS_H, CANVAS_W, 3))
    records = []
    for i in range(start, start + count):
        sizes, weights = (HARD_SIZES, HARD_WEIGHTS) if hard else (TRAIN_SIZES, SIZE_WEIGHTS)
        size = sizes[int(rng.choice(len(sizes), p=weights))]
        scene = random_scene(rng, _worker["sprites"], pool, size_wh=size, hard=hard)
        work, scale = to_working(scene.rgb)
        vw, vh = int(round(size[0] * scale)), int(round(size[1] * scale))
        ox = int(rng.integers(0, max(0, vw - CANVAS_W) + 1)) // 4 * 4
        oy = int(rng.integers(0, max(0, vh - CANVAS_H) + 1)) // 4 * 4
        images[i] = 0
        win = work[oy:oy + CANVAS_H, ox:ox + CANVAS_W]
        images[i, :win.shape[0], :win.shape[1]] = win
        records.append(scene_record(scene, scale, (ox, oy, vw - ox, vh - oy)))
    images.flush()
    part = Path(images_path).parent / "parts" / f"{start:07d}.json"
    part.parent.mkdir(exist_ok=True)
    part.write_text(json.dumps(records))
    return records


def build_dataset(out: Path, count: int, sprites: Path, seed: int, workers: int = 2, chunk: int = 25,
                  hard: bool = False) -> float:
    """Render ``count`` scenes into ``out`` (the "hard" mix when ``hard``); returns scenes per second."""
    out.mkdir(parents=True, exist_ok=True)
    images_path = out / "images.u8"
    np.memmap(images_path, np.uint8, "w+", shape=(count, CANVAS_H, CANVAS_W, 3)).flush()
    tasks = [(str(images_path), count, seed, s, min(chunk, count - s), hard) for s in range(0, count, chunk)]
    start = time.perf_counter()
    records: list[dict] = []
    with ProcessPoolExecutor(max(1, workers), initializer=_init, initargs=(str(sprites),)) as pool:
        for recs in pool.map(_job, tasks):
            records.extend(recs)
    rate = count / (time.perf_counter() - start)
    meta = {"count": count, "canvas": [CANVAS_W, CANVAS_H], "seed": seed, "mix": "hard" if hard else "standard",
            "sprites": str(sprites),
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
