"""The detector network (Keras 3): a small fully-convolutional CenterNet on the frame at working size.

Input ``image`` float32 [N, H, W, 3] (0..255; H and W multiples of 32; the runtime scales the frame's long
side to 640).  Outputs at stride 4:
  ``peaks`` [N, H/4, W/4, 1]: the centre heatmap (sigmoid) kept only where it is its 3x3 neighbourhood's
      maximum (max-pool inside the model), else 0;
  ``boxes`` [N, H/4, W/4, 8]: per cell, the body centre's sub-cell offset (x, y), log body size
      (w/4, h/4), the nametag centre relative to the body centre in body heights (dx, dy), and log nametag
      size (w/4, h/4).
Decoding (toonvision_live.find.detector) turns the peaks above a threshold into boxes.
"""

from __future__ import annotations

STRIDE = 4
N_BOX = 8
HEAT_PRIOR = 0.01


def _conv(x, ch: int, stride: int = 1, name: str = ""):
    from keras import layers

    x = layers.Conv2D(ch, 3, strides=stride, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_detector(width: float = 1.0) -> keras.Model:  # noqa: F821
    """The detector (~0.15 M parameters): plain 3x3 convolutions (TensorFlow trains them faster on a CPU
    than depthwise ones), a stride-32 encoder and a top-down path back to stride 4; ``width`` scales
    the channel counts."""
    import keras
    import numpy as np
    from keras import layers

    c = lambda n: max(4, int(n * width))  # noqa: E731
    inp = keras.Input((None, None, 3), name="image")
    x = layers.Rescaling(1 / 255.0, name="scale")(inp)
    x = _conv(x, c(8), 2, "stem")
    s4 = _conv(x, c(16), 2, "b4")
    s8 = _conv(_conv(s4, c(32), 2, "b8a"), c(32), 1, "b8b")
    s16 = _conv(_conv(s8, c(48), 2, "b16a"), c(48), 1, "b16b")
    s32 = _conv(_conv(s16, c(64), 2, "b32a"), c(64), 1, "b32b")
    up = s32
    for skip, ch, name in ((s16, c(48), "u16"), (s8, c(32), "u8"), (s4, c(16), "u4")):
        up = layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up")(up)
        up = layers.Conv2D(ch, 1, use_bias=False, name=f"{name}_lat")(up)
        up = layers.Add(name=f"{name}_add")([up, skip])
        up = _conv(up, ch, 1, name)
    head = _conv(up, c(24), 1, "head")
    heat = layers.Conv2D(
        1,
        1,
        activation="sigmoid",
        bias_initializer=keras.initializers.Constant(float(-np.log((1 - HEAT_PRIOR) / HEAT_PRIOR))),
        name="heat",
    )(head)
    boxes = layers.Conv2D(N_BOX, 1, name="boxes")(head)
    return keras.Model(inp, [heat, boxes], name="cog_detector")


def with_peaks(model: keras.Model) -> keras.Model:  # noqa: F821
    """The exported model: the heatmap replaced by its local maxima (3x3 max-pool), sizes unchanged."""
    import keras
    from keras import layers, ops

    heat, boxes = model.outputs
    pooled = layers.MaxPooling2D(3, strides=1, padding="same", name="heat_max")(heat)
    peaks = layers.Lambda(lambda t: t[0] * ops.cast(ops.equal(t[0], t[1]), t[0].dtype), name="peaks")([heat, pooled])
    boxes = layers.Identity(name="box")(boxes)
    return keras.Model(model.inputs, [peaks, boxes], name="cog_detector_peaks")
