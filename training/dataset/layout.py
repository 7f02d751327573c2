"""The ToonVision dataset layout: where screenshots, crops and splits live, and how files are named.

::

    DATASET/raw/screenshots/<name>.png + <name>.xml      full frames + Pascal VOC (labelImg)
    DATASET/raw/screenshots/<street>/<name>.png + .xml   (ToonVision's own layout: one folder per street)
    DATASET/unsorted/cog/cog_<suit>_<key>_<i>.png        600x200 crops, unsorted/toon/toon_<animal>_<i>.png
    DATASET/ledger.json                                  which screenshot gave which crop (saver, extract)
    DATASET/quarantine/                                  what ``dataset check --fix`` moved out of the way
    DATASET/data/{train,validate,test}/{cog,toon}/...    split copies (same file names as in unsorted/)
    DATASET/data/split.json                              the seed and ratios of that split
    DATASET/manifest.jsonl                               the renderer's parameters, one JSON line per crop
    DATASET/report/                                      report's tables and charts

A crop's label is always read from its file name: ``cog_sb_coldcaller_7.png`` is
``cog_sb_coldcaller``, index 7.

Street codes (br, dd, ddl, dg, mml, ttc) are known for a screenshot when it sits
in a folder named after the street (``raw/screenshots/dd/shot1.png``, as
ToonVision kept them) or when the first ``_``-separated token of its file name
is a street code (``dd_0042.png``, ``ttc_loopy-lane_3.png``); otherwise the
street is unknown.  A rendered crop's street comes from a ``street`` key in its
manifest line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from toonvision_live.errors import DataError
from toonvision_live.ledger import LEDGER_NAME
from toonvision_live.taxonomy import STREETS, Label, parse_label

SPLITS: tuple[str, ...] = ("train", "validate", "test")
KINDS: tuple[str, ...] = ("cog", "toon")
SCREENSHOT_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")
SPLIT_RECORD_NAME = "split.json"

_CROP_NAME = re.compile(r"^(?P<label>[a-z]+(?:_[a-z]+){1,2})_(?P<index>\d+)\.png$")


@dataclass(frozen=True, slots=True)
class DatasetPaths:
    """Every folder and file of one dataset, derived from its root."""

    root: Path
    screenshots: Path
    unsorted_cog: Path
    unsorted_toon: Path
    data: Path
    ledger: Path
    manifest: Path
    report: Path

    @property
    def unsorted(self) -> Path:
        return self.root / "unsorted"

    def unsorted_dir(self, kind: str) -> Path:
        """``unsorted/cog`` or ``unsorted/toon``."""
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        return self.unsorted_cog if kind == "cog" else self.unsorted_toon

    def split_dir(self, split: str) -> Path:
        """``data/<split>`` for split in train, validate, test."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
        return self.data / split

    def split_kind_dir(self, split: str, kind: str) -> Path:
        """``data/<split>/<kind>``, e.g. ``data/train/cog``."""
        self.unsorted_dir(kind)  # validates kind
        return self.split_dir(split) / kind

    @property
    def quarantine(self) -> Path:
        return self.root / "quarantine"

    @property
    def split_record(self) -> Path:
        return self.data / SPLIT_RECORD_NAME


def dataset_paths(root: Path | str) -> DatasetPaths:
    """The layout of the dataset at ``root`` (nothing is created or checked)."""
    root = Path(root).expanduser().absolute()
    return DatasetPaths(
        root=root,
        screenshots=root / "raw" / "screenshots",
        unsorted_cog=root / "unsorted" / "cog",
        unsorted_toon=root / "unsorted" / "toon",
        data=root / "data",
        ledger=root / LEDGER_NAME,
        manifest=root / "manifest.jsonl",
        report=root / "report",
    )


def split_crop_name(name: str) -> tuple[str, int]:
    """``'cog_sb_coldcaller_7.png'`` -> ``('cog_sb_coldcaller', 7)``; DataError otherwise."""
    match = _CROP_NAME.match(name)
    if match is None:
        raise DataError(
            f"Crop file '{name}' is not named '<label>_<index>.png' (e.g. 'cog_sb_coldcaller_0.png'): "
            "rename or remove it."
        )
    return match.group("label"), int(match.group("index"))


def crop_label(path: Path | str) -> Label:
    """The label of a crop from its file name; DataError names the file when it is not a known label."""
    name = Path(path).name
    label_text, _ = split_crop_name(name)
    try:
        return parse_label(label_text)
    except DataError as exc:
        raise DataError(f"Crop file '{name}': {exc}") from None


def crop_sort_key(path: Path) -> tuple[str, int, str]:
    """Sort crops by label, then by index as a number (``_2`` before ``_10``)."""
    try:
        label, index = split_crop_name(path.name)
    except DataError:
        return (path.name, -1, path.name)
    return (label, index, path.name)


def list_labelled_crops(folder: Path | str, *, strict: bool = True) -> list[tuple[Path, Label]]:
    """Every ``*.png`` crop in ``folder`` with its label, sorted by label then index.

    Hidden files and non-PNG files are ignored.  A PNG whose name is not a known
    label raises DataError, or with ``strict=False`` is left out (see
    :func:`find_badly_named_crops` to list those).  A missing folder raises DataError.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"Crop folder {folder} does not exist: run 'toonvision dataset extract' or "
                        "'toonvision render crops' first, or check the dataset path.")
    crops: list[tuple[Path, Label]] = []
    for path in sorted(_png_files(folder), key=crop_sort_key):
        try:
            crops.append((path, crop_label(path)))
        except DataError:
            if strict:
                raise
    return crops


def find_badly_named_crops(folder: Path | str) -> list[Path]:
    """PNGs in ``folder`` whose name is not ``<known label>_<index>.png``."""
    bad = []
    for path in sorted(_png_files(Path(folder))):
        try:
            crop_label(path)
        except DataError:
            bad.append(path)
    return bad


def _png_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.suffix == ".png" and not p.name.startswith(".") and p.is_file()]


def list_screenshots(screenshots: Path) -> list[Path]:
    """Screenshot images in ``raw/screenshots`` and its street sub-folders, sorted by path."""
    found = []
    for path in screenshots.rglob("*"):
        rel = path.relative_to(screenshots)
        if len(rel.parts) > 2 or any(part.startswith(".") for part in rel.parts):
            continue
        if path.suffix.lower() in SCREENSHOT_SUFFIXES and path.is_file():
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(screenshots).as_posix())


def street_of_screenshot(path: Path, screenshots: Path) -> str | None:
    """The street code of a screenshot (folder name or first ``_`` token), or None when unknown."""
    rel = Path(path).relative_to(screenshots)
    if len(rel.parts) > 1 and rel.parts[0].lower() in STREETS:
        return rel.parts[0].lower()
    first = rel.name.split("_", 1)[0].lower()
    if "_" in rel.name and first in STREETS:
        return first
    return None
