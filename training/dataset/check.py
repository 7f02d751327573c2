"""``toonvision dataset check``: one pass over a dataset that says what is wrong, and ``--fix`` it.

Looked at: every screenshot in ``raw/screenshots`` (readable image, a VOC XML beside it that
parses, matches the image's size and names only known labels), every crop in ``unsorted/``
(readable, well named, recorded as made from a screenshot in the ledger or by the renderer in
``manifest.jsonl``), the ledger (readable; every crop it names exists), and the crops'
groups (:mod:`training.dataset.groups`): identical crops, and groups split across
``data/{train,validate,test}`` (a leak).  Near-identical crops are counted, not faults: split
keeps them in one set.

``--fix`` never deletes: offending screenshots (with their XML) and crops (with their data/
copies) move to ``DATASET/quarantine/`` under the same relative path, the first of each set of
identical crops stays, the data/ copies of a leaking group outside the split holding most of it
move too, and the ledger is rewritten first (a crop it names that is gone or quarantined is kept
as ``"crop": null``, so extract does not cut it again).  If the ledger cannot be written,
nothing is moved.  An unreadable ledger is moved to quarantine/ and rebuilt from the files:
every screenshot's boxes are cut again in memory and matched to the crops by their pixels.
"""

from __future__ import annotations

import json
import os
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from toonvision_live.errors import DataError, SaveError
from toonvision_live.fileio import ensure_dir, read_image_rgb, why_not_written
from toonvision_live.ledger import LEGACY_LEDGER, Ledger, locked_ledger
from toonvision_live.taxonomy import parse_label
from toonvision_live.voc import parse_voc
from training.dataset.extract import rebuild_ledger
from training.dataset.groups import Grouping
from training.dataset.layout import (
    KINDS,
    SPLITS,
    DatasetPaths,
    crop_sort_key,
    dataset_paths,
    find_badly_named_crops,
    list_screenshots,
)
from training.dataset.progress import MessageLog
from training.dataset.split import _collect_crops, group_dataset_crops

#: finding kinds in table order (all are faults)
KINDS_OF_FINDING = ("bad screenshot", "bad crop", "crop without source", "missing crop", "duplicate crop",
                    "leak across splits", "unreadable ledger")


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str
    path: Path  # the file to quarantine (or the ledger's crop name for a missing crop)
    why: str


@dataclass(slots=True)
class CheckResult:
    findings: list[Finding] = field(default_factory=list)
    screenshots: int = 0
    crops: int = 0
    groups: int = 0
    near: int = 0
    moved: list[Path] = field(default_factory=list)  # where --fix put things
    rebuilt: Ledger | None = None  # the ledger rebuilt from the files when the one on disk is unreadable

    @property
    def ok(self) -> bool:
        return not self.findings

    def table_rows(self) -> list[tuple[str, int, str]]:
        by_kind: dict[str, list[Finding]] = defaultdict(list)
        for f in self.findings:
            by_kind[f.kind].append(f)
        rows = [(kind, len(by_kind[kind]), str(by_kind[kind][0].path) if by_kind[kind] else "")
                for kind in KINDS_OF_FINDING]
        return rows + [("near-identical crops (kept together by split; not a fault)", self.near, "")]


