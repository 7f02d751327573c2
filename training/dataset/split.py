"""``toonvision dataset split``: unsorted crops -> data/{train,validate,test}, per Cog, seeded.

Every label (each Cog, each Toon animal) is split on its own with the ratios
(default 60/20/20), so every Cog with at least 3 crops appears in every split;
labels with fewer crops all go to train, with a warning.  Crops are first
joined into groups (:mod:`training.dataset.groups`: identical pixels, a near
perceptual hash, frames captured within a moment of each other) and a group
always lands whole in one split, so no duplicate or near-identical frame of one
Cog is in train and test at once; the ratios are then met as closely as the
groups allow.  The assignment depends only on the seed, the ratios, the crop
file names and their groups (never on the order the file system lists them), so
the same seed gives the same split.

Files are hard-linked into data/ when the file system allows it, else copied;
nothing is ever overwritten.  Splitting again with the same seed and crops only
adds what is missing.  When data/ already holds a different split, split
refuses; ``--force`` moves the old data/ aside to ``data.replaced-<time>/``
(nothing is deleted) and splits again.
"""

from __future__ import annotations

import json
import os
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from toonvision_live.errors import DataError, SaveError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir, why_not_written
from toonvision_live.ledger import Ledger
from toonvision_live.taxonomy import COGS
from training.dataset.groups import Grouping, captured_times, fingerprint, group_crops
from training.dataset.layout import (
    KINDS,
    SPLITS,
    DatasetPaths,
    crop_sort_key,
    dataset_paths,
    find_badly_named_crops,
    list_labelled_crops,
)
from training.dataset.progress import MessageLog, track

DEFAULT_RATIOS: tuple[float, float, float] = (0.6, 0.2, 0.2)
MIN_PER_LABEL = len(SPLITS)


def check_ratios(ratios: Sequence[float]) -> tuple[float, float, float]:
    """Validate train/validate/test ratios: three numbers >= 0, train > 0, summing to 1."""
    if len(ratios) != 3 or any(r < 0 for r in ratios) or ratios[0] <= 0 or abs(sum(ratios) - 1) > 1e-6:
        raise DataError(f"Split ratios {list(ratios)} are not valid: give three numbers >= 0 for train, "
                        "validate and test that sum to 1, e.g. --ratios 0.6 0.2 0.2.")
    return (float(ratios[0]), float(ratios[1]), float(ratios[2]))


def split_counts(n: int, ratios: Sequence[float]) -> tuple[int, int, int]:
    """How many of ``n`` crops go to train, validate, test.

    With ``n >= 3`` every split whose ratio is above zero gets at least one crop;
    with fewer, all go to train.
    """
    if n < MIN_PER_LABEL:
        return (n, 0, 0)
    n_val = max(1, round(n * ratios[1])) if ratios[1] > 0 else 0
    n_test = max(1, round(n * ratios[2])) if ratios[2] > 0 else 0
    while n - n_val - n_test < 1:  # train keeps at least one
        if n_val >= n_test and n_val > 1:
            n_val -= 1
        else:
            n_test -= 1
    return (n - n_val - n_test, n_val, n_test)


def assign_splits(
    names_by_label: Mapping[str, Sequence[str]], seed: int, ratios: Sequence[float],
    group_of: Mapping[str, object] | None = None,
) -> dict[str, str]:
    """Map every name to a split, label by label (pure; independent of the input order).

    Names with the same ``group_of`` value always get the same split (default: each name alone).
    Per label the groups are shuffled (seeded), then placed biggest first, each into the split
    furthest below its share of ``split_counts``.
    """
    assignment: dict[str, str] = {}
    for label in sorted(names_by_label):
        names = sorted(names_by_label[label], key=lambda n: crop_sort_key(Path(n)))
        members: dict[object, list[str]] = defaultdict(list)
        for name in names:
            members[group_of.get(name, name) if group_of else name].append(name)
        blocks = list(members.values())  # in order of their first name
        rng = np.random.default_rng([seed, zlib.crc32(label.encode("utf-8"))])
        shuffled = sorted((blocks[i] for i in rng.permutation(len(blocks))), key=len, reverse=True)
        targets, have = split_counts(len(names), ratios), [0, 0, 0]
        for block in shuffled:
            k = max(range(len(SPLITS)), key=lambda i: (targets[i] - have[i], -i))
            have[k] += len(block)
            assignment.update((name, SPLITS[k]) for name in block)
    return assignment


