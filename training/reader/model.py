"""The reader's Keras model: a small CNN over the 40x128 grey tag with five closed-set heads.

Closed-set heads won over CTC text by measurement of effort and speed: the vocabulary is closed
(32 Cogs + Skelecog + other, 4 departments + Boardbot + other + none, levels as two digits, v2.0),
so a read is five small softmaxes, there is no decoding or vocabulary matching at run time, and the
rows of the flattened feature map keep which line a feature came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from toonvision_live.classify.reader import INPUT_H, INPUT_NAME, INPUT_W, OUTPUTS

if TYPE_CHECKING:
    import keras

#: conv widths per stage (each stage: conv 3x3 + BN + ReLU, its residual blocks, then 2x2 max pool)
WIDTHS = (8, 16, 32, 64)
DENSE = 192
#: residual blocks per stage (stages 1-8: none)
BLOCKS = (0, 0, 0, 0)


def residual_block(x: keras.KerasTensor, name: str, convs: int = 1) -> keras.KerasTensor:
    """``relu(x + bn(conv(...relu(bn(conv(x))))))`` of ``convs`` 3x3 convolutions at x's width.

    The last batch norm's gamma starts at 0, so a new block is the identity (``x`` is a ReLU output):
    blocks added to a trained reader keep its function at the start of training (a function-preserving
    growth), and learn from there.
    """
    from keras import layers

    y = x
    for j in range(convs):
        y = layers.Conv2D(x.shape[-1], 3, padding="same", use_bias=False, name=f"{name}_conv{j}")(y)
        last = j == convs - 1
        y = layers.BatchNormalization(name=f"{name}_bn{j}", gamma_initializer="zeros" if last else "ones")(y)
        if not last:
            y = layers.ReLU(name=f"{name}_relu{j}")(y)
    return layers.ReLU(name=f"{name}_out")(layers.Add(name=f"{name}_add")([x, y]))


def build_reader(widths: tuple[int, ...] = WIDTHS, dense: int = DENSE, dropout: float = 0.3,
                 blocks: tuple[int, ...] = BLOCKS, block_convs: int = 1) -> keras.Model:
    """The trunk, a flattened branch for name / department / v2.0, and attention pooling for the digits.

    The level's digits move along the last line with the tag's width and the level's length, so the
    ``tens`` and ``units`` heads each pool the last feature map with their own learned attention
    (softmax over the 5 x 16 cells) instead of reading fixed cells, plus the flattened features.
    ``blocks[i]`` residual blocks (:func:`residual_block`, ``block_convs`` convolutions each) follow
    stage i's convolution; the layers of the default model keep their names, so a model with blocks
    can be warm-started from one without (:func:`transfer_weights`) and reads the same at the start.
    """
    import keras
    from keras import layers

    inp = keras.Input((INPUT_H, INPUT_W, 1), name=INPUT_NAME)
    x = inp
    for i, w in enumerate(widths):
        x = layers.Conv2D(w, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        for b in range(blocks[i] if i < len(blocks) else 0):
            x = residual_block(x, f"res{i}_{b}", block_convs)
        if i < 3:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    cells = x  # 5 x 16 x widths[-1]
    # 5 x 16 cells: keep rows (lines) apart, pool pairs of columns
    x = layers.MaxPooling2D((1, 2), name="pool_cols")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    fc = layers.Dense(dense, activation="relu", name="fc")(x)
    outputs = {k: layers.Dense(OUTPUTS[k], activation="softmax", name=k)(fc) for k in ("name", "dept", "v2")}
    rows, cols, ch = cells.shape[1], cells.shape[2], cells.shape[3]
    values = layers.Reshape((rows * cols, ch), name="cells")(
        layers.Conv2D(ch, 1, activation="relu", name="digit_features")(cells))
    for k in ("tens", "units"):
        logits = layers.Reshape((rows * cols,), name=f"{k}_where")(layers.Conv2D(1, 1, name=f"{k}_attn")(cells))
        weights = layers.Softmax(name=f"{k}_weights")(logits)
        pooled = layers.Dot(axes=(1, 1), name=f"{k}_pool")([weights, values])
        both = layers.Concatenate(name=f"{k}_both")([pooled, fc])
        outputs[k] = layers.Dense(OUTPUTS[k], activation="softmax", name=k)(
            layers.Dense(96, activation="relu", name=f"{k}_fc")(both))
    return keras.Model(inp, {k: outputs[k] for k in OUTPUTS}, name="tag_reader")


def transfer_weights(source: keras.Model, target: keras.Model) -> list[str]:
    """Copy the weights of every layer that both models have with the same name and shapes."""
    copied = []
    names = {layer.name for layer in source.layers}
    for layer in target.layers:
        if layer.name in names and layer.weights:
            src = source.get_layer(layer.name).get_weights()
            if [w.shape for w in src] == [w.shape for w in layer.get_weights()]:
                layer.set_weights(src)
                copied.append(layer.name)
    return copied


def _onnx_weights(path: str) -> dict[str, np.ndarray]:
    """The exported reader's initializers by Keras layer and role (``conv0/kernel``, ``bn0/shift``, ...)."""
    import onnx
    from onnx import numpy_helper

    roles = {"convolution/merged_input": "kernel", "batchnorm/sub": "shift", "convolution/ReadVariableOp": "kernel",
             "Cast/ReadVariableOp": "kernel", "BiasAdd/ReadVariableOp": "bias", "digit_features_1/Squeeze": "bias",
             "_attn_1/Reshape": "bias"}
    out = {}
    for init in onnx.load(path).graph.initializer:
        parts = init.name.split("/")
        if len(parts) < 3 or not parts[0].startswith("tag_reader"):
            continue
        layer = parts[1].removesuffix("_1")
        for key, role in roles.items():
            if key in init.name:
                out[f"{layer}/{role}"] = numpy_helper.to_array(init)
                break
    return out


