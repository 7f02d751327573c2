"""``toonvision dataset split``: per-Cog stratification, determinism, refusal, never-overwrite."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from dataset_factory import make_crop_files, read_only_run

from toonvision_live.cli import main
from toonvision_live.taxonomy import COGS
from training.dataset.layout import SPLITS, dataset_paths
from training.dataset.split import assign_splits, split_counts, split_dataset

#: every Cog with 3..34 crops, two Cogs with too few, and some Toons
COUNTS = {cog.label: 3 + i for i, cog in enumerate(COGS)}
COUNTS["cog_sb_mrhollywood"] = 2
COUNTS["cog_bb_flunky"] = 1
TOON_COUNTS = {"toon_dog": 9, "toon_cat": 4}


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["dataset", *args])
    out, err = capsys.readouterr()
    return code, out, err


def make_unsorted(root: Path, order: str = "sorted", counts=None, toons=None) -> Path:
    paths = dataset_paths(root)
    make_crop_files(paths.unsorted_cog, COUNTS if counts is None else counts, order=order)
    make_crop_files(paths.unsorted_toon, TOON_COUNTS if toons is None else toons, order=order, seed=1)
    return root


def split_of(root: Path) -> dict[str, str]:
    """``kind/name -> split`` of everything under data/."""
    found = {}
    for split in SPLITS:
        for path in (root / "data" / split).glob("*/*.png"):
            key = f"{path.parent.name}/{path.name}"
            assert key not in found, f"{key} is in two splits"
            found[key] = split
    return found


@pytest.mark.parametrize(
    ("n", "ratios", "expected"),
    [
        (0, (0.6, 0.2, 0.2), (0, 0, 0)),
        (1, (0.6, 0.2, 0.2), (1, 0, 0)),
        (2, (0.6, 0.2, 0.2), (2, 0, 0)),
        (3, (0.6, 0.2, 0.2), (1, 1, 1)),
        (4, (0.6, 0.2, 0.2), (2, 1, 1)),
        (5, (0.6, 0.2, 0.2), (3, 1, 1)),
        (10, (0.6, 0.2, 0.2), (6, 2, 2)),
        (100, (0.6, 0.2, 0.2), (60, 20, 20)),
        (3, (0.98, 0.01, 0.01), (1, 1, 1)),
        (3, (0.8, 0.2, 0.0), (2, 1, 0)),
        (10, (0.5, 0.5, 0.0), (5, 5, 0)),
        (3, (0.1, 0.45, 0.45), (1, 1, 1)),
    ],
)
def test_split_counts(n, ratios, expected):
    assert split_counts(n, ratios) == expected


def test_split_counts_always_fill_every_split_from_three():
    for n in range(3, 300):
        for ratios in ((0.6, 0.2, 0.2), (0.9, 0.05, 0.05), (0.2, 0.4, 0.4), (1 / 3, 1 / 3, 1 / 3)):
            counts = split_counts(n, ratios)
            assert sum(counts) == n and min(counts) >= 1, (n, ratios, counts)


def test_split_stratifies_every_cog(tmp_path, capsys):
    root = make_unsorted(tmp_path / "ds")
    code, out, err = run(capsys, "split", str(root), "--no-progress")
    assert code == 0, err
    assignment = split_of(root)
    unsorted = {f"{p.parent.name}/{p.name}" for p in (root / "unsorted").glob("*/*.png")}
    assert set(assignment) == unsorted
    for label, n in {**COUNTS, **TOON_COUNTS}.items():
        kind = label.split("_")[0]
        per_split = {s: sum(1 for k, v in assignment.items()
                            if v == s and k.startswith(f"{kind}/{label}_")) for s in SPLITS}
        assert tuple(per_split[s] for s in SPLITS) == split_counts(n, (0.6, 0.2, 0.2)), label
        if n >= 3:
            assert min(per_split.values()) >= 1
    # the two small Cogs are named in a warning and kept in train
    assert "cog_sb_mrhollywood has only 2 crops" in err and "cog_bb_flunky has only 1 crop," in err
    # hard links (same inode), nothing copied
    for key, split in assignment.items():
        kind, name = key.split("/")
        linked = (root / "data" / split / kind / name).stat()
        assert linked.st_ino == (root / "unsorted" / kind / name).stat().st_ino
    record = json.loads((root / "data" / "split.json").read_text())
    assert record["seed"] == 0 and record["ratios"] == [0.6, 0.2, 0.2]
    assert record["fewer_than_3"] == ["cog_bb_flunky", "cog_sb_mrhollywood"]
    assert record["counts"]["test"]["cog_sb_coldcaller"] == split_counts(COUNTS["cog_sb_coldcaller"],
                                                                         (0.6, 0.2, 0.2))[2]
    total = sum(COUNTS.values()) + sum(TOON_COUNTS.values())
    assert out.startswith(f"Split {total} crops:") and f"{total} files hard-linked" in out


def test_same_seed_same_split_whatever_the_file_order(tmp_path, capsys):
    first = make_unsorted(tmp_path / "a", order="sorted")
    second = make_unsorted(tmp_path / "b", order="reversed")
    third = make_unsorted(tmp_path / "c")
    for root, seed in ((first, "5"), (second, "5"), (third, "6")):
        assert run(capsys, "split", str(root), "--seed", seed, "--no-progress")[0] == 0
    assert split_of(first) == split_of(second)
    assert split_of(first) != split_of(third)


def test_assignment_is_pure_and_independent_of_input_order():
    names = {label: [f"cog/{label}_{i}.png" for i in range(n)] for label, n in COUNTS.items()}
    shuffled = {}
    rng = random.Random(3)
    for label in rng.sample(sorted(names), len(names)):
        shuffled[label] = rng.sample(names[label], len(names[label]))
    assert assign_splits(names, 11, (0.6, 0.2, 0.2)) == assign_splits(shuffled, 11, (0.6, 0.2, 0.2))
    assert assign_splits(names, 11, (0.6, 0.2, 0.2)) != assign_splits(names, 12, (0.6, 0.2, 0.2))


def test_split_again_with_the_same_seed_adds_nothing(tmp_path, capsys):
    root = make_unsorted(tmp_path / "ds")
    assert run(capsys, "split", str(root), "--no-progress")[0] == 0
    before = split_of(root)
    # a file lost from data/ is put back, nothing else changes
    lost = next(iter(sorted(before)))
    (root / "data" / before[lost] / lost).unlink()
    code, out, _ = run(capsys, "split", str(root), "--no-progress")
    assert code == 0 and "1 files hard-linked" in out
    assert split_of(root) == before


def test_a_different_split_is_refused_unless_forced(tmp_path, capsys):
    root = make_unsorted(tmp_path / "ds")
    assert run(capsys, "split", str(root), "--seed", "1", "--no-progress")[0] == 0
    before = split_of(root)
    inodes = {key: (root / "data" / split / key).stat().st_ino for key, split in before.items()}

    code, _, err = run(capsys, "split", str(root), "--seed", "2", "--no-progress")
    assert code == 2
    assert "already holds a different split" in err and "--force" in err
    assert split_of(root) == before
    assert {key: (root / "data" / split / key).stat().st_ino for key, split in before.items()} == inodes

    code, out, err = run(capsys, "split", str(root), "--seed", "2", "--force", "--no-progress")
    assert code == 0, err
    aside = [p for p in root.iterdir() if p.name.startswith("data.replaced-")]
    assert len(aside) == 1 and "moved to" in out
    # the old split is intact aside, the new one equals a fresh seed-2 split
    old = {f"{p.parent.name}/{p.name}": p.parent.parent.name for p in aside[0].glob("*/*/*.png")}
    assert old == before
    fresh = make_unsorted(tmp_path / "fresh")
    assert run(capsys, "split", str(fresh), "--seed", "2", "--no-progress")[0] == 0
    assert split_of(root) == split_of(fresh)


def test_foreign_file_in_data_is_never_overwritten(tmp_path, capsys):
    root = make_unsorted(tmp_path / "ds")
    target = root / "data" / "train" / "cog" / "cog_sb_coldcaller_0.png"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"mine")
    code, _, err = run(capsys, "split", str(root), "--no-progress")
    assert code == 2 and "different split" in err
    assert target.read_bytes() == b"mine"


def test_badly_named_crop_is_reported_and_the_rest_split(tmp_path, capsys):
    root = make_unsorted(tmp_path / "ds", counts={"cog_sb_coldcaller": 5}, toons={})
    (root / "unsorted" / "cog" / "cold caller.png").write_bytes(b"x")
    (root / "unsorted" / "cog" / "cog_sb_nobody_0.png").write_bytes(b"x")
    code, out, err = run(capsys, "split", str(root), "--no-progress")
    assert code == 1
    assert err.count("problem: ") == 2 and "cold caller.png" in err and "cog_sb_nobody_0.png" in err
    assert len(split_of(root)) == 5


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ratios", "0.5", "0.5", "0.5"], "Split ratios [0.5, 0.5, 0.5] are not valid"),
        (["--ratios", "0", "0.5", "0.5"], "are not valid"),
        (["--seed", "-1"], "Seed -1 is negative"),
    ],
)
def test_bad_options_give_a_sentence(tmp_path, capsys, args, message):
    root = make_unsorted(tmp_path / "ds")
    code, _, err = run(capsys, "split", str(root), *args)
    assert code == 2 and message in err
    assert not (root / "data").exists()


def test_nothing_to_split(tmp_path, capsys):
    code, _, err = run(capsys, "split", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "split", str(tmp_path))
    assert code == 2 and "No crops in" in err and "extract" in err


def test_split_api_counts(tmp_path):
    root = make_unsorted(tmp_path / "ds", counts={"cog_cb_tightwad": 10}, toons={})
    result = split_dataset(root, seed=3, ratios=(0.6, 0.2, 0.2), progress=False)
    assert result.ok and result.written == 10 and result.kept == 0
    assert {s: result.counts[s]["cog_cb_tightwad"] for s in SPLITS} == {"train": 6, "validate": 2, "test": 2}
    assert any("31 of 32 Cogs have no crops" in w for w in result.warnings)


def test_read_only_dataset_folder(tmp_path):
    root = make_unsorted(tmp_path / "ds", counts={"cog_cb_tightwad": 4}, toons={})
    result = read_only_run(root, "dataset", "split", str(root))
    if result.returncode == 99:
        pytest.skip(f"this kernel does not allow a read-only bind mount in a user namespace: {result.stderr}")
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("toonvision: error: Could not write") and "not writable" in last
    assert str(root / "data") in last
    assert not (root / "data").exists()
