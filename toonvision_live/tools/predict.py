"""``toonvision predict PATH... --out DIR [--scale S]``: find and name every Cog in image files.

The same stages as live: the crop stage (the learned detector by default, or today's nametag search
with ``--stage nametags``), the 600x200 crops and the classifier.  For each image it writes
``DIR/<stem>.xml`` (Pascal VOC, labelImg-compatible, ``cog_<suit>_<cog>`` names, body boxes) and
``DIR/<stem>.png`` (the frame with boxes and labels), and prints one table row per Cog.  ``--scale``
resizes each image first (as a window of that size would show it); boxes are then in the scaled image.
A path that is missing or not an image gets a one-sentence error and the others are still done.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class PredictedCog:
    label: str  # cog_<suit>_<key>
    name: str  # display name
    confidence: float
    body_xyxy: tuple[int, int, int, int]
    tag_xyxy: tuple[int, int, int, int]
    score: float  # crop-stage score


def collect_images(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Image files named by ``paths`` (folders: their image files, sorted) and one error per bad path."""
    files: list[Path] = []
    errors: list[str] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                errors.append(f"The folder {p} holds no image files ({', '.join(IMAGE_SUFFIXES)}).")
            files += found
        elif p.is_file():
            files.append(p)
        else:
            errors.append(f"{p} does not exist; check the path.")
    return files, errors


def _draw(rgb: np.ndarray, cogs: list[PredictedCog]) -> np.ndarray:
    import cv2

    from toonvision_live.taxonomy import COG_BY_KEY, SUIT_BY_CODE

    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    fs = max(0.4, min(out.shape[:2]) / 900)
    for c in cogs:
        key = c.label.split("_", 2)[2]
        hexcol = SUIT_BY_CODE[COG_BY_KEY[key].suit].color.lstrip("#")
        r, g, b = (int(hexcol[i : i + 2], 16) for i in (0, 2, 4))
        x0, y0, x1, y1 = c.body_xyxy
        cv2.rectangle(out, (x0, y0), (x1 - 1, y1 - 1), (b, g, r), 2)
        tx0, ty0, tx1, ty1 = c.tag_xyxy
        cv2.rectangle(out, (tx0, ty0), (tx1 - 1, ty1 - 1), (200, 200, 200), 1)
        text = f"{c.name} {100 * c.confidence:.0f}%"
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, 1)
        ty = min(max(th + 2, y1 + th + 4), out.shape[0] - 2)
        cv2.rectangle(out, (x0, ty - th - 2), (x0 + tw + 2, ty + base), (b, g, r), -1)
        cv2.putText(out, text, (x0 + 1, ty), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1, cv2.LINE_AA)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


class Predictor:
    """Crop stage + classifier on one image at a time."""

    def __init__(self, stage: str = "detector", detector_model: Path | None = None,
                 classifier_model: Path | None = None, threshold: float | None = None) -> None:
        from toonvision_live.classify.classifier import CogClassifier
        from toonvision_live.crops import CropBatcher
        from toonvision_live.find.nametags import propose_cog_boxes
        from toonvision_live.model_card import default_model_path

        self.propose: Callable[[Any], Sequence[Any]]
        if stage == "detector":
            from toonvision_live.find.detector import DEFAULT_THRESHOLD, CogDetector

            self.propose = CogDetector(detector_model, threshold=threshold or DEFAULT_THRESHOLD, threads=2)
        else:
            self.propose = propose_cog_boxes
        self.classifier = CogClassifier(classifier_model or default_model_path(), ["cpu"])
        self.batcher = CropBatcher(16)

    def __call__(self, rgb: np.ndarray) -> list[PredictedCog]:
        from toonvision_live.taxonomy import COG_BY_KEY

        proposals = list(self.propose(rgb))[:16]
        if not proposals:
            return []
        preds = self.classifier.classify(self.batcher.crop(rgb, proposals))
        out = []
        for p, pred in zip(proposals, preds, strict=True):
            cog = COG_BY_KEY[pred.cog]
            out.append(PredictedCog(cog.label, cog.name, float(pred.confidence or 0.0),
                                    tuple(int(v) for v in p.body_xyxy),  # type: ignore[arg-type]
                                    tuple(int(v) for v in p.tag_xyxy), float(p.score)))  # type: ignore[arg-type]
        return out


def predict_file(predictor: Predictor, path: Path, out: Path, scale: float) -> list[PredictedCog]:
    """Predict one file and write its XML and PNG into ``out``; DataError when it is not an image."""
    import cv2

    from toonvision_live.fileio import read_image_rgb, write_png
    from toonvision_live.voc import VocAnnotation, VocObject, write_voc

    rgb = read_image_rgb(path)
    if scale != 1.0:
        h, w = rgb.shape[:2]
        rgb = cv2.resize(rgb, (max(1, round(w * scale)), max(1, round(h * scale))),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    cogs = predictor(rgb)
    h, w = rgb.shape[:2]
    png = out / f"{path.stem}.png"
    objects = tuple(VocObject(c.label, c.body_xyxy) for c in cogs)
    write_voc(out / f"{path.stem}.xml",
              VocAnnotation(filename=png.name, width=w, height=h, objects=objects, folder=out.name, path=str(png)),
              overwrite=True)
    write_png(png, _draw(rgb, cogs), overwrite=True)
    return cogs


def _predict(args: argparse.Namespace) -> int:
    from toonvision_live.errors import ConfigError, ToonVisionError
    from toonvision_live.fileio import ensure_dir

    if not args.scale > 0:
        raise ConfigError(f"--scale must be above 0, not {args.scale}.")
    files, errors = collect_images(args.paths)
    for e in errors:
        print(f"toonvision: error: {e}", file=sys.stderr)
    if not files:
        return 1 if errors else 0
    out = ensure_dir(Path(args.out))
    predictor = Predictor(args.stage, Path(args.model) if args.model else None,
                          Path(args.classifier) if args.classifier else None, args.threshold)
    print(f"{'file':36s} {'cog':26s} {'conf':>5s} {'score':>5s}  body box")
    total = done = 0
    for f in files:
        try:
            cogs = predict_file(predictor, f, out, args.scale)
        except ToonVisionError as exc:
            errors.append(str(exc))
            print(f"toonvision: error: {exc}", file=sys.stderr)
            continue
        total += len(cogs)
        done += 1
        if not cogs:
            print(f"{f.name[:36]:36s} {'(no Cog found)':26s}")
        for c in cogs:
            print(f"{f.name[:36]:36s} {c.label[:26]:26s} {100 * c.confidence:4.0f}% {c.score:5.2f}  {c.body_xyxy}")
    print(f"{total} Cogs in {done} images; XML and PNG in {out}.")
    return 1 if errors else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "predict", help="find and name the Cogs in image files (VOC XML + annotated PNG per image)",
        description="Run the live crop stage and classifier on image files or folders; write DIR/<stem>.xml "
                    "(Pascal VOC, cog_<suit>_<cog> names) and DIR/<stem>.png, and print a table.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="resize each image by S first, as a window of that size shows it (default 1)")
    p.add_argument("--stage", choices=("detector", "nametags"), default="detector",
                   help="crop stage: the learned detector (default) or the nametag search")
    p.add_argument("--threshold", type=float, default=None, help="detector score threshold")
    p.add_argument("--model", metavar="ONNX", help="detector model (default models/detector.onnx)")
    p.add_argument("--classifier", metavar="ONNX", help="classifier model (default models/toonvision.onnx)")
    p.set_defaults(handler=_predict)
