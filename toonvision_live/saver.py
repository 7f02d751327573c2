"""Save a labelled frame into a ToonVision dataset: frame PNG + VOC XML + 600x200 Cog crops.

    DATASET/raw/screenshots/<timestamp>.png and .xml     the full frame and its boxes
    DATASET/unsorted/cog/cog_<suit>_<key>_<N>.png        one 600x200 crop per Cog (next free N)

All or nothing: every file is first written to a temporary file beside its
target (``_write_temp``, the single place that writes bytes), then all are
linked into place; if anything fails, what was already placed and every
temporary file are removed and one ``SaveError`` sentence says why.  Nothing is
ever overwritten.  ``FrameSaver`` runs saves on its own thread so the overlay
never waits for the disk.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.errors import DataError, SaveError
from toonvision_live.fileio import encode_png, next_free_index
from toonvision_live.geometry import XYXY, clip_box
from toonvision_live.ledger import Ledger, locked_ledger, screenshot_entry
from toonvision_live.model_card import CROP_HEIGHT, CROP_WIDTH
from toonvision_live.voc import VocAnnotation, VocObject, voc_to_xml

SCREENSHOTS = Path("raw") / "screenshots"
COG_CROPS = Path("unsorted") / "cog"


@dataclass(frozen=True, slots=True)
class SavedFrame:
    screenshot: Path
    annotation: Path
    crops: tuple[Path, ...]


def _why(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full: free some space and save again"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is read-only: choose a writable dataset folder with --dataset"
    if exc.errno == errno.ENOENT:
        return "the folder does not exist: create it or choose another with --dataset"
    return f"{exc.strerror or exc}: check the dataset folder"


def cog_objects(cogs: Iterable, size_wh: tuple[int, int]) -> list[VocObject]:
    """VOC objects ``cog_<suit>_<key>`` for tracked Cogs, boxes clipped to the frame (empty ones dropped)."""
    objects = []
    for cog in cogs:
        box = clip_box(cog.body_xyxy, size_wh)
        if box is not None:
            objects.append(VocObject(f"cog_{cog.suit}_{cog.cog}", box))
    return objects


def crop_600x200(frame_rgb: np.ndarray, xyxy: XYXY) -> np.ndarray:
    """The box stretched to 600 high x 200 wide (aspect not kept, as ToonVision crops are)."""
    x0, y0, x1, y1 = xyxy
    return cv2.resize(frame_rgb[y0:y1, x0:x1], (CROP_WIDTH, CROP_HEIGHT), interpolation=cv2.INTER_AREA)


def _write_temp(folder: Path, data: bytes, suffix: str) -> Path:
    """Write ``data`` to a new temporary file in ``folder`` (the only place bytes reach the disk)."""
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)


def _unique_stem(folder: Path, stem: str) -> str:
    candidate, n = stem, 1
    while (folder / f"{candidate}.png").exists() or (folder / f"{candidate}.xml").exists():
        candidate, n = f"{stem}_{n}", n + 1
    return candidate


def _place_all(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write every (path, bytes) or none of them."""
    temps: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for path, data in files:
            temps.append((_write_temp(path.parent, data, path.suffix), path))
        for temp, path in temps:
            os.link(temp, path)  # EEXIST instead of replacing a file
            placed.append(path)
    except OSError as exc:
        for path in placed:
            with contextlib.suppress(OSError):
                path.unlink()
        target = files[len(placed)][0] if isinstance(exc, FileExistsError) else None
        if target is not None:
            raise SaveError(f"Could not save the frame: {target} appeared meanwhile; save again.") from None
        raise SaveError(f"Could not save the frame into {files[0][0].parents[2]}: {_why(exc)}.") from None
    finally:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                temp.unlink()


