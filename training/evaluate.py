"""The evaluation report of a model on the test split: Markdown + PNGs in one folder.

For the Keras model and, from the same test split, the exported ONNX model:
accuracy, balanced accuracy, per-class precision/recall/F1 for suits and Cogs,
4x4 and 32x32 confusion matrices, a grid of wrong predictions.  For the Keras
model also the ToonVision article's looks inside: Grad-CAM heatmaps, intermediate
activations and first-layer filters.  Finally the real-screenshot check: the
Cogs of a labelled VOC screenshot cropped from their boxes (stretched to 600x200)
and classified by both models.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision_live.crops import crop_box
from toonvision_live.errors import DataError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir
from toonvision_live.geometry import XYXY, clip_box
from toonvision_live.model_card import CROP_HEIGHT, CROP_WIDTH, ENTITY_OUTPUT, SUIT_OUTPUT
from toonvision_live.taxonomy import COG_BY_KEY, COG_KEYS, COG_SUIT_INDEX, SUIT_CODES, parse_label
from training.data import check_splits, load_images
from training.export import check_onnx_against_card, head_metrics, keras_predict, onnx_predict
from training.model import load_keras_model

if TYPE_CHECKING:
    import keras
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RealCrop:
    true_label: str
    xyxy: XYXY
    rgb: np.ndarray  # 600x200 uint8


@dataclass(frozen=True, slots=True)
class EvalResult:
    report_path: Path
    metrics: dict[str, dict[str, Any]]  # "keras" / "onnx" -> head_metrics + per-class tables
    real: list[dict[str, Any]]
    timing: dict[str, Any] | None = None  # ms per crop, Keras predict vs onnxruntime


def per_class_table(true: np.ndarray, pred: np.ndarray, names: tuple[str, ...]) -> list[dict[str, Any]]:
    """Precision, recall, F1 and support per class (classes absent from both count 0)."""
    rows = []
    for c, name in enumerate(names):
        tp = int(np.sum((pred == c) & (true == c)))
        fp = int(np.sum((pred == c) & (true != c)))
        fn = int(np.sum((pred != c) & (true == c)))
        precision = tp / (tp + fp) if tp + fp else 0.0
        recall = tp / (tp + fn) if tp + fn else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        rows.append({"class": name, "precision": precision, "recall": recall, "f1": f1, "support": tp + fn})
    return rows


def confusion(true: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    matrix = np.zeros((n, n), dtype=np.int64)
    np.add.at(matrix, (true, pred), 1)
    return matrix


def crop_real_screenshot(xml_path: Path) -> list[RealCrop]:
    """The Cog boxes of a VOC screenshot, each stretched to 600x200 as the live crop stage does."""

    from toonvision_live.fileio import read_image_rgb
    from toonvision_live.voc import read_voc

    annotation = read_voc(xml_path)
    image_path = Path(xml_path).with_name(annotation.filename)
    if not image_path.is_file():
        image_path = Path(xml_path).with_suffix(".png")
    frame = read_image_rgb(image_path)
    crops = []
    for obj in annotation.objects:
        label = parse_label(obj.name)
        if label.kind != "cog":
            continue
        box = clip_box(obj.xyxy, (frame.shape[1], frame.shape[0]))
        if box is None:
            raise DataError(f"The box of {obj.name} in {xml_path} is empty; fix the annotation.")
        crops.append(RealCrop(true_label=obj.name, xyxy=box, rgb=crop_box(frame, box)))
    return crops


def evaluate(
    keras_path: Path,
    data: Path,
    out: Path,
    *,
    onnx_path: Path | None = None,
    real_xml: Path | None = None,
    max_images: int | None = None,
    samples: int = 6,
) -> EvalResult:
    """Write ``out/report.md`` and its figures; returns the metrics."""
    import matplotlib

    matplotlib.use("Agg")

    model = load_keras_model(keras_path)
    session = check_onnx_against_card(onnx_path) if onnx_path is not None else None
    test = check_splits(data, ("test",))["test"]
    paths = test.paths if max_images is None else test.paths[:max_images]
    entity_true = test.entity[: len(paths)]
    images = load_images(paths)
    out = ensure_dir(Path(out))

    predictions = {"keras": keras_predict(model, images)}
    if session is not None:
        predictions["onnx"] = onnx_predict(session, images)
    lines = [
        "# ToonVision Live — model evaluation",
        "",
        f"Keras model `{Path(keras_path).name}` ({model.count_params():,} parameters)"
        + (f", ONNX model `{Path(onnx_path).name}`" if onnx_path else "")
        + f"; test split of `{data}`: {len(paths)} crops.",
        "",
    ]
    lines += _training_section(Path(keras_path).with_name("history.json"))
    metrics: dict[str, dict[str, Any]] = {}
    for name, probs in predictions.items():
        metrics[name] = _head_report(name, probs, entity_true, images, out, lines)
    timing: dict[str, Any] | None = None
    if session is not None:
        timing = _parity_section(model, session, predictions, images, lines)
    _inside_section(model, images, entity_true, samples, out, lines)
    real = _real_section(model, session, real_xml, out, lines) if real_xml is not None else []
    report = out / "report.md"
    atomic_write_bytes(report, ("\n".join(lines) + "\n").encode("utf-8"), overwrite=True)
    log.info("Wrote the evaluation report %s", report)
    return EvalResult(report_path=report, metrics=metrics, real=real, timing=timing)


def _head_report(
    name: str, probs: dict[str, np.ndarray], entity_true: np.ndarray, images: np.ndarray, out: Path, lines: list[str]
) -> dict[str, Any]:
    """Metrics, per-class tables, confusion matrices and wrong predictions of one model (its report section)."""
    suit_true = np.asarray(COG_SUIT_INDEX)[entity_true]
    m: dict[str, Any] = dict(head_metrics(probs, entity_true))
    suit_pred = probs[SUIT_OUTPUT].argmax(1)
    entity_pred = probs[ENTITY_OUTPUT].argmax(1)
    m["per_suit"] = per_class_table(suit_true, suit_pred, SUIT_CODES)
    m["per_cog"] = per_class_table(entity_true, entity_pred, COG_KEYS)
    _save(
        out / f"{name}_confusion_suit.png",
        _confusion_figure(confusion(suit_true, suit_pred, 4), SUIT_CODES, f"{name}: suit"),
    )
    _save(
        out / f"{name}_confusion_cog.png",
        _confusion_figure(confusion(entity_true, entity_pred, 32), COG_KEYS, f"{name}: Cog"),
    )
    wrong = np.flatnonzero((entity_pred != entity_true) | (suit_pred != suit_true))
    if len(wrong):
        _save(out / f"{name}_wrong.png", _wrong_grid(images, wrong[:24], entity_true, entity_pred, suit_pred))
    lines += _metrics_section(name, m, len(wrong))
    return m


def _parity_section(
    model: keras.Model, session: Any, predictions: dict[str, dict[str, np.ndarray]], images: np.ndarray,
    lines: list[str],
) -> dict[str, Any]:
    """Keras vs ONNX: largest probability difference, agreement, time per crop (returned)."""
    keras_probs, onnx_probs = predictions["keras"], predictions["onnx"]
    diff = max(float(np.max(np.abs(keras_probs[k] - onnx_probs[k]))) for k in (SUIT_OUTPUT, ENTITY_OUTPUT))
    same = float(np.mean(keras_probs[ENTITY_OUTPUT].argmax(1) == onnx_probs[ENTITY_OUTPUT].argmax(1)))
    timing = time_per_crop(model, session, images[:8])
    lines += [
        "## Keras vs ONNX",
        "",
        f"Max abs difference of the probabilities: {diff:.2e}; same Cog predicted on {same:.2%} of the crops.",
        "",
        f"Time per crop, batch of {timing['batch']} on this CPU (median of repeats; other jobs shared "
        f"the cores): Keras `predict` {timing['keras_predict']:.2f} ms, onnxruntime "
        f"{timing['onnxruntime']:.3f} ms ({timing['keras_predict'] / timing['onnxruntime']:.0f}x faster).",
        "",
    ]
    return timing


def _inside_section(
    model: keras.Model, images: np.ndarray, entity_true: np.ndarray, samples: int, out: Path, lines: list[str]
) -> None:
    """Grad-CAM, activations and first-layer filters of the Keras model."""
    picks = _sample_indices(entity_true, samples)
    if len(picks):
        _save(out / "gradcam.png", _gradcam_figure(model, images[picks], entity_true[picks]))
        _save(out / "activations.png", _activations_figure(model, images[picks[0]]))
    _save(out / "filters.png", _filters_figure(model))
    lines += [
        "## Inside the Keras model",
        "",
        "Grad-CAM of the Cog head (last conv block) on sample test crops:",
        "",
        "![Grad-CAM](gradcam.png)",
        "",
        "Intermediate activations of one crop (first channels of each conv block):",
        "",
        "![activations](activations.png)",
        "",
        "First-layer filters (3x3 RGB, each scaled to its own range):",
        "",
        "![filters](filters.png)",
        "",
    ]


def _real_section(
    model: keras.Model, session: Any, real_xml: Path, out: Path, lines: list[str]
) -> list[dict[str, Any]]:
    """The Cogs of a labelled real screenshot named by each model: rows, a figure and a table."""
    crops = crop_real_screenshot(real_xml)
    if not crops:
        return []
    batch = np.stack([c.rgb for c in crops]).astype(np.float32)
    real_probs = {"keras": keras_predict(model, batch)}
    if session is not None:
        real_probs["onnx"] = onnx_predict(session, batch)
    real: list[dict[str, Any]] = []
    for i, crop in enumerate(crops):
        row: dict[str, Any] = {"true": crop.true_label, "xyxy": list(crop.xyxy)}
        for name, probs in real_probs.items():
            e, s = int(probs[ENTITY_OUTPUT][i].argmax()), int(probs[SUIT_OUTPUT][i].argmax())
            row[name] = {
                "cog": COG_BY_KEY[COG_KEYS[e]].label,
                "cog_conf": float(probs[ENTITY_OUTPUT][i, e]),
                "suit": SUIT_CODES[s],
                "suit_conf": float(probs[SUIT_OUTPUT][i, s]),
            }
        row["right"] = all(row[n]["cog"] == crop.true_label for n in real_probs)
        real.append(row)
    _save(out / "real_screenshot.png", _real_figure(crops, real))
    lines += [
        "## Real screenshot",
        "",
        f"`{Path(real_xml).name}`: each Cog box stretched to 600x200, as the live crop stage does.",
        "",
        "| true | " + " | ".join(f"{n} Cog (conf) | {n} suit (conf)" for n in real_probs) + " | right |",
        "|---|" + "---|---|" * len(real_probs) + "---|",
    ]
    for row in real:
        cells = " | ".join(
            f"{row[n]['cog']} ({row[n]['cog_conf']:.2f}) | {row[n]['suit']} ({row[n]['suit_conf']:.2f})"
            for n in real_probs
        )
        lines.append(f"| {row['true']} | {cells} | {'yes' if row['right'] else 'NO'} |")
    lines += ["", "![real screenshot crops](real_screenshot.png)", ""]
    return real


def time_per_crop(model: keras.Model, session: Any, batch: np.ndarray, repeats: int = 7) -> dict[str, Any]:
    """Median ms per crop of Keras ``predict`` and of one onnxruntime run on the same batch."""
    import time

    x = np.ascontiguousarray(batch, dtype=np.float32)

    def median_ms(fn: Any) -> float:
        fn()  # warm-up
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            runs.append(time.perf_counter() - start)
        return 1000.0 * float(np.median(runs)) / len(x)

    keras_ms = median_ms(lambda: model.predict(x, verbose=0))
    onnx_ms = median_ms(lambda: session.run([SUIT_OUTPUT, ENTITY_OUTPUT], {"image": x}))
    return {"batch": len(x), "keras_predict": keras_ms, "onnxruntime": onnx_ms}


def _training_section(history_path: Path) -> list[str]:
    """How the model was trained, from the history.json beside it (nothing if it is absent)."""
    import json

    try:
        h = json.loads(history_path.read_text("utf-8"))
    except (OSError, ValueError):
        return []
    splits = h.get("training_data", {}).get("splits", {})
    return [
        "## Training",
        "",
        f"{h.get('epochs_run')} epochs in {h.get('seconds', 0) / 60:.1f} min (best epoch {h.get('best_epoch')}, "
        f"seed {h.get('seed')}, batch {h.get('batch_size')}, augmentation {'on' if h.get('augment') else 'off'}); "
        f"{h.get('params', 0):,} parameters; spec `{json.dumps(h.get('spec'))}`; crops: "
        + ", ".join(f"{k} {v}" for k, v in splits.items())
        + ".",
        "",
    ]


def _metrics_section(name: str, m: dict[str, Any], n_wrong: int) -> list[str]:
    title = {"keras": "Keras model", "onnx": "ONNX model (onnxruntime, CPU)"}.get(name, name)
    lines = [
        f"## {title}",
        "",
        "| | accuracy | balanced accuracy |",
        "|---|---|---|",
        f"| suit | {m['suit_accuracy']:.4f} | {m['suit_balanced_accuracy']:.4f} |",
        f"| Cog | {m['cog_accuracy']:.4f} | {m['cog_balanced_accuracy']:.4f} |",
        "",
        f"Suit derived from the Cog head: {m['suit_from_cog_accuracy']:.4f}; heads agree on "
        f"{m['heads_agree']:.2%} of the crops; {n_wrong} crops have a wrong suit or Cog.",
        "",
        f"![suit confusion]({name}_confusion_suit.png) ![Cog confusion]({name}_confusion_cog.png)",
        "",
    ]
    if n_wrong:
        lines += [f"Wrong predictions (up to 24): ![wrong]({name}_wrong.png)", ""]
    for key, title_ in (("per_suit", "suit"), ("per_cog", "Cog")):
        lines += [
            f"<details><summary>Per-{title_} precision / recall / F1 ({name})</summary>",
            "",
            f"| {title_} | precision | recall | F1 | support |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['class']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['f1']:.3f} | {r['support']} |"
            for r in m[key]
        ]
        lines += ["", "</details>", ""]
    return lines


def _sample_indices(entity: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` test crops of different Cogs, spread over the suits."""
    picks: list[int] = []
    seen: set[int] = set()
    for offset in range(8):
        for suit in range(4):
            cog = suit * 8 + (offset * 3) % 8
            if cog in seen:
                continue
            hits = np.flatnonzero(entity == cog)
            if len(hits):
                picks.append(int(hits[0]))
                seen.add(cog)
            if len(picks) >= n:
                return np.asarray(picks)
    return np.asarray(picks, dtype=np.int64)


