"""The bench's comparison section: the same crops through onnxruntime batched, batch=1 and Keras predict
(a real small Keras model in a child process, as the bench runs it), checked for structure and ratios."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_factory import make_tiny_model

from toonvision_live.classify.classifier import CogClassifier
from toonvision_live.crops import CropBatcher
from toonvision_live.frames import LatestFrame, RecordedSource
from toonvision_live.pipeline import InferenceWorker
from toonvision_live.tools import bench


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> CogClassifier:
    return CogClassifier(make_tiny_model(tmp_path_factory.mktemp("cmp_model")), ["cpu"])


@pytest.fixture(scope="module")
def street_result(classifier):
    from toonvision_live.demo.scene import StreetScene
    from toonvision_live.demo.sprites import SpriteAtlas

    scene = StreetScene(SpriteAtlas.load(), size_wh=(1280, 720), n_cogs=8, seed=0)
    worker = InferenceWorker(LatestFrame(), LatestFrame(), classifier, batch_size=16)
    source = RecordedSource([scene.frame(t).rgb for t in (1.0, 1.5, 2.0)])
    return [worker.process(source.grab()) for _ in range(3)]


def test_comparison_crops_are_the_pipeline_crops(street_result):
    crops = bench.comparison_crops(street_result, max_crops=64)
    n = sum(len(r.proposals) for r in street_result)
    assert n > 0 and crops.shape == (n, 600, 200, 3) and crops.dtype == np.float32
    last = street_result[-1]
    expected = CropBatcher(16).crop(last.frame.rgb, list(last.proposals))
    np.testing.assert_array_equal(crops[: len(last.proposals)], expected)  # newest frame first
    assert len(bench.comparison_crops(street_result, max_crops=3)) == 3
    assert bench.comparison_crops([], max_crops=8).shape == (0, 600, 200, 3)


def test_onnxruntime_rows_and_ratios(classifier, street_result):
    crops = bench.comparison_crops(street_result, max_crops=10)
    comp = bench.run_comparison(classifier, crops, batch=4, keras_path=None, note="no keras here", seconds=0.2)
    assert comp["crops"] == len(crops) and comp["batch"] == 4
    batched, single = comp["rows"]
    assert batched["name"] == "onnxruntime batched (4/batch)" and single["name"] == "onnxruntime batch=1"
    assert batched["x_vs_onnx_batched"] == 1.0
    # the ratios are stored to 2 decimals (a ratio of 0.364 reads 0.36): within that rounding, or 1 %
    ratio = single["per_crop_ms"] / batched["per_crop_ms"]
    assert single["x_vs_onnx_batched"] == pytest.approx(ratio, rel=0.01, abs=0.006)
    assert all(r["per_crop_ms"] > 0 and r["crops_timed"] >= len(crops) for r in comp["rows"])
    assert all(r["cpu_ms_per_crop"] > 0 for r in comp["rows"]) and batched["cpu_x_vs_onnx_batched"] == 1.0
    assert single["cpu_x_vs_onnx_batched"] == pytest.approx(
        single["cpu_ms_per_crop"] / batched["cpu_ms_per_crop"], rel=0.01, abs=0.006)
    assert comp["note"] == "no keras here" and comp["onnx_batched_speedup_vs_keras_predict"] is None


def test_no_crops_is_said(classifier):
    comp = bench.run_comparison(classifier, np.zeros((0, 600, 200, 3), np.float32), 8, None, "")
    assert comp["crops"] == 0 and comp["rows"] == [] and "no Cog crops" in comp["note"]


def test_keras_predict_row_from_a_real_keras_model(classifier, street_result, tmp_path: Path):
    pytest.importorskip("keras", reason="the Keras row needs the [train] extra")
    from training.model import ModelSpec, build_model

    keras_path = tmp_path / "small.keras"
    build_model(ModelSpec(filters=(4, 8), dense_units=8)).save(keras_path)
    crops = bench.comparison_crops(street_result, max_crops=4)
    comp = bench.run_comparison(classifier, crops, batch=4, keras_path=keras_path, note="", seconds=0.2)
    names = [r["name"] for r in comp["rows"]]
    assert names == ["onnxruntime batched (4/batch)", "onnxruntime batch=1",
                     "Keras predict per crop (ToonVision)", "Keras predict batched (4/batch)"], comp
    keras_row = comp["rows"][2]
    batched = comp["rows"][0]["per_crop_ms"]
    assert comp["onnx_batched_speedup_vs_keras_predict"] == pytest.approx(keras_row["per_crop_ms"] / batched, rel=0.02)
    assert comp["keras_file"] == str(keras_path) and comp["keras"] and comp["note"] == ""
    assert comp["onnx_batched_cpu_speedup_vs_keras_predict"] == pytest.approx(
        keras_row["cpu_ms_per_crop"] / comp["rows"][0]["cpu_ms_per_crop"], rel=0.02)


def test_a_broken_keras_file_skips_the_row_with_a_note(classifier, street_result, tmp_path: Path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"not a keras archive")
    crops = bench.comparison_crops(street_result, max_crops=2)
    comp = bench.run_comparison(classifier, crops, batch=2, keras_path=broken, note="", seconds=0.1)
    assert [r["name"] for r in comp["rows"]] == ["onnxruntime batched (2/batch)", "onnxruntime batch=1"]
    assert comp["note"].startswith("Keras row skipped:")


def test_keras_row_from_the_architecture_on_the_card(classifier, street_result):
    """Without the .keras file the Keras rows time the card's architecture rebuilt (every user gets them)."""
    pytest.importorskip("keras", reason="the Keras row needs the [train] extra")
    spec = {"filters": [4, 8], "dense_units": 8, "dropout": 0.1, "learning_rate": 0.01}
    crops = bench.comparison_crops(street_result, max_crops=4)
    comp = bench.run_comparison(classifier, crops, batch=4, keras_path=spec, note="rebuilt", seconds=0.2)
    names = [r["name"] for r in comp["rows"]]
    assert "Keras predict per crop (ToonVision)" in names, comp
    assert comp["keras_file"] is None and comp["keras_params"] > 0 and comp["note"] == "rebuilt"
    assert comp["onnx_batched_speedup_vs_keras_predict"] > 0
