"""Train the detector on rendered scenes (``toonvision train-detector``), bounded in time.

Batches are random crops (CROP x CROP working pixels, horizontal flips) of the frames written by
:mod:`training.detector.data`; targets are CenterNet's: a Gaussian peak at each Cog's body centre on the
stride-4 grid (penalty-reduced focal loss) and, at the peak's cell, the 8 box values of
training/detector/model.py (L1).  Adam with a cosine decay over the planned steps; the run stops at
``max_minutes`` whatever the plan and keeps the last weights.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from training.detector.model import N_BOX, STRIDE

log = logging.getLogger(__name__)

CROP = 256


@dataclass(frozen=True, slots=True)
class TrainConfig:
    steps: int = 4000
    batch: int = 16
    lr: float = 2e-3
    max_minutes: float = 55.0
    seed: int = 0
    crop: int = CROP


def encode_targets(objects: list[dict], out_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Heatmap [h, w, 1], box values [h, w, N_BOX] and mask [h, w, 2] (body, tag) on the stride-4 grid for
    ``objects`` (dicts with "body" and "tag" boxes in input pixels)."""
    h, w = out_hw
    heat = np.zeros((h, w), np.float32)
    box = np.zeros((h, w, N_BOX), np.float32)
    mask = np.zeros((h, w, 2), np.float32)
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    for o in objects:
        x0, y0, x1, y1 = o["body"]
        bw, bh = x1 - x0, y1 - y0
        if bw < 1 or bh < 1:
            continue
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
        ix, iy = int(cx), int(cy)
        if not (0 <= ix < w and 0 <= iy < h):
            continue
        sx, sy = max(0.5, bw / STRIDE / 8), max(0.5, bh / STRIDE / 8)
        g = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
        np.maximum(heat, g, out=heat)
        box[iy, ix, :4] = (cx - ix, cy - iy, math.log(bw / STRIDE), math.log(bh / STRIDE))
        mask[iy, ix, 0] = 1
        tag = o.get("tag")
        if tag is not None and tag[2] - tag[0] >= 1 and tag[3] - tag[1] >= 1:
            tcx, tcy = (tag[0] + tag[2]) / 2, (tag[1] + tag[3]) / 2
            box[iy, ix, 4:] = ((tcx - (x0 + x1) / 2) / bh, (tcy - (y0 + y1) / 2) / bh,
                               math.log((tag[2] - tag[0]) / STRIDE), math.log((tag[3] - tag[1]) / STRIDE))
            mask[iy, ix, 1] = 1
    return heat[:, :, None], box, mask


def _shift(objects: list[dict], dx: float, dy: float, flip_w: float | None) -> list[dict]:
    out = []
    for o in objects:
        b = [o["body"][0] - dx, o["body"][1] - dy, o["body"][2] - dx, o["body"][3] - dy]
        t = None if o["tag"] is None else [o["tag"][0] - dx, o["tag"][1] - dy, o["tag"][2] - dx, o["tag"][3] - dy]
        if flip_w is not None:
            b = [flip_w - b[2], b[1], flip_w - b[0], b[3]]
            t = None if t is None else [flip_w - t[2], t[1], flip_w - t[0], t[3]]
        out.append({"body": b, "tag": t})
    return out


def make_batch(images: np.ndarray | Sequence[np.ndarray], frames: list[dict], rng: np.random.Generator, batch: int,
               crop: int):
    """One training batch: images [B, crop, crop, 3] float32 and targets (heat, box, mask).  ``images``: one
    array [N, H, W, 3] or several (each dataset's memmap, frames numbered on across them, so the frames are
    never copied into memory)."""
    parts = [images] if isinstance(images, np.ndarray) else list(images)
    starts = np.cumsum([0] + [len(p) for p in parts])
    n, (ch, cw) = int(starts[-1]), parts[0].shape[1:3]
    xb = np.zeros((batch, crop, crop, 3), np.float32)
    g = crop // STRIDE
    heat = np.zeros((batch, g, g, 1), np.float32)
    box = np.zeros((batch, g, g, N_BOX), np.float32)
    mask = np.zeros((batch, g, g, 2), np.float32)
    for b in range(batch):
        i = int(rng.integers(n))
        fr = frames[i]
        vw, vh = fr["valid"] if "valid" in fr else (int(round(v * fr["scale"])) for v in fr["size"])
        x0 = int(rng.integers(0, max(1, min(cw, vw + 32) - crop + 1)))
        y0 = int(rng.integers(0, max(1, min(ch, vh + 32) - crop + 1)))
        x0, y0 = x0 // STRIDE * STRIDE, y0 // STRIDE * STRIDE
        k = int(np.searchsorted(starts, i, side="right")) - 1
        img = parts[k][i - starts[k], y0:y0 + crop, x0:x0 + crop]
        flip = rng.random() < 0.5
        if flip:
            img = img[:, ::-1]
        xb[b, : img.shape[0], : img.shape[1]] = img
        objs = _shift(fr["objects"], x0, y0, float(crop) if flip else None)
        heat[b], box[b], mask[b] = encode_targets(objs, (g, g))
    return xb, heat, box, mask


