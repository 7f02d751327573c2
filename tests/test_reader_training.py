"""The reader's training path: warm start from the exported reader, wall-clock schedule, export + card.

Real TensorFlow, tf2onnx and onnxruntime on the shipped models/reader.onnx; only the shards are
shrunk (64 tags instead of 10,000) so that the module runs in well under a minute.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from toonvision_live.classify.reader import OUTPUTS, default_reader_path
from toonvision_live.cli import main
from training.reader.tags import render_tag_set
from training.reader.train import onnx_outputs

pytestmark = [pytest.mark.slow, pytest.mark.train]


def test_keras_model_rebuilt_from_the_shipped_onnx_computes_the_same() -> None:
    """The export folds batch norms into the convolutions; the rebuilt Keras model must undo that
    exactly (inference) so that training can continue from the shipped weights."""
    from training.reader.model import keras_from_onnx

    tags = render_tag_set(48, 77)
    model = keras_from_onnx(str(default_reader_path()), render_tag_set(200, 78).images)
    session = ort.InferenceSession(str(default_reader_path()), providers=["CPUExecutionProvider"])
    want = onnx_outputs(session, tags.images)
    got = model.predict(tags.images[..., None].astype(np.float32), verbose=0)
    for key in OUTPUTS:
        assert np.abs(np.asarray(got[key]) - want[key]).max() < 1e-4, key
    # training mode (batch statistics) stays close to the same function: the norms' gamma/beta
    # were fitted to the folded convolutions' own statistics
    import keras

    keras.utils.set_random_seed(0)
    train_mode = model(tags.images[..., None].astype(np.float32), training=True)  # dropout on too
    assert (np.asarray(train_mode["name"]).argmax(1) == want["name"].argmax(1)).mean() >= 0.85


def test_reader_grown_by_a_residual_block_reads_as_its_source_and_round_trips(tmp_path: Path) -> None:
    """A residual block added to the shipped reader is the identity at the start (its last norm's gamma is
    0), so the grown reader reads as the shipped one; once trained (here: its block's weights moved) and
    exported, it is rebuilt from its ONNX file with the block found by name, and the same function."""
    import keras

    from toonvision_live.errors import ModelError
    from training.reader.model import _onnx_weights, architecture, build_reader, keras_from_onnx
    from training.reader.train import Recipe, _initial_model, keras_to_onnx

    tags, sample = render_tag_set(48, 77), render_tag_set(200, 78)
    x = tags.images[..., None].astype(np.float32)
    want = onnx_outputs(ort.InferenceSession(str(default_reader_path()), providers=["CPUExecutionProvider"]),
                        tags.images)
    shipped, convs = architecture(_onnx_weights(str(default_reader_path())))
    blocks = (shipped[0] + 1, *shipped[1:])  # one block more than the shipped reader has
    grown = _initial_model(Recipe(init=str(default_reader_path()), blocks=blocks, block_convs=convs), sample)
    assert len(grown.layers) > len(build_reader(blocks=shipped, block_convs=convs).layers)
    got = grown.predict(x, verbose=0)
    for key in OUTPUTS:
        assert np.abs(np.asarray(got[key]) - want[key]).max() < 1e-4, key
    rng = np.random.default_rng(1)
    for layer in grown.layers:
        if layer.name.startswith("res0_") and layer.weights:  # the new block
            ws = layer.get_weights()
            ws[0] = ws[0] + rng.normal(0, 0.05, ws[0].shape).astype(np.float32)
            layer.set_weights(ws)
    ref = grown.predict(x, verbose=0)
    assert max(np.abs(np.asarray(ref[k]) - want[k]).max() for k in OUTPUTS) > 1e-3  # the block now counts
    path = tmp_path / "grown.onnx"
    path.write_bytes(keras_to_onnx(grown).SerializeToString())
    assert architecture(_onnx_weights(str(path))) == (blocks, convs)
    back = keras_from_onnx(str(path), sample.images).predict(x, verbose=0)
    for key in OUTPUTS:
        assert np.abs(np.asarray(back[key]) - np.asarray(ref[key])).max() < 1e-4, key
    # a reader without the block cannot start from the grown one: refused, not silently cut down
    with pytest.raises(ModelError, match="--blocks"):
        _initial_model(Recipe(init=str(path)), sample)
    keras.backend.clear_session()


def test_train_reader_warm_start_wall_schedule_writes_model_and_card(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import training.reader.train as train

    monkeypatch.setattr(train, "SHARD_SIZE", 64)
    out = tmp_path / "models" / "reader.onnx"
    out.parent.mkdir()
    rc = main(["train-reader", "--data", str(tmp_path / "data"), "--out", str(out), "--train-shards", "1",
               "--max-minutes", "0.02", "--schedule", "wall", "--learning-rate", "1e-5",
               "--init", str(default_reader_path()), "--train-from", "2"])
    assert rc == 0, capsys.readouterr().err
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["recipe"]["schedule"] == "wall" and card["recipe"]["init"] == str(default_reader_path())
    # --train-from 2: the shard of index 2 (seed 1002) is rendered and trained on, not index 0
    assert card["recipe"]["train_from"] == 2
    assert sorted(p.name for p in (tmp_path / "data").glob("train_*.npz")) == ["train_02.npz"]
    assert card["onnx"]["parity_max_abs_diff"] <= 1e-4
    m = card["metrics_test_onnx"]
    assert m["all_samples"]["n"] == 64 and "em_ge_8" in m
    # a few steps at a tiny rate from the shipped weights: still a reader, not a reset
    assert m["all_samples"]["name"] >= 0.7, m["all_samples"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sorted(o.name for o in session.get_outputs()) == sorted(OUTPUTS)


def test_missing_warm_start_model_is_one_sentence(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["train-reader", "--data", str(tmp_path / "data"), "--init", str(tmp_path / "nope.onnx")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "nope.onnx" in err and "does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()
    rc = main(["train-reader", "--data", str(tmp_path / "data"), "--out", str(tmp_path / "no" / "reader.onnx")])
    assert rc == 2 and "does not exist" in capsys.readouterr().err
    assert not (tmp_path / "data").exists()
    rc = main(["train-reader", "--data", str(tmp_path / "data"), "--small-from", "-1"])
    err = capsys.readouterr().err
    assert rc == 2 and "--*-from indices at least 0" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()
    with pytest.raises(SystemExit):
        main(["train-reader", "--data", str(tmp_path / "data"), "--blocks", "0,1"])
    assert "four counts like 0,0,1,0" in capsys.readouterr().err
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    rc = main(["train-reader", "--data", str(tmp_path / "data"), "--init", str(tmp_path / "broken.onnx")])
    err = capsys.readouterr().err
    assert rc == 2 and "broken.onnx" in err and "not a readable ONNX model" in err and "Traceback" not in err
    assert not (tmp_path / "data").exists()


def test_soup_of_a_reader_with_itself_is_that_reader_and_mismatches_are_refused() -> None:
    """The weight average normalises its weights (1 and 3 of the same reader give that reader) and
    refuses a single model or weights that do not match the models."""
    from training.reader.model import _onnx_weights
    from training.reader.soup import averaged

    path = default_reader_path()
    want = _onnx_weights(str(path))
    got = averaged([path, path], [1.0, 3.0])
    assert got.keys() == want.keys() and len(want) > 10
    for key, value in want.items():
        assert np.allclose(got[key], value, atol=1e-6), key
    with pytest.raises(SystemExit):
        averaged([path], [1.0])
    with pytest.raises(SystemExit):
        averaged([path, path], [1.0])
