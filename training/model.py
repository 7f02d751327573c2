"""The Cog classifier: a small CNN with a ``suit`` head (4) and an ``entity`` head (32).

The Keras model takes exactly what the runtime feeds the ONNX model: ``image``
float32 [N, 600, 200, 3] RGB 0..255.  The first layers average-pool it 4x4 to
150x50 and rescale it to 0..1, so training and runtime cannot drift apart and
the convolutions run on 16x fewer pixels.  Both heads read the same features and
are trained jointly; the runtime checks that they agree.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from toonvision_live.errors import ModelError
from toonvision_live.model_card import CROP_HEIGHT, CROP_WIDTH, ENTITY_OUTPUT, INPUT_NAME, SUIT_OUTPUT
from toonvision_live.taxonomy import COG_KEYS, SUIT_CODES

if TYPE_CHECKING:
    import keras

#: the factor the model average-pools its input by (600x200 -> 150x50)
DOWNSCALE = 4


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """Architecture and optimiser settings (what ``tune`` searches over)."""

    filters: tuple[int, ...] = (16, 24, 32, 48, 48)  # one conv block (conv 3x3 + max-pool 2) per entry
    dense_units: int = 64
    dropout: float = 0.3
    learning_rate: float = 2e-3

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["filters"] = list(self.filters)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ModelError(
                f"Unknown model hyper-parameter(s) {', '.join(unknown)}: use {', '.join(sorted(known))}."
            )
        values = dict(data)
        if "filters" in values:
            values["filters"] = tuple(int(f) for f in values["filters"])
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> ModelSpec:
        try:
            return cls.from_json(json.loads(Path(path).read_text("utf-8")))
        except (OSError, json.JSONDecodeError, TypeError, ValueError) as exc:
            raise ModelError(
                f"The hyper-parameter file {path} is unreadable ({exc}); pass a JSON written by 'tune'."
            ) from None


def build_model(spec: ModelSpec = ModelSpec(), seed: int = 0) -> keras.Model:
    """A compiled two-head classifier for ``spec`` (weights initialised from ``seed``)."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    image = keras.Input(shape=(CROP_HEIGHT, CROP_WIDTH, 3), name=INPUT_NAME, dtype="float32")
    x = layers.AveragePooling2D(pool_size=DOWNSCALE, name="downscale")(image)
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(x)
    for i, n in enumerate(spec.filters):
        x = layers.Conv2D(n, 3, padding="same", use_bias=False, name=f"conv{i + 1}")(x)
        x = layers.BatchNormalization(name=f"bn{i + 1}")(x)
        x = layers.Activation("relu", name=f"relu{i + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"pool{i + 1}")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(spec.dropout, name="dropout")(x)
    x = layers.Dense(spec.dense_units, activation="relu", name="features")(x)
    suit = layers.Dense(len(SUIT_CODES), activation="softmax", name=SUIT_OUTPUT)(x)
    entity = layers.Dense(len(COG_KEYS), activation="softmax", name=ENTITY_OUTPUT)(x)
    model = keras.Model(inputs=image, outputs={SUIT_OUTPUT: suit, ENTITY_OUTPUT: entity}, name="toonvision")
    compile_model(model, spec.learning_rate)
    return model


def compile_model(model: keras.Model, learning_rate: float) -> None:
    """Adam + categorical cross-entropy on both heads, accuracy/precision/recall per head."""
    import keras

    def head_metrics(head: str) -> list[Any]:
        return ["accuracy", keras.metrics.Precision(name="precision"), keras.metrics.Recall(name="recall")]

    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss={SUIT_OUTPUT: "categorical_crossentropy", ENTITY_OUTPUT: "categorical_crossentropy"},
        metrics={SUIT_OUTPUT: head_metrics(SUIT_OUTPUT), ENTITY_OUTPUT: head_metrics(ENTITY_OUTPUT)},
    )


def load_keras_model(path: Path) -> keras.Model:
    """Load a ``.keras`` file saved by ``train``; ModelError if it is not one or breaks the contract."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"The Keras model {path} does not exist: train one with 'toonvision train'.")
    if path.suffix != ".keras":
        raise ModelError(
            f"{path} is not a Keras model file: pass the .keras file written by 'toonvision train'."
        )
    if not zipfile.is_zipfile(path):  # a .keras file is a zip archive: said before Keras loads (seconds)
        raise ModelError(f"{path} is not a readable Keras model (not a zip archive); re-run 'toonvision train'.")
    import keras

    try:
        model = keras.saving.load_model(path, compile=False)
    except Exception as exc:  # keras raises many types for a bad archive
        raise ModelError(
            f"{path} is not a readable Keras model ({type(exc).__name__}); re-run 'toonvision train'."
        ) from None
    check_contract(model, path)
    return model


def check_contract(model: keras.Model, path: Path | str) -> None:
    """ModelError unless ``model`` has the input and the two heads of the model contract."""
    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else ()
    out_names = set(model.output_names) if hasattr(model, "output_names") else set()
    outputs = {name: tuple(t.shape[1:]) for name, t in zip(model.output_names, model.outputs, strict=False)}
    want = {SUIT_OUTPUT: (len(SUIT_CODES),), ENTITY_OUTPUT: (len(COG_KEYS),)}
    if shape != (CROP_HEIGHT, CROP_WIDTH, 3) or out_names != set(want) or outputs != want:
        raise ModelError(
            f"The model {path} takes {shape} and gives {outputs}, not the contract's "
            f"({CROP_HEIGHT}, {CROP_WIDTH}, 3) -> suit (4), entity (32); retrain it with 'toonvision train'."
        )


def count_params(model: keras.Model) -> int:
    return int(model.count_params())
