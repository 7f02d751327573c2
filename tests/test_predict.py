"""``toonvision predict``: files and folders in, VOC XML + annotated PNG out, one-sentence errors for bad
paths and unreadable images while the good ones are still done."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from toonvision_live.cli import main
from toonvision_live.geometry import iou_matrix
from toonvision_live.voc import read_voc


@pytest.fixture(scope="module")
def street_png(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    from toonvision_live.demo.window import load_street_scene

    folder = tmp_path_factory.mktemp("frames")
    frame = load_street_scene((1280, 720), n_cogs=6, seed=2).frame(1.0)
    cv2.imwrite(str(folder / "street.png"), cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR))
    truth = [o.xyxy for o in frame.objects if o.name.startswith("cog_") and not o.difficult and not o.truncated]
    return folder, truth


def test_predict_folder_with_a_bad_file_and_a_missing_path(street_png, tmp_path: Path, capsys) -> None:
    folder, truth = street_png
    (folder / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    rc = main(["predict", str(folder), str(tmp_path / "nowhere.png"), "--out", str(out)])
    captured = capsys.readouterr()
    assert rc == 1
    errors = [line for line in captured.err.splitlines() if line.startswith("toonvision: error:")]
    assert len(errors) == 2 and "nowhere.png does not exist" in errors[0] and "broken.png" in errors[1]
    assert "Traceback" not in captured.err
    ann = read_voc(out / "street.xml")
    assert (ann.width, ann.height) == (1280, 720) and ann.filename == "street.png"
    names = [o.name for o in ann.objects]
    assert names and all(n.startswith("cog_") for n in names)
    iou = iou_matrix([o.xyxy for o in ann.objects], truth)
    assert len(truth) >= 3 and (iou.max(axis=0) >= 0.4).all()  # every Cog in full view is found
    png = cv2.imread(str(out / "street.png"))
    assert png.shape == (720, 1280, 3)
    assert "street.png" in captured.out and "cog_" in captured.out
    assert not (out / "broken.xml").exists()


def test_predict_scale_and_detector_stage(street_png, tmp_path: Path) -> None:
    folder, _ = street_png
    assert main(["predict", str(folder / "street.png"), "--out", str(tmp_path), "--scale", "0.5"]) == 0
    # the 640x360 image is drawn at 960x540 so that its captions stay legible; its XML keeps its own pixels
    assert cv2.imread(str(tmp_path / "street.png")).shape == (540, 960, 3)
    assert read_voc(tmp_path / "street.xml").width == 640
    assert main(["predict", str(folder / "street.png"), "--out", str(tmp_path / "n"), "--stage", "detector"]) == 0
    assert read_voc(tmp_path / "n" / "street.xml").objects
    assert main(["predict", str(folder / "street.png"), "--out", str(tmp_path / "c"), "--stage", "combined"]) == 0
    assert len(read_voc(tmp_path / "c" / "street.xml").objects) >= len(read_voc(tmp_path / "n" / "street.xml").objects)


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_predict_reads_the_real_tags_of_sample_img0(real_data: Path, tmp_path: Path, capsys, scale: float) -> None:
    """The real Toontown Rewritten screenshot: both Cogs named with the level their tags say, in the
    table and as <level>/<v2> in the XML; --no-reader leaves the level out."""
    real = real_data / "sample_img0.png"
    assert main(["predict", str(real), "--out", str(tmp_path), "--scale", str(scale)]) == 0
    got = {(o.name, o.level, o.v2) for o in read_voc(tmp_path / "sample_img0.xml").objects}
    assert got == {("cog_sb_coldcaller", 1, False), ("cog_lb_bloodsucker", 3, False)}
    out = capsys.readouterr().out
    assert "cog_sb_coldcaller" in out and " 6 " in out and " 20 " in out  # HP of levels 1 and 3
    assert main(["predict", str(real), "--out", str(tmp_path / "body"), "--no-reader", "--scale", str(scale)]) == 0
    assert {o.level for o in read_voc(tmp_path / "body" / "sample_img0.xml").objects} == {None}


def test_predict_user_errors(tmp_path: Path, capsys) -> None:
    assert main(["predict", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 1
    assert main(["predict", str(tmp_path), "--out", str(tmp_path / "o"), "--scale", "0"]) != 0
    err = capsys.readouterr().err
    assert "does not exist" in err and "--scale" in err and "Traceback" not in err


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_the_detector_stage_reads_the_real_tags_once_the_verifier_snaps_them(real_data: Path, tmp_path: Path,
                                                                             scale: float) -> None:
    """--stage detector confirms each detection's tag with the nametag verifier (find/confirm.py), so the
    reader reads the real tags of sample_img0 (the detector's own tag box made it read the Cold Caller as
    level 4: --stage detector-raw)."""
    real = real_data / "sample_img0.png"
    assert main(["predict", str(real), "--out", str(tmp_path), "--scale", str(scale), "--stage", "detector"]) == 0
    got = {(o.name, o.level, o.v2) for o in read_voc(tmp_path / "sample_img0.xml").objects}
    # at 3x the detector's tag box for the Cold Caller is too small: the verifier finds the tag in the grown box
    assert got == {("cog_sb_coldcaller", 1, False), ("cog_lb_bloodsucker", 3, False)}
    assert main(["predict", str(real), "--out", str(tmp_path / "raw"), "--scale", str(scale),
                 "--stage", "detector-raw"]) == 0
    assert len(read_voc(tmp_path / "raw" / "sample_img0.xml").objects) == 2


def test_a_guessed_tag_box_is_never_read(real_data: Path, tmp_path: Path) -> None:
    """The detector's own tag boxes (--stage detector-raw) are guesses the verifier never confirmed: they
    are not read, so the bodies name the Cogs (a misplaced box once gave confident wrong reads, The Mingler
    and Big Wig Lv 10) and no level is claimed."""
    real = real_data / "sample_img0.png"
    assert main(["predict", str(real), "--out", str(tmp_path), "--stage", "detector-raw"]) == 0
    got = {(o.name, o.level) for o in read_voc(tmp_path / "sample_img0.xml").objects}
    assert got == {("cog_sb_coldcaller", None), ("cog_lb_bloodsucker", None)}


def test_captions_stay_inside_small_frames_clear_of_tags_and_each_other() -> None:
    """The four Cogs of the 320x256 battle frame tto/cog_building_battle_sellbots as predict finds them: their
    captions ran off the image and over each other; now each is inside, clear of every tag and of the others."""
    from toonvision_live.geometry import intersection_matrix
    from toonvision_live.tools.predict import DRAW_MIN_SIDE, PredictedCog, caption_cards
    from toonvision_live.ui.cards import scaled

    cogs = [PredictedCog("cog_bb_flunky", "Flunky", 0.99, (128, 104, 184, 203), (139, 83, 174, 98), 0.67),
            PredictedCog("cog_sb_gladhander", "Glad Hander · Lv 4 v2.0 · 30+30 HP", 0.38, (150, 79, 205, 202),
                         (159, 54, 196, 72), 0.9, 4, True, "s", 30),
            PredictedCog("cog_bb_micromanager", "Micromanager", 1.0, (196, 124, 241, 203), (204, 105, 235, 118), 0.7),
            PredictedCog("cog_bb_downsizer", "Downsizer", 1.0, (266, 89, 311, 179), (274, 70, 304, 84), 0.73)]
    k = DRAW_MIN_SIDE / 320
    size = (DRAW_MIN_SIDE, round(256 * k))
    cards = [card for _, card, _ in caption_cards(cogs, size, k)]
    assert all(0 <= x0 < x1 <= size[0] and 0 <= y0 < y1 <= size[1] for x0, y0, x1, y1 in cards)
    between = intersection_matrix(cards, cards)
    assert (between[~np.eye(len(cogs), dtype=bool)] == 0).all()
    assert (intersection_matrix(cards, [scaled(c.tag_xyxy, k) for c in cogs]) == 0).all()
    # unscaled, the captions of this small frame cannot all fit clear of each other: hence the larger drawing
    small = [card for _, card, _ in caption_cards(cogs, (320, 256), 1.0, 0.45)]
    assert (intersection_matrix(small, small)[~np.eye(len(cogs), dtype=bool)] > 0).any()
