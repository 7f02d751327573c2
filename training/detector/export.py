"""Export the trained detector to ONNX (tf2onnx) with its card, after a Keras-vs-ONNX parity check.

``models/detector.onnx``: input ``image`` float32 [N, H, W, 3] (0..255, RGB, H and W dynamic multiples of
32), outputs ``peaks`` [N, H/4, W/4, 1] (heatmap local maxima, else 0) and ``box`` [N, H/4, W/4, 8].
Parity: both models predict the same working images; a max abs difference above PARITY_TOL is a
ModelError and nothing is written.  ``models/detector.json`` (the card) records the input/output contract,
training facts, parity figures and the hard-set metrics it was shipped with.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from toonvision_live.errors import ModelError
from toonvision_live.fileio import atomic_write_bytes
from toonvision_live.find.detector import DEFAULT_THRESHOLD, NMS_IOU, STRIDE, WORK_LONG, WORK_LONG_MAX

PARITY_TOL = 1e-3
OPSET = 17


def keras_to_onnx(model: Any) -> Any:
    import tensorflow as tf
    import tf2onnx

    from training.detector.model import with_peaks

    exported = with_peaks(model)
    signature = (tf.TensorSpec([None, None, None, 3], tf.float32, name="image"),)

    @tf.function(input_signature=signature)
    def serve(image: tf.Tensor) -> dict[str, tf.Tensor]:
        peaks, box = exported(image, training=False)
        return {"peaks": peaks, "box": box}

    proto, _ = tf2onnx.convert.from_function(serve, input_signature=signature, opset=OPSET)
    names = [o.name for o in proto.graph.output]
    if [i.name for i in proto.graph.input] != ["image"] or sorted(names) != ["box", "peaks"]:
        raise ModelError(f"tf2onnx produced outputs {names}; the detector does not follow its contract.")
    if names != ["peaks", "box"]:  # keep the documented order
        outs = {o.name: o for o in proto.graph.output}
        del proto.graph.output[:]
        proto.graph.output.extend([outs["peaks"], outs["box"]])
    proto.doc_string = "ToonVision Live Cog detector: centre-heatmap peaks and body/nametag boxes at stride 4."
    entry = proto.metadata_props.add()
    entry.key, entry.value = "producer", "toonvision train-detector (tf2onnx)"
    return proto


def export_detector(keras_path: Path, onnx_path: Path, parity_images: np.ndarray, card_extra: dict) -> dict:
    """Convert, check parity on ``parity_images`` (uint8 [N, H, W, 3]), write the ONNX and its card."""
    import keras
    import onnxruntime as ort

    from training.detector.model import with_peaks

    model = keras.models.load_model(keras_path, compile=False)
    proto = keras_to_onnx(model)
    data = proto.SerializeToString()
    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    peaks_model = with_peaks(model)
    worst, mismatched = 0.0, 0
    for img in parity_images:
        x = img[None].astype(np.float32)
        kp, kb = (np.asarray(t) for t in peaks_model([x], training=False))
        op, ob = session.run(None, {"image": x})
        # peaks: values where both keep a peak, and no cell above 0.1 on one side only (a flat heatmap
        # has ties that round-off may break either way; they never reach a detection threshold)
        both = (kp > 0) & (op > 0)
        mismatched += int(((kp > 0.1) != (op > 0.1)).sum())
        worst = max(worst, float(np.abs(kp - op)[both].max(initial=0.0)), float(np.abs(kb - ob).max()))
    if worst > PARITY_TOL or mismatched:
        raise ModelError(f"Keras and ONNX disagree by {worst:.2e} (tolerance {PARITY_TOL}) with {mismatched} "
                         "peaks above 0.1 on one side only; nothing was written.")
    atomic_write_bytes(onnx_path, data, overwrite=True)
    card = {
        "model": "cog_detector",
        "input": {"name": "image", "shape": ["N", "H", "W", 3], "layout": "NHWC", "color": "RGB",
                  "range": [0, 255], "dtype": "float32",
                  "working_size": f"frame scaled so its long side is {WORK_LONG} px up to 1536 px frames, then a "
                                  f"third of the frame's long side (multiples of 32) up to {WORK_LONG_MAX} px; "
                                  "padded to multiples of 32 (toonvision_live.find.detector.work_long)"},
        "outputs": {"peaks": {"shape": ["N", "H/4", "W/4", 1], "meaning": "centre heatmap at its 3x3 maxima, else 0"},
                    "box": {"shape": ["N", "H/4", "W/4", 8],
                            "meaning": "body centre offset (x, y), log body w/4, h/4, nametag centre minus body "
                                       "centre in body heights (dx, dy), log nametag w/4, h/4"}},
        "stride": STRIDE,
        "decode": {"threshold": DEFAULT_THRESHOLD, "nms_iou": NMS_IOU, "nms": "cv2.dnn.NMSBoxes on body boxes"},
        "parity": {"images": int(len(parity_images)), "max_abs_diff": worst, "tolerance": PARITY_TOL,
                   "peaks_on_one_side_only": mismatched},
        "onnx": {"opset": OPSET, "bytes": len(data)},
        "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    card.update(card_extra)
    atomic_write_bytes(onnx_path.with_suffix(".json"), (json.dumps(card, indent=1) + "\n").encode(), overwrite=True)
    return card
