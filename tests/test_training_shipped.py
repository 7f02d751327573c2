"""The shipped model (models/toonvision.onnx + card) against the contract and the real screenshot.

Only onnxruntime runs here (no TensorFlow): the committed model must load, agree
with its card, and name both Cogs of the real reference screenshot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toonvision_live.model_card import default_model_path, load_card
from toonvision_live.taxonomy import COG_KEYS, COG_SUIT_INDEX, SUIT_CODES
from training.evaluate import crop_real_screenshot
from training.export import check_onnx_against_card, onnx_predict


@pytest.fixture(scope="module")
def shipped_model() -> Path:
    path = default_model_path()
    if not path.is_file():
        pytest.fail(f"the shipped model {path} is missing: run 'toonvision train --ship' (see docs/report)")
    return path


def test_card_records_the_figures_the_design_asks_for(shipped_model: Path) -> None:
    card = load_card(shipped_model).raw
    assert card["metrics"]["split"] == "test" and card["metrics"]["n"] > 0
    assert card["metrics"]["suit_accuracy"] >= 0.99 and card["metrics"]["cog_accuracy"] >= 0.97
    assert card["onnx"]["parity"]["max_abs_diff"] <= 1e-4
    assert card["onnx"]["size_bytes"] == shipped_model.stat().st_size
    assert card["model"]["params"] < 100_000
    assert sum(card["training_data"]["splits"].values()) > 0


def test_shipped_model_names_both_cogs_of_the_real_screenshot(shipped_model: Path, real_data: Path) -> None:
    session = check_onnx_against_card(shipped_model)
    crops = crop_real_screenshot(real_data / "sample_img0.xml")
    assert [c.true_label for c in crops] == ["cog_sb_coldcaller", "cog_lb_bloodsucker"]
    probs = onnx_predict(session, np.stack([c.rgb for c in crops]))
    cogs = [COG_KEYS[i] for i in probs["entity"].argmax(1)]
    suits = [SUIT_CODES[i] for i in probs["suit"].argmax(1)]
    assert cogs == ["coldcaller", "bloodsucker"]
    assert suits == ["sb", "lb"]
    assert [SUIT_CODES[COG_SUIT_INDEX[COG_KEYS.index(c)]] for c in cogs] == suits  # heads agree
