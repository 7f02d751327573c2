"""``toonvision train | tune | evaluate | export``: the model half of the toolkit (needs the [train] extra).

TensorFlow is imported inside the handlers only, so ``toonvision --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from toonvision_live.errors import ConfigError

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REAL_XML = PROJECT_ROOT.parent / "shared" / "data" / "real" / "sample_img0.xml"


def register(subparsers: Any) -> None:
    _register_train(subparsers)
    _register_tune(subparsers)
    _register_evaluate(subparsers)
    _register_export(subparsers)


def _int_list(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a comma-separated list of integers, e.g. 16,24,32"
        ) from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' needs one or more positive filter counts, e.g. 16,24,32")
    return values


def _add_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        required=True,
        metavar="DATASET",
        help="dataset root holding data/{train,validate,test}/cog/*.png (see 'toonvision dataset split')",
    )


def _add_model_and_data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", type=Path, help="the .keras file written by 'toonvision train'")
    _add_data(parser)


def _register_train(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train the Cog classifier (suit + Cog heads) on a split dataset",
        description="Train the two-head Cog classifier on DATASET/data/train, validated on data/validate, "
        "with "
        "augmentation imitating live crops, early stopping and TensorBoard logs. With --ship it then "
        "exports the ONNX model + card and writes the evaluation report: the one command that makes "
        "the shipped model.",
    )
    _add_data(p)
    p.add_argument(
        "--out",
        type=Path,
        default=Path("runs/train"),
        help="run folder (model.keras, history.json, logs/); default runs/train",
    )
    p.add_argument(
        "--epochs", type=int, default=40, help="most epochs (early stopping may end sooner); default 40"
    )
    p.add_argument("--batch-size", type=int, default=32, help="default 32")
    p.add_argument(
        "--seed", type=int, default=0, help="seed for weights, shuffling and augmentation; default 0"
    )
    p.add_argument("--patience", type=int, default=5, help="early-stopping patience in epochs; default 5")
    p.add_argument(
        "--steps-per-epoch", type=int, default=None, help="batches per epoch (default: the whole split)"
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        default=None,
        help="stop after the epoch that exceeds this many minutes (best weights are kept)",
    )
    p.add_argument(
        "--spec",
        type=Path,
        default=None,
        help="hyper-parameter JSON (e.g. best_hyperparameters.json from 'toonvision tune')",
    )
    p.add_argument(
        "--filters", type=_int_list, default=None, help="conv filters per block, e.g. 16,24,32,48,48"
    )
    p.add_argument("--dense-units", type=int, default=None, help="units of the shared dense layer")
    p.add_argument("--learning-rate", type=float, default=None, help="Adam learning rate")
    p.add_argument("--no-augment", action="store_true", help="train on the crops as they are")
    p.add_argument(
        "--ship",
        action="store_true",
        help="after training, export to --onnx with its card and write the report to --report",
    )
    p.add_argument(
        "--onnx",
        type=Path,
        default=None,
        help="ONNX path for --ship (default: the package's models/toonvision.onnx)",
    )
    p.add_argument("--report", type=Path, default=Path("docs/report"), help="report folder for --ship")
    p.add_argument(
        "--real",
        type=Path,
        default=None,
        help=f"labelled VOC screenshot to check with --ship (default {DEFAULT_REAL_XML} if present)",
    )
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")
    p.set_defaults(handler=_train)


def _register_tune(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "tune",
        help="search architecture and learning rate with Keras Tuner (Hyperband)",
        description="Hyperband over the number of conv blocks, filters, dense units, dropout and "
        "learning rate. "
        "Writes OUT/best_hyperparameters.json (use it with 'toonvision train --spec') and "
        "OUT/best_model.keras.",
    )
    _add_data(p)
    p.add_argument("--out", type=Path, default=Path("runs/tune"), help="tuner folder; default runs/tune")
    p.add_argument("--max-epochs", type=int, default=12, help="Hyperband max epochs per trial; default 12")
    p.add_argument("--factor", type=int, default=3, help="Hyperband reduction factor; default 3")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--steps-per-epoch", type=int, default=None, help="batches per epoch (default: whole split)"
    )
    p.add_argument(
        "--depths", type=_int_list, default=(4, 5, 6), help="conv block counts to try; default 4,5,6"
    )
    p.add_argument("--base-filters", type=_int_list, default=(8, 12, 16), help="first-block filters to try")
    p.add_argument("--dense-units", type=_int_list, default=(32, 64, 128), help="dense units to try")
    p.add_argument("--no-augment", action="store_true", help="tune on the crops as they are")
    p.set_defaults(handler=_tune)


def _register_evaluate(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="write the evaluation report (metrics, confusion matrices, Grad-CAM, ...) of a model",
        description="Evaluate a Keras model (and its ONNX export, with --onnx) on DATASET/data/test "
        "and write "
        "OUT/report.md with its figures; with --real, also classify the Cogs of a labelled screenshot.",
    )
    _add_model_and_data(p)
    p.add_argument("--out", type=Path, default=Path("runs/report"), help="report folder; default runs/report")
    p.add_argument("--onnx", type=Path, default=None, help="the exported ONNX model to evaluate beside it")
    p.add_argument("--real", type=Path, default=None, help="a labelled VOC screenshot (XML next to its PNG)")
    p.add_argument("--max-images", type=int, default=None, help="evaluate only the first N test crops")
    p.set_defaults(handler=_evaluate)


def _register_export(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "export",
        help="export a Keras model to ONNX with its model card, after a parity check",
        description="Convert with tf2onnx (input 'image', outputs 'suit' and 'entity', dynamic batch), check "
        "Keras vs onnxruntime on the test split (max abs diff <= 1e-4) and write the model and "
        "its card (test metrics, training data, parity).",
    )
    _add_model_and_data(p)
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="ONNX path (default: the package's models/toonvision.onnx); the card goes beside it",
    )
    p.set_defaults(handler=_export)


def _positive(name: str, value: int | float | None) -> None:
    if value is not None and value <= 0:
        raise ConfigError(f"--{name} must be positive, not {value}.")


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    from training.data import Augment
    from training.model import ModelSpec
    from training.train import TrainConfig, train

    for name in ("epochs", "batch_size", "steps_per_epoch", "max_minutes", "dense_units", "learning_rate"):
        _positive(name.replace("_", "-"), getattr(args, name))
    spec = ModelSpec.load(args.spec) if args.spec else ModelSpec()
    overrides = {
        k: v
        for k, v in (
            ("filters", args.filters),
            ("dense_units", args.dense_units),
            ("learning_rate", args.learning_rate),
        )
        if v is not None
    }
    spec = dataclasses.replace(spec, **overrides)
    config = TrainConfig(
        data=args.data,
        out=args.out,
        epochs=args.epochs,
        batch_size=args.batch_size,
        seed=args.seed,
        patience=args.patience,
        spec=spec,
        augment=None if args.no_augment else Augment(),
        steps_per_epoch=args.steps_per_epoch,
        max_minutes=args.max_minutes,
        verbose=2 if args.quiet else 1,
    )
    result = train(config)
    print(
        f"Trained {result.epochs_run} epochs in {result.seconds:.0f} s ({result.params:,} parameters): "
        f"{result.model_path}"
    )
    if args.ship:
        _ship(result.model_path, args.data, args.onnx, args.report, args.real)
    return 0


def _ship(keras_path: Path, data: Path, onnx_path: Path | None, report: Path, real: Path | None) -> None:
    from toonvision_live.model_card import default_model_path
    from training.evaluate import evaluate
    from training.export import export

    onnx_path = onnx_path or default_model_path()
    real = real or (DEFAULT_REAL_XML if DEFAULT_REAL_XML.is_file() else None)
    exported = export(keras_path, onnx_path, data)
    print(
        f"Exported {exported.onnx_path} (parity max abs diff {exported.parity_max_abs_diff:.1e}): "
        f"test suit accuracy {exported.metrics['suit_accuracy']:.4f}, Cog accuracy "
        f"{exported.metrics['cog_accuracy']:.4f}"
    )
    result = evaluate(keras_path, data, report, onnx_path=onnx_path, real_xml=real)
    if result.real:
        _add_real_to_card(onnx_path, result.real)
    print(f"Report: {result.report_path}")


def _add_real_to_card(onnx_path: Path, real: list[dict[str, Any]]) -> None:
    """Record the real-screenshot check in the card (keeps every other key)."""
    import json

    from toonvision_live.fileio import atomic_write_bytes
    from toonvision_live.model_card import card_path_for, load_card

    card = dict(load_card(onnx_path).raw)
    card["metrics"] = {
        **card["metrics"],
        "real_screenshot": [
            {"true": r["true"], "pred": r.get("onnx", r["keras"])["cog"], "right": r["right"]} for r in real
        ],
    }
    atomic_write_bytes(
        card_path_for(onnx_path), (json.dumps(card, indent=2) + "\n").encode("utf-8"), overwrite=True
    )
    load_card(onnx_path)


def _tune(args: argparse.Namespace) -> int:
    from training.tune import TuneConfig, tune

    for name in ("max_epochs", "batch_size", "steps_per_epoch"):
        _positive(name.replace("_", "-"), getattr(args, name))
    if args.factor < 2:
        raise ConfigError(f"--factor must be at least 2, not {args.factor}.")
    result = tune(
        TuneConfig(
            data=args.data,
            out=args.out,
            max_epochs=args.max_epochs,
            factor=args.factor,
            batch_size=args.batch_size,
            seed=args.seed,
            steps_per_epoch=args.steps_per_epoch,
            augment=not args.no_augment,
            depths=args.depths,
            base_filters=args.base_filters,
            dense_units=args.dense_units,
        )
    )
    print(
        f"Best of {result.trials} trials (val_loss {result.val_loss:.4f}): "
        f"{result.spec_path}, {result.model_path}"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from training.evaluate import evaluate

    _positive("max-images", args.max_images)
    result = evaluate(
        args.model, args.data, args.out, onnx_path=args.onnx, real_xml=args.real, max_images=args.max_images
    )
    for name, m in result.metrics.items():
        print(
            f"{name}: suit accuracy {m['suit_accuracy']:.4f}, Cog accuracy {m['cog_accuracy']:.4f} "
            f"(balanced {m['suit_balanced_accuracy']:.4f} / {m['cog_balanced_accuracy']:.4f})"
        )
    for row in result.real:
        pred = row.get("onnx", row["keras"])
        print(
            f"real: {row['true']} -> {pred['cog']} ({pred['cog_conf']:.2f}) "
            f"{'right' if row['right'] else 'WRONG'}"
        )
    print(f"Report: {result.report_path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from toonvision_live.model_card import default_model_path
    from training.export import export

    result = export(args.model, args.out or default_model_path(), args.data)
    print(
        f"Exported {result.onnx_path} + {result.card_path.name} (parity max abs diff "
        f"{result.parity_max_abs_diff:.1e}): test suit accuracy {result.metrics['suit_accuracy']:.4f}, "
        f"Cog accuracy {result.metrics['cog_accuracy']:.4f}"
    )
    return 0
