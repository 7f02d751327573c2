"""Atomic, never-overwriting file writes shared by the saver, dataset tools and renderer.

Every write goes to a temporary file in the target folder and is renamed into
place, so a crash or a full disk never leaves a half-written file.  Indexed
names (``cog_sb_coldcaller_7.png``) take the next free number and are reserved
with O_EXCL, so two writers never pick the same one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import tempfile
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.errors import SaveError


def _explain(exc: OSError, path: Path) -> SaveError:
    if exc.errno == errno.ENOSPC:
        why = "the disk is full: free some space and try again"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        why = "the folder is not writable: choose a writable dataset folder"
    elif exc.errno == errno.ENOENT:
        why = "its folder does not exist: create it or choose another"
    else:
        why = f"{exc.strerror or exc}: check the folder"
    return SaveError(f"Could not write {path}: {why}.")


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


def atomic_write_bytes(path: Path, data: bytes, *, overwrite: bool = False) -> Path:
    """Write ``data`` to ``path`` via a temp file + rename.

    With ``overwrite=False`` an existing file is never replaced (SaveError).
    """
    path = Path(path)
    tmp_name = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
        os.fchmod(fd, _FILE_MODE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp_name, path)
        else:
            os.link(tmp_name, path)  # fails with EEXIST instead of replacing
            os.unlink(tmp_name)
        tmp_name = None
    except FileExistsError:
        raise SaveError(f"Refusing to overwrite {path}: it already exists.") from None
    except OSError as exc:
        raise _explain(exc, path) from None
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return path


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
