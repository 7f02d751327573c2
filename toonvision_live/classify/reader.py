"""The nametag reader: a Cog's name, department, level and v2.0 from its tag crop (onnxruntime).

``models/reader.onnx`` (trained only on rendered tags, see training/reader/) reads one grey tag crop
with closed-set heads; ``models/reader.json`` (its card) records the input and the class orders.

Contract (checked against the card when the reader loads):

* input ``tag`` float32 [N, 40, 128, 1]: the tag box in grey, scaled to 40 rows keeping its aspect
  (squeezed only when wider than 128), centred, padded with its mean, then standardised (mean 0,
  std 1) — :func:`tag_input` does exactly this, for training and at run time; :class:`TagReader`
  reads each tag through the boxes of :data:`READS` (:func:`tag_inputs`) and averages the
  heads' probabilities;
* outputs (softmax): ``name`` [N, 34] = the 32 Cogs (taxonomy order) + ``skelecog`` + ``other``;
  ``dept`` [N, 7] = the 4 suits + ``boardbot`` + ``other`` + ``none`` (two-line tags of old clients);
  ``tens`` [N, 6] and ``units`` [N, 10], the level's digits; ``v2`` [N, 2] (no, yes).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toonvision_live.errors import ModelError
from toonvision_live.taxonomy import COG_KEYS, SUIT_CODES

log = logging.getLogger(__name__)

INPUT_NAME = "tag"
INPUT_H, INPUT_W = 40, 128
NAME_CLASSES: tuple[str, ...] = (*COG_KEYS, "skelecog", "other")
DEPT_CLASSES: tuple[str, ...] = (*SUIT_CODES, "boardbot", "other", "none")
MAX_LEVEL = 50
OUTPUTS: dict[str, int] = {"name": len(NAME_CLASSES), "dept": len(DEPT_CLASSES), "tens": 6, "units": 10, "v2": 2}
#: levels 1..50 as (tens, units) indices, for the level distribution P(L) = P(tens) P(units)
_LEVELS = np.arange(1, MAX_LEVEL + 1)
#: each tag is read through these reads and its heads' probabilities averaged: (box change, sub-pixel),
#: the change in fractions of the box height added to x0, y0, x1, y1, the box sampled at its fractional
#: edges when sub-pixel (``tag_input(subpixel=True)``) or rounded to whole pixels.  One read is
#: sensitive to where the crop stage's box edges fall; the mean of several reads is not.  The box as found,
#: 4 % tighter and 4 % looser: with the stage-9 reader (one residual block more) these three read better than
#: stage 7 through its five reads on 20,000 fresh tags no read set or checkpoint was chosen on, and cost less
#: (docs/reader/diagnosis.md, "the decision on fresh tags")
READS: tuple[tuple[tuple[float, float, float, float], bool], ...] = (
    ((0.0, 0.0, 0.0, 0.0), False),  # the box as found
    ((0.04, 0.04, -0.04, -0.04), False),  # 4 % of the height tighter on every side
    ((-0.04, -0.04, 0.04, 0.04), False),  # 4 % looser
)
#: the box changes of READS
READ_BOXES: tuple[tuple[float, float, float, float], ...] = tuple(change for change, _ in READS)


def default_reader_path() -> Path:
    """The shipped reader, models/reader.onnx."""
    return Path(str(resources.files("toonvision_models").joinpath("reader.onnx")))


def tag_input(frame_rgb: np.ndarray, box_xyxy: Sequence[float], out: np.ndarray | None = None,
              *, subpixel: bool = False) -> np.ndarray:
    """The reader's input (INPUT_H, INPUT_W) float32 for the tag box ``box_xyxy`` of an RGB frame.

    The box is clipped to the frame; an empty box gives zeros.  ``out`` (INPUT_H, INPUT_W) is filled
    in place when given.  The box is rounded to whole pixels, unless ``subpixel``: then a box that is
    scaled up (fewer than INPUT_H rows) is sampled at its fractional edges (bilinear, as the rounded
    box would be), so that boxes shifted by parts of a pixel give different reads.
    """
    if out is None:
        out = np.empty((INPUT_H, INPUT_W), np.float32)
    fh, fw = frame_rgb.shape[:2]
    fx0, fy0 = max(0.0, float(box_xyxy[0])), max(0.0, float(box_xyxy[1]))
    fx1, fy1 = min(float(fw), float(box_xyxy[2])), min(float(fh), float(box_xyxy[3]))
    x0, y0, x1, y1 = int(round(fx0)), int(round(fy0)), int(round(fx1)), int(round(fy1))
    if x1 - x0 < 2 or y1 - y0 < 2:
        out[:] = 0.0
        return out
    if subpixel and fy1 - fy0 < INPUT_H:
        small = _sample_subpixel(frame_rgb, (fx0, fy0, fx1, fy1))
    else:
        crop = frame_rgb[y0:y1, x0:x1]
        grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
        h, w = grey.shape
        scale = INPUT_H / h
        new_w = max(1, min(INPUT_W, int(round(w * scale))))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        small = cv2.resize(grey, (new_w, INPUT_H), interpolation=interp).astype(np.float32)
    new_w = small.shape[1]
    mean = float(small.mean())
    out[:] = mean
    left = (INPUT_W - new_w) // 2
    out[:, left : left + new_w] = small
    std = float(out.std())
    out -= mean
    out *= 1.0 / max(std, 1.0)
    return out


def _sample_subpixel(frame_rgb: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
    """The box (fractional edges, inside the frame) scaled up to INPUT_H rows, grey float32, bilinear."""
    x0, y0, x1, y1 = box
    ix0, iy0 = int(np.floor(x0)), int(np.floor(y0))
    ix1, iy1 = min(frame_rgb.shape[1], int(np.ceil(x1)) + 1), min(frame_rgb.shape[0], int(np.ceil(y1)) + 1)
    crop = np.ascontiguousarray(frame_rgb[iy0:iy1, ix0:ix1])
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
    k = INPUT_H / (y1 - y0)
    new_w = max(1, min(INPUT_W, int(round((x1 - x0) * k))))
    kx = new_w / (x1 - x0)
    # cv2.resize's centres: output pixel u samples x = x0 + (u + 0.5) / k - 0.5 (crop coordinates)
    m = np.array([[kx, 0.0, (0.5 - (x0 - ix0)) * kx - 0.5], [0.0, k, (0.5 - (y0 - iy0)) * k - 0.5]])
    return cv2.warpAffine(grey.astype(np.float32), m, (new_w, INPUT_H), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def tag_inputs(frame_rgb: np.ndarray, box_xyxy: Sequence[float], out: np.ndarray | None = None) -> np.ndarray:
    """The reader's inputs [len(READS), INPUT_H, INPUT_W] of one tag box: :func:`tag_input` of each
    read of :data:`READS`; ``out`` is filled in place when given."""
    if out is None:
        out = np.empty((len(READS), INPUT_H, INPUT_W), np.float32)
    x0, y0, x1, y1 = (float(v) for v in box_xyxy[:4])
    h = y1 - y0
    boxes = [(x0 + a * h, y0 + b * h, x1 + c * h, y1 + d * h) for (a, b, c, d), _ in READS]
    # the grey of the region all reads sample (2 pixels around, inside the frame), converted once
    fh, fw = frame_rgb.shape[:2]
    cx0 = int(np.clip(np.floor(min(b[0] for b in boxes)) - 2, 0, fw))
    cy0 = int(np.clip(np.floor(min(b[1] for b in boxes)) - 2, 0, fh))
    cx1 = int(np.clip(np.ceil(max(b[2] for b in boxes)) + 2, cx0, fw))
    cy1 = int(np.clip(np.ceil(max(b[3] for b in boxes)) + 2, cy0, fh))
    region = np.ascontiguousarray(frame_rgb[cy0:cy1, cx0:cx1])
    if region.ndim == 3 and region.size:
        region = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
    for k, ((bx0, by0, bx1, by1), (_, subpixel)) in enumerate(zip(boxes, READS, strict=True)):
        tag_input(region, (bx0 - cx0, by0 - cy0, bx1 - cx0, by1 - cy0), out=out[k], subpixel=subpixel)
    return out


def level_probs(tens: np.ndarray, units: np.ndarray) -> np.ndarray:
    """[N, 50] probabilities of levels 1..50 from the [N, 6] tens and [N, 10] units heads (pure)."""
    p = np.asarray(tens, np.float64)[:, _LEVELS // 10] * np.asarray(units, np.float64)[:, _LEVELS % 10]
    out: np.ndarray = p / np.maximum(p.sum(axis=1, keepdims=True), 1e-12)
    return out


@dataclass(frozen=True, slots=True)
class TagReading:
    """What one tag says: the name class (a Cog key, ``skelecog`` or ``other``), the department class
    (a suit code, ``boardbot``, ``other`` or ``none``), the level 1..50 and v2.0, each with its
    probability; the distributions are kept for fusion."""

    name: str
    name_conf: float
    dept: str
    dept_conf: float
    level: int
    level_conf: float
    v2: bool
    v2_conf: float
    name_probs: np.ndarray = field(repr=False, compare=False)
    dept_probs: np.ndarray = field(repr=False, compare=False)
    level_probs: np.ndarray = field(repr=False, compare=False)  # [50], levels 1..50
    line_px: float = 0.0  # about how many pixels high one text line of the tag was (0: not known)

    @property
    def confidence(self) -> float:
        """The chance that the whole read (name, department, level, v2.0) is right, heads taken as independent."""
        return self.name_conf * self.dept_conf * self.level_conf * self.v2_conf


def readings_from_outputs(outputs: dict[str, np.ndarray], line_px: Sequence[float] = ()) -> list[TagReading]:
    """TagReadings from the model's five [N, k] softmax outputs and, if given, each tag's line height (pure)."""
    names, depts = np.asarray(outputs["name"]), np.asarray(outputs["dept"])
    levels = level_probs(outputs["tens"], outputs["units"])
    v2 = np.asarray(outputs["v2"])
    out = []
    for i in range(len(names)):
        n, d, lv = int(names[i].argmax()), int(depts[i].argmax()), int(levels[i].argmax())
        yes = bool(v2[i, 1] > v2[i, 0])
        out.append(TagReading(
            name=NAME_CLASSES[n], name_conf=float(names[i, n]), dept=DEPT_CLASSES[d], dept_conf=float(depts[i, d]),
            level=lv + 1, level_conf=float(levels[i, lv]), v2=yes, v2_conf=float(v2[i, int(yes)]),
            name_probs=names[i].astype(np.float64), dept_probs=depts[i].astype(np.float64), level_probs=levels[i],
            line_px=float(line_px[i]) if len(line_px) else 0.0,
        ))
    return out


def average_readings(readings: Sequence[TagReading]) -> TagReading:
    """One reading from several reads of the same tag: the mean of their distributions (pure)."""
    if len(readings) == 1:
        return readings[0]
    names = np.mean([r.name_probs for r in readings], axis=0)
    depts = np.mean([r.dept_probs for r in readings], axis=0)
    levels = np.mean([r.level_probs for r in readings], axis=0)
    v2_yes = float(np.mean([r.v2_conf if r.v2 else 1 - r.v2_conf for r in readings]))
    n, d, lv = int(names.argmax()), int(depts.argmax()), int(levels.argmax())
    return TagReading(NAME_CLASSES[n], float(names[n]), DEPT_CLASSES[d], float(depts[d]), lv + 1, float(levels[lv]),
                      v2_yes > 0.5, max(v2_yes, 1 - v2_yes), names, depts, levels,
                      max(r.line_px for r in readings))


def load_reader_card(model_path: Path) -> dict[str, Any]:
    """The reader's card beside ``model_path``, checked against this module's contract."""
    card_path = Path(model_path).with_suffix(".json")
    try:
        card = json.loads(card_path.read_text("utf-8"))
    except FileNotFoundError:
        raise ModelError(f"The reader card {card_path} is missing: export the reader again "
                         "('toonvision train-reader').") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"The reader card {card_path} is unreadable ({exc}); export the reader again.") from None
    expected = {"names": list(NAME_CLASSES), "depts": list(DEPT_CLASSES)}
    for key, want in expected.items():
        if card.get(key) != want:
            raise ModelError(f"The reader card {card_path} lists other {key} than this version of ToonVision "
                             "expects; export the reader again with this version.")
    inp = card.get("input", {})
    if inp.get("name") != INPUT_NAME or list(inp.get("shape", []))[1:] != [INPUT_H, INPUT_W, 1]:
        raise ModelError(f"The reader card {card_path} describes another input ({inp}); export the reader again.")
    return dict(card)


class TagReader:
    """One onnxruntime session on the reader; :meth:`read` reads tag boxes of a frame in one batch."""

    def __init__(self, model_path: Path | None = None, providers: Sequence[str] | None = None,
                 *, max_batch: int = 32) -> None:
        import onnxruntime as ort

        from toonvision_live.classify.classifier import cuda_driver_present, resolve_providers

        self.model_path = Path(model_path) if model_path is not None else default_reader_path()
        if not self.model_path.is_file():
            raise ModelError(f"The reader model {self.model_path} is missing: reinstall ToonVision Live or "
                             "train it ('toonvision train-reader').")
        self.card = load_reader_card(self.model_path)
        chosen = resolve_providers(providers, ort.get_available_providers(), gpu_present=cuda_driver_present())
        options = ort.SessionOptions()
        options.log_severity_level = 3
        # one thread, no busy-waiting: a few tags a second beside the pipeline's own threads (a default
        # session's spinning pool cost the live process ~1.9 ms CPU per frame on the 2-core machine)
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self.session = ort.InferenceSession(str(self.model_path), sess_options=options, providers=chosen)
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types for bad files
            raise ModelError(f"The reader model {self.model_path} cannot be loaded ({exc}); "
                             "reinstall ToonVision Live or export it again.") from None
        self.provider = self.session.get_providers()[0]
        self._output_names = [o.name for o in self.session.get_outputs()]
        if sorted(self._output_names) != sorted(OUTPUTS):
            raise ModelError(f"The reader model {self.model_path} has outputs {self._output_names}, "
                             f"expected {sorted(OUTPUTS)}; export it again.")
        self._batch = np.zeros((max_batch * len(READS), INPUT_H, INPUT_W, 1), np.float32)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """The five softmax outputs of a prepared [N, 40, 128, 1] batch."""
        values = self.session.run(self._output_names, {INPUT_NAME: batch})
        return dict(zip(self._output_names, values, strict=True))

    def probabilities(self, frame_rgb: np.ndarray, boxes: Sequence[Sequence[float]]) -> dict[str, np.ndarray]:
        """The five heads' [N, k] probabilities for the tag boxes of an RGB frame, each the mean of its
        reads through :data:`READS` (one batch for all)."""
        k = len(READS)
        if len(boxes) * k > len(self._batch):
            self._batch = np.zeros((len(boxes) * k, INPUT_H, INPUT_W, 1), np.float32)
        batch = self._batch[: len(boxes) * k]
        for i, box in enumerate(boxes):
            tag_inputs(frame_rgb, box, out=batch[i * k : (i + 1) * k, :, :, 0])
        return {name: v.reshape(len(boxes), k, -1).mean(axis=1) for name, v in self.run(batch).items()}

    def read(self, frame_rgb: np.ndarray, boxes: Sequence[Sequence[float]]) -> list[TagReading]:
        """The readings of the tag boxes (x0, y0, x1, y1) of an RGB frame, in order."""
        if len(boxes) == 0:
            return []
        # a three-line card is about 3.4 lines high (the game's paddings)
        return readings_from_outputs(self.probabilities(frame_rgb, boxes),
                                     [max(0.0, float(b[3]) - float(b[1])) / 3.4 for b in boxes])
