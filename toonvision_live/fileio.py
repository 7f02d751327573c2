"""Atomic, never-overwriting file writes shared by the saver, dataset tools and renderer.

Every write goes to a temporary file in the target folder (:func:`write_temp`, the one place bytes
reach the disk, mode 0666 less the umask like any ``open()``) and is linked or renamed into place, so
a crash or a full disk never leaves a half-written file; :func:`write_all_or_nothing` places a group
of files that way or none of them.  Indexed names (``cog_sb_coldcaller_7.png``) take the next free
number and are reserved with O_EXCL, so two writers never pick the same one.  :func:`why_not_written`
is the one table from errno to the sentence a user reads.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.errors import SaveError

_NOT_WRITABLE = "the folder is not writable (read-only or no permission): choose a writable {folder}"
#: why a write failed, by errno: the second half of a sentence ("Could not write X: <why>.")
_WHY_NOT_WRITTEN: dict[int, str] = {
    errno.ENOSPC: "the disk is full: free some space and try again",
    errno.EDQUOT: "the disk quota is used up: free some space and try again",
    errno.EACCES: _NOT_WRITABLE,
    errno.EPERM: _NOT_WRITABLE,
    errno.EROFS: _NOT_WRITABLE,
    errno.ENOENT: "the folder does not exist: create it or choose another {folder}",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another {folder}",
    errno.ENAMETOOLONG: "the path is too long: choose a shorter {folder}",
}


def why_not_written(exc: OSError, folder: str = "folder") -> str:
    """Why ``exc`` stopped a write, as the end of a sentence; ``folder`` names the folder to choose
    instead (e.g. "dataset folder (--dataset)")."""
    why = _WHY_NOT_WRITTEN.get(exc.errno or 0, "{strerror}: check the {folder}")
    return why.format(folder=folder, strerror=exc.strerror or exc)


def _explain(exc: OSError, path: Path) -> SaveError:
    return SaveError(f"Could not write {path}: {why_not_written(exc)}.")


def ensure_dir(folder: Path) -> Path:
    """Create ``folder`` (and parents); a SaveError explains why it cannot be."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _explain(exc, folder) from None
    return folder


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: mode for new files: what open() would give (0666 less the umask), not mkstemp's 0600
_FILE_MODE = 0o666 & ~_umask()


def write_temp(folder: Path, data: bytes, suffix: str = "") -> Path:
    """``data`` in a new temporary file in ``folder``, flushed to the disk, with the usual file mode (not
    mkstemp's 0600).  OSError as it comes; nothing is left behind when it fails."""
    fd, name = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=folder)
    try:
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise
    return Path(name)


def atomic_write_bytes(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temp file + rename.

    With ``overwrite=False`` an existing file is never replaced (SaveError).
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        tmp = write_temp(path.parent, data, path.suffix)
        if overwrite:
            os.replace(tmp, path)
        else:
            os.link(tmp, path)  # fails with EEXIST instead of replacing
            os.unlink(tmp)
        tmp = None
    except FileExistsError:
        raise SaveError(f"Refusing to overwrite {path}: it already exists.") from None
    except OSError as exc:
        raise _explain(exc, path) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return path


def write_all_or_nothing(files: Sequence[tuple[Path, bytes]]) -> None:
    """Write every ``(path, bytes)`` (none may exist yet) or, when one fails, none of them: the files
    already placed and every temporary file are removed, and the OSError is raised again
    (FileExistsError when a target appeared meanwhile; its ``filename`` is that target)."""
    temps: list[tuple[Path, Path]] = []
    placed: list[Path] = []
    try:
        for path, data in files:
            temps.append((write_temp(path.parent, data, path.suffix), path))
        for temp, path in temps:
            try:
                os.link(temp, path)  # EEXIST instead of replacing a file
            except FileExistsError as exc:
                raise FileExistsError(exc.errno, exc.strerror, str(path)) from None
            placed.append(path)
    except OSError:
        for path in placed:
            with contextlib.suppress(OSError):
                path.unlink()
        raise
    finally:
        for temp, _ in temps:
            with contextlib.suppress(OSError):
                temp.unlink()


def encode_png(rgb: np.ndarray) -> bytes:
    """PNG bytes of an RGB (H, W, 3) uint8 image."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise SaveError("Could not encode an image as PNG.")
    return buf.tobytes()


def write_png(path: Path, rgb: np.ndarray, *, overwrite: bool = False) -> Path:
    """Atomically write an RGB uint8 image as PNG."""
    return atomic_write_bytes(Path(path), encode_png(rgb), overwrite=overwrite)


def next_free_index(folder: Path, prefix: str, suffix: str = ".png") -> int:
    """The smallest index above every ``<prefix>_<N><suffix>`` already in ``folder``."""
    pattern = re.compile(re.escape(prefix) + r"_(\d+)" + re.escape(suffix) + r"$")
    highest = -1
    if folder.is_dir():
        for entry in os.scandir(folder):
            match = pattern.match(entry.name)
            if match:
                highest = max(highest, int(match.group(1)))
    return highest + 1


def write_indexed_png(folder: Path, prefix: str, rgb: np.ndarray) -> Path:
    """Write ``rgb`` as ``folder/<prefix>_<N>.png`` with N the next free number.

    Never overwrites: if another writer takes N first, the next number is tried.
    """
    folder = ensure_dir(Path(folder))
    data = encode_png(rgb)
    index = next_free_index(folder, prefix)
    while True:
        path = folder / f"{prefix}_{index}.png"
        try:
            return atomic_write_bytes(path, data)
        except SaveError:
            if not path.exists():
                raise
            index += 1


def read_image_rgb(path: Path) -> np.ndarray:
    """Read an image file by its content (not its extension) as RGB uint8.

    Raises DataError with the file name when it is missing or unreadable.
    """
    from toonvision_live.errors import DataError

    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"Cannot read image {path}: {exc.strerror}; check the file exists.") from None
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        raise DataError(f"Cannot decode image {path}: it is empty or not an image; replace or remove it.")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
