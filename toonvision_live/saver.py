"""Save a labelled frame into a ToonVision dataset: frame PNG + VOC XML + 600x200 Cog crops.

    DATASET/raw/screenshots/<timestamp>.png and .xml     the full frame and its boxes
    DATASET/unsorted/cog/cog_<suit>_<key>_<N>.png        one 600x200 crop per Cog (next free N)

All or nothing: every file is first written to a temporary file beside its
target (``fileio.write_temp``, the single place that writes bytes, files 0644
like every other), then all are linked into place; if anything fails, what was
already placed and every temporary file are removed and one ``SaveError``
sentence says why.  Nothing is ever overwritten.  Each save is recorded in the dataset ledger
(``toonvision_live.ledger``) under the dataset's lock, in the same step that places its files, so
``dataset extract`` never cuts it again.  ``FrameSaver`` runs saves on its own thread so the overlay
never waits for the disk.
"""

from __future__ import annotations

import contextlib
import errno
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

import numpy as np

from toonvision_live.crops import crop_box
from toonvision_live.errors import DataError, SaveError
from toonvision_live.fileio import encode_png, next_free_index, why_not_written, write_all_or_nothing
from toonvision_live.geometry import clip_box
from toonvision_live.ledger import Ledger, locked_ledger, screenshot_entry
from toonvision_live.voc import VocAnnotation, VocObject, voc_to_xml

SCREENSHOTS = Path("raw") / "screenshots"
COG_CROPS = Path("unsorted") / "cog"


class LabelledCog(Protocol):
    """What a save needs of a Cog (a ``TrackedCog``): its body box in frame pixels and its labels."""

    @property
    def body_xyxy(self) -> Sequence[float]: ...

    @property
    def suit(self) -> str: ...

    @property
    def cog(self) -> str: ...


@dataclass(frozen=True, slots=True)
class SavedFrame:
    screenshot: Path
    annotation: Path
    crops: tuple[Path, ...]


#: the folder a user chooses instead, in the sentences of a failed save
DATASET_FOLDER = "dataset folder (--dataset)"


def cog_objects(cogs: Iterable[LabelledCog], size_wh: tuple[int, int]) -> list[VocObject]:
    """VOC objects ``cog_<suit>_<key>`` for tracked Cogs, boxes clipped to the frame (empty ones dropped).

    A Cog whose nametag was read carries its ``<level>`` and ``<v2>``; one the tag names as none of
    the 32 (a Skelecog, a Boardbot, an unknown Cog) is left out rather than saved under a wrong name."""
    objects = []
    for cog in cogs:
        fused = getattr(cog, "fused", None)
        if fused is not None and fused.kind != "cog":
            continue
        box = clip_box(cog.body_xyxy, size_wh)
        if box is not None:
            level = fused.level if fused is not None else None
            v2 = bool(fused.v2) if fused is not None and level is not None else None
            objects.append(VocObject(f"cog_{cog.suit}_{cog.cog}", box, level=level, v2=v2))
    return objects


def _unique_stem(folder: Path, stem: str) -> str:
    candidate, n = stem, 1
    while (folder / f"{candidate}.png").exists() or (folder / f"{candidate}.xml").exists():
        candidate, n = f"{stem}_{n}", n + 1
    return candidate


def _place_all(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write every (path, bytes) or none of them; one SaveError sentence when it fails."""
    try:
        write_all_or_nothing(files)
    except FileExistsError as exc:
        raise SaveError(f"Could not save the frame: {exc.filename} appeared meanwhile; save again.") from None
    except OSError as exc:
        root = files[0][0].parents[2]
        raise SaveError(f"Could not save the frame into {root}: {why_not_written(exc, DATASET_FOLDER)}.") from None


def save_labelled_frame(
    frame_rgb: np.ndarray, cogs: Iterable[LabelledCog], dataset_dir: Path, *, when: datetime | None = None
) -> SavedFrame:
    """Save the frame, its VOC XML and one 600x200 crop per Cog into ``dataset_dir``.

    ``cogs`` are tracked Cogs (``body_xyxy``, ``suit``, ``cog``) in frame pixels.
    The dataset folder must exist (its sub-folders are created); a SaveError
    sentence explains a missing, read-only or full folder, and then no file is left behind.
    """
    root = Path(dataset_dir).expanduser()
    if not root.is_dir():
        missing = FileNotFoundError(errno.ENOENT, "No such file or directory")
        raise SaveError(f"Could not save the frame into {root}: {why_not_written(missing, DATASET_FOLDER)}.")
    shots, crops_dir = root / SCREENSHOTS, root / COG_CROPS
    try:
        shots.mkdir(parents=True, exist_ok=True)
        crops_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SaveError(f"Could not save the frame into {root}: {why_not_written(exc, DATASET_FOLDER)}.") from None

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
            files.append((crops_dir / f"{obj.name}_{index}.png", encode_png(crop_box(frame_rgb, obj.xyxy))))
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

    def save(
        self, frame_rgb: np.ndarray, cogs: Sequence[LabelledCog], done: Callable[[SavedFrame | SaveError], None]
    ) -> Future[SavedFrame]:
        def finished(future: Future[SavedFrame]) -> None:
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
