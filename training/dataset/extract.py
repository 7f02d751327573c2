"""``toonvision dataset extract``: cut every labelled box of the raw screenshots into 600x200 crops.

For each ``raw/screenshots/**/<name>.png|jpg`` with its ``<name>.xml`` (Pascal VOC,
labelImg), every box is cut out, stretched to 600 high x 200 wide (no aspect keeping;
``toonvision_live.crops``, the runtime's own stretch) and written as
``unsorted/<kind>/<label>_<N>.png`` with N the next free number: nothing is ever overwritten.

Images are read by content (the game writes JPEG data into ``.png`` files).
A bad file (malformed XML, unreadable image, missing XML, unknown label, box
outside the image) gives one sentence naming it; the rest of the batch goes on.
A box partly outside the image is clipped to it.

Re-running is safe: the dataset ledger (``DATASET/ledger.json``, :mod:`toonvision_live.ledger`,
shared with the hotkey saver) records, per screenshot, the hashes of the image and XML and which
crop each box gave.  Extract works in batches of about a second, each under the dataset's lock
(so a save from the live overlay waits at most that long and is never cut again) and each ending
with the ledger rewritten atomically (also when interrupted), so only a crash can lose a batch's
records.  Boxes already recorded are not cut again, even when the screenshot was renamed or its
XML gained new boxes; a crop you deleted stays deleted.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.crops import crop_box
from toonvision_live.errors import DataError, SaveError
from toonvision_live.fileio import ensure_dir, read_image_rgb, why_not_written, write_indexed_png
from toonvision_live.geometry import clip_box
from toonvision_live.ledger import Entry, Ledger, locked_ledger, object_key
from toonvision_live.taxonomy import parse_label
from toonvision_live.voc import VocAnnotation, VocObject, parse_voc
from training.dataset.layout import (
    KINDS,
    DatasetPaths,
    dataset_paths,
    list_labelled_crops,
    list_screenshots,
    street_of_screenshot,
)
from training.dataset.progress import MessageLog, track

#: extract holds the dataset lock for batches of about this long, then rewrites the ledger
LEDGER_SAVE_EVERY_S = 1.0


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


def _probe_writable(folder: Path) -> None:
    ensure_dir(folder)
    try:
        fd, name = tempfile.mkstemp(prefix=".probe-", dir=folder)
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise SaveError(f"Cannot write crops into {folder}: {why_not_written(exc, 'dataset folder')}.") from None


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
    for kind in KINDS:
        _probe_writable(paths.unsorted_dir(kind))
    # under the lock (an unreadable ledger stops the run here, before any work): the hotkey saver places
    # a screenshot's PNG and XML under it, so a save in progress is never seen half-placed
    with locked_ledger(paths.root):
        screenshots = list_screenshots(paths.screenshots)
        orphans = _orphan_annotations(paths.screenshots, screenshots)
    if not screenshots and not orphans:
        raise DataError(f"No screenshots (*.png, *.jpg) in {paths.screenshots}: put the screenshots and "
                        "their VOC .xml files there.")
    log = MessageLog(on_message)
    for xml_path in orphans:
        log.problem(f"{xml_path} has no screenshot beside it (same name, .png or .jpg): add the image or "
                    "remove the annotation.")
    crops: list[Path] = []
    outcomes: list[int | None] = []
    todo = iter(track(screenshots, total=len(screenshots), description="extract", enabled=progress))
    while len(outcomes) < len(screenshots):
        _extract_batch(todo, paths, crops, outcomes, log)
    return ExtractResult(
        len(screenshots), sum(1 for n in outcomes if n), sum(1 for n in outcomes if n == 0), tuple(crops),
        tuple(log.problems), tuple(log.notes),
    )


def _extract_batch(todo: Iterator[Path], paths: DatasetPaths, crops: list[Path], outcomes: list[int | None],
                   log: MessageLog) -> None:
    """Extract screenshots from ``todo`` for about LEDGER_SAVE_EVERY_S under the lock, then save the ledger."""
    started = time.monotonic()
    with locked_ledger(paths.root) as ledger:
        before = json.dumps(ledger.screenshots, sort_keys=True)
        batch: list[Path] = []
        try:
            for shot in todo:
                outcomes.append(_extract_one(shot, paths, ledger, batch, log))
                if time.monotonic() - started >= LEDGER_SAVE_EVERY_S:
                    break
        finally:
            crops.extend(batch)
            if json.dumps(ledger.screenshots, sort_keys=True) != before:
                try:
                    ledger.save()
                except SaveError:
                    # the ledger cannot record them (disk full...): remove this batch's crops, so a later
                    # run makes them again instead of twice
                    for path in batch:
                        path.unlink(missing_ok=True)
                        crops.remove(path)
                    raise


def _orphan_annotations(folder: Path, screenshots: list[Path]) -> list[Path]:
    stems = {s.with_suffix("") for s in screenshots}
    xmls = [p for p in folder.glob("*.xml")] + [p for p in folder.glob("*/*.xml")]
    return sorted(p for p in xmls if p.with_suffix("") not in stems and not p.name.startswith("."))


@dataclass(frozen=True, slots=True)
class _Shot:
    """One screenshot read: its ledger name, bytes' hashes and annotation."""

    path: Path
    rel: str
    xml_path: Path
    image_sha: str
    xml_sha: str
    annotation: VocAnnotation


