"""``toonvision dataset extract``: cut every labelled box of the raw screenshots into 600x200 crops.

For each ``raw/screenshots/**/<name>.png|jpg`` with its ``<name>.xml`` (Pascal VOC,
labelImg), every box is cut out, stretched to 600 high x 200 wide (no aspect
keeping, ``cv2.INTER_AREA``) and written as ``unsorted/<kind>/<label>_<N>.png``
with N the next free number: nothing is ever overwritten.

Images are read by content (the game writes JPEG data into ``.png`` files).
A bad file (malformed XML, unreadable image, missing XML, unknown label, box
outside the image) gives one sentence naming it; the rest of the batch goes on.
A box partly outside the image is clipped to it.

Re-running is safe: ``unsorted/.extracted.json`` records, per screenshot, the
hashes of the image and XML and which crop each box gave.  It is rewritten
atomically at most once a second during a run and always at its end (also when
interrupted), so only a crash can lose its last second.  Boxes already
extracted are not cut again, even when the screenshot was renamed or its XML
gained new boxes; a crop you deleted stays deleted.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.errors import DataError, SaveError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir, read_image_rgb, write_indexed_png
from toonvision_live.model_card import CROP_HEIGHT, CROP_WIDTH
from toonvision_live.taxonomy import parse_label
from toonvision_live.voc import VocObject, parse_voc
from training.dataset.layout import (
    KINDS,
    DatasetPaths,
    dataset_paths,
    list_screenshots,
    street_of_screenshot,
)
from training.dataset.progress import track

LEDGER_VERSION = 1
#: the ledger is rewritten at most this often during a run (and always at its end)
LEDGER_SAVE_EVERY_S = 1.0

XyXy = tuple[int, int, int, int]


def clip_xyxy(xyxy: XyXy, size_wh: tuple[int, int]) -> XyXy | None:
    """Clip a pixel box (xmin, ymin inclusive; xmax, ymax exclusive) to an image of ``size_wh``.

    Returns None when nothing of the box is inside the image (or the box is empty).
    """
    width, height = size_wh
    x0, y0, x1, y1 = xyxy
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return (x0, y0, x1, y1)


def crop_to_model_input(rgb: np.ndarray, xyxy: XyXy) -> np.ndarray:
    """Cut ``xyxy`` out of ``rgb`` and stretch it to CROP_HEIGHT x CROP_WIDTH (INTER_AREA)."""
    x0, y0, x1, y1 = xyxy
    patch = rgb[y0:y1, x0:x1]
    return cv2.resize(patch, (CROP_WIDTH, CROP_HEIGHT), interpolation=cv2.INTER_AREA)


@dataclass(frozen=True, slots=True)
class ExtractResult:
    screenshots: int  # screenshots found
    extracted: int  # screenshots that gave at least one new crop
    already_done: int  # screenshots whose boxes were all extracted before
    crops: tuple[Path, ...]  # crops written by this run
    problems: tuple[str, ...]  # one sentence per skipped file or box
    notes: tuple[str, ...]  # clipped boxes and other things done differently than asked

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        by_kind = Counter(p.parent.name for p in self.crops)
        kinds = ", ".join(f"{by_kind[k]} {k}" for k in KINDS)
        text = (f"Extracted {len(self.crops)} crops ({kinds}) from {self.extracted} of "
                f"{self.screenshots} screenshots; {self.already_done} were already extracted")
        if self.problems:
            text += f"; {len(self.problems)} files or boxes skipped (see the messages above)"
        return text + "."


@dataclass(slots=True)
class _Ledger:
    path: Path
    screenshots: dict[str, dict] = field(default_factory=dict)
    dirty: bool = False
    saved_at: float = float("-inf")
    unsaved_crops: list[Path] = field(default_factory=list)  # written since the last save

    @classmethod
    def load(cls, path: Path) -> _Ledger:
        if not path.exists():
            return cls(path)
        try:
            raw = json.loads(path.read_text("utf-8"))
            screenshots = raw["screenshots"]
            if not isinstance(screenshots, dict):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(
                f"The extract ledger {path} is unreadable: delete it to extract every screenshot again "
                "(crops made before would then be made a second time)."
            ) from None
        return cls(path, screenshots)

    def find(self, rel: str, image_sha: str) -> dict | None:
        entry = self.screenshots.get(rel)
        if entry is not None and entry.get("image_sha256") == image_sha:
            return entry
        for other in self.screenshots.values():  # the same image under another name
            if other.get("image_sha256") == image_sha:
                return other
        return None

    def save(self, *, at_most_every_s: float = 0.0) -> None:
        """Write the ledger atomically (compact JSON) unless it was written under ``at_most_every_s`` ago."""
        self.dirty = True
        if time.monotonic() - self.saved_at < at_most_every_s:
            return
        data = json.dumps({"version": LEDGER_VERSION, "screenshots": self.screenshots}, separators=(",", ":"))
        atomic_write_bytes(self.path, data.encode("utf-8") + b"\n", overwrite=True)
        self.dirty, self.saved_at = False, time.monotonic()
        self.unsaved_crops.clear()

    def flush(self) -> None:
        if self.dirty:
            self.save()


def _object_key(obj: VocObject) -> str:
    return f"{obj.name}@{','.join(str(v) for v in obj.xyxy)}"


def _probe_writable(folder: Path) -> None:
    ensure_dir(folder)
    try:
        fd, name = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise SaveError(
            f"Cannot write crops into {folder} ({exc.strerror}): make the dataset folder writable "
            "or choose another one."
        ) from None


def _read_quietly(path: Path) -> np.ndarray:
    """read_image_rgb without OpenCV's own warnings about broken files (our message says it)."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        return read_image_rgb(path)
    finally:
        cv2.utils.logging.setLogLevel(level)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def extract_dataset(
    root: Path | str,
    *,
    progress: bool = True,
    on_message: Callable[[str], None] | None = None,
) -> ExtractResult:
    """Extract every labelled box of ``root``'s raw screenshots into ``unsorted/``.

    ``on_message`` receives each problem and note as it happens (the CLI prints them).
    Raises DataError when the dataset or its screenshots folder is missing, and
    SaveError when the crops cannot be written at all (read-only folder, full disk).
    """
    paths = dataset_paths(root)
    if not paths.root.is_dir():
        raise DataError(f"Dataset folder {paths.root} does not exist: check the path, or create it with "
                        "the screenshots under raw/screenshots/.")
    if not paths.screenshots.is_dir():
        raise DataError(f"{paths.root} has no raw/screenshots folder: put the screenshots and their VOC "
                        f".xml files in {paths.screenshots}.")
    screenshots = list_screenshots(paths.screenshots)
    orphans = _orphan_annotations(paths.screenshots, screenshots)
    if not screenshots and not orphans:
        raise DataError(f"No screenshots (*.png, *.jpg) in {paths.screenshots}: put the screenshots and "
                        "their VOC .xml files there.")
    for kind in KINDS:
        _probe_writable(paths.unsorted_dir(kind))
    ledger = _Ledger.load(paths.ledger)

    problems: list[str] = []
    notes: list[str] = []

    def problem(text: str) -> None:
        problems.append(text)
        if on_message:
            on_message(f"problem: {text}")

    def note(text: str) -> None:
        notes.append(text)
        if on_message:
            on_message(f"note: {text}")

    for xml_path in orphans:
        problem(f"{xml_path} has no screenshot beside it (same name, .png or .jpg): add the image or "
                "remove the annotation.")

    crops: list[Path] = []
    extracted = already_done = 0
    try:
        for shot in track(screenshots, total=len(screenshots), description="extract", enabled=progress):
            written = _extract_one(shot, paths, ledger, crops, problem, note)
            if written is None:
                continue
            if written:
                extracted += 1
            else:
                already_done += 1
    finally:
        try:
            ledger.flush()
        except SaveError:
            # the ledger cannot record them (disk full...): remove this run's unrecorded crops, so a
            # later run makes them again instead of twice
            for path in ledger.unsaved_crops:
                path.unlink(missing_ok=True)
            raise
    return ExtractResult(
        len(screenshots), extracted, already_done, tuple(crops), tuple(problems), tuple(notes)
    )


