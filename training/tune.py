"""Keras Tuner Hyperband over the architecture (filters, depth, dense units, dropout) and learning rate.

Writes ``best_hyperparameters.json`` (a ModelSpec that ``train --spec`` reads),
``best_model.keras`` and the tuner's trial folder (with TensorBoard logs).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toonvision_live.errors import ModelError
from toonvision_live.fileio import ensure_dir
from training.data import Augment, check_splits, training_datasets
from training.model import ModelSpec, build_model
from training.train import save_model, write_json

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TuneConfig:
    data: Path
    out: Path
    max_epochs: int = 12
    factor: int = 3
    hyperband_iterations: int = 1
    batch_size: int = 32
    seed: int = 0
    steps_per_epoch: int | None = None
    augment: bool = True
    depths: tuple[int, ...] = (4, 5, 6)
    base_filters: tuple[int, ...] = (8, 12, 16)
    dense_units: tuple[int, ...] = (32, 64, 128)


@dataclass(frozen=True, slots=True)
class TuneResult:
    spec: ModelSpec
    spec_path: Path
    model_path: Path
    val_loss: float
    trials: int


def spec_from_hp(hp: Any, config: TuneConfig) -> ModelSpec:
    """A ModelSpec chosen by Keras Tuner: filters grow by 1.5x per block from a base, capped at 64."""
    depth = hp.Choice("depth", list(config.depths))
    base = hp.Choice("base_filters", list(config.base_filters))
    filters = tuple(min(64, int(round(base * 1.5 ** min(i, 3)))) for i in range(depth))
    return ModelSpec(
        filters=filters,
        dense_units=hp.Choice("dense_units", list(config.dense_units)),
        dropout=hp.Float("dropout", 0.0, 0.5, step=0.1),
        learning_rate=hp.Float("learning_rate", 3e-4, 5e-3, sampling="log"),
    )


def tune(config: TuneConfig) -> TuneResult:
    """Run Hyperband on the training split (validation split scores the trials)."""
    import keras
    import keras_tuner

    found = check_splits(config.data, ("train", "validate"))
    out = ensure_dir(Path(config.out))
    train_ds, val_ds = training_datasets(
        found, batch_size=config.batch_size, augment=Augment() if config.augment else None, seed=config.seed,
        repeat=bool(config.steps_per_epoch),
    )

    def build(hp: Any) -> keras.Model:
        return build_model(spec_from_hp(hp, config), seed=config.seed)

    tuner = keras_tuner.Hyperband(
        build,
        objective="val_loss",
        max_epochs=config.max_epochs,
        factor=config.factor,
        hyperband_iterations=config.hyperband_iterations,
        seed=config.seed,
        directory=str(out),
        project_name="hyperband",
        overwrite=True,
    )
    tuner.search(
        train_ds,
        validation_data=val_ds,
        steps_per_epoch=config.steps_per_epoch,
        shuffle=False,  # make_dataset shuffles each epoch itself (Keras ignores shuffle for a tf.data.Dataset)
        verbose=1,
        callbacks=[
            keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True),
            keras.callbacks.TensorBoard(log_dir=str(out / "logs")),
        ],
    )
    best_hp = tuner.get_best_hyperparameters(1)
    if not best_hp:
        raise ModelError(f"Keras Tuner finished no trial in {out}; give it more epochs or data.")
    spec = spec_from_hp(best_hp[0], config)
    spec_path = out / "best_hyperparameters.json"
    write_json(spec_path, {**spec.to_json()})
    write_json(out / "best_hyperparameters_raw.json", best_hp[0].values)
    model = tuner.get_best_models(1)[0]
    model_path = out / "best_model.keras"
    save_model(model, model_path)
    trials = tuner.oracle.get_best_trials(1)
    score = float(trials[0].score) if trials and trials[0].score is not None else float("nan")
    n_trials = len(tuner.oracle.trials)
    log.info(
        "Hyperband: %d trials; best val_loss %.4f with %s; wrote %s and %s",
        n_trials,
        score,
        spec.to_json(),
        spec_path,
        model_path,
    )
    return TuneResult(spec=spec, spec_path=spec_path, model_path=model_path, val_loss=score, trials=n_trials)
