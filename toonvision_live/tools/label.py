"""``toonvision label FOLDER``: label a folder of game screenshots by themselves.

Every image in FOLDER without an XML beside it gets a Pascal VOC file (labelImg-compatible,
``cog_<suit>_<cog>`` names, each object with ``<level>`` and ``<v2>`` children that labelImg
ignores): the crop stage finds the Cogs, the classifier names each body, the
reader reads each tag, and :func:`toonvision_live.classify.fusion.fuse` decides: the same crop stage
(``--stage``, default the live one) and rules as live and ``toonvision predict``.  Cogs that are
none of the 32 (Skelecogs, Boardbots, unknown names) are left out of the XML and shown on the
review sheet, ``toonvision_review_<N>.png``, together with every uncertain label (low confidence,
body and tag disagreeing, a level outside the Cog's range), so a person checks only those.

Writes are atomic and never replace a file; an existing XML is kept as it is.  An unreadable image
is skipped with one sentence; a folder that cannot be written stops with one sentence.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toonvision_live.classify.fusion import FusedLabel
from toonvision_live.errors import ConfigError, DataError, SaveError
from toonvision_live.fileio import atomic_write_bytes, read_image_rgb, write_indexed_png
from toonvision_live.voc import VocAnnotation, VocObject, voc_to_xml

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp"})
REVIEW_PREFIX = "toonvision_review"
#: a label below this fused confidence goes on the review sheet
REVIEW_BELOW = 0.9
TILE_H = 150


@dataclass(frozen=True, slots=True)
class LabelledCog:
    body_xyxy: tuple[int, int, int, int]
    tag_xyxy: tuple[int, int, int, int]
    label: FusedLabel

    @property
    def uncertain(self) -> bool:
        lb = self.label
        return lb.kind != "cog" or lb.confidence < REVIEW_BELOW or lb.agree is False or not lb.level_plausible


@dataclass
class LabelReport:
    written: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # images that already had an XML
    unreadable: list[str] = field(default_factory=list)  # one sentence each
    review_sheet: Path | None = None
    cogs: int = 0
    uncertain: int = 0


class FolderLabeller:
    """The crop stage, the classifier and the reader, applied to one frame at a time as ``toonvision predict``
    and live apply them (:func:`toonvision_live.tools.predict.find_cogs`; crop stage ``stage``, default the
    live one)."""

    def __init__(self, classifier: Any, reader: Any, max_batch: int = 32, stage: str | None = None) -> None:
        from toonvision_live.crops import CropBatcher
        from toonvision_live.settings import Settings
        from toonvision_live.tools.predict import crop_stage_search

        self.classifier, self.reader = classifier, reader
        self.batcher = CropBatcher(max_batch)
        self.propose = crop_stage_search(stage or Settings().crop_stage)

    def label_frame(self, frame_rgb: np.ndarray) -> list[LabelledCog]:
        from toonvision_live.tools.predict import find_cogs

        found = find_cogs(frame_rgb, self.propose, self.classifier, self.reader, self.batcher, self.batcher.max_batch)
        return [LabelledCog(tuple(int(v) for v in p.body_xyxy), tuple(int(v) for v in p.tag_xyxy),  # type: ignore[arg-type]
                            lb) for p, lb in found]


def images_to_label(folder: Path) -> tuple[list[Path], list[Path]]:
    """(images without an XML, images that have one) in ``folder``, sorted; review sheets excluded."""
    todo: list[Path] = []
    kept: list[Path] = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith(REVIEW_PREFIX) or not path.is_file():
            continue
        (kept if path.with_suffix(".xml").exists() else todo).append(path)
    return todo, kept


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder: give the folder that holds your screenshots.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise SaveError(f"Could not write into {folder}: the folder is not writable; "
                        "copy the screenshots to a writable folder and label that one.")


def label_folder(folder: Path, labeller: FolderLabeller) -> LabelReport:
    """Write a VOC XML beside every screenshot of ``folder`` that has none, and the review sheet."""
    folder = Path(folder)
    _check_folder(folder)
    report = LabelReport()
    todo, report.kept = images_to_label(folder)
    review: list[tuple[np.ndarray, LabelledCog, str]] = []
    for path in todo:
        try:
            frame = read_image_rgb(path)
        except DataError as exc:
            report.unreadable.append(str(exc))
            continue
        cogs = labeller.label_frame(frame)
        shown = [c for c in cogs if c.label.kind == "cog" and c.label.cog is not None]
        h, w = frame.shape[:2]
        annotation = VocAnnotation(
            filename=path.name, width=w, height=h, folder=folder.name, path=str(path.resolve()),
            objects=tuple(VocObject(f"cog_{c.label.suit}_{c.label.cog}", c.body_xyxy, level=c.label.level,
                                    v2=c.label.v2 if c.label.level is not None else None) for c in shown))
        try:
            atomic_write_bytes(path.with_suffix(".xml"), voc_to_xml(annotation))
        except SaveError:
            if path.with_suffix(".xml").exists():  # written by someone else meanwhile: keep theirs
                report.kept.append(path)
                continue
            raise
        report.written.append(path.with_suffix(".xml"))
        report.cogs += len(cogs)
        for c in cogs:
            if c.uncertain:
                report.uncertain += 1
                review.append((frame, c, path.name))
    if review:
        report.review_sheet = write_indexed_png(folder, REVIEW_PREFIX, review_sheet(review))
    return report


def _tile(frame: np.ndarray, cog: LabelledCog, source: str) -> np.ndarray:
    x0, y0 = min(cog.tag_xyxy[0], cog.body_xyxy[0]), min(cog.tag_xyxy[1], cog.body_xyxy[1])
    x1, y1 = max(cog.tag_xyxy[2], cog.body_xyxy[2]), max(cog.tag_xyxy[3], cog.body_xyxy[3])
    region = frame[max(0, y0) : max(y0 + 1, y1), max(0, x0) : max(x0 + 1, x1)]
    k = TILE_H / max(1, region.shape[0])
    img = cv2.resize(region, (max(1, min(3 * TILE_H, int(region.shape[1] * k))), TILE_H))
    tile = np.full((TILE_H + 52, max(img.shape[1], 300), 3), 255, np.uint8)
    tile[:TILE_H, : img.shape[1]] = img
    lb = cog.label
    why = "not one of the 32" if lb.kind != "cog" else ("body and tag disagree" if lb.agree is False else
          ("level outside its range" if not lb.level_plausible else f"confidence {lb.confidence:.2f}"))
    for i, text in enumerate((lb.card_text().replace("·", "-"), why, source)):
        cv2.putText(tile, text[:40], (3, TILE_H + 14 + 16 * i), cv2.FONT_HERSHEY_PLAIN, 0.9, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def review_sheet(items: Sequence[tuple[np.ndarray, LabelledCog, str]], columns: int = 4) -> np.ndarray:
    """One RGB image of the uncertain Cogs: each its tag and body, the label and why it is shown."""
    tiles = [_tile(f, c, s) for f, c, s in items]
    width = max(t.shape[1] for t in tiles)
    tiles = [np.pad(t, ((0, 0), (0, width - t.shape[1]), (0, 0)), constant_values=255) for t in tiles]
    while len(tiles) % columns and len(tiles) > columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def register(subparsers: Any) -> None:
    from toonvision_live.settings import CROP_STAGE_SEARCHES, Settings

    p = subparsers.add_parser(
        "label", help="write VOC XML beside the screenshots of a folder that have none (plus a review sheet)",
        description="Label a folder of game screenshots by themselves: for every image without an XML, "
        "find the Cogs (the live crop stage), classify each body, read each tag and write the VOC XML "
        "beside it (with <level> and <v2>); uncertain Cogs go on a review sheet PNG. Existing XML files "
        "are never touched.")
    p.add_argument("folder", type=Path, help="folder of screenshots")
    p.add_argument("--model", type=Path, default=None, help="classifier ONNX (default: the shipped model)")
    p.add_argument("--reader", type=Path, default=None, help="reader ONNX (default: the shipped reader)")
    p.add_argument("--provider", default="auto", help="onnxruntime provider: auto, cuda or cpu")
    p.add_argument("--stage", choices=CROP_STAGE_SEARCHES, default=Settings().crop_stage,
                   help=f"crop stage, as predict's (default {Settings().crop_stage}, as live)")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    from toonvision_live.classify.classifier import CogClassifier, providers_for
    from toonvision_live.classify.reader import TagReader
    from toonvision_live.model_card import default_model_path

    _check_folder(args.folder)
    providers = providers_for(args.provider)
    labeller = FolderLabeller(CogClassifier(args.model or default_model_path(), providers),
                              TagReader(args.reader, providers), stage=args.stage)
    report = label_folder(args.folder, labeller)
    for sentence in report.unreadable:
        print(f"skipped: {sentence}")
    print(f"labelled {len(report.written)} screenshots ({report.cogs} Cogs, {report.uncertain} to review); "
          f"kept {len(report.kept)} existing XML files"
          + (f"; review sheet {report.review_sheet}" if report.review_sheet else ""))
    return 0