def _read_shot(shot: Path, paths: DatasetPaths, log: MessageLog) -> _Shot | None:
    xml_path = shot.with_suffix(".xml")
    if not xml_path.is_file():
        log.problem(f"{shot} has no annotation {xml_path.name} beside it: label it in labelImg (or move it "
                    "out of raw/screenshots) and run extract again.")
        return None
    try:
        image_bytes, xml_bytes = shot.read_bytes(), xml_path.read_bytes()
    except OSError as exc:
        log.problem(f"Cannot read {exc.filename or shot} ({exc.strerror}): check the file and its permissions.")
        return None
    try:
        annotation = parse_voc(xml_bytes, xml_path)
    except DataError as exc:
        log.problem(str(exc))
        return None
    if not annotation.objects:
        log.note(f"{xml_path} has no boxes, so {shot.name} gives no crops: label it in labelImg if it shows "
                 "Cogs or Toons.")
        return None
    rel = shot.relative_to(paths.screenshots).as_posix()
    return _Shot(shot, rel, xml_path, _sha256(image_bytes), _sha256(xml_bytes), annotation)


def _boxes_to_cut(shot: _Shot, previous: Entry | None, log: MessageLog) -> list[tuple[int, VocObject]]:
    """The boxes of ``shot`` the ledger has no crop for (numbered from 1); notes stale crops."""
    done = Counter(o["key"] for o in previous["objects"]) if previous else Counter()
    todo: list[tuple[int, VocObject]] = []
    for number, obj in enumerate(shot.annotation.objects, start=1):
        key = object_key(obj.name, obj.xyxy)
        if done[key] > 0:
            done[key] -= 1
        else:
            todo.append((number, obj))
    if previous and previous.get("xml_sha256") != shot.xml_sha:
        stale = []
        for old in previous["objects"]:
            if done[old["key"]] > 0:
                done[old["key"]] -= 1
                stale.append(old["crop"] or "(removed)")
        if stale:
            log.note(f"{shot.xml_path} changed since it was extracted: the crops {', '.join(stale)} no longer "
                     "match a box in it; delete them from unsorted/ if they are wrong.")
    return todo


