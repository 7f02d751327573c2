"""The dataset layout API (training/dataset/layout.py) and the ``toonvision dataset`` help texts."""

from __future__ import annotations

from pathlib import Path

import pytest
from dataset_factory import make_crop_files

from toonvision_live.cli import main
from toonvision_live.errors import DataError
from training.dataset.layout import (
    crop_label,
    dataset_paths,
    list_labelled_crops,
    list_screenshots,
    street_of_screenshot,
)


def test_dataset_paths(tmp_path):
    paths = dataset_paths(tmp_path)
    assert paths.root == tmp_path
    assert paths.screenshots == tmp_path / "raw" / "screenshots"
    assert paths.unsorted_cog == tmp_path / "unsorted" / "cog"
    assert paths.unsorted_toon == tmp_path / "unsorted" / "toon"
    assert paths.split_dir("validate") == tmp_path / "data" / "validate"
    assert paths.split_kind_dir("test", "toon") == tmp_path / "data" / "test" / "toon"
    assert paths.manifest == tmp_path / "manifest.jsonl"
    with pytest.raises(ValueError, match="split"):
        paths.split_dir("val")
    assert not (tmp_path / "raw").exists()  # nothing is created


@pytest.mark.parametrize(
    ("name", "label"),
    [("cog_sb_coldcaller_0.png", "cog_sb_coldcaller"), ("cog_bb_thebigcheese_12.png", "cog_bb_thebigcheese"),
     ("toon_dog_3.png", "toon_dog")],
)
def test_crop_label(name, label):
    assert crop_label(Path("/x") / name).name == label


@pytest.mark.parametrize("name", ["cog_sb_coldcaller.png", "cog_lb_coldcaller_1.png", "cog_sb_nobody_2.png",
                                  "Cold Caller_1.png", "cog_sb_coldcaller_1.jpg"])
def test_crop_label_rejects_bad_names(name):
    with pytest.raises(DataError) as info:
        crop_label(name)
    assert name in str(info.value)


def test_list_labelled_crops_sorts_by_label_then_number(tmp_path):
    make_crop_files(tmp_path, {"cog_sb_coldcaller": 12, "cog_bb_flunky": 2, "toon_cat": 1})
    (tmp_path / ".extracted.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("ignored")
    crops = list_labelled_crops(tmp_path)
    assert [p.name for p, _ in crops][:4] == ["cog_bb_flunky_0.png", "cog_bb_flunky_1.png",
                                               "cog_sb_coldcaller_0.png", "cog_sb_coldcaller_1.png"]
    assert [p.name for p, _ in crops][-2:] == ["cog_sb_coldcaller_11.png", "toon_cat_0.png"]
    assert {label.suit for _, label in crops} == {"bb", "sb", None}
    (tmp_path / "mystery_0.png").write_bytes(b"x")
    with pytest.raises(DataError, match="mystery_0.png"):
        list_labelled_crops(tmp_path)
    assert len(list_labelled_crops(tmp_path, strict=False)) == 15
    with pytest.raises(DataError, match="does not exist"):
        list_labelled_crops(tmp_path / "nope")


@pytest.mark.parametrize(
    ("rel", "street"),
    [("dd_0042.png", "dd"), ("ttc_loopy-lane_3.png", "ttc"), ("DDL_1.jpg", "ddl"), ("mml/shot1.png", "mml"),
     ("br/dg_1.png", "br"), ("shot_1.png", None), ("dd.png", None), ("ddx_1.png", None),
     ("other/shot_1.png", None), ("other/dg_2.png", "dg")],
)
def test_street_of_screenshot(tmp_path, rel, street):
    assert street_of_screenshot(tmp_path / rel, tmp_path) == street


def test_list_screenshots(tmp_path):
    for rel in ("a.png", "b.JPG", "c.jpeg", "a.xml", "dd/d.png", "dd/deeper/e.png", ".hidden.png",
                ".cache/f.png", "notes.txt"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in list_screenshots(tmp_path)] == [
        "a.png", "b.JPG", "c.jpeg", "dd/d.png"]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["dataset", "--help"], ["extract", "split", "report", "raw/screenshots"]),
        (["dataset", "extract", "--help"], ["600 high x 200 wide", "never overwritten", "example:"]),
        (["dataset", "split", "--help"], ["--seed", "--ratios TRAIN VALIDATE TEST", "--force", "examples:"]),
        (["dataset", "report", "--help"], ["--out DIR", "cogs.png", "examples:"]),
        (["--help"], ["dataset"]),
    ],
)
def test_help_texts(capsys, args, words):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 0
    out = capsys.readouterr().out
    for word in words:
        assert word in out


def test_dataset_without_a_command_explains(capsys):
    with pytest.raises(SystemExit) as info:
        main(["dataset"])
    assert info.value.code == 2
    assert "COMMAND" in capsys.readouterr().err
