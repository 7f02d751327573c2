"""Train the two-head Cog classifier on DATASET/data/{train,validate}.

Writes into the run folder: ``model.keras`` (best weights by validation loss),
``history.json`` (per-epoch metrics), ``spec.json`` (architecture) and
``logs/`` (TensorBoard).  The dataset is checked before anything slow starts.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toonvision_live.errors import SaveError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir, why_not_written
from training.data import Augment, check_splits, summarize, training_datasets
from training.model import ModelSpec, build_model

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainConfig:
    data: Path
    out: Path
    epochs: int = 40
    batch_size: int = 32
    seed: int = 0
    patience: int = 5
    spec: ModelSpec = field(default_factory=ModelSpec)
    augment: Augment | None = field(default_factory=Augment)
    steps_per_epoch: int | None = None  # None: the whole training split each epoch
    max_minutes: float | None = None  # stop after the epoch that crosses this budget
    verbose: int = 1  # Keras progress: 1 bar, 2 one line per epoch


@dataclass(frozen=True, slots=True)
class TrainResult:
    model_path: Path
    history_path: Path
    epochs_run: int
    best_epoch: int
    seconds: float
    params: int
    val_metrics: dict[str, float]


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically, replacing an older file of the same run."""
    atomic_write_bytes(Path(path), (json.dumps(data, indent=2) + "\n").encode("utf-8"), overwrite=True)


def train(config: TrainConfig) -> TrainResult:
    """Check the dataset, train with early stopping, save the best model and its history."""
    found = check_splits(config.data, ("train", "validate"))
    out = ensure_dir(Path(config.out))
    model_path = out / "model.keras"
    log.info(
        "Loading %d training and %d validation crops from %s ...",
        len(found["train"].paths),
        len(found["validate"].paths),
        config.data,
    )
    train_ds, val_ds = training_datasets(
        found, batch_size=config.batch_size, augment=config.augment, seed=config.seed,
        repeat=bool(config.steps_per_epoch),
    )
    model = build_model(config.spec, seed=config.seed)
    log.info("Model: %d parameters, spec %s", model.count_params(), config.spec.to_json())
    start = time.monotonic()
    history = model.fit(
        train_ds,
        validation_data=val_ds,
        epochs=config.epochs,
        steps_per_epoch=config.steps_per_epoch,
        shuffle=False,  # make_dataset shuffles each epoch itself (Keras ignores shuffle for a tf.data.Dataset)
        callbacks=_callbacks(config, out),
        verbose=config.verbose,
    )
    seconds = time.monotonic() - start
    hist = {k: [float(v) for v in vals] for k, vals in history.history.items()}
    val_loss = hist.get("val_loss", [0.0])
    best = int(min(range(len(val_loss)), key=val_loss.__getitem__))
    save_model(model, model_path)
    history_path = out / "history.json"
    val_metrics = {k: v[best] for k, v in hist.items() if k.startswith("val_")}
    write_json(
        history_path,
        {
            "history": hist,
            "epochs_run": len(val_loss),
            "best_epoch": best + 1,
            "seconds": round(seconds, 1),
            "params": int(model.count_params()),
            "spec": config.spec.to_json(),
            "seed": config.seed,
            "batch_size": config.batch_size,
            "augment": config.augment is not None,
            "data": str(config.data),
            "training_data": summarize(found),
        },
    )
    write_json(out / "spec.json", config.spec.to_json())
    log.info(
        "Trained %d epochs in %.0f s (best epoch %d: %s); saved %s",
        len(val_loss),
        seconds,
        best + 1,
        ", ".join(f"{k} {v:.4f}" for k, v in val_metrics.items() if "accuracy" in k or k == "val_loss"),
        model_path,
    )
    return TrainResult(
        model_path=model_path,
        history_path=history_path,
        epochs_run=len(val_loss),
        best_epoch=best + 1,
        seconds=seconds,
        params=int(model.count_params()),
        val_metrics=val_metrics,
    )


def _callbacks(config: TrainConfig, out: Path) -> list[keras.callbacks.Callback]:
    """Early stopping on the validation loss, learning-rate decay, TensorBoard logs, the time budget."""
    import keras

    callbacks: list[keras.callbacks.Callback] = [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.patience, restore_best_weights=True, verbose=1
        ),
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.3, patience=2, min_lr=1e-5, verbose=1),
        keras.callbacks.TensorBoard(log_dir=str(out / "logs"), histogram_freq=0, write_graph=False),
    ]
    if config.max_minutes:
        callbacks.append(_TimeBudget(config.max_minutes * 60.0))
    return callbacks


def save_model(model: keras.Model, model_path: Path) -> None:
    """Save ``model`` at ``model_path`` (replacing an older one); SaveError with the reason."""
    try:
        if model_path.exists():
            model_path.unlink()
        model.save(model_path)
    except OSError as exc:
        raise SaveError(f"Cannot write the model to {model_path}: {why_not_written(exc, 'folder (--out)')}.") from None


def _time_budget_callback_base() -> type:
    import keras

    return keras.callbacks.Callback


class _TimeBudget(_time_budget_callback_base()):  # type: ignore[misc]
    """Stop training after the epoch that uses up the time budget (best weights are still restored)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.start = time.monotonic()

    def on_epoch_end(self, epoch: int, logs: dict[str, float] | None = None) -> None:
        if time.monotonic() - self.start > self.seconds:
            log.info(
                "Time budget of %.0f min used up after epoch %d; stopping.", self.seconds / 60, epoch + 1
            )
            self.model.stop_training = True