def _save(path: Path, fig: Figure) -> None:
    import io

    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue(), overwrite=True)


def _confusion_figure(matrix: np.ndarray, names: tuple[str, ...], title: str) -> Figure:
    import matplotlib.pyplot as plt

    n = len(names)
    size = 3.5 if n <= 4 else 11
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), names, rotation=90, fontsize=7 if n > 4 else 9)
    ax.set_yticks(range(n), names, fontsize=7 if n > 4 else 9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    top = matrix.max() if matrix.size else 0
    for (i, j), v in np.ndenumerate(matrix):
        if v:
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                fontsize=6 if n > 4 else 9,
                color="white" if v > top / 2 else "black",
            )
    return fig


def _wrong_grid(
    images: np.ndarray,
    idx: np.ndarray,
    entity_true: np.ndarray,
    entity_pred: np.ndarray,
    suit_pred: np.ndarray,
) -> Figure:
    import matplotlib.pyplot as plt

    cols = min(8, len(idx))
    rows = (len(idx) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 4.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, idx, strict=False):
        ax.imshow(images[i])
        ax.set_title(
            f"true {COG_KEYS[entity_true[i]]}\npred {COG_KEYS[entity_pred[i]]}\nsuit {SUIT_CODES[suit_pred[i]]}",
            fontsize=7,
        )
    return fig


