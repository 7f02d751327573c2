"""The dataset ledger: which screenshot gave which crop, shared by every writer of crops.

``DATASET/ledger.json`` records, per screenshot (its path under ``raw/screenshots``), the
SHA-256 of the image and of its VOC XML, who wrote the crops (``hotkey`` for the live
saver, ``extract`` for ``toonvision dataset extract``, ``label``), when the frame was
captured when that is known, and one ``{"key", "crop"}`` per box: the box (``name@x0,y0,x1,y1``)
and the crop it gave (``cog/cog_sb_coldcaller_3.png``, under ``unsorted/``).  A box recorded
there is never cut again, so every crop is made exactly once whoever makes it.  Write ``"crop": null``
for a box deliberately left without a crop (a crop the user deleted).

Writers (the saver, extract, ``toonvision label``) build entries with :func:`screenshot_entry` and
hold the dataset's lock (``DATASET/.ledger.lock``, the ``filelock`` library: one process at a time,
also across processes; :func:`locked_ledger`) from before they read the ledger until after they
placed their files and rewrote it, so two writers never record the same screenshot twice nor lose
each other's records.  Readers need no lock: the file is only ever replaced
whole (temporary file + rename).  A ledger written by older versions of extract
(``unsorted/.extracted.json``) is read when there is no ``ledger.json`` yet.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from toonvision_live.errors import DataError, SaveError
from toonvision_live.fileio import atomic_write_bytes, why_not_written

LEDGER_NAME = "ledger.json"
LOCK_NAME = ".ledger.lock"
LEGACY_LEDGER = Path("unsorted") / ".extracted.json"
LEDGER_VERSION = 2
#: how long a writer waits for another process to release the lock
LOCK_TIMEOUT_S = 30.0

Entry = dict[str, Any]


def object_key(name: str, xyxy: tuple[int, int, int, int]) -> str:
    """The ledger key of one box: ``cog_sb_coldcaller@10,20,110,320``."""
    return f"{name}@{','.join(str(v) for v in xyxy)}"


def screenshot_entry(
    image: bytes,
    xml: bytes,
    crops: Sequence[tuple[str, tuple[int, int, int, int], str | None]],
    *,
    source: str,
    captured: datetime | None = None,
    street: str | None = None,
) -> Entry:
    """The ledger entry of one screenshot: its image and XML bytes, and ``(name, box, crop)`` per box.

    ``crop`` is the crop's path under ``unsorted/`` (``cog/cog_sb_coldcaller_3.png``), or None for a box
    deliberately left without one; ``source`` says who cut them (``hotkey``, ``extract``, ``label``).
    """
    return {
        "image_sha256": hashlib.sha256(image).hexdigest(),
        "xml_sha256": hashlib.sha256(xml).hexdigest(),
        "street": street,
        "source": source,
        "captured": captured.isoformat(timespec="milliseconds") if captured else None,
        "objects": [{"key": object_key(name, xyxy), "crop": crop} for name, xyxy, crop in crops],
    }


@dataclass(slots=True)
class Ledger:
    """The ledger of one dataset, as read from disk (``screenshots``: path -> entry)."""

    root: Path
    screenshots: dict[str, Entry] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.root / LEDGER_NAME

    @classmethod
    def load(cls, root: Path | str) -> Ledger:
        """Read the ledger of the dataset at ``root`` (empty when there is none); DataError when unreadable."""
        root = Path(root).expanduser().absolute()
        path = root / LEDGER_NAME
        if not path.exists() and (root / LEGACY_LEDGER).exists():
            path = root / LEGACY_LEDGER
        if not path.exists():
            return cls(root)
        try:
            raw = json.loads(path.read_text("utf-8"))
            screenshots = raw["screenshots"]
            if not isinstance(screenshots, dict) or not all(isinstance(e, dict) for e in screenshots.values()):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise DataError(
                f"The dataset ledger {path} is unreadable: run 'toonvision dataset check --fix' to move it to "
                "quarantine/ and rebuild it from the screenshots (crops made before are then kept, not made again)."
            ) from None
        return cls(root, screenshots)

    def find(self, rel: str, image_sha256: str) -> Entry | None:
        """The entry of screenshot ``rel`` with this image, or of the same image under another name."""
        entry = self.screenshots.get(rel)
        if entry is not None and entry.get("image_sha256") == image_sha256:
            return entry
        for other in self.screenshots.values():
            if other.get("image_sha256") == image_sha256:
                return other
        return None

    def crop_sources(self) -> dict[str, str]:
        """``'cog/<crop name>' -> screenshot path`` for every crop the ledger knows (``"crop": null`` = removed)."""
        return {obj["crop"]: rel for rel, entry in self.screenshots.items() for obj in entry.get("objects", ())
                if obj.get("crop")}

    def save(self) -> None:
        """Rewrite the ledger atomically (SaveError says why it cannot be written)."""
        data = json.dumps({"version": LEDGER_VERSION, "screenshots": self.screenshots}, separators=(",", ":"))
        atomic_write_bytes(self.path, data.encode("utf-8") + b"\n", overwrite=True)
        legacy = self.root / LEGACY_LEDGER
        if legacy.exists():  # its records now live in ledger.json
            with contextlib.suppress(OSError):
                legacy.unlink()


@contextlib.contextmanager
def locked_ledger(root: Path | str, *, timeout_s: float = LOCK_TIMEOUT_S) -> Iterator[Ledger]:
    """Hold the dataset's lock and yield its ledger as it is now; the caller saves what it changes.

    SaveError when the lock cannot be made (read-only or full dataset folder) or another
    process keeps it for more than ``timeout_s``.
    """
    root = Path(root).expanduser().absolute()
    lock = FileLock(root / LOCK_NAME, timeout=timeout_s)
    try:
        lock.acquire()
    except Timeout:
        raise SaveError(
            f"Another toonvision process has held the dataset lock {root / LOCK_NAME} for over {timeout_s:.0f} s: "
            "wait for it to finish (or end it) and try again."
        ) from None
    except OSError as exc:
        raise SaveError(f"Cannot lock the dataset {root}: {why_not_written(exc, 'dataset folder')}.") from None
    try:
        yield Ledger.load(root)
    finally:
        lock.release()
