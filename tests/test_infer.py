"""Inference: a real onnxruntime session on a tiny contract model; every kind of bad model file."""

from __future__ import annotations

import json

import numpy as np
import pytest
from model_factory import MISMATCH_KINDS, make_mismatched_model, make_tiny_model, write_corrupt_model

from toonvision_live.classify.classifier import (
    CPU,
    CUDA,
    CogClassifier,
    CogPrediction,
    joint_labels,
    predictions_from_probs,
    resolve_providers,
)
from toonvision_live.crops import CropBatcher
from toonvision_live.errors import ConfigError, ModelError
from toonvision_live.model_card import card_path_for
from toonvision_live.taxonomy import COG_KEYS, COG_SUIT_INDEX, SUIT_CODES


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    return make_tiny_model(tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def classifier(model_path):
    return CogClassifier(model_path)


def batch_of(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    batch = rng.uniform(0, 255, (n, 600, 200, 3)).astype(np.float32)
    for i in range(n):  # give each crop its own dominant colour, so outputs differ
        batch[i, ..., i % 3] *= 0.2
    return batch


def test_session_runs_on_cpu_here_and_reports_it(classifier):
    # no GPU on this machine: whatever onnxruntime lists, the session really runs on CPU
    assert classifier.provider == CPU
    assert classifier.providers_in_use[-1] == CPU
    assert classifier.session.get_providers()[0] == classifier.provider


def test_explicit_cuda_request_reports_the_provider_really_used(model_path):
    import onnxruntime as ort

    if CUDA not in ort.get_available_providers():
        pytest.skip("this onnxruntime build has no CUDA provider to ask for")
    clf = CogClassifier(model_path, providers=["cuda", "cpu"])
    assert clf.provider == clf.session.get_providers()[0]
    assert clf.provider in (CUDA, CPU)


def test_classify_accepts_an_empty_batch(classifier):
    assert classifier.classify(np.zeros((0, 600, 200, 3), np.float32)) == []
    assert classifier.classify(CropBatcher(4).crop(np.zeros((10, 10, 3), np.uint8), [])) == []


@pytest.mark.parametrize("n", [1, 3, 8])
def test_classify_gives_one_consistent_prediction_per_crop(classifier, n):
    batch = batch_of(n)
    suit, entity = classifier.run(batch)
    assert suit.shape == (n, 4) and entity.shape == (n, 32)
    np.testing.assert_allclose(entity.sum(axis=1), 1.0, atol=1e-5)
    predictions = classifier.classify(batch)
    assert len(predictions) == n
    for p, s, e in zip(predictions, suit, entity, strict=True):
        assert p.suit == SUIT_CODES[int(s.argmax())] and p.cog == COG_KEYS[int(e.argmax())]
        assert p.suit_conf == pytest.approx(float(s.max())) and p.cog_conf == pytest.approx(float(e.max()))
        assert p.agree == (COG_SUIT_INDEX[int(e.argmax())] == int(s.argmax()))
        assert 0.0 <= p.confidence <= 1.0


def test_batched_run_equals_one_crop_at_a_time(classifier):
    batch = batch_of(5, seed=3)
    suit_b, entity_b = classifier.run(batch)
    singles = [classifier.run(batch[i:i + 1]) for i in range(5)]
    np.testing.assert_allclose(suit_b, np.concatenate([s for s, _ in singles]), atol=1e-5)
    np.testing.assert_allclose(entity_b, np.concatenate([e for _, e in singles]), atol=1e-5)


def test_different_crops_get_different_outputs(classifier):
    _, entity = classifier.run(batch_of(3))
    assert not np.allclose(entity[0], entity[1])


def test_crop_batch_from_the_real_frame_classifies(classifier, real_data):
    from toonvision_live.fileio import read_image_rgb
    from toonvision_live.find.nametags import propose_cog_boxes

    rgb = read_image_rgb(real_data / "sample_img0.png")
    proposals = propose_cog_boxes(rgb)
    predictions = classifier.classify(CropBatcher(8).crop(rgb, proposals))
    assert len(predictions) == len(proposals) == 2
    assert all(p.cog in COG_KEYS and p.suit in SUIT_CODES for p in predictions)


@pytest.mark.parametrize("shape", [(2, 300, 100, 3), (600, 200, 3), (1, 600, 200, 4)])
def test_wrongly_shaped_batches_are_refused(classifier, shape):
    with pytest.raises(ValueError, match="600, 200, 3"):
        classifier.classify(np.zeros(shape, np.float32))


# --- agreement of the heads (pure) -------------------------------------------------------------------

def one_hot_rows(suit_idx: int, cog_idx: int, suit_p: float = 0.9, cog_p: float = 0.8):
    suit = np.full((1, 4), (1 - suit_p) / 3)
    suit[0, suit_idx] = suit_p
    entity = np.full((1, 32), (1 - cog_p) / 31)
    entity[0, cog_idx] = cog_p
    return suit, entity


@pytest.mark.parametrize(("suit_idx", "cog_key", "agree"), [
    (3, "coldcaller", True),  # Sellbot + Cold Caller
    (1, "bloodsucker", True),  # Lawbot + Bloodsucker
    (0, "coldcaller", False),  # Bossbot head, sure Sellbot Cog: reported, not hidden
    (2, "flunky", False),
])
def test_predictions_report_head_agreement(suit_idx, cog_key, agree):
    suit, entity = one_hot_rows(suit_idx, COG_KEYS.index(cog_key))
    (p,) = predictions_from_probs(suit, entity)
    cog_suit = COG_SUIT_INDEX[COG_KEYS.index(cog_key)]
    # the Cog head is surer (0.8 against 7e-3 for any other Cog) than the suit head (0.9 against 0.033):
    # the label is the Cog with its own suit, never a Cog under another suit's name
    assert (p.suit, p.cog, p.agree) == (SUIT_CODES[cog_suit], cog_key, agree)
    assert p.confidence == pytest.approx(0.8 * suit[0, cog_suit])
    assert p.suit_conf == pytest.approx(suit[0, cog_suit]) and p.cog_conf == pytest.approx(0.8)
    assert len(p.entity_probs) == 32 and len(p.suit_probs) == 4


def test_a_sure_suit_head_outweighs_an_unsure_cog_head():
    """Name Dropper 0.40 / Flunky 0.35 from the Cog head, Bossbot 0.9 from the suit head: Flunky (Bossbot)."""
    suit = np.array([[0.9, 0.03, 0.03, 0.04]])
    entity = np.full((1, 32), 0.25 / 30)
    entity[0, COG_KEYS.index("namedropper")], entity[0, COG_KEYS.index("flunky")] = 0.40, 0.35
    (p,) = predictions_from_probs(suit, entity)
    assert (p.suit, p.cog, p.agree) == ("bb", "flunky", False)
    assert p.confidence == pytest.approx(0.35 * 0.9)


def test_joint_labels_follow_the_heads_when_they_agree():
    rng = np.random.default_rng(0)
    suit = rng.dirichlet(np.ones(4), size=500)
    entity = rng.dirichlet(np.ones(32) * 0.3, size=500)
    cogs, confidences, agrees = joint_labels(suit, entity)
    assert agrees.any() and not agrees.all()
    assert np.array_equal(cogs[agrees], entity[agrees].argmax(axis=1))
    rows = np.arange(500)
    assert np.allclose(confidences, entity[rows, cogs] * suit[rows, np.asarray(COG_SUIT_INDEX)[cogs]])
    best_pair = (entity * suit[:, COG_SUIT_INDEX]).max(axis=1)
    assert np.allclose(confidences, best_pair)


def test_confidence_is_lower_when_the_heads_disagree():
    (agree,) = predictions_from_probs(*one_hot_rows(3, COG_KEYS.index("coldcaller")))
    (disagree,) = predictions_from_probs(*one_hot_rows(0, COG_KEYS.index("coldcaller")))
    assert disagree.confidence < 0.1 < agree.confidence


def test_prediction_without_probabilities_derives_its_confidence():
    p = CogPrediction(suit="sb", suit_conf=0.9, cog="coldcaller", cog_conf=0.5, agree=True)
    assert p.confidence == pytest.approx(0.45)
    q = CogPrediction(suit="sb", suit_conf=0.1, cog="coldcaller", cog_conf=0.5, agree=False)
    assert q.confidence == pytest.approx(0.05)


@pytest.mark.parametrize(("suit_shape", "entity_shape"), [((1, 3), (1, 32)), ((1, 4), (1, 31)), ((2, 4), (1, 32)),
                                                          ((4,), (32,))])
def test_predictions_from_badly_shaped_probabilities_are_refused(suit_shape, entity_shape):
    with pytest.raises(ValueError):
        predictions_from_probs(np.zeros(suit_shape), np.zeros(entity_shape))


def test_predictions_from_empty_outputs():
    assert predictions_from_probs(np.zeros((0, 4)), np.zeros((0, 32))) == []


# --- providers (pure) ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("requested", "available", "gpu", "expected"), [
    (None, [CUDA, CPU], True, [CUDA, CPU]),
    (None, [CUDA, CPU], False, [CPU]),  # onnxruntime-gpu without a GPU: do not even try CUDA
    (None, [CPU], True, [CPU]),
    (["cpu"], [CUDA, CPU], True, [CPU]),
    (["cuda"], [CUDA, CPU], False, [CUDA]),  # asked for explicitly: tried, and the session says what it got
    (["CUDA", "cpu", "cpu"], [CUDA, CPU], True, [CUDA, CPU]),
])
def test_resolve_providers(requested, available, gpu, expected):
    assert resolve_providers(requested, available, gpu_present=gpu) == expected


