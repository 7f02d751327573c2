"""The learned Cog detector (models/detector.onnx) as a crop-stage proposer.

The frame is scaled so its long side is WORK_LONG pixels (area averaging), padded with black to multiples
of 32 and given to the ONNX model, whose outputs (see training/detector/model.py) are the centre heatmap's
local maxima (``peaks``) and per-cell box values at stride 4.  Peaks above the score threshold become a
body box and a nametag box in frame pixels; OpenCV's NMSBoxes removes duplicates.  Callable like
:func:`toonvision_live.find.nametags.propose_cog_boxes` (frame RGB uint8 -> list of Proposal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.errors import ModelError
from toonvision_live.find.nametags import Proposal

WORK_LONG = 512  # the working long side of frames up to 1536 px long
WORK_LONG_MAX = 640  # larger frames: a third of their long side, at most this (see work_long)
PAD = 32
STRIDE = 4


def work_long(frame_wh: tuple[int, int]) -> int:
    """The working long side for a frame: WORK_LONG up to 1536 px, then a third of the long side (multiples
    of 32) up to WORK_LONG_MAX, so distant Cogs in 1080p-4K frames keep a few pixels; 768 split the near
    Cogs of large frames (docs/detector.md)."""
    third = int(round(max(frame_wh) / 3 / PAD)) * PAD
    return int(min(max(WORK_LONG, third), WORK_LONG_MAX))


def working_size(frame_wh: tuple[int, int], long_side: int | None = None) -> tuple[int, int, int, int, float]:
    """(w, h) of the scaled frame, (W, H) of the padded model input, and the scale (working / frame);
    ``long_side`` defaults to :func:`work_long` of the frame."""
    fw, fh = frame_wh
    scale = (long_side or work_long(frame_wh)) / max(fw, fh)
    w, h = max(1, int(round(fw * scale))), max(1, int(round(fh * scale)))
    return w, h, int(math.ceil(w / PAD) * PAD), int(math.ceil(h / PAD) * PAD), scale


def to_working(frame_rgb: np.ndarray, long_side: int | None = None) -> tuple[np.ndarray, float]:
    """The padded working image (uint8 [H, W, 3]) and the scale from frame to working pixels."""
    fh, fw = frame_rgb.shape[:2]
    w, h, pw, ph, scale = working_size((fw, fh), long_side)
    small = cv2.resize(frame_rgb, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    out = np.zeros((ph, pw, 3), np.uint8)
    out[:h, :w] = small
    return out, scale


DEFAULT_THRESHOLD = 0.40  # chosen on validation scene seed 7000002 (not the hard set): see docs/detector.md
NMS_IOU = 0.55
BOX_CHANNELS = 8


@dataclass(frozen=True, slots=True)
class Detection:
    """One detected Cog in frame pixels (floats): body box, nametag box (may reach outside the frame
    when the tag is out of view), and the peak's score (0..1)."""

    body_xyxy: tuple[float, float, float, float]
    tag_xyxy: tuple[float, float, float, float]
    score: float


