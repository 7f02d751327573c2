"""Export a trained Keras model to ONNX (tf2onnx) with its model card, after a parity check.

``models/toonvision.onnx``: input ``image`` float32 [N, 600, 200, 3] (dynamic N),
outputs ``suit`` [N, 4] and ``entity`` [N, 32]; class names and input facts are
also written into the ONNX metadata.  Before the card is written, Keras and
onnxruntime predict the whole test split; a max abs difference above
``PARITY_TOL`` is a ModelError and nothing is written.  The card (DESIGN.md
"Model contract") carries the training-data summary, the test-split metrics of the
ONNX model, the parity figures and the opset/size, and is checked with
``model_card.load_card`` after it is written.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision_live.errors import ModelError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir
from toonvision_live.model_card import (
    CROP_HEIGHT,
    CROP_WIDTH,
    ENTITY_OUTPUT,
    INPUT_NAME,
    SUIT_OUTPUT,
    card_path_for,
    load_card,
    make_card,
)
from toonvision_live.taxonomy import COG_KEYS, SUIT_CODES
from training.data import check_splits, load_images, summarize
from training.model import load_keras_model

if TYPE_CHECKING:
    import keras
    import onnx

log = logging.getLogger(__name__)

PARITY_TOL = 1e-4
OPSET = 17
OUTPUT_NAMES = (SUIT_OUTPUT, ENTITY_OUTPUT)


@dataclass(frozen=True, slots=True)
class ExportResult:
    onnx_path: Path
    card_path: Path
    parity_max_abs_diff: float
    metrics: dict[str, Any]


def pool_input_in_nhwc(proto: Any) -> bool:
    """Rewrite the model's first ``Transpose(NHWC->NCHW) -> AveragePool(k x k, stride k)`` to pool in NHWC.

    tf2onnx transposes the whole float32 [N, 600, 200, 3] input before the 4x4 average pool; on a
    CPU those two ops cost most of the model's time.  The same average is a ReduceSum over each
    block of k rows and a MatMul summing k pixels per channel (weights 1/k^2), then a transpose of
    the k^2-times smaller result.  Returns whether the pattern was found and rewritten.
    """
    from onnx import helper, numpy_helper

    graph = proto.graph
    nodes = list(graph.node)
    users = lambda name: [n for n in nodes if name in n.input]  # noqa: E731
    first = next((n for n in nodes if n.op_type == "Transpose" and list(n.input) == [INPUT_NAME]), None)
    if first is None or len(users(INPUT_NAME)) != 1:
        return False
    attrs = {a.name: helper.get_attribute_value(a) for a in first.attribute}
    pools = users(first.output[0])
    if list(attrs.get("perm", [])) != [0, 3, 1, 2] or len(pools) != 1 or pools[0].op_type != "AveragePool":
        return False
    pool = pools[0]
    p = {a.name: helper.get_attribute_value(a) for a in pool.attribute}
    k = list(p.get("kernel_shape", []))
    if len(k) != 2 or k[0] != k[1] or list(p.get("strides", [])) != k or any(p.get("pads", [0])) \
            or p.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID") \
            or p.get("ceil_mode", 0) or CROP_HEIGHT % k[0] or CROP_WIDTH % k[0]:
        return False
    k = int(k[0])
    rows, cols = CROP_HEIGHT // k, CROP_WIDTH // k
    weights = np.zeros((CROP_WIDTH * 3, cols * 3), np.float32)
    for x in range(CROP_WIDTH):
        for c in range(3):
            weights[x * 3 + c, (x // k) * 3 + c] = 1.0 / (k * k)
    prefix = "tv_nhwc_pool/"
    graph.initializer.extend([
        numpy_helper.from_array(np.array([-1, rows, k, CROP_WIDTH * 3], np.int64), prefix + "row_blocks"),
        numpy_helper.from_array(np.array([2], np.int64), prefix + "block_axis"),
        numpy_helper.from_array(weights, prefix + "column_weights"),
        numpy_helper.from_array(np.array([-1, rows, cols, 3], np.int64), prefix + "nhwc"),
    ])
    replacement = [
        helper.make_node("Reshape", [INPUT_NAME, prefix + "row_blocks"], [prefix + "blocks"]),
        helper.make_node("ReduceSum", [prefix + "blocks", prefix + "block_axis"], [prefix + "row_sums"],
                         keepdims=0),
        helper.make_node("MatMul", [prefix + "row_sums", prefix + "column_weights"], [prefix + "pooled_flat"]),
        helper.make_node("Reshape", [prefix + "pooled_flat", prefix + "nhwc"], [prefix + "pooled"]),
        helper.make_node("Transpose", [prefix + "pooled"], [pool.output[0]], perm=[0, 3, 1, 2]),
    ]
    index = nodes.index(first)
    kept = [n for n in nodes if n is not first and n is not pool]
    del graph.node[:]
    graph.node.extend(kept[:index] + replacement + kept[index:])
    return True


def keras_to_onnx(model: keras.Model) -> onnx.ModelProto:
    """Convert with tf2onnx: input ``image`` with a dynamic batch, outputs named ``suit`` and ``entity``."""
    import tensorflow as tf
    import tf2onnx

    signature = (tf.TensorSpec([None, CROP_HEIGHT, CROP_WIDTH, 3], tf.float32, name=INPUT_NAME),)

    @tf.function(input_signature=signature)
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        out = model(image, training=False)
        return {SUIT_OUTPUT: out[SUIT_OUTPUT], ENTITY_OUTPUT: out[ENTITY_OUTPUT]}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET)
    if pool_input_in_nhwc(proto):
        log.debug("input average pool rewritten to pool in NHWC (no full-size transpose)")
    outputs = sorted(o.name for o in proto.graph.output)
    if [i.name for i in proto.graph.input] != [INPUT_NAME] or outputs != sorted(OUTPUT_NAMES):
        raise ModelError(
            f"tf2onnx produced inputs/outputs {[i.name for i in proto.graph.input]}/{outputs}; "
            "the model does not follow the contract."
        )
    meta = {
        "suits": json.dumps(list(SUIT_CODES)),
        "entities": json.dumps(list(COG_KEYS)),
        "input": json.dumps(
            {
                "name": INPUT_NAME,
                "shape": ["N", CROP_HEIGHT, CROP_WIDTH, 3],
                "layout": "NHWC",
                "color": "RGB",
                "range": [0, 255],
            }
        ),
        "producer": "toonvision export (tf2onnx)",
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = "ToonVision Live Cog classifier: suit (4) and entity (32) softmax heads."
    return proto


def onnx_session(path_or_bytes: Path | bytes) -> Any:
    """A CPU onnxruntime session; ModelError when the file is not an ONNX model."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    try:
        source = path_or_bytes if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
        return ort.InferenceSession(source, sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
        name = "the exported bytes" if isinstance(path_or_bytes, bytes) else str(path_or_bytes)
        raise ModelError(
            f"{name} is not a loadable ONNX model ({type(exc).__name__}); re-export it."
        ) from None


def onnx_predict(session: Any, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    """``suit`` and ``entity`` probabilities for float32/uint8 images [N, 600, 200, 3]."""
    parts: dict[str, list[np.ndarray]] = {SUIT_OUTPUT: [], ENTITY_OUTPUT: []}
    for i in range(0, len(images), batch_size):
        batch = np.ascontiguousarray(images[i : i + batch_size], dtype=np.float32)
        suit, entity = session.run(list(OUTPUT_NAMES), {INPUT_NAME: batch})
        parts[SUIT_OUTPUT].append(suit)
        parts[ENTITY_OUTPUT].append(entity)
    return {k: np.concatenate(v) for k, v in parts.items()}


def keras_predict(model: keras.Model, images: np.ndarray, batch_size: int = 64) -> dict[str, np.ndarray]:
    parts: dict[str, list[np.ndarray]] = {SUIT_OUTPUT: [], ENTITY_OUTPUT: []}
    for i in range(0, len(images), batch_size):
        out = model(np.asarray(images[i : i + batch_size], dtype=np.float32), training=False)
        parts[SUIT_OUTPUT].append(np.asarray(out[SUIT_OUTPUT]))
        parts[ENTITY_OUTPUT].append(np.asarray(out[ENTITY_OUTPUT]))
    return {k: np.concatenate(v) for k, v in parts.items()}


def head_metrics(probs: dict[str, np.ndarray], entity_true: np.ndarray) -> dict[str, float]:
    """Accuracy and balanced accuracy of both heads, and how often they agree."""
    from toonvision_live.taxonomy import COG_SUIT_INDEX

    suit_index = np.asarray(COG_SUIT_INDEX)
    suit_true = suit_index[entity_true]
    suit_pred = probs[SUIT_OUTPUT].argmax(1)
    entity_pred = probs[ENTITY_OUTPUT].argmax(1)

    def balanced(true: np.ndarray, pred: np.ndarray) -> float:
        recalls = [float(np.mean(pred[true == c] == c)) for c in np.unique(true)]
        return float(np.mean(recalls))

    return {
        "n": int(len(entity_true)),
        "suit_accuracy": float(np.mean(suit_pred == suit_true)),
        "suit_balanced_accuracy": balanced(suit_true, suit_pred),
        "cog_accuracy": float(np.mean(entity_pred == entity_true)),
        "cog_balanced_accuracy": balanced(entity_true, entity_pred),
        "suit_from_cog_accuracy": float(np.mean(suit_index[entity_pred] == suit_true)),
        "heads_agree": float(np.mean(suit_index[entity_pred] == suit_pred)),
    }


def export(
    keras_path: Path,
    onnx_path: Path,
    data: Path,
    *,
    extra_card: dict[str, Any] | None = None,
    max_parity_images: int | None = None,
) -> ExportResult:
    """Convert, check parity on the test split of ``data``, write the ONNX model and its card."""
    model = load_keras_model(keras_path)
    found = check_splits(data)
    test = found["test"]
    paths = test.paths if max_parity_images is None else test.paths[:max_parity_images]
    entity = test.entity[: len(paths)]
    images = load_images(paths)

    proto = keras_to_onnx(model)
    blob = proto.SerializeToString()
    session = onnx_session(blob)
    start = time.perf_counter()
    onnx_probs = onnx_predict(session, images)
    onnx_seconds = time.perf_counter() - start
    keras_probs = keras_predict(model, images)
    diffs = {k: float(np.max(np.abs(onnx_probs[k] - keras_probs[k]))) for k in OUTPUT_NAMES}
    worst = max(diffs.values())
    if not np.isfinite(worst) or worst > PARITY_TOL:
        raise ModelError(
            f"The ONNX export of {keras_path} differs from Keras by up to {worst:.2e} "
            f"(limit {PARITY_TOL:.0e}) "
            "on the test split; nothing was written — check the tf2onnx/onnxruntime versions."
        )
    metrics = head_metrics(onnx_probs, entity)
    metrics["split"] = "test"
    metrics["keras"] = head_metrics(keras_probs, entity)
    history = _read_history(Path(keras_path).with_name("history.json"))
    onnx_info = {
        "opset": OPSET,
        "tf2onnx": _version("tf2onnx"),
        "onnxruntime": _onnxruntime_version(),
        "size_bytes": len(blob),
        "parity": {
            "images": int(len(images)),
            "max_abs_diff": worst,
            "per_output": diffs,
            "tolerance": PARITY_TOL,
        },
        "cpu_ms_per_crop_batched": round(1000.0 * onnx_seconds / max(1, len(images)), 3),
    }
    training_data = {**summarize(found), "source": str(data), **_render_facts(Path(data))}
    extra = {
        "model": {
            "params": int(model.count_params()),
            "keras_file": Path(keras_path).name,
            "spec": history.get("spec"),
            "epochs_run": history.get("epochs_run"),
            "best_epoch": history.get("best_epoch"),
            "train_seconds": history.get("seconds"),
            "seed": history.get("seed"),
        },
        **(extra_card or {}),
    }
    card = make_card(training_data=training_data, metrics=metrics, onnx_info=onnx_info, extra=extra)
    _check_card_matches(card, session)

    onnx_path = Path(onnx_path)
    ensure_dir(onnx_path.parent)
    card_path = card_path_for(onnx_path)
    atomic_write_bytes(onnx_path, blob, overwrite=True)  # SaveError with the reason
    atomic_write_bytes(card_path, (json.dumps(card, indent=2) + "\n").encode("utf-8"), overwrite=True)
    load_card(onnx_path)
    log.info(
        "Exported %s (%d bytes, parity max abs diff %.2e on %d test crops): suit %.4f, Cog %.4f",
        onnx_path,
        len(blob),
        worst,
        len(images),
        metrics["suit_accuracy"],
        metrics["cog_accuracy"],
    )
    return ExportResult(onnx_path=onnx_path, card_path=card_path, parity_max_abs_diff=worst, metrics=metrics)


def check_onnx_against_card(onnx_path: Path) -> Any:
    """Open an ONNX model and check it against its card; returns the session. ModelError if they disagree."""
    onnx_path = Path(onnx_path)
    if not onnx_path.is_file():
        raise ModelError(f"The ONNX model {onnx_path} does not exist: run 'toonvision export'.")
    card = load_card(onnx_path)
    session = onnx_session(onnx_path)
    _check_card_matches(card.raw, session)
    return session


def _check_card_matches(card: dict[str, Any], session: Any) -> None:
    inputs = {i.name: i.shape for i in session.get_inputs()}
    outputs = {o.name: o.shape for o in session.get_outputs()}
    want_outputs = {SUIT_OUTPUT: len(card.get("suits", [])), ENTITY_OUTPUT: len(card.get("entities", []))}
    got_outputs = {name: (shape[-1] if shape else None) for name, shape in outputs.items()}
    card_input = card.get("input", {}).get("name")
    if list(inputs) != [card_input] or got_outputs != want_outputs:
        raise ModelError(
            f"The model card says input {card_input!r} and outputs {want_outputs}, but the ONNX model has "
            f"input {list(inputs)} and outputs {got_outputs}; re-export the model and its card together."
        )


def _render_facts(data: Path) -> dict[str, Any]:
    """How many crops the renderer's manifest lists and with which seeds (empty without a manifest)."""
    manifest = data / "manifest.jsonl"
    try:
        rows = [json.loads(line) for line in manifest.read_text("utf-8").splitlines() if line.strip()]
    except (OSError, ValueError):
        return {}
    seeds = sorted({r.get("seed") for r in rows if isinstance(r, dict) and r.get("seed") is not None})
    return {"rendered_crops": len(rows), "render_seeds": seeds}


def _read_history(path: Path) -> dict[str, Any]:
    try:
        return dict(json.loads(path.read_text("utf-8")))
    except (OSError, json.JSONDecodeError, TypeError, ValueError):
        return {}


def _onnxruntime_version() -> str:
    import onnxruntime

    return str(onnxruntime.__version__)  # the distribution may be onnxruntime or onnxruntime-gpu


def _version(package: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"
