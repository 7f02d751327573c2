"""Groups of crops that must stay in one split: duplicates, near-duplicates, one capture moment.

Two crops of one label are joined (transitively) when

* their pixels are identical (SHA-256 of the decoded image: a crop made twice), or
* their 64-bit perceptual hashes (imagehash ``phash``) differ in at most ``NEAR_BITS`` bits, or
* both come from frames captured (the ledger's ``captured`` time, known for hotkey saves) at most
  ``SAME_MOMENT_S`` seconds apart.

Measured with ``python -m training.dataset.measure_grouping`` (8 demo streets, 8 Cogs x 40 3D
renders): the perceptual hash of a 600x200 crop does NOT separate one Cog's near-identical frames
from other Cogs: a Cog cut from two frames 0.1 s apart differs by a median 24 bits (2-36), two
independent renders of one Cog by 28 (10-46), two different Cogs by 30 (dhash and whash alike or
worse), because the walk cycle, the box and the stretch change between frames.  So the hash only
joins literal near-copies (``NEAR_BITS`` = 6: 8 % of the 0.1 s pairs, 0 of 6,240 independent
same-Cog pairs), and the capture time, which the ledger records for every hotkey save, is what
keeps one encounter's frames together: crops of one label saved within ``SAME_MOMENT_S`` of each
other (chained) form one group.  10 s: a demo-street Cog stays on screen a median 7.2 s (10th
percentile 5.2 s, longest 24 s; 436 stays), so saves of one encounter chain within it, while saves
a minute apart (another Cog, another place) stay apart.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2
import imagehash
import numpy as np
from PIL import Image

NEAR_BITS = 6
SAME_MOMENT_S = 10.0


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What grouping needs of one crop (``key`` = ``cog/<file name>``)."""

    key: str
    label: str
    content: str  # SHA-256 of the decoded pixels
    phash: int  # 64-bit perceptual hash
    captured: float | None  # POSIX time the frame was captured, when known


def fingerprint(path: Path, key: str, label: str, captured: float | None = None) -> Fingerprint | None:
    """The fingerprint of one crop file; None when it cannot be decoded."""
    data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else np.zeros(0, np.uint8)
    bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if bgr is None:
        return None
    content = hashlib.sha256(np.ascontiguousarray(bgr).tobytes() + str(bgr.shape).encode()).hexdigest()
    return Fingerprint(key, label, content, perceptual_hash(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)), captured)


def perceptual_hash(gray: np.ndarray) -> int:
    """imagehash's 64-bit phash of a grayscale image, shrunk to its 32x32 input by OpenCV first.

    (9x faster than letting PIL shrink a 600x200 crop; the hashes differ by 0.44 bits on average.)
    """
    small = cv2.resize(gray, (32, 32), interpolation=cv2.INTER_AREA)
    return int(str(imagehash.phash(Image.fromarray(small))), 16)


def captured_times(ledger_screenshots: Mapping[str, Mapping]) -> dict[str, float]:
    """``crop key -> capture time`` for crops whose screenshot's capture time the ledger knows."""
    times: dict[str, float] = {}
    for entry in ledger_screenshots.values():
        when = entry.get("captured")
        if not when:
            continue
        try:
            stamp = datetime.fromisoformat(str(when)).timestamp()
        except ValueError:
            continue
        for obj in entry.get("objects", ()):
            if obj.get("crop"):
                times[str(obj["crop"])] = stamp
    return times


class _Union:
    def __init__(self, keys: Iterable[str]) -> None:
        self.parent = {k: k for k in keys}

    def find(self, k: str) -> str:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


@dataclass(frozen=True, slots=True)
class Grouping:
    groups: tuple[tuple[str, ...], ...]  # each sorted; all of one label
    duplicates: tuple[tuple[str, ...], ...]  # sets of crops with identical pixels (any label), each sorted
    near: int  # crops joined to another one by the perceptual hash or the capture time (not identical)

    def group_of(self) -> dict[str, int]:
        return {key: i for i, members in enumerate(self.groups) for key in members}


def group_crops(prints: Iterable[Fingerprint], *, near_bits: int = NEAR_BITS,
                same_moment_s: float = SAME_MOMENT_S) -> Grouping:
    """Join crops of one label by identical pixels, perceptual hash and capture time (see the module)."""
    prints = sorted(prints, key=lambda p: p.key)
    by_content: dict[str, list[str]] = defaultdict(list)
    for p in prints:
        by_content[p.content].append(p.key)
    duplicates = tuple(tuple(keys) for keys in by_content.values() if len(keys) > 1)
    union = _Union(p.key for p in prints)
    by_label: dict[str, list[Fingerprint]] = defaultdict(list)
    for p in prints:
        by_label[p.label].append(p)
    near: set[str] = set()  # identical pixels hash alike, so the hash rule joins duplicates too
    for members in by_label.values():
        bits = np.array([p.phash for p in members], dtype=np.uint64)
        times = np.array([np.nan if p.captured is None else p.captured for p in members])
        for i, p in enumerate(members[:-1]):
            rest = members[i + 1:]
            xor = bits[i + 1:] ^ bits[i]
            distance = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
            close = distance <= near_bits
            if p.captured is not None:
                close |= np.abs(times[i + 1:] - p.captured) <= same_moment_s
            for j in np.flatnonzero(close):
                union.join(p.key, rest[j].key)
                if rest[j].content != p.content:
                    near |= {p.key, rest[j].key}
    groups: dict[str, list[str]] = defaultdict(list)
    for p in prints:
        groups[union.find(p.key)].append(p.key)
    return Grouping(tuple(sorted(tuple(g) for g in groups.values())), duplicates, len(near))