def decode(peaks: np.ndarray, boxes: np.ndarray, scale: float, frame_wh: tuple[int, int],
           threshold: float = DEFAULT_THRESHOLD, nms_iou: float = NMS_IOU) -> list[Detection]:
    """Detections from the model's outputs for one image (``peaks`` [h, w] or [h, w, 1], ``boxes``
    [h, w, 8]) at working ``scale``; body boxes clipped to the frame, duplicates removed by NMSBoxes."""
    heat = peaks.reshape(peaks.shape[0], peaks.shape[1])
    ys, xs = np.nonzero(heat > threshold)
    if ys.size == 0:
        return []
    v = boxes[ys, xs].astype(np.float64)
    scores = heat[ys, xs].astype(np.float64)
    cx, cy = (xs + v[:, 0]) * STRIDE, (ys + v[:, 1]) * STRIDE
    bw, bh = np.exp(np.clip(v[:, 2], -3, 8)) * STRIDE, np.exp(np.clip(v[:, 3], -3, 8)) * STRIDE
    tcx, tcy = cx + v[:, 4] * bh, cy + v[:, 5] * bh
    tw, th = np.exp(np.clip(v[:, 6], -3, 8)) * STRIDE, np.exp(np.clip(v[:, 7], -3, 8)) * STRIDE
    fw, fh = frame_wh
    k = 1.0 / scale
    body = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1) * k
    body[:, [0, 2]] = body[:, [0, 2]].clip(0, fw)
    body[:, [1, 3]] = body[:, [1, 3]].clip(0, fh)
    tag = np.stack([tcx - tw / 2, tcy - th / 2, tcx + tw / 2, tcy + th / 2], 1) * k
    keep_size = ((body[:, 2] - body[:, 0]) >= 2) & ((body[:, 3] - body[:, 1]) >= 2)
    idx = np.flatnonzero(keep_size)
    if idx.size == 0:
        return []
    xywh = [[float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])] for b in body[idx]]
    kept = cv2.dnn.NMSBoxes(xywh, [float(s) for s in scores[idx]], float(threshold), float(nms_iou))
    out = []
    for j in np.asarray(kept, dtype=np.int64).reshape(-1):
        i = int(idx[j])
        out.append(Detection(tuple(float(x) for x in body[i]), tuple(float(x) for x in tag[i]),  # type: ignore[arg-type]
                             float(scores[i])))
    return sorted(out, key=lambda d: -d.score)


def default_model_path() -> Path:
    """The shipped detector, models/detector.onnx (package toonvision_models)."""
    from importlib import resources

    return Path(str(resources.files("toonvision_models").joinpath("detector.onnx")))


class CogDetector:
    """The detector's ONNX session (CPU by default, ``threads`` intra-op threads) and its decoding.

    ``detect(frame)`` returns :class:`Detection` objects; calling the detector returns pipeline
    :class:`~toonvision_live.find.nametags.Proposal` objects (integer boxes), left to right.
    """

    def __init__(self, model_path: Path | None = None, *, threshold: float = DEFAULT_THRESHOLD,
                 nms_iou: float = NMS_IOU, providers: Sequence[str] | None = None, threads: int = 1) -> None:
        import onnxruntime as ort

        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        if not self.model_path.is_file():
            raise ModelError(f"The detector model {self.model_path} is missing; train and export it with "
                             "'toonvision train-detector'.")
        self.threshold, self.nms_iou = float(threshold), float(nms_iou)
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, int(threads))
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.model_path), sess_options=options,
                                                providers=list(providers) if providers else ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for unreadable files
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise ModelError(f"The detector model {self.model_path} cannot be loaded ({reason}); "
                             "re-export it with 'toonvision train-detector'.") from None
        names = [o.name for o in self.session.get_outputs()]
        if names != ["peaks", "box"] or [i.name for i in self.session.get_inputs()] != ["image"]:
            raise ModelError(f"The detector model {self.model_path} has inputs/outputs "
                             f"{[i.name for i in self.session.get_inputs()]} -> {names}, "
                             "expected ['image'] -> ['peaks', 'box'].")
        self.long_side: int | None = None  # None: work_long of each frame

    def detect(self, frame_rgb: np.ndarray, threshold: float | None = None) -> list[Detection]:
        """Detections in ``frame_rgb``, best scored first (peaks above ``threshold``, default the detector's)."""
        fh, fw = frame_rgb.shape[:2]
        if min(fh, fw) < 16:
            return []
        work, scale = to_working(frame_rgb, self.long_side)
        peaks, boxes = self.session.run(None, {"image": work[None].astype(np.float32)})
        return decode(peaks[0], boxes[0], scale, (fw, fh), self.threshold if threshold is None else threshold,
                      self.nms_iou)

    def __call__(self, frame_rgb: np.ndarray) -> list[Proposal]:
        props = []
        for d in self.detect(frame_rgb):
            body = tuple(int(round(v)) for v in d.body_xyxy)
            if body[2] - body[0] < 2 or body[3] - body[1] < 2:
                continue
            props.append(Proposal(body, tuple(int(round(v)) for v in d.tag_xyxy), d.score,  # type: ignore[arg-type]
                                  tag_verified=False))
        return sorted(props, key=lambda p: (p.body_xyxy[0], p.body_xyxy[1]))