@dataclass(frozen=True, slots=True)
class SplitResult:
    written: int  # files linked or copied by this run
    kept: int  # files that were already in place
    linked: bool  # hard links (True) or copies (False) for the files written
    counts: dict[str, dict[str, int]]  # split -> label -> crops
    groups: int  # groups of crops kept in one split
    duplicates: int  # crops whose pixels another crop has too (beyond the first of each set)
    near: int  # crops joined to another by the perceptual hash or the capture time
    warnings: tuple[str, ...]
    problems: tuple[str, ...]
    moved_aside: Path | None

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        totals = ", ".join(f"{sum(self.counts[s].values())} {s}" for s in SPLITS)
        how = "hard-linked" if self.linked else "copied"
        text = f"Split {sum(sum(c.values()) for c in self.counts.values())} crops: {totals}"
        text += (f"; {self.groups} groups kept whole ({self.duplicates} identical duplicates, {self.near} "
                 "near-identical crops)")
        text += f"; {self.written} files {how}, {self.kept} already in place"
        if self.moved_aside:
            text += f"; the previous split was moved to {self.moved_aside}"
        if self.problems:
            text += f"; {len(self.problems)} files skipped (see the messages above)"
        return text + "."


def _existing_split(paths: DatasetPaths) -> dict[str, str]:
    """``'cog/<name>' -> split`` for every PNG already in data/; a name in two splits is kept twice."""
    found: dict[str, str] = {}
    for split in SPLITS:
        for kind in KINDS:
            folder = paths.split_kind_dir(split, kind)
            if folder.is_dir():
                for path in folder.glob("*.png"):
                    key = f"{kind}/{path.name}"
                    found[key] = split if key not in found else "several splits"
    return found


def _place(src: Path, dst: Path) -> bool:
    """Hard-link ``src`` to ``dst`` (or copy it when links are impossible); True when linked."""
    try:
        os.link(src, dst)
        return True
    except FileExistsError:
        raise SaveError(f"Refusing to overwrite {dst}: it already exists.") from None
    except OSError:
        atomic_write_bytes(dst, src.read_bytes())
        return False