def _orphan_annotations(folder: Path, screenshots: list[Path]) -> list[Path]:
    stems = {s.with_suffix("") for s in screenshots}
    xmls = [p for p in folder.glob("*.xml")] + [p for p in folder.glob("*/*.xml")]
    return sorted(p for p in xmls if p.with_suffix("") not in stems and not p.name.startswith("."))


def _extract_one(
    shot: Path,
    paths: DatasetPaths,
    ledger: _Ledger,
    crops: list[Path],
    problem: Callable[[str], None],
    note: Callable[[str], None],
) -> int | None:
    """Extract one screenshot; the number of new crops, or None when it was skipped."""
    rel = shot.relative_to(paths.screenshots).as_posix()
    xml_path = shot.with_suffix(".xml")
    if not xml_path.is_file():
        problem(f"{shot} has no annotation {xml_path.name} beside it: label it in labelImg (or move it "
                "out of raw/screenshots) and run extract again.")
        return None
    try:
        image_bytes = shot.read_bytes()
        xml_bytes = xml_path.read_bytes()
    except OSError as exc:
        problem(f"Cannot read {exc.filename or shot} ({exc.strerror}): check the file and its permissions.")
        return None
    try:
        annotation = parse_voc(xml_bytes, xml_path)
    except DataError as exc:
        problem(str(exc))
        return None
    if not annotation.objects:
        note(f"{xml_path} has no boxes, so {shot.name} gives no crops: label it in labelImg if it shows "
             "Cogs or Toons.")
        return None
    image_sha, xml_sha = _sha256(image_bytes), _sha256(xml_bytes)
    previous = ledger.find(rel, image_sha)
    replaced = ledger.screenshots.get(rel)
    if previous is None and replaced is not None and replaced.get("objects"):
        note(f"{shot} is a different image than when it was extracted: its boxes are cut again, and the "
             f"old crops {', '.join(o['crop'] for o in replaced['objects'])} are kept; delete them if "
             "they are wrong.")
    done = Counter(o["key"] for o in previous["objects"]) if previous else Counter()

    todo: list[tuple[int, VocObject]] = []
    for number, obj in enumerate(annotation.objects, start=1):
        key = _object_key(obj)
        if done[key] > 0:
            done[key] -= 1
        else:
            todo.append((number, obj))
    if previous and previous.get("xml_sha256") != xml_sha:
        stale = []
        for old in previous["objects"]:
            if done[old["key"]] > 0:
                done[old["key"]] -= 1
                stale.append(old["crop"])
        if stale:
            note(f"{xml_path} changed since it was extracted: the crops {', '.join(stale)} no longer match "
                 "a box in it; delete them from unsorted/ if they are wrong.")

    entry = {
        "image_sha256": image_sha,
        "xml_sha256": xml_sha,
        "street": street_of_screenshot(shot, paths.screenshots),
        "objects": list(previous["objects"]) if previous else [],
    }
    if not todo:
        if previous is not None and ledger.screenshots.get(rel) != entry:
            ledger.screenshots[rel] = entry
            ledger.save(at_most_every_s=LEDGER_SAVE_EVERY_S)
        return 0

    try:
        rgb = _read_quietly(shot)
    except DataError as exc:
        problem(str(exc))
        return None
    height, width = rgb.shape[:2]
    if (annotation.width, annotation.height) != (width, height):
        note(f"{xml_path} says the image is {annotation.width}x{annotation.height} but {shot.name} is "
             f"{width}x{height}; its boxes are clipped to the real image.")

    written = skipped = 0
    try:
        for number, obj in todo:
            where = f"{xml_path}: box {number} ({obj.name} at {list(obj.xyxy)})"
            try:
                label = parse_label(obj.name)
            except DataError as exc:
                problem(f"{where} skipped: {exc}")
                skipped += 1
                continue
            x0, y0, x1, y1 = obj.xyxy
            if x1 <= x0 or y1 <= y0:
                problem(f"{where} skipped: the box is empty (xmax <= xmin or ymax <= ymin); redraw it in "
                        "labelImg.")
                skipped += 1
                continue
            clipped = clip_xyxy(obj.xyxy, (width, height))
            if clipped is None:
                problem(f"{where} skipped: the box lies outside the {width}x{height} image; redraw it "
                        "in labelImg.")
                skipped += 1
                continue
            if clipped != obj.xyxy:
                note(f"{where} reaches outside the {width}x{height} image; clipped to {list(clipped)}.")
            crop = crop_to_model_input(rgb, clipped)
            crop_path = write_indexed_png(paths.unsorted_dir(label.kind), label.name, crop)
            crops.append(crop_path)
            ledger.unsaved_crops.append(crop_path)
            entry["objects"].append({"key": _object_key(obj), "crop": f"{label.kind}/{crop_path.name}"})
            written += 1
    finally:
        if written or previous is not None:
            ledger.screenshots[rel] = entry
            ledger.save(at_most_every_s=LEDGER_SAVE_EVERY_S)
    return None if skipped and not written else written