def _last_conv_name(model: keras.Model) -> str:
    convs = [layer.name for layer in model.layers if layer.name.startswith("relu")]
    return convs[-1]


def _gradcam_figure(model: keras.Model, images: np.ndarray, entity_true: np.ndarray) -> Figure:
    import cv2
    import keras
    import matplotlib.pyplot as plt
    import tensorflow as tf

    conv_layer = model.get_layer(_last_conv_name(model))
    grad_model = keras.Model(model.inputs, [conv_layer.output, model.get_layer(ENTITY_OUTPUT).output])
    x = tf.convert_to_tensor(images.astype(np.float32))
    with tf.GradientTape() as tape:
        conv_out, probs = grad_model([x], training=False)
        pred = tf.argmax(probs, axis=1)
        score = tf.reduce_sum(tf.math.log(tf.gather(probs, pred, batch_dims=1) + 1e-9))
    grads = tape.gradient(score, conv_out)
    weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
    cams = tf.nn.relu(tf.reduce_sum(weights * conv_out, axis=-1)).numpy()
    pred_np = pred.numpy()
    fig, axes = plt.subplots(1, len(images), figsize=(1.9 * len(images), 6.2), squeeze=False)
    for k, ax in enumerate(axes[0]):
        cam = cams[k] / (cams[k].max() + 1e-9)
        heat = cv2.resize(cam, (CROP_WIDTH, CROP_HEIGHT), interpolation=cv2.INTER_LINEAR)
        ax.imshow(images[k])
        ax.imshow(heat, cmap="jet", alpha=0.45)
        ax.set_title(f"true {COG_KEYS[entity_true[k]]}\npred {COG_KEYS[pred_np[k]]}", fontsize=7)
        ax.axis("off")
    return fig


