"""train, tune, evaluate and export end to end on a small generated dataset with a tiny model.

Real TensorFlow, tf2onnx and onnxruntime; only the dataset is small and the
model tiny so the whole module takes well under two minutes on two cores.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from training_factory import make_crop_dataset

from toonvision_live.cli import main
from toonvision_live.errors import DataError, ModelError
from toonvision_live.model_card import load_card
from toonvision_live.taxonomy import COG_KEYS, SUIT_CODES

pytestmark = [pytest.mark.slow, pytest.mark.train]

TINY = ["--filters", "4,4,4,4", "--dense-units", "8"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_crop_dataset(tmp_path_factory.mktemp("crops"), counts=(2, 1, 1))


@pytest.fixture(scope="module")
def shipped(tmp_path_factory: pytest.TempPathFactory, dataset: Path) -> dict[str, Path]:
    """One `toonvision train --ship` run: model.keras, ONNX + card, report."""
    base = tmp_path_factory.mktemp("ship")
    paths = {"run": base / "run", "onnx": base / "models" / "toonvision.onnx", "report": base / "report"}
    rc = main(
        [
            "train",
            "--data",
            str(dataset),
            "--out",
            str(paths["run"]),
            "--epochs",
            "2",
            "--quiet",
            "--steps-per-epoch",
            "2",
            *TINY,
            "--ship",
            "--onnx",
            str(paths["onnx"]),
            "--report",
            str(paths["report"]),
        ]
    )
    assert rc == 0
    return paths


def test_train_writes_model_history_and_tensorboard_logs(shipped: dict[str, Path]) -> None:
    from training.model import load_keras_model

    run = shipped["run"]
    model = load_keras_model(run / "model.keras")
    assert model.count_params() < 100_000
    history = json.loads((run / "history.json").read_text())
    assert history["epochs_run"] == 2 and 1 <= history["best_epoch"] <= 2
    for head in ("suit", "entity"):
        for metric in ("accuracy", "precision", "recall", "loss"):
            assert len(history["history"][f"{head}_{metric}"]) == 2
            assert len(history["history"][f"val_{head}_{metric}"]) == 2
    assert history["training_data"]["splits"] == {"train": 64, "validate": 32}
    assert list((run / "logs").rglob("events.out.tfevents.*"))


def test_export_meets_the_model_contract_and_parity(shipped: dict[str, Path]) -> None:
    import onnx
    import onnxruntime as ort

    onnx_path = shipped["onnx"]
    card = load_card(onnx_path)
    raw = card.raw
    assert raw["input"]["name"] == "image" and raw["input"]["shape"] == ["N", 600, 200, 3]
    assert raw["input"]["layout"] == "NHWC" and raw["input"]["color"] == "RGB" and raw["input"]["range"] == [0, 255]
    assert raw["outputs"]["suit"]["shape"] == ["N", 4] and raw["outputs"]["entity"]["shape"] == ["N", 32]
    assert card.suits == SUIT_CODES and card.entities == COG_KEYS
    assert raw["onnx"]["parity"]["max_abs_diff"] <= 1e-4 and raw["onnx"]["parity"]["images"] == 32
    assert (
        raw["onnx"]["opset"] == 17
        and raw["onnx"]["onnxruntime"][0].isdigit()
        and raw["onnx"]["size_bytes"] == onnx_path.stat().st_size
    )
    assert 0.0 <= raw["metrics"]["suit_accuracy"] <= 1.0 and raw["metrics"]["n"] == 32
    assert raw["training_data"]["splits"] == {"train": 64, "validate": 32, "test": 32}
    assert [r["true"] for r in raw["metrics"]["real_screenshot"]] == [
        "cog_sb_coldcaller",
        "cog_lb_bloodsucker",
    ]
    meta = {p.key: p.value for p in onnx.load(str(onnx_path)).metadata_props}
    assert json.loads(meta["entities"]) == list(COG_KEYS) and json.loads(meta["suits"]) == list(SUIT_CODES)

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    for n in (1, 3):  # dynamic batch
        batch = np.random.default_rng(n).uniform(0, 255, (n, 600, 200, 3)).astype(np.float32)
        suit, entity = session.run(["suit", "entity"], {"image": batch})
        assert suit.shape == (n, 4) and entity.shape == (n, 32)
        assert np.allclose(suit.sum(1), 1, atol=1e-5) and np.allclose(entity.sum(1), 1, atol=1e-5)


def test_export_command_writes_model_and_card(
    shipped: dict[str, Path], dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "again.onnx"
    assert main(["export", str(shipped["run"] / "model.keras"), "--data", str(dataset), "--out", str(out)]) == 0
    assert "parity max abs diff" in capsys.readouterr().out
    assert load_card(out).raw["onnx"]["parity"]["max_abs_diff"] <= 1e-4


def test_evaluate_writes_the_report_for_keras_and_onnx(shipped: dict[str, Path]) -> None:
    report = shipped["report"]
    text = (report / "report.md").read_text()
    for section in (
        "## Keras model",
        "## ONNX model",
        "## Keras vs ONNX",
        "Grad-CAM",
        "## Real screenshot",
        "balanced accuracy",
        "Per-Cog precision / recall / F1",
        "cog_sb_coldcaller",
    ):
        assert section in text
    for name in (
        "keras_confusion_suit",
        "keras_confusion_cog",
        "onnx_confusion_suit",
        "onnx_confusion_cog",
        "gradcam",
        "activations",
        "filters",
        "real_screenshot",
    ):
        png = report / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    # an untrained tiny model gets things wrong, so the grid of wrong predictions is there
    assert (report / "keras_wrong.png").is_file()


def test_evaluate_command_with_the_real_screenshot(
    shipped: dict[str, Path],
    dataset: Path,
    real_data: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    rc = main(
        [
            "evaluate",
            str(shipped["run"] / "model.keras"),
            "--data",
            str(dataset),
            "--out",
            str(tmp_path),
            "--real",
            str(real_data / "sample_img0.xml"),
            "--max-images",
            "8",
        ]
    )
    assert rc == 0
    out = capsys.readouterr().out
    assert "keras: suit accuracy" in out and "real: cog_sb_coldcaller ->" in out
    assert "test split" in (tmp_path / "report.md").read_text()


def test_tune_writes_best_hyperparameters_and_model(dataset: Path, tmp_path: Path) -> None:
    from training.model import ModelSpec, load_keras_model

    rc = main(
        [
            "tune",
            "--data",
            str(dataset),
            "--out",
            str(tmp_path),
            "--max-epochs",
            "2",
            "--factor",
            "3",  # one Hyperband bracket of two trials (factor 2: two brackets, five trials, 2.6x the time)
            "--steps-per-epoch",
            "1",
            "--depths",
            "2,3",
            "--base-filters",
            "4",
            "--dense-units",
            "8",
        ]
    )
    assert rc == 0
    assert len(list((tmp_path / "hyperband").glob("trial_*"))) == 2  # a search: two candidates compared
    spec = ModelSpec.load(tmp_path / "best_hyperparameters.json")
    assert len(spec.filters) in (2, 3) and spec.dense_units == 8 and spec.learning_rate > 0
    model = load_keras_model(tmp_path / "best_model.keras")
    assert [w.shape for w in model.get_layer("conv1").weights][0] == (3, 3, 3, 4)


def test_empty_dataset_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for split in ("train", "validate", "test"):
        (tmp_path / "data" / split / "cog").mkdir(parents=True)
    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err
    assert err.startswith("toonvision: error: The dataset folder") and "holds no .png crops" in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_unknown_label_is_a_clear_error_before_training(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    (copy / "data" / "train" / "cog" / "cog_sb_coldcaller_0.png").rename(
        copy / "data" / "train" / "cog" / "cog_sb_coolcaller_0.png"
    )
    assert main(["train", "--data", str(copy), "--out", str(tmp_path / "run"), *TINY]) == 2
    err = capsys.readouterr().err
    assert "cog_sb_coolcaller_0.png" in err and "Unknown label" in err
    assert not (tmp_path / "run").exists()


def test_non_model_files_are_clear_errors(
    dataset: Path, tmp_path: Path, shipped: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from training.export import check_onnx_against_card
    from training.model import load_keras_model

    fake_keras = tmp_path / "model.keras"
    fake_keras.write_text("not a model")
    assert main(["export", str(fake_keras), "--data", str(dataset), "--out", str(tmp_path / "m.onnx")]) == 2
    assert "is not a readable Keras model (not a zip archive)" in capsys.readouterr().err
    with zipfile.ZipFile(tmp_path / "zipped.keras", "w") as archive:  # an archive, but not Keras's
        archive.writestr("notes.txt", "not a model")
    with pytest.raises(ModelError, match=r"zipped.keras is not a readable Keras model \((?!not a zip)"):
        load_keras_model(tmp_path / "zipped.keras")
    with pytest.raises(ModelError, match="not a Keras model file"):
        load_keras_model(shipped["onnx"])
    fake_onnx = tmp_path / "toonvision.onnx"
    fake_onnx.write_bytes(b"\x00garbage")
    shutil.copy(shipped["onnx"].with_suffix(".json"), fake_onnx.with_suffix(".json"))
    with pytest.raises(ModelError, match="is not a loadable ONNX model"):
        check_onnx_against_card(fake_onnx)
    assert not (tmp_path / "m.onnx").exists()


def test_card_not_matching_the_model_is_a_clear_error(shipped: dict[str, Path], tmp_path: Path) -> None:
    from training.export import check_onnx_against_card

    model = tmp_path / "toonvision.onnx"
    shutil.copy(shipped["onnx"], model)
    card = json.loads(shipped["onnx"].with_suffix(".json").read_text())
    card["input"]["name"] = "pixels"
    model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="re-export the model and its card together"):
        check_onnx_against_card(model)
    card["input"]["name"] = "image"
    card["entities"] = list(reversed(card["entities"]))
    model.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="another order"):
        check_onnx_against_card(model)
    model.with_suffix(".json").unlink()
    with pytest.raises(ModelError, match="card .* is missing"):
        check_onnx_against_card(model)


def test_keras_model_breaking_the_contract_is_refused(tmp_path: Path) -> None:
    import keras

    from training.model import load_keras_model

    image = keras.Input((600, 200, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(image)
    model = keras.Model(
        image,
        {"suit": keras.layers.Dense(4, name="suit")(x), "entity": keras.layers.Dense(31, name="entity")(x)},
    )
    model.save(tmp_path / "bad.keras")
    with pytest.raises(ModelError, match="not the contract"):
        load_keras_model(tmp_path / "bad.keras")


def test_missing_training_cog_is_refused(dataset: Path, tmp_path: Path) -> None:
    from training.train import TrainConfig, train

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    for f in (copy / "data" / "train" / "cog").glob("cog_lb_bigwig_*.png"):
        f.unlink()
    with pytest.raises(DataError, match="no crops of bigwig"):
        train(TrainConfig(data=copy, out=tmp_path / "run"))
