"""The shipped detector (models/detector.onnx + card): its contract, parity record, clean frames, accuracy
on deterministic held-out scenes, and one-sentence errors for missing or broken model files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from toonvision_live.errors import ModelError
from toonvision_live.find.detector import CogDetector, default_model_path
from toonvision_live.tools.hardset import score


@pytest.fixture(scope="module")
def detector() -> CogDetector:
    return CogDetector()


def test_contract_and_card(detector: CogDetector) -> None:
    s = detector.session
    assert [i.name for i in s.get_inputs()] == ["image"] and [o.name for o in s.get_outputs()] == ["peaks", "box"]
    peaks, box = s.run(None, {"image": np.zeros((1, 288, 512, 3), np.float32)})
    assert peaks.shape == (1, 72, 128, 1) and box.shape == (1, 72, 128, 8)
    card = json.loads(default_model_path().with_suffix(".json").read_text())
    assert card["parity"]["max_abs_diff"] <= card["parity"]["tolerance"]
    assert card["parity"]["peaks_on_one_side_only"] == 0
    assert card["stride"] == 4 and card["input"]["name"] == "image"
    assert card["training"].get("minutes_with_init_run", card["training"]["minutes"]) <= 60
    assert card["decode"]["threshold"] == detector.threshold


def test_flat_frames_give_nothing(detector: CogDetector) -> None:
    for value in (0, 128, 255):
        assert detector(np.full((720, 1280, 3), value, np.uint8)) == []
    assert detector(np.zeros((10, 10, 3), np.uint8)) == []


@pytest.mark.slow
def test_held_out_scenes(detector: CogDetector, game_resources: Path, tmp_path_factory) -> None:
    from training.detector.hardset import run_hardset
    from training.detector.sprites import load_sprite_cache, render_sprite_cache

    path = tmp_path_factory.mktemp("sprites") / "s.npz"
    render_sprite_cache(game_resources, path, per_cog=3, seed=11, workers=2)
    frames, _ = run_hardset(detector, load_sprite_cache(path), per_group=2, seed=123)
    result = score(frames)["groups"]
    big = [result[f"line:{b}"] for b in ("8-12", "12-24") if f"line:{b}" in result]
    found = sum(g["found"] for g in big)
    total = found + sum(g["missed"] for g in big)
    assert total >= 10 and found / total >= 0.85
    assert result["kind:empty"]["false_boxes"] + result["kind:toons_only"]["false_boxes"] <= 1
    assert result["all"]["median_body_iou"] >= 0.7


def test_model_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing"):
        CogDetector(tmp_path / "none.onnx")
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelError, match="cannot be loaded"):
        CogDetector(bad)