def _move_aside(data: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    target = data.with_name(f"data.replaced-{stamp}")
    n = 1
    while target.exists():
        target = data.with_name(f"data.replaced-{stamp}-{n}")
        n += 1
    try:
        data.rename(target)
    except OSError as exc:
        raise SaveError(f"Could not move {data} aside to {target}: {why_not_written(exc, 'dataset folder')}; "
                        "nothing was changed.") from None
    return target


def split_dataset(
    root: Path | str,
    *,
    seed: int = 0,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    force: bool = False,
    progress: bool = True,
    on_message: Callable[[str], None] | None = None,
) -> SplitResult:
    """Split ``root``'s unsorted crops into data/{train,validate,test}/{cog,toon}/, keeping groups whole."""
    ratios = check_ratios(ratios)
    if seed < 0:
        raise DataError(f"Seed {seed} is negative: use a seed >= 0.")
    paths = dataset_paths(root)
    if not paths.root.is_dir():
        raise DataError(f"Dataset folder {paths.root} does not exist: check the path.")
    log = MessageLog(on_message)
    sources, names_by_label = _collect_crops(paths, log)
    grouping = group_dataset_crops(paths, sources, names_by_label, log, progress=progress)
    _warn_small_labels(names_by_label, log)
    assignment = assign_splits(names_by_label, seed, ratios, grouping.group_of())
    counts = _counts(names_by_label, assignment)
    for label in sorted(names_by_label):
        missing = [s for s in SPLITS if not counts[s].get(label)]
        if len(names_by_label[label]) >= MIN_PER_LABEL and missing:
            log.warning(f"{label} has too few groups of distinct crops to reach every split (none in "
                        f"{', '.join(missing)}): add crops from other moments or screenshots.")
    existing, moved_aside = _room_for(paths, assignment, sources, force)
    todo = sorted(key for key in assignment if key not in existing)
    for split in SPLITS:
        for kind in KINDS:
            if any(k.startswith(f"{kind}/") for k in assignment):
                ensure_dir(paths.split_kind_dir(split, kind))
    linked = True
    for key in track(todo, total=len(todo), description="split", enabled=progress):
        linked &= _place(sources[key], _split_file(paths, assignment[key], key))
    record = {
        "version": 2, "seed": seed, "ratios": list(ratios),
        "created": datetime.now(UTC).isoformat(timespec="seconds"), "counts": counts,
        "groups": len(grouping.groups), "duplicates": _n_duplicates(grouping), "near_identical": grouping.near,
        "fewer_than_3": sorted(label for label, keys in names_by_label.items() if len(keys) < MIN_PER_LABEL),
    }
    atomic_write_bytes(paths.split_record, json.dumps(record, indent=1).encode("utf-8") + b"\n", overwrite=True)
    return SplitResult(len(todo), len(assignment) - len(todo), linked, counts, len(grouping.groups),
                       _n_duplicates(grouping), grouping.near, tuple(log.warnings), tuple(log.problems),
                       moved_aside)


def _n_duplicates(grouping: Grouping) -> int:
    return sum(len(keys) - 1 for keys in grouping.duplicates)


def _collect_crops(paths: DatasetPaths, log: MessageLog) -> tuple[dict[str, Path], dict[str, list[str]]]:
    """``'cog/<name>' -> path`` and ``label -> keys`` of every well-named unsorted crop."""
    sources: dict[str, Path] = {}
    names_by_label: dict[str, list[str]] = defaultdict(list)
    for kind in KINDS:
        folder = paths.unsorted_dir(kind)
        if not folder.is_dir():
            continue
        for bad in find_badly_named_crops(folder):
            log.problem(f"{bad} is not named '<label>_<index>.png' with a known label, so it is not split: "
                        "rename or remove it.")
        for path, label in list_labelled_crops(folder, strict=False):
            key = f"{kind}/{path.name}"
            sources[key] = path
            names_by_label[label.name].append(key)
    if not sources:
        raise DataError(f"No crops in {paths.unsorted_cog} or {paths.unsorted_toon}: run 'toonvision dataset "
                        "extract' or 'toonvision render crops' first.")
    return sources, names_by_label


def group_dataset_crops(paths: DatasetPaths, sources: dict[str, Path], names_by_label: dict[str, list[str]],
                        log: MessageLog, *, progress: bool = True, ledger: Ledger | None = None) -> Grouping:
    """Fingerprint and group the crops; unreadable ones are named and left out of both mappings."""
    captured = captured_times((ledger or Ledger.load(paths.root)).screenshots)
    label_of = {key: label for label, keys in names_by_label.items() for key in keys}
    prints = []
    for key in track(sorted(sources), total=len(sources), description="group", enabled=progress):
        found = fingerprint(sources[key], key, label_of[key], captured.get(key))
        if found is None:
            log.problem(f"{sources[key]} cannot be read as an image, so it is not split: replace or remove it.")
            del sources[key]
            names_by_label[label_of[key]].remove(key)
            continue
        prints.append(found)
    for label in [label for label, keys in names_by_label.items() if not keys]:
        del names_by_label[label]
    return group_crops(prints)


def _warn_small_labels(names_by_label: Mapping[str, Sequence[str]], log: MessageLog) -> None:
    for label in sorted(names_by_label):
        n = len(names_by_label[label])
        if n < MIN_PER_LABEL:
            log.warning(f"{label} has only {n} crop{'s' if n != 1 else ''}, so all go to train: add at least "
                        f"{MIN_PER_LABEL - n} more so it appears in every split.")
    missing = [c.key for c in COGS if c.label not in names_by_label]
    if missing and len(missing) < len(COGS):
        log.warning(f"{len(missing)} of {len(COGS)} Cogs have no crops at all ({', '.join(missing)}): render or "
                    "extract some.")


def _counts(names_by_label: Mapping[str, Sequence[str]], assignment: Mapping[str, str]) -> dict[str, dict[str, int]]:
    by_split: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    for label, keys in names_by_label.items():
        for key in keys:
            by_split[assignment[key]][label] += 1
    return {split: dict(sorted(by_split[split].items())) for split in SPLITS}


def _room_for(paths: DatasetPaths, assignment: Mapping[str, str], sources: Mapping[str, Path],
              force: bool) -> tuple[dict[str, str], Path | None]:
    """The files already in place, after moving a different split aside (--force) or refusing to."""
    existing = _existing_split(paths)
    different = sorted(key for key, split in existing.items() if not _same(paths, key, split, assignment, sources))
    if not different:
        return existing, None
    if not force:
        raise DataError(
            f"{paths.data} already holds a different split ({len(different)} files differ, e.g. {different[0]}): "
            "use --force to move it aside and split again, or use the seed and ratios it was made with."
        )
    return {}, _move_aside(paths.data)


def _split_file(paths: DatasetPaths, split: str, key: str) -> Path:
    kind, name = key.split("/", 1)
    return paths.split_kind_dir(split, kind) / name


def _same(paths: DatasetPaths, key: str, split: str, assignment: Mapping[str, str],
          sources: Mapping[str, Path]) -> bool:
    """Whether an existing data/ file is where this split puts it, with the same size as its source."""
    if assignment.get(key) != split:
        return False
    try:
        return sources[key].stat().st_size == _split_file(paths, split, key).stat().st_size
    except OSError:
        return False
