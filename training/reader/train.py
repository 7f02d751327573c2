"""Render, train, evaluate and export the nametag reader (``toonvision train-reader``).

Recipe (reproducible): shards of 10,000 rendered tags each (:func:`training.reader.seeds.shard_seed`:
train 1000+i, validation 5000, test 9000), the model of :mod:`training.reader.model`, Adam with a
cosine-decayed learning rate, sparse cross-entropy on the five heads, a wall-clock bound
(``--max-minutes``), the best validation epoch kept; then the test shard is read by the exported
ONNX model (parity with Keras checked) and the card ``models/reader.json`` records the recipe,
the data and the figures per line height.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision_live.classify.reader import (
    DEPT_CLASSES,
    INPUT_H,
    INPUT_NAME,
    INPUT_W,
    NAME_CLASSES,
    OUTPUTS,
    level_probs,
)
from toonvision_live.errors import ModelError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir
from training.reader.seeds import shard_seed
from training.reader.tags import (
    DEFAULT_MIX,
    FOCUS_MIX,
    HARD_MIX,
    SMALL_MIX,
    TagRenderer,
    TagSet,
    load_tag_set,
    render_tag_set,
    save_tag_set,
)

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

SHARD_SIZE = 10_000
PARITY_TOL = 1e-4
OPSET = 17
#: line-height buckets (pixels) the card reports
EM_BUCKETS = ((4.0, 5.0), (5.0, 6.0), (6.0, 8.0), (8.0, 12.0), (12.0, 24.0), (24.0, 61.0))


@dataclass(frozen=True, slots=True)
class Recipe:
    train_shards: int = 6
    epochs: int = 14
    batch_size: int = 128
    learning_rate: float = 2e-3
    max_minutes: float = 25.0
    seed: int = 0
    init: str | None = None  # warm start from this .onnx reader or .keras model
    schedule: str = "epochs"  # cosine over "epochs", or over the "wall" clock budget
    focus_shards: int = 0  # shards of FOCUS_MIX (small text, two-line tags) trained on beside the train shards
    small_shards: int = 0  # shards of SMALL_MIX (mostly 4.5-10 px text, levels mostly uniform) trained on too
    level_weight: float = 1.0  # weight of the tens and units heads' losses (name, dept, v2: 1)
    train_from: int = 0  # index of the first train shard used (shards train_from .. +train_shards-1)
    focus_from: int = 0  # same for the focus shards
    small_from: int = 0  # same for the small shards
    hard_shards: int = 0  # shards of HARD_MIX (small text, rescaled and JPEG-compressed more often) trained on too
    hard_from: int = 0  # same for the hard shards
    blocks: tuple[int, ...] = (0, 0, 0, 0)  # residual blocks after each conv stage (model.build_reader)
    block_convs: int = 1  # 3x3 convolutions per residual block


def shard_path(data: Path, split: str, index: int) -> Path:
    return Path(data) / f"{split}_{index:02d}.npz"


def ensure_shards(data: Path, split: str, count: int, renderer: TagRenderer | None = None,
                  start: int = 0) -> list[Path]:
    """The ``count`` shards of ``split`` in ``data`` from index ``start`` on, rendering the missing ones
    (``focus``: of FOCUS_MIX, ``small``: of SMALL_MIX, ``hard``: of HARD_MIX)."""
    ensure_dir(Path(data))
    paths = []
    for i in range(start, start + count):
        path = shard_path(data, split, i)
        if not path.is_file():
            renderer = renderer or TagRenderer()
            t0 = time.perf_counter()
            mix = {"focus": FOCUS_MIX, "small": SMALL_MIX, "hard": HARD_MIX}.get(split, DEFAULT_MIX)
            save_tag_set(path, render_tag_set(SHARD_SIZE, shard_seed(split, i), renderer, mix=mix))
            log.info("rendered %s in %.0f s", path.name, time.perf_counter() - t0)
        paths.append(path)
    return paths


def shard_plan(recipe: Recipe) -> list[tuple[str, int, int]]:
    """(split, count, first index) of the shards a recipe trains on."""
    return [("train", recipe.train_shards, recipe.train_from), ("focus", recipe.focus_shards, recipe.focus_from),
            ("small", recipe.small_shards, recipe.small_from), ("hard", recipe.hard_shards, recipe.hard_from)]


def concat(sets: list[TagSet]) -> TagSet:
    columns = ("images", "name", "dept", "level", "v2", "em")
    return TagSet(*(np.concatenate([getattr(s, f) for s in sets]) for f in columns),
                  texts=tuple(t for s in sets for t in s.texts))


def targets(tags: TagSet) -> dict[str, np.ndarray]:
    return {"name": tags.name, "dept": tags.dept, "tens": tags.level // 10, "units": tags.level % 10, "v2": tags.v2}


def _initial_model(recipe: Recipe, train: TagSet) -> keras.Model:
    """A fresh :func:`build_reader` model of the recipe's ``blocks``, or warm-started from ``recipe.init``:
    an exported reader (``.onnx``, every weight, batch norms restored) or a ``.keras`` model, its layers
    copied by name.  A model grown from its source (residual blocks added, each the identity at the
    start) reads as the source did; one that lacks some of the source's layers is refused."""
    import keras

    from training.reader.model import build_reader, keras_from_onnx, transfer_weights

    model = build_reader(blocks=recipe.blocks, block_convs=recipe.block_convs)
    if not recipe.init:
        return model
    if recipe.init.endswith(".onnx"):
        source = keras_from_onnx(recipe.init, train.images[:: max(1, len(train.name) // 2000)])
    else:
        source = keras.models.load_model(recipe.init)
    copied = transfer_weights(source, model)
    left = sorted({layer.name for layer in source.layers if layer.weights} - set(copied))
    if left:
        raise ModelError(f"The model to warm-start from, {recipe.init}, has layers the recipe's reader lacks or "
                         f"shapes differently ({', '.join(left[:4])}): give --blocks as it was trained.")
    new = [layer.name for layer in model.layers if layer.weights and layer.name not in copied]
    log.info("warm start from %s: %d layers copied, %d new (%s)", recipe.init, len(copied), len(new),
             ", ".join(new))
    return model


def train_reader(data: Path, recipe: Recipe) -> keras.Model:
    """Train on the rendered shards in ``data`` (rendered when missing) within the recipe's bounds.

    Schedule ``epochs``: the learning rate decays by a cosine over ``epochs`` passes, and training
    stops after the epoch that passes ``max_minutes``.  Schedule ``wall``: the cosine runs over the
    wall-clock budget itself (so the rate has decayed whenever the time is up, however busy the
    machine), validation every ``SHARD_SIZE`` * 2 samples, stopping when ``max_minutes`` are spent.
    """
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(recipe.seed)
    paths = [p for split, count, first in shard_plan(recipe) for p in ensure_shards(data, split, count, start=first)]
    train = concat([load_tag_set(p) for p in paths])
    val = load_tag_set(ensure_shards(data, "val", 1)[0])
    model = _initial_model(recipe, train)
    steps = int(np.ceil(len(train.name) / recipe.batch_size))
    wall = recipe.schedule == "wall"
    lr: Any = (recipe.learning_rate if wall else
               keras.optimizers.schedules.CosineDecay(recipe.learning_rate, decay_steps=steps * recipe.epochs,
                                                      alpha=0.02))
    model.compile(optimizer=keras.optimizers.Adam(lr),
                  loss={k: "sparse_categorical_crossentropy" for k in OUTPUTS},
                  loss_weights={k: recipe.level_weight if k in ("tens", "units") else 1.0 for k in OUTPUTS},
                  metrics={k: "accuracy" for k in OUTPUTS})
    x = train.images[..., None]
    ds = (tf.data.Dataset.from_tensor_slices((x, targets(train)))
          .shuffle(len(x), seed=recipe.seed, reshuffle_each_iteration=True).repeat().batch(recipe.batch_size)
          .map(lambda a, b: (tf.cast(a, tf.float32), b)).prefetch(2))
    n_val = 5000 if wall else len(val.name)
    val_ds = tf.data.Dataset.from_tensor_slices((val.images[:n_val, ..., None].astype(np.float32),
                                                 {k: v[:n_val] for k, v in targets(val).items()})).batch(512)
    start = time.monotonic()
    budget = recipe.max_minutes * 60

    class Bound(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if wall:
                f = min(1.0, (time.monotonic() - start) / budget)
                rate = recipe.learning_rate * (0.02 + 0.98 * 0.5 * (1 + np.cos(np.pi * f)))
                self.model.optimizer.learning_rate.assign(rate)

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if wall and time.monotonic() - start > budget:
                self.model.stop_training = True

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            log.info("epoch %d done after %.1f min", epoch + 1, (time.monotonic() - start) / 60)
            if time.monotonic() - start > budget:
                self.model.stop_training = True

    best = keras.callbacks.ModelCheckpoint(str(Path(data) / "reader_best.keras"), monitor="val_loss",
                                           save_best_only=True)
    per_epoch = 2 * SHARD_SIZE // recipe.batch_size if wall else steps
    model.fit(ds, validation_data=val_ds, epochs=10_000 if wall else recipe.epochs, steps_per_epoch=per_epoch,
              callbacks=[Bound(), best], verbose=2, shuffle=False)  # ds is shuffled itself
    return keras.models.load_model(Path(data) / "reader_best.keras")


def exact_reads(probs: dict[str, np.ndarray], tags: TagSet) -> dict[str, np.ndarray]:
    """Per-sample booleans: name, dept, level, v2 right, and all four right (``exact``)."""
    level = level_probs(probs["tens"], probs["units"]).argmax(axis=1) + 1
    ok = {"name": probs["name"].argmax(1) == tags.name, "dept": probs["dept"].argmax(1) == tags.dept,
          "level": level == tags.level, "v2": probs["v2"].argmax(1) == tags.v2}
    ok["exact"] = ok["name"] & ok["dept"] & ok["level"] & ok["v2"]
    return ok


def bucket_metrics(probs: dict[str, np.ndarray], tags: TagSet) -> dict[str, Any]:
    """Accuracy of each field and of the exact read per line-height bucket, on the tags that are
    whole (neither covered by another tag nor cut by the screen edge: their text is not all there),
    plus the whole set and the covered/cut tags on their own."""
    ok = exact_reads(probs, tags)
    hidden = tags.hidden if tags.hidden is not None else np.zeros(len(tags.name), bool)

    def figures(sel: np.ndarray) -> dict[str, Any]:
        scores = {k: round(float(v[sel].mean()), 5) if sel.any() else None for k, v in ok.items()}
        return {"n": int(sel.sum()), **scores}

    whole = ~hidden
    out: dict[str, Any] = {**figures(whole), "all_samples": figures(np.ones_like(whole)),
                           "covered_or_cut": figures(hidden)}
    for lo, hi in EM_BUCKETS:
        out[f"em_{lo:g}_{hi:g}"] = figures(whole & (tags.em >= lo) & (tags.em < hi))
    out["em_ge_8"] = figures(whole & (tags.em >= 8))
    out["em_5_8"] = figures(whole & (tags.em >= 5) & (tags.em < 8))
    out["em_ge_6"] = figures(whole & (tags.em >= 6))
    return out


def keras_to_onnx(model: keras.Model) -> Any:
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec((None, INPUT_H, INPUT_W, 1), tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature)
    def serve(tag: tf.Tensor) -> dict[str, tf.Tensor]:
        out = model(tag, training=False)
        return {k: tf.identity(out[k], name=k) for k in OUTPUTS}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET)
    names = sorted(o.name for o in proto.graph.output)
    if names != sorted(OUTPUTS) or [i.name for i in proto.graph.input] != [INPUT_NAME]:
        raise ModelError(f"tf2onnx produced outputs {names}; expected {sorted(OUTPUTS)}.")
    return proto


def onnx_outputs(session: Any, images: np.ndarray, batch: int = 256) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i in range(0, len(images), batch):
        values = session.run(names, {INPUT_NAME: images[i : i + batch, ..., None].astype(np.float32)})
        for k, v in zip(names, values, strict=True):
            parts[k].append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def export_reader(model: keras.Model, out: Path, data: Path, recipe: Recipe, minutes: float) -> dict[str, Any]:
    """Write ``out`` (.onnx) and its card after the Keras/ONNX parity check on the test shard."""
    import onnxruntime as ort

    test = load_tag_set(ensure_shards(data, "test", 1)[0])
    proto = keras_to_onnx(model)
    blob = proto.SerializeToString()
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    probs = onnx_outputs(session, test.images)
    ref = model.predict(test.images[:1024, ..., None].astype(np.float32), batch_size=256, verbose=0)
    diff = max(float(np.abs(np.asarray(ref[k]) - probs[k][:1024]).max()) for k in OUTPUTS)
    if diff > PARITY_TOL:
        raise ModelError(f"The ONNX reader differs from Keras by {diff:.2g} (> {PARITY_TOL}); nothing was written.")
    card = {
        "model": "nametag reader", "input": {"name": INPUT_NAME, "shape": ["N", INPUT_H, INPUT_W, 1],
                                             "prepare": "toonvision_live.classify.reader.tag_input"},
        "outputs": OUTPUTS, "names": list(NAME_CLASSES), "depts": list(DEPT_CLASSES),
        "level": "tens x units, levels 1..50",
        "training_data": {"rendered_tags": sum(count for _, count, _ in shard_plan(recipe)) * SHARD_SIZE,
                          "shard_seeds": "train 1000+i, focus 2000+i (FOCUS_MIX), small 3000+i (SMALL_MIX), "
                                         "hard 4000+i (HARD_MIX), val 5000, test 9000",
                          "font": "phase_3/models/fonts/vtRemingtonPortable.ttf via assets/suit_font_glyphs",
                          "real_frames": 0},
        "recipe": {**asdict(recipe), "trained_minutes": round(minutes, 1)},
        "metrics_test_onnx": bucket_metrics(probs, test),
        "onnx": {"opset": OPSET, "parity_max_abs_diff": diff, "bytes": len(blob)},
        "created": date.today().isoformat(),
    }
    atomic_write_bytes(out, blob, overwrite=True)
    atomic_write_bytes(out.with_suffix(".json"), (json.dumps(card, indent=1) + "\n").encode(), overwrite=True)
    return card
