"""Labelled crops from DATASET/data/{train,validate,test}/cog as uint8 arrays and tf.data pipelines.

Labels come from the file names (``cog_<suit>_<key>_<index>.png``).  Each split is
checked before any training starts: a missing or empty split, a file name that is
not a Cog label, or a Cog missing from the training split is a DataError; an
unbalanced split is logged with its counts.  Crops are held in memory as uint8
[N, 600, 200, 3] (never as float) and augmented per batch on the fly, imitating the
live crop stage: the proposal box is a little too big, too small or shifted, the
Cog is far away (few pixels, stretched to 600x200), lit differently, blurred,
JPEG-compressed, partly hidden.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision_live.crops import stretch_to_crop
from toonvision_live.errors import DataError
from toonvision_live.model_card import CROP_HEIGHT, CROP_WIDTH, ENTITY_OUTPUT, SUIT_OUTPUT
from toonvision_live.taxonomy import COG_KEYS, COG_SUIT_INDEX, SUIT_CODES, parse_label

if TYPE_CHECKING:
    import tensorflow as tf

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validate", "test")
#: a split is called unbalanced when its largest Cog class is this many times its smallest
IMBALANCE_RATIO = 2.0


def crop_entity_index(path: Path) -> int:
    """The entity (Cog) index of a crop named ``cog_<suit>_<key>_<index>.png``; DataError otherwise."""
    stem = Path(path).stem
    head, sep, index = stem.rpartition("_")
    if not sep or not index.isdigit():
        raise DataError(
            f"The crop {path} is not named 'cog_<suit>_<cog>_<index>.png' (e.g. cog_sb_coldcaller_0.png); rename it."
        )
    try:
        label = parse_label(head)
    except DataError as exc:
        raise DataError(f"The crop {path} has a bad label: {exc}") from None
    if label.kind != "cog":
        raise DataError(f"The crop {path} is a Toon, not a Cog; move it to a toon/ folder.")
    return COG_KEYS.index(label.key)


@dataclass(frozen=True, slots=True)
class SplitFiles:
    """The crop files of one split and their entity indices (same order)."""

    split: str
    paths: tuple[Path, ...]
    entity: np.ndarray  # int32 [N]

    @property
    def counts(self) -> dict[str, int]:
        counter = Counter(int(e) for e in self.entity)
        return {COG_KEYS[i]: counter.get(i, 0) for i in range(len(COG_KEYS))}

    @property
    def suit(self) -> np.ndarray:
        return np.asarray(COG_SUIT_INDEX, dtype=np.int32)[self.entity]


def split_folder(root: Path, split: str) -> Path:
    return Path(root) / "data" / split / "cog"


def list_split(root: Path, split: str) -> SplitFiles:
    """The labelled crops of ``split`` under DATASET; DataError if missing, empty or misnamed."""
    folder = split_folder(root, split)
    if not folder.is_dir():
        raise DataError(
            f"The dataset folder {folder} does not exist: render crops and run 'toonvision dataset split {root}'."
        )
    paths = tuple(sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png"))
    if not paths:
        raise DataError(f"The dataset folder {folder} holds no .png crops: run 'toonvision dataset split {root}'.")
    entity = np.asarray([crop_entity_index(p) for p in paths], dtype=np.int32)
    return SplitFiles(split=split, paths=paths, entity=entity)


def check_splits(root: Path, splits: tuple[str, ...] = SPLITS) -> dict[str, SplitFiles]:
    """List and check every split: all 32 Cogs in the training split, balance logged."""
    found = {split: list_split(root, split) for split in splits}
    for split, files in found.items():
        counts = files.counts
        missing = [k for k, n in counts.items() if n == 0]
        if missing and split == "train":
            raise DataError(
                f"The training split of {root} has no crops of {', '.join(missing)}: render them "
                "(toonvision render crops --cogs ...) and split again."
            )
        if missing:
            log.warning(
                "The %s split of %s has no crops of %s; its metrics skip them.",
                split,
                root,
                ", ".join(missing),
            )
        present = [n for n in counts.values() if n > 0]
        if present and max(present) > IMBALANCE_RATIO * min(present):
            lo = min(counts, key=lambda k: counts[k] if counts[k] else 1 << 30)
            hi = max(counts, key=lambda k: counts[k])
            log.warning(
                "The %s split is unbalanced: %d %s crops but only %d %s (per Cog: %s).",
                split,
                counts[hi],
                hi,
                counts[lo],
                lo,
                ", ".join(f"{k} {n}" for k, n in counts.items()),
            )
    return found


def summarize(found: dict[str, SplitFiles]) -> dict[str, Any]:
    """The training-data summary written into the model card."""
    return {
        "splits": {split: len(files.paths) for split, files in found.items()},
        "per_suit": {
            split: {code: int(np.sum(files.suit == i)) for i, code in enumerate(SUIT_CODES)}
            for split, files in found.items()
        },
        "per_cog_train": found["train"].counts if "train" in found else {},
    }


def _read_crop(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DataError(f"The crop {path} is not a readable image; delete or re-save it.")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return rgb if rgb.shape[:2] == (CROP_HEIGHT, CROP_WIDTH) else stretch_to_crop(rgb)


def load_images(paths: tuple[Path, ...] | list[Path], workers: int = 2) -> np.ndarray:
    """Decode crops into one uint8 array [N, 600, 200, 3] (other sizes are stretched to 600x200)."""
    out = np.empty((len(paths), CROP_HEIGHT, CROP_WIDTH, 3), dtype=np.uint8)

    def fill(i: int) -> None:
        out[i] = _read_crop(paths[i])

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(fill, range(len(paths))))
    return out


def one_hot_targets(entity: np.ndarray) -> dict[str, np.ndarray]:
    entity = np.asarray(entity, dtype=np.int64)
    suit = np.asarray(COG_SUIT_INDEX, dtype=np.int64)[entity]
    return {
        SUIT_OUTPUT: np.eye(len(SUIT_CODES), dtype=np.float32)[suit],
        ENTITY_OUTPUT: np.eye(len(COG_KEYS), dtype=np.float32)[entity],
    }


@dataclass(frozen=True, slots=True)
class Augment:
    """How strongly crops are randomised (defaults imitate the live crop stage)."""

    box_scale_h: tuple[float, float] = (0.85, 1.12)  # proposal height / true body height
    box_scale_w: tuple[float, float] = (0.8, 1.3)
    box_shift: tuple[float, float] = (0.06, 0.1)  # max centre shift (y, x), fraction of the body box
    flip: bool = True
    brightness: float = 35.0  # +- on 0..255
    contrast: tuple[float, float] = (0.7, 1.3)
    saturation: tuple[float, float] = (0.6, 1.4)
    hue_deg: float = 12.0
    low_res_prob: float = 0.6  # Cog far away: its body spans few screen pixels
    low_res_min: tuple[int, int] = (90, 40)  # smallest (h, w) it is shrunk to before the 600x200 stretch
    blur_prob: float = 0.2
    jpeg_prob: float = 0.4
    jpeg_quality: tuple[int, int] = (35, 95)
    noise_std: float = 4.0  # at the model's 150x50 working resolution
    occlude_prob: float = 0.25
    occlude_max: float = 0.35  # max side of the occluding box, fraction of the crop


_TO_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
_TO_RGB = np.linalg.inv(_TO_YIQ).astype(np.float32)


def augment_crop(rgb: np.ndarray, a: Augment, rng: np.random.Generator) -> np.ndarray:
    """One uint8 600x200 crop randomised like a live crop (uint8 out, same shape)."""
    import cv2

    h, w = CROP_HEIGHT, CROP_WIDTH
    out = rgb
    if rng.random() < a.jpeg_prob:
        q = int(rng.integers(a.jpeg_quality[0], a.jpeg_quality[1] + 1))
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, q])  # channel order is irrelevant here
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    # the proposal box: scaled and shifted around the true body box, mirrored border outside the crop
    sh, sw = rng.uniform(*a.box_scale_h), rng.uniform(*a.box_scale_w)
    cy = 0.5 + rng.uniform(-a.box_shift[0], a.box_shift[0])
    cx = 0.5 + rng.uniform(-a.box_shift[1], a.box_shift[1])
    flip = a.flip and rng.random() < 0.5
    # destination pixel (u, v) samples source (x0 + u * sw, y0 + v * sh), mirrored when flipped
    # (pixel centres: source x + 0.5 = x0 + sw * (u + 0.5))
    x0, y0 = (cx - sw / 2) * w, (cy - sh / 2) * h
    src_x = np.array([-sw, 0.0, x0 + sw * w - 0.5 * sw - 0.5]) if flip else np.array([sw, 0.0, x0 + 0.5 * sw - 0.5])
    m = np.array([src_x, [0.0, sh, y0 + 0.5 * sh - 0.5]], dtype=np.float64)
    out = cv2.warpAffine(
        out, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REFLECT_101
    )
    if rng.random() < a.low_res_prob:  # far away: few pixels, stretched back up
        small_h = int(rng.integers(a.low_res_min[0], h // 2 + 1))
        small_w = int(rng.integers(a.low_res_min[1], w // 2 + 1))
        out = stretch_to_crop(cv2.resize(out, (small_w, small_h), interpolation=cv2.INTER_AREA))
    if rng.random() < a.blur_prob:
        out = cv2.GaussianBlur(out, (0, 0), sigmaX=rng.uniform(1.0, 4.0))
    # light: one affine colour transform (saturation, hue, contrast, brightness)
    gray = np.full((3, 3), 1.0 / 3.0, np.float32)
    sat = rng.uniform(*a.saturation)
    colour = gray + sat * (np.eye(3, dtype=np.float32) - gray)
    if a.hue_deg > 0:
        t = np.deg2rad(rng.uniform(-a.hue_deg, a.hue_deg))
        rot = np.array([[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]], np.float32)
        colour = _TO_RGB @ rot @ _TO_YIQ @ colour
    con = rng.uniform(*a.contrast)
    mean = float(out.mean())
    offset = mean * (1 - con) + rng.uniform(-a.brightness, a.brightness)
    matrix = np.hstack([con * colour, np.full((3, 1), offset, np.float32)]).astype(np.float32)
    out = cv2.transform(out, matrix)  # saturates to 0..255
    if rng.random() < a.occlude_prob:
        oh = int(rng.uniform(0.1, a.occlude_max) * h)
        ow = int(rng.uniform(0.2, 0.8) * w)
        oy, ox = int(rng.integers(0, h - oh + 1)), int(rng.integers(0, w - ow + 1))
        out = out.copy() if out is rgb else out
        out[oy : oy + oh, ox : ox + ow] = rng.integers(0, 256, 3, dtype=np.uint8)
    if a.noise_std > 0:
        std = rng.uniform(0, a.noise_std)
        noise = rng.normal(0.0, std, (h // 4, w // 4, 3)).astype(np.float32)
        noise = cv2.resize(noise, (w, h), interpolation=cv2.INTER_NEAREST)
        out = np.clip(out.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    return out


def training_datasets(
    found: dict[str, SplitFiles], *, batch_size: int, augment: Augment | None, seed: int, repeat: bool
) -> tuple[tf.data.Dataset, tf.data.Dataset]:
    """The training dataset (augmented, shuffled each epoch; repeated for a fixed number of steps per
    epoch) and the validation dataset of a checked split (:func:`check_splits`)."""
    train_x = load_images(found["train"].paths)
    val_x = load_images(found["validate"].paths)
    train_ds = make_dataset(
        train_x, found["train"].entity, batch_size=batch_size, shuffle=True, augment=augment, seed=seed
    )
    val_ds = make_dataset(val_x, found["validate"].entity, batch_size=64, shuffle=False, augment=None)
    return (train_ds.repeat() if repeat else train_ds), val_ds


def make_dataset(
    images: np.ndarray,
    entity: np.ndarray,
    *,
    batch_size: int,
    shuffle: bool,
    augment: Augment | None,
    seed: int = 0,
) -> tf.data.Dataset:
    """(float32 image 0..255, {"suit", "entity"} one-hot) batches from a uint8 array held in memory.

    With ``augment`` every batch is randomised anew (numpy + OpenCV, in two threads).
    """
    import tensorflow as tf

    n = len(images)
    if n == 0:
        raise DataError("A dataset split is empty; render and split crops first.")
    targets = one_hot_targets(entity)
    suit_t, entity_t = targets[SUIT_OUTPUT], targets[ENTITY_OUTPUT]
    seeds = np.random.SeedSequence(seed)
    pool = ThreadPoolExecutor(max_workers=2) if augment is not None else None

    def gather(idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        x = images[idx]
        if augment is not None and pool is not None:
            rngs = [np.random.default_rng(s) for s in seeds.spawn(len(idx))]
            x = np.stack(list(pool.map(lambda i: augment_crop(x[i], augment, rngs[i]), range(len(idx)))))
        return x, suit_t[idx], entity_t[idx]

    def fetch(idx: tf.Tensor) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
        x, s, e = tf.numpy_function(gather, [idx], [tf.uint8, tf.float32, tf.float32], stateful=augment is not None)
        x = tf.cast(tf.ensure_shape(x, [None, CROP_HEIGHT, CROP_WIDTH, 3]), tf.float32)
        s = tf.ensure_shape(s, [None, len(SUIT_CODES)])
        e = tf.ensure_shape(e, [None, len(COG_KEYS)])
        return x, {SUIT_OUTPUT: s, ENTITY_OUTPUT: e}

    ds = tf.data.Dataset.range(n)
    if shuffle:
        ds = ds.shuffle(n, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).map(fetch, num_parallel_calls=1).prefetch(2)
