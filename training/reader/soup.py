"""A weight average ("soup") of exported readers of the same architecture, e.g. a warm-started stage and
the stage it started from.

    python -m training.reader.soup --models A.onnx B.onnx [--weights 0.5 0.5] --data TAGS [--out X.onnx]

The folded weights of the ONNX files (each batch norm folded into its convolution) are averaged with
``--weights``, rebuilt as the Keras reader (:func:`training.reader.model.keras_from_folded`, batch norms
restored) and scored with one read of the validation shard's prepared inputs (seed 5000; never the
test shard).  With ``--out`` the average is exported through :func:`training.reader.train.export_reader`
(ONNX parity checked, card written; the card's ``recipe`` names the averaged models).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def averaged(paths: list[Path], weights: list[float]) -> dict[str, np.ndarray]:
    """The weighted mean of the exported readers' folded weights (``_onnx_weights`` keys)."""
    from training.reader.model import _onnx_weights

    if len(paths) != len(weights) or len(paths) < 2:
        raise SystemExit("give at least two --models and as many --weights")
    ws = [_onnx_weights(str(p)) for p in paths]
    if any(w.keys() != ws[0].keys() or any(w[k].shape != ws[0][k].shape for k in w) for w in ws):
        raise SystemExit("the readers differ in their layers: they cannot be averaged")
    total = float(sum(weights))
    return {k: np.sum([a / total * w[k] for a, w in zip(weights, ws, strict=True)], axis=0) for k in ws[0]}


def validation_figures(model: Any, data: Path) -> dict[str, float]:
    """One read of each validation tag: exact >= 8 px, 5-8 px, level >= 6 px, all whole tags."""
    from training.reader.tags import load_tag_set
    from training.reader.train import OUTPUTS, bucket_metrics, ensure_shards

    val = load_tag_set(ensure_shards(data, "val", 1)[0])
    p = model.predict(val.images[..., None].astype(np.float32), batch_size=512, verbose=0)
    m = bucket_metrics({k: np.asarray(p[k]) for k in OUTPUTS}, val)
    return {"ge8": m["em_ge_8"]["exact"], "5_8": m["em_5_8"]["exact"], "lvl_ge6": m["em_ge_6"]["level"],
            "all_whole": m["exact"]}


def main() -> None:
    from training.reader.model import keras_from_folded
    from training.reader.tags import load_tag_set
    from training.reader.train import Recipe, ensure_shards, export_reader

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", type=Path, nargs="+", required=True)
    p.add_argument("--weights", type=float, nargs="+", default=None, help="default: equal")
    p.add_argument("--data", type=Path, required=True, help="folder with the val (and test) shards")
    p.add_argument("--out", type=Path, default=None, help="export the average here (.onnx + card)")
    args = p.parse_args()
    weights = args.weights or [1.0] * len(args.models)
    val = load_tag_set(ensure_shards(args.data, "val", 1)[0])
    model = keras_from_folded(averaged(args.models, weights), val.images[:2000])
    figures = validation_figures(model, args.data)
    print(json.dumps({"models": [str(m) for m in args.models], "weights": weights, "validation_one_read": figures}))
    if args.out:
        recipe = Recipe(train_shards=0, epochs=0, max_minutes=0.0,
                        init="weight average of " + ", ".join(f"{m} x {w:g}" for m, w in zip(args.models, weights,
                                                                                             strict=True)))
        card = export_reader(model, args.out, args.data, recipe, 0.0)
        print(f"wrote {args.out}: parity {card['onnx']['parity_max_abs_diff']:.2g}")


if __name__ == "__main__":
    main()