def _activations_figure(model: keras.Model, image: np.ndarray, channels: int = 6) -> Figure:
    import keras
    import matplotlib.pyplot as plt

    names = [layer.name for layer in model.layers if layer.name.startswith("relu")]
    probe = keras.Model(model.inputs, [model.get_layer(n).output for n in names])
    acts = probe([image[None].astype(np.float32)], training=False)
    fig, axes = plt.subplots(len(names), channels + 1, figsize=(1.3 * (channels + 1), 3.6 * len(names)), squeeze=False)
    for r, (name, act) in enumerate(zip(names, acts, strict=True)):
        a = np.asarray(act)[0]
        axes[r, 0].imshow(image)
        axes[r, 0].set_title(f"{name}\n{a.shape[0]}x{a.shape[1]}x{a.shape[2]}", fontsize=7)
        for c in range(channels):
            ax = axes[r, c + 1]
            if c < a.shape[-1]:
                ax.imshow(a[..., c], cmap="viridis", aspect="auto")
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].axis("off")
    return fig


def _filters_figure(model: keras.Model) -> Figure:
    import matplotlib.pyplot as plt

    kernel = np.asarray(model.get_layer("conv1").kernel)  # 3x3x3xF
    f = kernel.shape[-1]
    cols = min(8, f)
    rows = (f + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(1.0 * cols, 1.1 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i, ax in enumerate(axes.flat[:f]):
        k = kernel[..., i]
        k = (k - k.min()) / (k.max() - k.min() + 1e-9)
        ax.imshow(k, interpolation="nearest")
        ax.set_title(str(i), fontsize=6)
    return fig


def _real_figure(crops: list[RealCrop], rows: list[dict[str, Any]]) -> Figure:
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(crops), figsize=(2.2 * len(crops), 6.4), squeeze=False)
    for ax, crop, row in zip(axes[0], crops, rows, strict=True):
        ax.imshow(crop.rgb)
        pred = row.get("onnx", row["keras"])
        ax.set_title(
            f"true {crop.true_label}\npred {pred['cog']} ({pred['cog_conf']:.2f})\n"
            f"suit {pred['suit']} ({pred['suit_conf']:.2f})",
            fontsize=7,
            color="green" if row["right"] else "red",
        )
        ax.axis("off")
    return fig
