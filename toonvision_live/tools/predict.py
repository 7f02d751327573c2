"""``toonvision predict PATH... --out DIR [--scale S]``: find and name every Cog in image files.

The same stages as live: the crop stage (the live default, the nametag search, or the learned detector
with its tags confirmed by the nametag verifier with ``--stage detector``; ``detector-raw``: the
detector's own boxes), the 600x200 crops, the classifier and the nametag reader, fused as the
overlay fuses them (:func:`toonvision_live.classify.fusion.fuse`; ``--no-reader`` for the body
alone).  For each image it writes ``DIR/<stem>.xml`` (Pascal VOC, labelImg-compatible,
``cog_<suit>_<cog>`` names, body boxes, ``<level>``/``<v2>`` where the tag was read) and
``DIR/<stem>.png`` (the frame with boxes and the overlay's label text, placed as the overlay places its
cards; a frame under DRAW_MIN_SIDE pixels is drawn larger), and prints one table row
per Cog.  Skelecogs, Boardbots and tags naming none of the 32 are printed and drawn as such but
left out of the XML (its names are the 32 Cogs only), as ``toonvision label`` does.  ``--scale``
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

    from toonvision_live.classify.fusion import FusedLabel
    from toonvision_live.classify.reader import TagReader
    from toonvision_live.geometry import XYXY

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


@dataclass(frozen=True, slots=True)
class PredictedCog:
    label: str  # cog_<suit>_<key>; for a Cog none of the 32: its kind (skelecog, boardbot, unknown)
    name: str  # the overlay's card text, e.g. "Cold Caller · Lv 1 · 6 HP"
    confidence: float
    body_xyxy: tuple[int, int, int, int]
    tag_xyxy: tuple[int, int, int, int]
    score: float  # crop-stage score
    level: int | None = None  # read from the tag (None: not read)
    v2: bool = False
    suit: str | None = None  # department code (boardbot for Boardbots), None when unknown
    hp: int | None = None  # one layer's HP (a v2.0 Cog has two layers)

    @property
    def in_voc(self) -> bool:
        """One of the 32 Cogs: written to the XML (the others are shown but not labelled)."""
        return self.label.startswith("cog_")


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


#: the annotated PNG of a frame smaller than this (longer side, pixels) is drawn larger, so that its
#: captions stay legible (boxes in the XML stay in the image's own pixels)
DRAW_MIN_SIDE = 960


def caption_cards(cogs: Sequence[PredictedCog], size_wh: tuple[int, int], k: float = 1.0,
                  font_scale: float = 0.5) -> list[tuple[str, XYXY, int]]:
    """Each Cog's caption, its card and the text's baseline in a frame of ``size_wh`` drawn ``k`` times the
    image's size, placed as the overlay places its cards (:func:`toonvision_live.ui.cards.place_label_cards`:
    inside the frame, clear of every nametag and of each other)."""
    import cv2

    from toonvision_live.ui.cards import place_label_cards, scaled

    texts = [f"{c.name.replace(' · ', ' - ')} {100 * c.confidence:.0f}%" for c in cogs]  # Hershey: no middle dot
    sizes = [cv2.getTextSize(t, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1) for t in texts]
    cards = place_label_cards([scaled(c.body_xyxy, k) for c in cogs], [scaled(c.tag_xyxy, k) for c in cogs],
                              [(tw + 4, th + base + 4) for (tw, th), base in sizes], size_wh, gap=8)
    return [(text, card, base) for text, card, (_, base) in zip(texts, cards, sizes, strict=True)]


def _draw(rgb: np.ndarray, cogs: list[PredictedCog]) -> np.ndarray:
    """The frame with each Cog's body box, tag box and caption (:func:`caption_cards`); a frame smaller
    than DRAW_MIN_SIDE is drawn larger."""
    import cv2

    from toonvision_live.taxonomy import SUIT_BY_CODE
    from toonvision_live.ui.cards import scaled

    k = max(1.0, DRAW_MIN_SIDE / max(rgb.shape[:2]))
    out = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    if k > 1.0:
        out = cv2.resize(out, (round(out.shape[1] * k), round(out.shape[0] * k)), interpolation=cv2.INTER_LINEAR)
    fs = max(0.45, min(out.shape[:2]) / 1100)
    for c, (text, card, base) in zip(cogs, caption_cards(cogs, (out.shape[1], out.shape[0]), k, fs), strict=True):
        hexcol = SUIT_BY_CODE[c.suit].color.lstrip("#") if c.suit in SUIT_BY_CODE else "808080"
        r, g, b = (int(hexcol[i : i + 2], 16) for i in (0, 2, 4))
        body, tag = scaled(c.body_xyxy, k), scaled(c.tag_xyxy, k)
        cv2.rectangle(out, body[:2], (body[2] - 1, body[3] - 1), (b, g, r), 2)
        cv2.rectangle(out, tag[:2], (tag[2] - 1, tag[3] - 1), (200, 200, 200), 1)
        cv2.rectangle(out, card[:2], (card[2] - 1, card[3] - 1), (b, g, r), -1)
        cv2.putText(out, text, (card[0] + 2, card[3] - 2 - base), cv2.FONT_HERSHEY_SIMPLEX, fs, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def crop_stage_search(stage: str, detector_model: Path | None = None, threshold: float | None = None
                      ) -> Callable[[Any], Sequence[Any]]:
    """The whole-frame search of crop stage ``stage`` as live (detector tags confirmed and snapped by the
    nametag verifier, find/confirm.py; ``combined`` adds the nametag search's Cogs whose tags no detection
    claimed)."""
    from toonvision_live.find.confirm import full_search

    detector = None
    if stage != "nametags":
        from toonvision_live.find.detector import DEFAULT_THRESHOLD, CogDetector

        detector = CogDetector(detector_model, threshold=threshold or DEFAULT_THRESHOLD, threads=2)
    return full_search(stage, detector)


def find_cogs(rgb: np.ndarray, propose: Callable[[Any], Sequence[Any]], classifier: Any, reader: TagReader | None,
              batcher: Any, max_cogs: int = 16, min_guessed_confidence: float | None = None,
              ) -> list[tuple[Any, FusedLabel]]:
    """Each Cog of one frame as live finds and names it: (its proposal, its fused label).  As live, only
    verified tags are read (a tag box that is the detector's guess gives no reading), and a guessed tag
    with a body named under ``min_guessed_confidence`` (default: live's) is left out (most likely no Cog)."""
    from toonvision_live.classify.fusion import fuse_all
    from toonvision_live.find.confirm import GUESSED_MIN_CONFIDENCE

    low = GUESSED_MIN_CONFIDENCE if min_guessed_confidence is None else min_guessed_confidence
    proposals = list(propose(rgb))[:max_cogs]
    if not proposals:
        return []
    preds = classifier.classify(batcher.crop(rgb, proposals))
    verified = [i for i, p in enumerate(proposals) if p.tag_verified]
    readings: list[Any] = [None] * len(proposals)
    if reader is not None and verified:
        for i, r in zip(verified, reader.read(rgb, [proposals[i].tag_xyxy for i in verified]), strict=True):
            readings[i] = r
    return [(p, fused) for p, fused in zip(proposals, fuse_all(list(preds), readings), strict=True)
            if p.tag_verified or fused.confidence >= low]


class Predictor:
    """Crop stage + classifier + nametag reader (fused) on one image at a time; ``read_tags=False``:
    the classifier alone."""

    def __init__(self, stage: str | None = None, detector_model: Path | None = None,
                 classifier_model: Path | None = None, threshold: float | None = None, *,
                 read_tags: bool = True, reader_model: Path | None = None) -> None:
        from toonvision_live.classify.classifier import CogClassifier
        from toonvision_live.classify.reader import TagReader
        from toonvision_live.crops import CropBatcher
        from toonvision_live.model_card import default_model_path
        from toonvision_live.settings import Settings

        self.propose = crop_stage_search(stage or Settings().crop_stage, detector_model, threshold)
        self.classifier = CogClassifier(classifier_model or default_model_path(), ["cpu"])
        self.reader: TagReader | None = TagReader(reader_model, ["cpu"]) if read_tags else None
        self.batcher = CropBatcher(16)
        self.min_guessed_confidence: float | None = None  # None: live's

    def __call__(self, rgb: np.ndarray) -> list[PredictedCog]:
        out = []
        for p, fused in find_cogs(rgb, self.propose, self.classifier, self.reader, self.batcher,
                                  min_guessed_confidence=self.min_guessed_confidence):
            label = f"cog_{fused.suit}_{fused.cog}" if fused.kind == "cog" else fused.kind
            out.append(PredictedCog(label, fused.card_text(), fused.confidence,
                                    tuple(int(v) for v in p.body_xyxy),  # type: ignore[arg-type]
                                    tuple(int(v) for v in p.tag_xyxy), float(p.score),  # type: ignore[arg-type]
                                    fused.level, fused.v2, fused.suit, fused.hp))
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
    objects = tuple(VocObject(c.label, c.body_xyxy, level=c.level, v2=c.v2 if c.level is not None else None)
                    for c in cogs if c.in_voc)
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
                          Path(args.classifier) if args.classifier else None, args.threshold,
                          read_tags=not args.no_reader, reader_model=Path(args.reader) if args.reader else None)
    print(f"{'file':36s} {'cog':26s} {'level':>9s} {'HP':>7s} {'conf':>5s} {'score':>5s}  body box")
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
            level = "" if c.level is None else f"{c.level}" + (" v2.0" if c.v2 else "")
            hp = "" if c.hp is None else (f"{c.hp}+{c.hp}" if c.v2 else f"{c.hp}")
            print(f"{f.name[:36]:36s} {c.label[:26]:26s} {level:>9s} {hp:>7s} {100 * c.confidence:4.0f}% "
                  f"{c.score:5.2f}  {c.body_xyxy}")
    print(f"{total} Cogs in {done} images; XML and PNG in {out}.")
    return 1 if errors else 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from toonvision_live.settings import CROP_STAGE_SEARCHES, Settings

    p = subparsers.add_parser(
        "predict", help="find and name the Cogs in image files (VOC XML + annotated PNG per image)",
        description="Run the live crop stage and classifier on image files or folders; write DIR/<stem>.xml "
                    "(Pascal VOC, cog_<suit>_<cog> names) and DIR/<stem>.png, and print a table.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="image files or folders of images")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (created if needed)")
    p.add_argument("--scale", type=float, default=1.0, metavar="S",
                   help="resize each image by S first, as a window of that size shows it (default 1)")
    p.add_argument("--stage", choices=CROP_STAGE_SEARCHES,
                   default=Settings().crop_stage,
                   help=f"crop stage: the nametag search, the learned detector with its tags confirmed by the "
                        f"nametag verifier, or both combined (default {Settings().crop_stage}, as live); "
                        "detector-raw: the detector's own boxes")
    p.add_argument("--threshold", type=float, default=None, help="detector score threshold")
    p.add_argument("--model", metavar="ONNX", help="detector model (default models/detector.onnx)")
    p.add_argument("--classifier", metavar="ONNX", help="classifier model (default models/toonvision.onnx)")
    p.add_argument("--reader", metavar="ONNX", help="nametag reader model (default models/reader.onnx)")
    p.add_argument("--no-reader", action="store_true",
                   help="name Cogs by their bodies alone (no level, no HP, no Skelecogs/Boardbots)")
    p.set_defaults(handler=_predict)