def keras_from_onnx(path: str, images: np.ndarray) -> keras.Model:
    """The :func:`build_reader` model with the weights of an exported reader (``models/reader.onnx``).

    The export folds each batch norm into its convolution (kernel times scale, plus a shift); the
    norm is restored so that it computes the same function in both modes: its moving statistics and
    its gamma/beta are set from the folded convolution's output on ``images`` (a sample of training
    inputs, [N, H, W]), so that ``gamma (z - mean) / std + beta == z + shift``.  The residual blocks
    of a grown reader (``build_reader(blocks=...)``) are found from the weights' names.
    """
    return keras_from_folded(_onnx_weights(path), images)


def architecture(w: dict[str, np.ndarray]) -> tuple[tuple[int, ...], int]:
    """``(blocks, block_convs)`` of :func:`build_reader` for the folded weights ``w`` (``_onnx_weights``' keys)."""
    blocks = tuple(sum(1 for k in w if k.startswith(f"res{i}_") and k.endswith("_conv0/kernel"))
                   for i in range(len(WIDTHS)))
    convs = sum(1 for k in w if k.startswith("res") and k.endswith("/kernel")) // max(1, sum(blocks))
    return blocks, max(1, convs)


def norm_pairs(model: keras.Model) -> list[tuple[str, str]]:
    """(convolution, batch norm) layer names of the model, in order: ``conv{i}``/``bn{i}`` and the
    residual blocks' ``res{i}_{b}_conv{j}``/``res{i}_{b}_bn{j}``."""
    from keras import layers

    return [(layer.name.replace("bn", "conv"), layer.name) for layer in model.layers
            if isinstance(layer, layers.BatchNormalization)]


def keras_from_folded(w: dict[str, np.ndarray], images: np.ndarray) -> keras.Model:
    """:func:`keras_from_onnx` from the folded weights themselves (``_onnx_weights``' keys), e.g. the
    mean of two exported readers' weights."""
    import keras

    blocks, convs = architecture(w)
    model = build_reader(blocks=blocks, block_convs=convs)
    for layer in model.layers:
        kernel = w.get(f"{layer.name}/kernel")
        if kernel is None:
            continue
        if kernel.ndim == 4:  # ONNX conv [out, in, kh, kw] -> Keras [kh, kw, in, out]
            kernel = kernel.transpose(2, 3, 1, 0)
        bias = w.get(f"{layer.name}/bias")
        layer.set_weights([kernel] if bias is None else [kernel, bias.reshape(-1)])
    x = images[..., None].astype(np.float32)
    for conv, norm in norm_pairs(model):
        bn = model.get_layer(norm)
        z = keras.Model(model.input, model.get_layer(conv).output).predict(x, batch_size=256, verbose=0)
        mean = z.reshape(-1, z.shape[-1]).mean(0)
        var = np.maximum(z.reshape(-1, z.shape[-1]).var(0) - bn.epsilon, 1e-6)
        std = np.sqrt(var + bn.epsilon)
        shift = w.get(f"{norm}/shift", np.zeros_like(mean))  # a shift of 0 may be folded away
        bn.set_weights([std, mean + shift, mean, var])
    return model
