"""training.export.pool_input_in_nhwc (a speed fix found with the bench): the input Transpose + 4x4
AveragePool that tf2onnx emits is rewritten to pool in NHWC, with the same outputs (real onnxruntime)."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

pytest.importorskip("tf2onnx", reason="training.export needs the [train] extra")
from training.export import pool_input_in_nhwc  # noqa: E402


def tf2onnx_like(kernel: int = 4, perm: tuple[int, ...] = (0, 3, 1, 2), pads: bool = False) -> onnx.ModelProto:
    """image [N,600,200,3] -> Transpose -> AveragePool(k, stride k) -> Conv -> GlobalAveragePool -> out [N,5]."""
    rng = np.random.default_rng(0)
    w = rng.normal(0, 0.1, (5, 3, 3, 3)).astype(np.float32)
    pool_attrs = {"kernel_shape": [kernel, kernel], "strides": [kernel, kernel]}
    if pads:
        pool_attrs["pads"] = [1, 1, 1, 1]
    nodes = [
        helper.make_node("Transpose", ["image"], ["t"], perm=list(perm)),
        helper.make_node("AveragePool", ["t"], ["p"], **pool_attrs),
        helper.make_node("Conv", ["p", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("GlobalAveragePool", ["c"], ["g"]),
        helper.make_node("Flatten", ["g"], ["out"]),
    ]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 600, 200, 3])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 5])],
        initializer=[numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"image": x})[0]


@pytest.mark.parametrize("kernel", [4, 2, 5])
def test_rewrite_keeps_the_outputs(kernel):
    x = np.random.default_rng(1).uniform(0, 255, (3, 600, 200, 3)).astype(np.float32)
    model = tf2onnx_like(kernel)
    before = run(model, x)
    assert pool_input_in_nhwc(model)
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    assert "AveragePool" not in ops and ops[:5] == ["Reshape", "ReduceSum", "MatMul", "Reshape", "Transpose"]
    np.testing.assert_allclose(run(model, x), before, rtol=1e-5, atol=1e-5)
    assert not pool_input_in_nhwc(model)  # nothing left to rewrite


@pytest.mark.parametrize("model", [
    tf2onnx_like(kernel=7),  # 600 is not a multiple of 7
    tf2onnx_like(perm=(0, 3, 2, 1)),
    tf2onnx_like(pads=True),
], ids=["kernel7", "other-perm", "padded"])
def test_other_graphs_are_left_alone(model):
    before = model.SerializeToString()
    assert not pool_input_in_nhwc(model)
    assert model.SerializeToString() == before
