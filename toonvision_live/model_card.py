"""The model contract (DESIGN.md "Model contract") and the model card beside the ONNX file.

``models/toonvision.onnx`` takes ``image`` float32 [N, 600, 200, 3] NHWC RGB 0..255 and
gives ``suit`` [N, 4] and ``entity`` [N, 32] softmax probabilities.  The card
``models/toonvision.json`` records that, the class orders, the training data, the
test-split metrics and the export parity.  Training writes cards with
:func:`make_card`; the runtime checks them with :func:`load_card`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from toonvision_live.errors import ModelError
from toonvision_live.taxonomy import COG_KEYS, SUIT_CODES

INPUT_NAME = "image"
CROP_HEIGHT, CROP_WIDTH = 600, 200
INPUT_SHAPE = ("N", CROP_HEIGHT, CROP_WIDTH, 3)
SUIT_OUTPUT, ENTITY_OUTPUT = "suit", "entity"
REQUIRED_KEYS = ("input", "outputs", "suits", "entities", "training_data", "metrics", "onnx", "created")


def default_model_path() -> Path:
    """The shipped model, models/toonvision.onnx."""
    return Path(str(resources.files("toonvision_models").joinpath("toonvision.onnx")))


def card_path_for(model_path: Path) -> Path:
    return Path(model_path).with_suffix(".json")


@dataclass(frozen=True, slots=True)
class ModelCard:
    raw: dict[str, Any]
    path: Path

    @property
    def suits(self) -> tuple[str, ...]:
        return tuple(self.raw["suits"])

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(self.raw["entities"])

    @property
    def input_name(self) -> str:
        return str(self.raw["input"]["name"])


def make_card(
    *,
    training_data: dict[str, Any],
    metrics: dict[str, Any],
    onnx_info: dict[str, Any],
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A model card dict exactly as DESIGN.md specifies (plus ``extra`` keys)."""
    card: dict[str, Any] = {
        "input": {"name": INPUT_NAME, "shape": list(INPUT_SHAPE), "layout": "NHWC", "color": "RGB",
                  "range": [0, 255], "dtype": "float32"},
        "outputs": {SUIT_OUTPUT: {"shape": ["N", len(SUIT_CODES)], "activation": "softmax"},
                    ENTITY_OUTPUT: {"shape": ["N", len(COG_KEYS)], "activation": "softmax"}},
        "suits": list(SUIT_CODES),
        "entities": list(COG_KEYS),
        "training_data": training_data,
        "metrics": metrics,
        "onnx": onnx_info,
        "created": date.today().isoformat(),
    }
    card.update(extra or {})
    return card


def load_card(model_path: Path) -> ModelCard:
    """Read and check the card beside ``model_path``; ModelError says what is wrong."""
    path = card_path_for(model_path)
    try:
        raw = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"The model card {path} is missing: export the model with 'toonvision export'.") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"The model card {path} is unreadable ({exc}); re-export the model.") from None
    if not isinstance(raw, dict):
        raise ModelError(f"The model card {path} is not a JSON object; re-export the model.")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise ModelError(f"The model card {path} lacks {', '.join(missing)}; re-export the model.")
    if list(raw["suits"]) != list(SUIT_CODES) or list(raw["entities"]) != list(COG_KEYS):
        raise ModelError(
            f"The model card {path} lists classes in another order than this version of ToonVision Live; "
            "use a model exported for it."
        )
    return ModelCard(raw=raw, path=path)
