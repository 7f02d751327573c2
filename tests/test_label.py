"""``toonvision label FOLDER``: VOC beside unlabelled screenshots, a review sheet, nothing overwritten."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from dataset_factory import read_only_run

from toonvision_live.classify.classifier import CogClassifier
from toonvision_live.classify.reader import TagReader
from toonvision_live.cli import main
from toonvision_live.demo.scene import StreetScene
from toonvision_live.demo.sprites import SpriteAtlas
from toonvision_live.errors import ConfigError, SaveError
from toonvision_live.fileio import write_png
from toonvision_live.geometry import match_boxes
from toonvision_live.model_card import default_model_path
from toonvision_live.tools.label import FolderLabeller, images_to_label, label_folder
from toonvision_live.voc import read_voc


@pytest.fixture(scope="module")
def labeller() -> FolderLabeller:
    providers = ["CPUExecutionProvider"]
    return FolderLabeller(CogClassifier(default_model_path(), providers), TagReader(providers=providers))


@pytest.fixture()
def shots(tmp_path: Path, real_data: Path) -> Path:
    folder = tmp_path / "shots"
    folder.mkdir()
    shutil.copy(real_data / "sample_img0.png", folder / "sample_img0.png")
    frame = StreetScene(SpriteAtlas.load(), (1280, 720), n_cogs=5, n_toons=1, seed=3).frame(0.0)
    write_png(folder / "street.png", frame.rgb)
    write_png(folder / "labelled.png", frame.rgb)
    (folder / "labelled.xml").write_text("<annotation>mine</annotation>\n")
    (folder / "broken.png").write_bytes(b"not an image")
    (folder / "notes.txt").write_text("not an image")
    return folder


def test_labels_real_screenshot_and_keeps_existing_xml(shots: Path, labeller: FolderLabeller) -> None:
    todo, kept = images_to_label(shots)
    assert [p.name for p in todo] == ["broken.png", "sample_img0.png", "street.png"]
    assert [p.name for p in kept] == ["labelled.png"]
    report = label_folder(shots, labeller)
    assert sorted(p.name for p in report.written) == ["sample_img0.xml", "street.xml"]
    assert len(report.unreadable) == 1 and "broken.png" in report.unreadable[0]
    assert (shots / "labelled.xml").read_text() == "<annotation>mine</annotation>\n"
    ann = read_voc(shots / "sample_img0.xml")
    assert sorted(o.name for o in ann.objects) == ["cog_lb_bloodsucker", "cog_sb_coldcaller"]
    truth = read_voc(Path(__file__).resolve().parents[2] / "shared/data/real/sample_img0.xml")
    assert match_boxes([o.xyxy for o in ann.objects], [o.xyxy for o in truth.objects], 0.5) == (2, 0, 0)
    levels = {n.findtext("name"): (n.findtext("level"), n.findtext("v2"))
              for n in ET.parse(shots / "sample_img0.xml").getroot().iter("object")}
    assert levels == {"cog_sb_coldcaller": ("1", "0"), "cog_lb_bloodsucker": ("3", "0")}
    street = read_voc(shots / "street.xml")
    assert len(street.objects) >= 3
    # a second run writes nothing and touches nothing
    before = {p.name: p.read_bytes() for p in shots.iterdir()}
    again = label_folder(shots, labeller)
    assert again.written == [] and again.review_sheet is None
    assert {p.name: p.read_bytes() for p in shots.iterdir()} == before


def test_review_sheet_lists_uncertain_cogs(tmp_path: Path, labeller: FolderLabeller) -> None:
    from toonvision_live.demo.nametag import draw_cog_nametag
    from toonvision_live.demo.street import make_street_background

    frame = make_street_background((640, 400), 4)[0].copy()
    # a Skelecog's tag over plain street: never forced into the 32, so it goes to review
    draw_cog_nametag(frame, 320, 150, "Skelecog", "Sellbot", 5, 14.0)
    folder = tmp_path / "one"
    folder.mkdir()
    write_png(folder / "a.png", frame)
    report = label_folder(folder, labeller)
    assert [p.name for p in report.written] == ["a.xml"]
    if report.cogs:
        assert report.review_sheet is not None and report.review_sheet.name == "toonvision_review_0.png"
        assert read_voc(folder / "a.xml").objects == ()
    images, _ = images_to_label(folder)
    assert images == []  # the review sheet is never taken for a screenshot


def test_bad_folders_are_one_sentence(tmp_path: Path, labeller: FolderLabeller) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        label_folder(tmp_path / "missing", labeller)
    assert main(["label", str(tmp_path / "missing")]) != 0


def test_cli_labels_a_folder(shots: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (shots / "broken.png").unlink()
    assert main(["label", str(shots), "--provider", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "labelled 2 screenshots" in out and "kept 1 existing XML" in out
    assert (shots / "street.xml").is_file()


def test_read_only_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    write_png(folder / "a.png", np.zeros((40, 40, 3), np.uint8))
    result = read_only_run(folder, "label", str(folder), "--provider", "cpu")
    if result.returncode == 99:
        pytest.skip(f"this kernel does not allow a read-only bind mount in a user namespace: {result.stderr}")
    assert result.returncode != 0
    assert "not writable" in result.stderr and "Traceback" not in result.stderr
    assert not (folder / "a.xml").exists()


def test_save_error_type_for_read_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                       labeller: FolderLabeller) -> None:
    import toonvision_live.tools.label as label_mod

    monkeypatch.setattr(label_mod.os, "access", lambda *a, **k: False)
    with pytest.raises(SaveError, match="not writable"):
        label_folder(tmp_path, labeller)


def test_label_finds_cogs_with_the_live_crop_stage(tmp_path: Path, real_data: Path, labeller: FolderLabeller) -> None:
    """label finds Cogs as live and predict do (the detector stage, its tags confirmed by the verifier): on the
    original game's Legal Eagles frame (320x256, 2001 two-line blue tags) the nametag search alone found none."""
    shutil.copy(real_data / "tto" / "ttc_legal_eagles_landing.png", tmp_path / "eagles.png")
    label_folder(tmp_path, labeller)
    assert [o.name for o in read_voc(tmp_path / "eagles.xml").objects] == ["cog_lb_legaleagle"] * 2
    (tmp_path / "eagles.xml").unlink()
    label_folder(tmp_path, FolderLabeller(labeller.classifier, labeller.reader, stage="nametags"))
    assert read_voc(tmp_path / "eagles.xml").objects == ()