def _image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file, read by content; DataError when it cannot be decoded."""
    import cv2

    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    try:
        height, width = read_image_rgb(path).shape[:2]
    finally:
        cv2.utils.logging.setLogLevel(level)
    return width, height


def _check_screenshot(shot: Path, result: CheckResult) -> None:
    xml = shot.with_suffix(".xml")
    try:
        width, height = _image_size(shot)
        annotation = parse_voc(xml.read_bytes(), xml)
        for obj in annotation.objects:
            parse_label(obj.name)
    except OSError:
        result.findings.append(Finding("bad screenshot", shot, f"{shot} has no {xml.name} beside it: label it "
                                       "in labelImg."))
        return
    except DataError as exc:
        result.findings.append(Finding("bad screenshot", shot, str(exc)))
        return
    if (annotation.width, annotation.height) != (width, height):
        result.findings.append(Finding("bad screenshot", shot, f"{xml} says {annotation.width}x{annotation.height} "
                                       f"but {shot.name} is {width}x{height}: fix the XML in labelImg."))


def check_dataset(root: Path | str, *, fix: bool = False, progress: bool = True,
                  on_message: Callable[[str], None] | None = None) -> CheckResult:
    """Check (and with ``fix`` repair) the dataset at ``root``; see the module."""
    paths = dataset_paths(root)
    if not paths.root.is_dir():
        raise DataError(f"Dataset folder {paths.root} does not exist: check the path.")
    result = CheckResult()
    shots = list_screenshots(paths.screenshots) if paths.screenshots.is_dir() else []
    result.screenshots = len(shots)
    for shot in shots:
        _check_screenshot(shot, result)
    try:
        ledger = Ledger.load(paths.root)
    except DataError as exc:
        result.findings.append(Finding("unreadable ledger", _ledger_file(paths), str(exc)))
        ledger = result.rebuilt = rebuild_ledger(paths)
    try:
        sources, names_by_label = _collect_crops(paths, MessageLog())
    except DataError:  # no crops at all
        sources, names_by_label = {}, {}
    for kind in KINDS:
        for bad in find_badly_named_crops(paths.unsorted_dir(kind)):
            result.findings.append(Finding("bad crop", bad, f"{bad} is not named '<label>_<index>.png' with a "
                                           "known label."))
    readable = dict(sources)
    grouping = Grouping((), (), 0)
    if sources:
        grouping = group_dataset_crops(paths, sources, names_by_label, MessageLog(), progress=progress, ledger=ledger)
    for key in sorted(set(readable) - set(sources)):
        result.findings.append(Finding("bad crop", readable[key], f"{readable[key]} cannot be read as an image."))
    result.crops, result.groups, result.near = len(sources), len(grouping.groups), grouping.near
    _check_sources(paths, ledger, sources, result)
    _check_groups(paths, grouping, sources, result)
    if on_message:
        for f in result.findings:
            on_message(f"{f.kind}: {f.why}")
    if fix and result.findings:
        _fix(paths, result)
    return result


def _ledger_file(paths: DatasetPaths) -> Path:
    return paths.ledger if paths.ledger.exists() else paths.root / LEGACY_LEDGER


def _rendered_names(paths: DatasetPaths) -> set[str]:
    names: set[str] = set()
    if paths.manifest.is_file():
        for line in paths.manifest.read_text("utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and "file" in row:
                names.add(Path(str(row["file"])).name)
    return names


def _check_sources(paths: DatasetPaths, ledger: Ledger, sources: dict[str, Path], result: CheckResult) -> None:
    known = ledger.crop_sources()
    rendered = _rendered_names(paths)
    for key, path in sorted(sources.items()):
        if key not in known and path.name not in rendered:
            result.findings.append(Finding("crop without source", path, f"{path} is in no ledger entry and no "
                                           "renderer manifest line: it was not made by extract, the hotkey or "
                                           "render."))
    for crop, shot in sorted(known.items()):
        if not (paths.unsorted / crop).is_file():
            result.findings.append(Finding("missing crop", Path(crop), f"the ledger says {shot} gave {crop}, "
                                           "which is not in unsorted/ (--fix records it as removed)."))


def _check_groups(paths: DatasetPaths, grouping: Grouping, sources: dict[str, Path], result: CheckResult) -> None:
    for found in grouping.duplicates:
        keys = sorted(found, key=lambda k: crop_sort_key(Path(k)))  # the lowest number stays
        for key in keys[1:]:
            result.findings.append(Finding("duplicate crop", sources[key], f"{sources[key]} has the same pixels "
                                           f"as {sources[keys[0]]}."))
    placed = _placed(paths)
    for members in grouping.groups:
        splits = Counter(s for key in members for s in placed.get(key, ()))
        if len(splits) > 1:
            keep = max(SPLITS, key=lambda s: (splits[s], -SPLITS.index(s)))
            for key in members:
                for split in placed.get(key, ()):
                    if split != keep:
                        kind, name = key.split("/", 1)
                        copy = paths.split_kind_dir(split, kind) / name
                        result.findings.append(Finding("leak across splits", copy, f"{copy} is in {split} while "
                                                       f"its group ({len(members)} crops) is mostly in {keep}."))


def _placed(paths: DatasetPaths) -> dict[str, list[str]]:
    placed: dict[str, list[str]] = defaultdict(list)
    for split in SPLITS:
        for kind in KINDS:
            folder = paths.split_kind_dir(split, kind)
            if folder.is_dir():
                for path in folder.glob("*.png"):
                    placed[f"{kind}/{path.name}"].append(split)
    return placed


def _fix(paths: DatasetPaths, result: CheckResult) -> None:
    """Rewrite the ledger, then move every offender into quarantine/ (see the module)."""
    for f in result.findings:
        if f.kind == "unreadable ledger":
            _quarantine(paths, f.path, result)
    gone = {f"{f.path.parent.name}/{f.path.name}" for f in result.findings
            if f.kind in ("bad crop", "crop without source", "duplicate crop", "missing crop")}
    with locked_ledger(paths.root) as ledger:
        if result.rebuilt is not None:
            ledger.screenshots = result.rebuilt.screenshots
        for entry in ledger.screenshots.values():
            for obj in entry.get("objects", ()):
                if obj.get("crop") in gone:
                    obj["crop"] = None
        ledger.save()
    for f in result.findings:
        if f.kind in ("bad screenshot",):
            _quarantine(paths, f.path, result)
            _quarantine(paths, f.path.with_suffix(".xml"), result)
        elif f.kind in ("bad crop", "crop without source", "duplicate crop"):
            _quarantine(paths, f.path, result)
            for split in SPLITS:
                _quarantine(paths, paths.split_kind_dir(split, f.path.parent.name) / f.path.name, result)
        elif f.kind == "leak across splits":
            _quarantine(paths, f.path, result)


def _quarantine(paths: DatasetPaths, path: Path, result: CheckResult) -> None:
    """Move ``path`` (when it exists) to the same relative place under quarantine/, never overwriting."""
    if not path.is_file():
        return
    target = paths.quarantine / path.relative_to(paths.root)
    n = 1
    while target.exists():
        target = target.with_name(f"{path.stem}.{n}{path.suffix}")
        n += 1
    ensure_dir(target.parent)
    try:
        os.rename(path, target)
    except OSError as exc:
        raise SaveError(f"Could not move {path} to {target}: {why_not_written(exc, 'dataset folder')}; "
                        "nothing was deleted.") from None
    result.moved.append(target)
