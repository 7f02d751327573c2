"""The shipped model (models/toonvision.onnx + card) against the contract, fresh renders and the real screenshot.

Only onnxruntime runs the model here (no TensorFlow): the committed model must load, agree with its
card, reach the card's accuracy on crops rendered now with a seed it was never trained on, and name
both Cogs of the real reference screenshot.  A missing model fails these tests, never skips them.
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


#: a held-out render: crops per Cog and a seed far from the training render's (5)
HELD_OUT_PER_COG, HELD_OUT_SEED = 3, 11


@pytest.mark.slow
@pytest.mark.train
def test_shipped_model_names_freshly_rendered_held_out_crops(shipped_model: Path, game_resources: Path) -> None:
    """96 crops rendered now (3 per Cog, seed 11): the model must name them about as well as its card
    says it named its own test split, not merely carry the card's numbers."""
    from training.export import head_metrics
    from training.render.crops import CropMaker

    maker = CropMaker(game_resources, seed=HELD_OUT_SEED)
    try:
        rendered = [maker.make(key, number) for key in COG_KEYS for number in range(HELD_OUT_PER_COG)]
    finally:
        maker.close()
    images = np.stack([crop for crop, _ in rendered])
    truth = np.array([COG_KEYS.index(record["cog"]) for _, record in rendered])
    measured = head_metrics(onnx_predict(check_onnx_against_card(shipped_model), images), truth)
    card = load_card(shipped_model).raw["metrics"]
    assert measured["n"] == 32 * HELD_OUT_PER_COG
    assert measured["suit_accuracy"] >= min(0.97, card["suit_accuracy"] - 0.03), measured
    assert measured["cog_accuracy"] >= min(0.92, card["cog_accuracy"] - 0.06), measured


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