def save_labelled_frame(
    frame_rgb: np.ndarray, cogs: Iterable, dataset_dir: Path, *, when: datetime | None = None
) -> SavedFrame:
    """Save the frame, its VOC XML and one 600x200 crop per Cog into ``dataset_dir``.

    ``cogs`` are tracked Cogs (``body_xyxy``, ``suit``, ``cog``) in frame pixels.
    The dataset folder must exist (its sub-folders are created); a SaveError
    sentence explains a missing, read-only or full folder, and then no file is left behind.
    Under the dataset's lock the files are placed and recorded in the dataset ledger
    (:mod:`toonvision_live.ledger`), so ``toonvision dataset extract`` never cuts them again.
    """
    root = Path(dataset_dir).expanduser()
    if not root.is_dir():
        raise SaveError(f"The dataset folder {root} does not exist: create it or choose another with --dataset.")
    shots, crops_dir = root / SCREENSHOTS, root / COG_CROPS
    try:
        shots.mkdir(parents=True, exist_ok=True)
        crops_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(f"Could not save the frame into {root}: {_why(exc)}.") from None

    height, width = frame_rgb.shape[:2]
    objects = cog_objects(cogs, (width, height))
    when = when or datetime.now()
    try:
        return _save_locked(frame_rgb, objects, root, when)
    except DataError as exc:  # an unreadable ledger
        raise SaveError(str(exc)) from None


def _save_locked(frame_rgb: np.ndarray, objects: list[VocObject], root: Path, when: datetime) -> SavedFrame:
    height, width = frame_rgb.shape[:2]
    shots, crops_dir = root / SCREENSHOTS, root / COG_CROPS
    with locked_ledger(root) as ledger:  # names, files and the ledger record change together
        stem = _unique_stem(shots, when.strftime("%Y-%m-%d_%H-%M-%S-%f")[:-3])
        png_path, xml_path = shots / f"{stem}.png", shots / f"{stem}.xml"
        annotation = VocAnnotation(
            filename=png_path.name,
            width=width,
            height=height,
            objects=tuple(objects),
            folder="screenshots",
            path=str(png_path),
        )
        files: list[tuple[Path, bytes]] = [(png_path, encode_png(frame_rgb)), (xml_path, voc_to_xml(annotation))]
        used: dict[str, int] = {}
        for obj in objects:
            index = used.get(obj.name)
            if index is None:
                index = next_free_index(crops_dir, obj.name)
            used[obj.name] = index + 1
            files.append((crops_dir / f"{obj.name}_{index}.png", encode_png(crop_600x200(frame_rgb, obj.xyxy))))
        _place_all(files)
        _record(ledger, files, objects, when)
    return SavedFrame(png_path, xml_path, tuple(path for path, _ in files[2:]))


def _record(ledger: Ledger, files: Sequence[tuple[Path, bytes]], objects: Sequence[VocObject], when: datetime) -> None:
    """Record the saved screenshot and its crops in the dataset ledger; on failure remove the saved files."""
    (png_path, png), (_, xml) = files[0], files[1]
    crops = [(obj.name, obj.xyxy, f"cog/{path.name}") for obj, (path, _) in zip(objects, files[2:], strict=True)]
    ledger.screenshots[png_path.name] = screenshot_entry(png, xml, crops, source="hotkey", captured=when)
    try:
        ledger.save()
    except SaveError:
        for path, _ in files:
            with contextlib.suppress(OSError):
                path.unlink()
        raise


class FrameSaver:
    """Saves on one background thread; ``done(result)`` gets a SavedFrame or the SaveError."""

    def __init__(self, dataset_dir: Path) -> None:
        self.dataset_dir = Path(dataset_dir)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="toonvision-saver")

    def save(self, frame_rgb: np.ndarray, cogs: Sequence, done: Callable[[SavedFrame | SaveError], None]) -> Future:
        def finished(future: Future) -> None:
            exc = future.exception()
            if exc is None:
                done(future.result())
            elif isinstance(exc, SaveError):
                done(exc)
            else:
                done(SaveError(f"Could not save the frame: {type(exc).__name__}: {exc}."))

        future = self._pool.submit(save_labelled_frame, frame_rgb, tuple(cogs), self.dataset_dir)
        future.add_done_callback(finished)
        return future

    def close(self) -> None:
        self._pool.shutdown(wait=True)
