"""Small real ONNX models honouring the model contract, built with onnx.helper (no TensorFlow).

``make_tiny_model(dir)`` writes ``dir/tiny.onnx`` + ``dir/tiny.json`` (its card): input ``image``
float32 [N, 600, 200, 3] NHWC RGB 0..255 with a dynamic batch, outputs ``entity`` [N, 32] softmax
and ``suit`` [N, 4] = the per-suit sum of the entity probabilities, so both heads always agree.
The graph: scale to 0..1, NHWC->NCHW, 10x10 average pool, two Conv+Relu, global average pool,
Gemm, Softmax.  Random but seeded weights; different images give different outputs.

``make_mismatched_model`` writes a model that breaks the contract in one named way and
``write_corrupt_model`` writes bytes that are not an ONNX model, both with valid cards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from toonvision_live.model_card import (
    CROP_HEIGHT,
    CROP_WIDTH,
    ENTITY_OUTPUT,
    INPUT_NAME,
    SUIT_OUTPUT,
    card_path_for,
    make_card,
)
from toonvision_live.taxonomy import COG_KEYS, COG_SUIT_INDEX, SUIT_CODES

OPSET = 17
IR_VERSION = 8

MISMATCH_KINDS = ("entity_size", "input_name", "input_size", "missing_suit")


def _card(model_path: Path, note: str) -> Path:
    card = make_card(
        training_data={"source": "tests/model_factory.py", "note": note},
        metrics={},
        onnx_info={"opset": OPSET, "parity_max_abs_diff": 0.0},
    )
    path = card_path_for(model_path)
    path.write_text(json.dumps(card, indent=2), "utf-8")
    return path


def _graph(
    seed: int,
    *,
    n_entities: int = len(COG_KEYS),
    input_name: str = INPUT_NAME,
    input_hw: tuple[int, int] = (CROP_HEIGHT, CROP_WIDTH),
    with_suit: bool = True,
) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)
    c1, c2 = 8, 16
    w1 = rng.normal(0.0, 0.6, (c1, 3, 3, 3)).astype(np.float32)
    b1 = rng.normal(0.0, 0.1, c1).astype(np.float32)
    w2 = rng.normal(0.0, 0.4, (c2, c1, 3, 3)).astype(np.float32)
    b2 = rng.normal(0.0, 0.1, c2).astype(np.float32)
    wfc = rng.normal(0.0, 1.5, (c2, n_entities)).astype(np.float32)
    bfc = rng.normal(0.0, 0.5, n_entities).astype(np.float32)
    suit_of_entity = np.zeros((n_entities, len(SUIT_CODES)), np.float32)
    for i in range(n_entities):
        suit_of_entity[i, COG_SUIT_INDEX[i % len(COG_SUIT_INDEX)]] = 1.0

    inits = [
        numpy_helper.from_array(np.array(1.0 / 255.0, np.float32), "inv255"),
        numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(b1, "b1"),
        numpy_helper.from_array(w2, "w2"), numpy_helper.from_array(b2, "b2"),
        numpy_helper.from_array(wfc, "wfc"), numpy_helper.from_array(bfc, "bfc"),
        numpy_helper.from_array(suit_of_entity, "suit_of_entity"),
    ]
    nodes = [
        helper.make_node("Mul", [input_name, "inv255"], ["scaled"]),
        helper.make_node("Transpose", ["scaled"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("AveragePool", ["nchw"], ["pooled"], kernel_shape=[10, 10], strides=[10, 10]),
        helper.make_node("Conv", ["pooled", "w1", "b1"], ["conv1"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv1"], ["relu1"]),
        helper.make_node("Conv", ["relu1", "w2", "b2"], ["conv2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["conv2"], ["relu2"]),
        helper.make_node("GlobalAveragePool", ["relu2"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", "wfc", "bfc"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [ENTITY_OUTPUT], axis=1),
    ]
    outputs = [helper.make_tensor_value_info(ENTITY_OUTPUT, TensorProto.FLOAT, ["N", n_entities])]
    if with_suit:
        nodes.append(helper.make_node("MatMul", [ENTITY_OUTPUT, "suit_of_entity"], [SUIT_OUTPUT]))
        suit_info = helper.make_tensor_value_info(SUIT_OUTPUT, TensorProto.FLOAT, ["N", len(SUIT_CODES)])
        outputs.insert(0, suit_info)
    graph = helper.make_graph(
        nodes, "toonvision_tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["N", input_hw[0], input_hw[1], 3])],
        outputs, initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="toonvision-tests"
    )
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def make_tiny_model(directory: Path, seed: int = 0, name: str = "tiny") -> Path:
    """Write ``directory/<name>.onnx`` and its card; return the model path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.onnx"
    onnx.save(_graph(seed), str(path))
    _card(path, "tiny random model honouring the contract")
    return path


def make_mismatched_model(directory: Path, kind: str = "entity_size", seed: int = 0) -> Path:
    """A model with a valid card that breaks the contract: ``kind`` in MISMATCH_KINDS."""
    if kind not in MISMATCH_KINDS:
        raise ValueError(f"kind must be one of {MISMATCH_KINDS}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"mismatched_{kind}.onnx"
    model = _graph(
        seed,
        n_entities=31 if kind == "entity_size" else len(COG_KEYS),
        input_name="input_1" if kind == "input_name" else INPUT_NAME,
        input_hw=(300, 100) if kind == "input_size" else (CROP_HEIGHT, CROP_WIDTH),
        with_suit=kind != "missing_suit",
    )
    onnx.save(model, str(path))
    _card(path, f"deliberately mismatched: {kind}")
    return path


def write_corrupt_model(directory: Path) -> Path:
    """Bytes that are not an ONNX model, beside a valid card."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "corrupt.onnx"
    path.write_bytes(b"\x08\x07this is not an onnx model" + bytes(range(256)) * 4)
    _card(path, "corrupt bytes")
    return path