def _extract_one(
    shot_path: Path, paths: DatasetPaths, ledger: Ledger, crops: list[Path], log: MessageLog
) -> int | None:
    """Extract one screenshot; the number of new crops, or None when it was skipped."""
    shot = _read_shot(shot_path, paths, log)
    if shot is None:
        return None
    previous = ledger.find(shot.rel, shot.image_sha)
    replaced = ledger.screenshots.get(shot.rel)
    if previous is None and replaced is not None and replaced.get("objects"):
        log.note(f"{shot.path} is a different image than when it was extracted: its boxes are cut again, and "
                 f"the old crops {', '.join(o['crop'] or '(removed)' for o in replaced['objects'])} are kept; "
                 "delete them if they are wrong.")
    todo = _boxes_to_cut(shot, previous, log)
    entry: Entry = {"source": "extract", "captured": captured_from_name(shot.path), **(previous or {})}
    entry.update(image_sha256=shot.image_sha, xml_sha256=shot.xml_sha,
                 street=street_of_screenshot(shot.path, paths.screenshots),
                 objects=list(previous["objects"]) if previous else [])
    if not todo:
        if previous is not None:
            ledger.screenshots[shot.rel] = entry
        return 0
    try:
        rgb = _read_quietly(shot.path)
    except DataError as exc:
        log.problem(str(exc))
        return None
    height, width = rgb.shape[:2]
    if (shot.annotation.width, shot.annotation.height) != (width, height):
        log.note(f"{shot.xml_path} says the image is {shot.annotation.width}x{shot.annotation.height} but "
                 f"{shot.path.name} is {width}x{height}; its boxes are clipped to the real image.")
    written = skipped = 0
    try:
        for number, obj in todo:
            crop = _cut_box(rgb, obj, f"{shot.xml_path}: box {number} ({obj.name} at {list(obj.xyxy)})", log)
            if crop is None:
                skipped += 1
                continue
            kind, name, pixels = crop
            crop_path = write_indexed_png(paths.unsorted_dir(kind), name, pixels)
            crops.append(crop_path)
            entry["objects"].append({"key": object_key(obj.name, obj.xyxy), "crop": f"{kind}/{crop_path.name}"})
            written += 1
    finally:
        if written or previous is not None:
            ledger.screenshots[shot.rel] = entry
    return None if skipped and not written else written


def _cut_box(rgb: np.ndarray, obj: VocObject, where: str, log: MessageLog) -> tuple[str, str, np.ndarray] | None:
    """(kind, label, 600x200 crop) of one box, or None (and a problem) when it cannot be cut."""
    height, width = rgb.shape[:2]
    try:
        label = parse_label(obj.name)
    except DataError as exc:
        log.problem(f"{where} skipped: {exc}")
        return None
    x0, y0, x1, y1 = obj.xyxy
    if x1 <= x0 or y1 <= y0:
        log.problem(f"{where} skipped: the box is empty (xmax <= xmin or ymax <= ymin); redraw it in labelImg.")
        return None
    clipped = clip_box(obj.xyxy, (width, height))
    if clipped is None:
        log.problem(f"{where} skipped: the box lies outside the {width}x{height} image; redraw it in labelImg.")
        return None
    if clipped != obj.xyxy:
        log.note(f"{where} reaches outside the {width}x{height} image; clipped to {list(clipped)}.")
    return label.kind, label.name, crop_box(rgb, clipped)


def captured_from_name(shot: Path) -> str | None:
    """The capture time in a hotkey save's name (``2026-12-02_06-58-30-620.png``), ISO; None for other names."""
    try:
        return datetime.strptime(shot.stem[:23], "%Y-%m-%d_%H-%M-%S-%f").isoformat(timespec="milliseconds")
    except ValueError:
        return None


def rebuild_ledger(paths: DatasetPaths) -> Ledger:
    """A ledger rebuilt from the files: each screenshot's boxes cut again in memory and matched by pixels.

    A box whose crop is in ``unsorted/`` (same pixels) is recorded with it; one whose crop is gone is
    recorded as removed (``"crop": null``), so extract does not cut it again.  Nothing is written.
    """
    by_pixels: dict[str, str] = {}
    for kind in KINDS:
        for path, _ in list_labelled_crops(paths.unsorted_dir(kind), strict=False) \
                if paths.unsorted_dir(kind).is_dir() else []:
            with contextlib.suppress(DataError):
                by_pixels.setdefault(_sha256(_read_quietly(path).tobytes()), f"{kind}/{path.name}")
    ledger = Ledger(paths.root)
    log = MessageLog()
    for path in list_screenshots(paths.screenshots) if paths.screenshots.is_dir() else []:
        shot = _read_shot(path, paths, log)
        if shot is None:
            continue
        try:
            rgb = _read_quietly(path)
        except DataError:
            continue
        objects = []
        for obj in shot.annotation.objects:
            crop = _cut_box(rgb, obj, "", log)
            found = by_pixels.get(_sha256(crop[2].tobytes())) if crop else None
            objects.append({"key": object_key(obj.name, obj.xyxy), "crop": found})
        ledger.screenshots[shot.rel] = {
            "image_sha256": shot.image_sha, "xml_sha256": shot.xml_sha,
            "street": street_of_screenshot(path, paths.screenshots), "source": "rebuilt",
            "captured": captured_from_name(path), "objects": objects,
        }
    return ledger
