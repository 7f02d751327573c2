"""The reader's Keras model: a small CNN over the 40x128 grey tag with five closed-set heads.

Closed-set heads won over CTC text by measurement of effort and speed: the vocabulary is closed
(32 Cogs + Skelecog + other, 4 departments + Boardbot + other + none, levels as two digits, v2.0),
so a read is five small softmaxes, there is no decoding or vocabulary matching at run time, and the
rows of the flattened feature map keep which line a feature came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from toonvision_live.classify.reader import INPUT_H, INPUT_NAME, INPUT_W, OUTPUTS

if TYPE_CHECKING:
    import keras

#: conv widths per stage (each stage: conv 3x3 + BN + ReLU, then 2x2 max pool)
WIDTHS = (8, 16, 32, 64)
DENSE = 192


def build_reader(widths: tuple[int, ...] = WIDTHS, dense: int = DENSE, dropout: float = 0.3) -> keras.Model:
    import keras
    from keras import layers

    inp = keras.Input((INPUT_H, INPUT_W, 1), name=INPUT_NAME)
    x = inp
    for i, w in enumerate(widths):
        x = layers.Conv2D(w, 3, padding="same", use_bias=False, name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        if i < 3:
            x = layers.MaxPooling2D(2, name=f"pool{i}")(x)
    # 5 x 16 cells: keep rows (lines) apart, pool pairs of columns
    x = layers.MaxPooling2D((1, 2), name="pool_cols")(x)
    x = layers.Flatten(name="flat")(x)
    x = layers.Dropout(dropout, name="drop")(x)
    x = layers.Dense(dense, activation="relu", name="fc")(x)
    outputs = {k: layers.Dense(n, activation="softmax", name=k)(x) for k, n in OUTPUTS.items()}
    return keras.Model(inp, outputs, name="tag_reader")