def focal_loss(heat_true, heat_pred):
    from keras import ops

    p = ops.clip(heat_pred, 1e-4, 1 - 1e-4)
    pos = ops.cast(ops.greater_equal(heat_true, 0.999), p.dtype)
    pos_loss = -ops.log(p) * (1 - p) ** 2 * pos
    neg_loss = -ops.log(1 - p) * p**2 * (1 - heat_true) ** 4 * (1 - pos)
    n = ops.maximum(ops.sum(pos), 1.0)
    return (ops.sum(pos_loss) + ops.sum(neg_loss)) / n


def box_loss(box_true, box_pred, mask):
    from keras import ops

    body_m, tag_m = mask[..., :1], mask[..., 1:]
    err = ops.abs(box_true - box_pred)
    body = ops.sum(err[..., :4] * body_m)
    tag = ops.sum(err[..., 4:] * tag_m)
    return (body + tag) / ops.maximum(ops.sum(body_m), 1.0)


def train_detector(data: Path | list[Path], out_keras: Path, config: TrainConfig = TrainConfig(), progress=print,
                   init: Path | None = None) -> dict:
    """Train on the dataset folder(s) ``data`` (from scratch, or on from the weights of ``init``); saves
    ``out_keras``; returns a summary (steps, minutes, losses)."""
    import keras
    import tensorflow as tf

    from training.detector.data import load_dataset
    from training.detector.model import build_detector

    keras.utils.set_random_seed(config.seed)
    folders = [data] if isinstance(data, Path) else list(data)
    parts = [load_dataset(f) for f in folders]
    images = [p[0] for p in parts]  # memmaps: read through the page cache, never copied (about 5 GB less)
    frames = [fr for p in parts for fr in p[1]["frames"]]
    model = build_detector()
    if init is not None:
        model.load_weights(init)
    opt = keras.optimizers.Adam(config.lr)

    @tf.function(reduce_retracing=True)
    def step(x, heat, box, mask):
        with tf.GradientTape() as tape:
            hp, bp = model(x, training=True)
            lh = focal_loss(heat, hp)
            lb = box_loss(box, bp, mask)
            loss = lh + lb
        grads = tape.gradient(loss, model.trainable_variables)
        opt.apply_gradients(zip(grads, model.trainable_variables, strict=True))
        return lh, lb

    rng = np.random.default_rng(config.seed)
    start = time.perf_counter()
    hist: list[tuple[float, float]] = []
    done = 0
    for s in range(config.steps):
        # cosine decay over whichever runs out first, the steps or the minutes; a short warm-up
        done_frac = max(s / config.steps, (time.perf_counter() - start) / 60 / config.max_minutes)
        if done_frac >= 1.0:
            log.info("stopping at step %d: %.1f minutes used", s, config.max_minutes)
            break
        lr = config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * done_frac))) * min(1.0, (s + 1) / 50)
        opt.learning_rate.assign(lr)
        lh, lb = step(*make_batch(images, frames, rng, config.batch, config.crop))
        hist.append((float(lh), float(lb)))
        done = s + 1
        if done % 100 == 0:
            recent = np.mean(hist[-100:], axis=0)
            progress(f"step {done}/{config.steps} heat {recent[0]:.3f} box {recent[1]:.3f} "
                     f"{(time.perf_counter() - start) / 60:.1f} min")
    minutes = (time.perf_counter() - start) / 60
    out_keras.parent.mkdir(parents=True, exist_ok=True)
    model.save(out_keras)
    summary = {"steps": done, "planned_steps": config.steps, "batch": config.batch, "crop": config.crop,
               "lr": config.lr, "minutes": round(minutes, 1), "frames": len(frames),
               "init": None if init is None else str(init),
               "final_heat_loss": round(float(np.mean([h[0] for h in hist[-100:]])), 4) if hist else None,
               "final_box_loss": round(float(np.mean([h[1] for h in hist[-100:]])), 4) if hist else None}
    out_keras.with_suffix(".train.json").write_text(json.dumps(summary, indent=1))
    return summary