def test_unavailable_providers_are_a_config_error():
    with pytest.raises(ConfigError, match="CUDAExecutionProvider"):
        resolve_providers(["cuda"], [CPU])


# --- bad model files ----------------------------------------------------------------------------------

def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="missing") as info:
        CogClassifier(tmp_path / "nope.onnx")
    assert "nope.onnx" in str(info.value)


def test_corrupt_model_file(tmp_path):
    with pytest.raises(ModelError, match="not a loadable ONNX model") as info:
        CogClassifier(write_corrupt_model(tmp_path))
    assert "corrupt.onnx" in str(info.value)


@pytest.mark.parametrize(("kind", "message"), [
    ("entity_size", r"'entity' as \['N', 31\]"),
    ("input_name", "input_1"),
    ("input_size", "300, 100"),
    ("missing_suit", "no output 'suit'"),
])
def test_models_breaking_the_contract_are_refused(tmp_path, kind, message):
    assert kind in MISMATCH_KINDS
    with pytest.raises(ModelError, match=message):
        CogClassifier(make_mismatched_model(tmp_path, kind))


def test_model_without_its_card(tmp_path):
    path = make_tiny_model(tmp_path)
    card_path_for(path).unlink()
    with pytest.raises(ModelError, match="card .* is missing"):
        CogClassifier(path)


def test_card_with_another_class_order(tmp_path):
    path = make_tiny_model(tmp_path)
    card_file = card_path_for(path)
    card = json.loads(card_file.read_text("utf-8"))
    card["entities"] = list(reversed(card["entities"]))
    card_file.write_text(json.dumps(card), "utf-8")
    with pytest.raises(ModelError, match="another order"):
        CogClassifier(path)


def test_card_describing_another_input(tmp_path):
    path = make_tiny_model(tmp_path)
    card_file = card_path_for(path)
    card = json.loads(card_file.read_text("utf-8"))
    card["input"]["shape"] = ["N", 224, 224, 3]
    card_file.write_text(json.dumps(card), "utf-8")
    with pytest.raises(ModelError, match="224"):
        CogClassifier(path)


def test_model_errors_are_one_sentence(tmp_path):
    with pytest.raises(ModelError) as info:
        CogClassifier(make_mismatched_model(tmp_path, "entity_size"))
    text = str(info.value)
    assert "\n" not in text and text.endswith(".")
