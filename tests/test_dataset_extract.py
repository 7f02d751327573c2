"""``toonvision dataset extract`` on the real screenshot, a generated dataset, and every bad input."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from dataset_factory import make_screenshot_dataset, read_only_run, synthetic_frame

from toonvision_live.cli import main
from toonvision_live.crops import crop_box
from toonvision_live.fileio import read_image_rgb, write_png
from toonvision_live.taxonomy import COGS, SUIT_BY_CODE
from toonvision_live.voc import VocAnnotation, VocObject, read_voc, write_voc
from training.dataset.extract import extract_dataset
from training.dataset.layout import dataset_paths

TOONVISION = Path(sys.executable).with_name("toonvision")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["dataset", *args])
    out, err = capsys.readouterr()
    return code, out, err


def real_dataset(real_data: Path, root: Path) -> Path:
    shots = root / "raw" / "screenshots"
    shots.mkdir(parents=True)
    for name in ("sample_img0.png", "sample_img0.xml"):
        shutil.copyfile(real_data / name, shots / name)
    return root


def crop_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png")) if folder.is_dir() else []


def no_temp_files(root: Path) -> bool:
    return not [p for p in root.rglob(".tmp-*")] and not [p for p in root.rglob(".probe-*")]


def test_extract_real_screenshot(real_data, tmp_path, capsys):
    root = real_dataset(real_data, tmp_path / "ds")
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0, err
    cog_dir = root / "unsorted" / "cog"
    assert crop_names(cog_dir) == ["cog_lb_bloodsucker_0.png", "cog_sb_coldcaller_0.png"]
    assert crop_names(root / "unsorted" / "toon") == []
    assert "Extracted 2 crops (2 cog, 0 toon) from 1 of 1 screenshots" in out
    frame = read_image_rgb(real_data / "sample_img0.png")  # JPEG data in a .png file
    for name, (x0, y0, x1, y1) in (("cog_sb_coldcaller_0.png", (152, 279, 266, 423)),
                                   ("cog_lb_bloodsucker_0.png", (631, 174, 720, 510))):
        crop = read_image_rgb(cog_dir / name)
        assert crop.shape == (600, 200, 3)
        expected = crop_box(frame, (x0, y0, x1, y1))  # the runtime's own stretch
        assert np.array_equal(crop, expected)
    # the Cold Caller's head (top of the crop) is blue
    head = read_image_rgb(cog_dir / "cog_sb_coldcaller_0.png")[20:120, 80:120].reshape(-1, 3).mean(0)
    assert head[2] > head[0] + 50
    assert no_temp_files(root)


def test_extract_real_screenshot_with_the_installed_script(real_data, tmp_path):
    root = real_dataset(real_data, tmp_path / "ds")
    result = subprocess.run([str(TOONVISION), "dataset", "extract", str(root)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert crop_names(root / "unsorted" / "cog") == ["cog_lb_bloodsucker_0.png", "cog_sb_coldcaller_0.png"]


def test_extract_generated_dataset(tmp_path, capsys):
    root = tmp_path / "ds"
    shots = make_screenshot_dataset(root, 150, seed=3)
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0, err
    wanted = Counter(obj.name for shot in shots for obj in shot.objects)
    made: Counter[str] = Counter()
    for kind in ("cog", "toon"):
        for path in (root / "unsorted" / kind).glob("*.png"):
            label, index = path.stem.rsplit("_", 1)
            assert label.startswith(kind + "_")
            made[label] += 1
    assert made == wanted
    # indexes per label are 0..n-1, no gaps, no duplicates
    for label, n in wanted.items():
        kind = label.split("_")[0]
        assert {p.name for p in (root / "unsorted" / kind).glob(f"{label}_*.png")} == {
            f"{label}_{i}.png" for i in range(n)}
    assert {c.label for c in COGS} <= set(made)
    # every crop is 600x200 and shows its suit's colour (the block drawn in the box)
    for path in (root / "unsorted" / "cog").glob("*.png"):
        crop = read_image_rgb(path)
        assert crop.shape == (600, 200, 3)
        color = SUIT_BY_CODE[path.name.split("_")[1]].color
        rgb = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)])
        assert np.abs(crop[300, 100].astype(int) - rgb).max() < 40, path.name
    # the ledger knows the street of named and foldered screenshots
    ledger = json.loads((root / "ledger.json").read_text())
    streets = {rel: entry["street"] for rel, entry in ledger["screenshots"].items()}
    assert len(streets) == 150
    for shot in shots:
        assert streets[shot.image.relative_to(root / "raw" / "screenshots").as_posix()] == shot.street
    assert "from 150 of 150 screenshots" in out
    assert no_temp_files(root)


def test_rerun_does_not_duplicate_and_new_screenshots_continue_the_numbering(tmp_path, capsys):
    root = tmp_path / "ds"
    make_screenshot_dataset(root, 30, seed=1)
    assert run(capsys, "extract", str(root), "--no-progress")[0] == 0
    before = {p: p.read_bytes() for p in (root / "unsorted").rglob("*.png")}

    code, out, _ = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0
    assert "Extracted 0 crops" in out and "30 were already extracted" in out
    assert {p: p.read_bytes() for p in (root / "unsorted").rglob("*.png")} == before

    added = make_screenshot_dataset(root, 5, seed=1, first_index=30)
    code, out, _ = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0
    new = sorted(set((root / "unsorted").rglob("*.png")) - set(before))
    assert len(new) == sum(len(s.objects) for s in added)
    assert "from 5 of 35 screenshots; 30 were already extracted" in out
    for path in before:  # old crops untouched
        assert path.read_bytes() == before[path]


def test_renamed_screenshot_and_added_box(real_data, tmp_path, capsys):
    root = real_dataset(real_data, tmp_path / "ds")
    assert run(capsys, "extract", str(root), "--no-progress")[0] == 0
    shots = root / "raw" / "screenshots"
    (shots / "sample_img0.png").rename(shots / "dd_renamed.png")
    (shots / "sample_img0.xml").rename(shots / "dd_renamed.xml")
    code, out, _ = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0 and "Extracted 0 crops" in out
    # one more box in the annotation: only that box is cut
    annotation = read_voc(shots / "dd_renamed.xml")
    extra = VocObject("cog_bb_flunky", (400, 200, 460, 380))
    grown = VocAnnotation(annotation.filename, annotation.width, annotation.height,
                          (*annotation.objects, extra))
    write_voc(shots / "dd_renamed.xml", grown, overwrite=True)
    code, out, _ = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0
    assert crop_names(root / "unsorted" / "cog") == [
        "cog_bb_flunky_0.png", "cog_lb_bloodsucker_0.png", "cog_sb_coldcaller_0.png"]
    # a relabelled box gives a new crop and a note naming the old one
    relabelled = tuple(VocObject("cog_sb_telemarketer", o.xyxy) if o.name == "cog_sb_coldcaller" else o
                       for o in read_voc(shots / "dd_renamed.xml").objects)
    write_voc(shots / "dd_renamed.xml", VocAnnotation("dd_renamed.png", 800, 600, relabelled), overwrite=True)
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0
    assert (root / "unsorted" / "cog" / "cog_sb_telemarketer_0.png").is_file()
    assert "cog/cog_sb_coldcaller_0.png no longer match" in err


def test_existing_crops_are_never_overwritten(real_data, tmp_path, capsys):
    root = real_dataset(real_data, tmp_path / "ds")
    cog_dir = root / "unsorted" / "cog"
    cog_dir.mkdir(parents=True)
    (cog_dir / "cog_sb_coldcaller_0.png").write_bytes(b"precious 0")
    (cog_dir / "cog_sb_coldcaller_5.png").write_bytes(b"precious 5")
    code, _, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0, err
    assert (cog_dir / "cog_sb_coldcaller_0.png").read_bytes() == b"precious 0"
    assert (cog_dir / "cog_sb_coldcaller_5.png").read_bytes() == b"precious 5"
    assert read_image_rgb(cog_dir / "cog_sb_coldcaller_6.png").shape == (600, 200, 3)
    assert crop_names(cog_dir) == ["cog_lb_bloodsucker_0.png", "cog_sb_coldcaller_0.png",
                                   "cog_sb_coldcaller_5.png", "cog_sb_coldcaller_6.png"]


# ---- bad input: one sentence naming the file, the rest of the batch completes, exit status 1 ----

def _write_shot(shots: Path, stem: str, objects: tuple[VocObject, ...], size_wh=(320, 240)) -> Path:
    image = write_png(shots / f"{stem}.png", synthetic_frame(size_wh, objects, 0))
    write_voc(shots / f"{stem}.xml", VocAnnotation(image.name, size_wh[0], size_wh[1], objects))
    return image


def _bad_case(case: str, shots: Path) -> tuple[str, str]:
    """Create one bad input in ``shots``; (file name the message must name, words it must hold)."""
    flunky = (VocObject("cog_bb_flunky", (10, 10, 60, 200)),)
    if case == "malformed_xml":
        _write_shot(shots, "bad", flunky)
        (shots / "bad.xml").write_text("<annotation><object><name>cog_bb_flunky</name></annotation>")
        return "bad.xml", "malformed"
    if case == "truncated_xml":
        _write_shot(shots, "bad", flunky)
        data = (shots / "bad.xml").read_bytes()
        (shots / "bad.xml").write_bytes(data[: len(data) // 2])
        return "bad.xml", "truncated"
    if case == "not_voc":
        _write_shot(shots, "bad", flunky)
        (shots / "bad.xml").write_text("<svg></svg>")
        return "bad.xml", "not a Pascal VOC"
    if case == "box_outside":
        _write_shot(shots, "bad", (VocObject("cog_bb_flunky", (400, 10, 460, 200)),))
        return "bad.xml", "outside the 320x240 image"
    if case == "box_empty":
        _write_shot(shots, "bad", (VocObject("cog_bb_flunky", (60, 10, 40, 200)),))
        return "bad.xml", "empty"
    if case == "unknown_label":
        _write_shot(shots, "bad", (VocObject("cog_sb_nobody", (10, 10, 60, 200)),))
        return "bad.xml", "Unknown label 'cog_sb_nobody'"
    if case == "wrong_suit":
        _write_shot(shots, "bad", (VocObject("cog_lb_coldcaller", (10, 10, 60, 200)),))
        return "bad.xml", "use 'cog_sb_coldcaller'"
    if case == "unreadable_image":
        _write_shot(shots, "bad", flunky)
        (shots / "bad.png").write_bytes(b"this is not an image at all")
        return "bad.png", "not an image"
    if case == "empty_image":
        _write_shot(shots, "bad", flunky)
        (shots / "bad.png").write_bytes(b"")
        return "bad.png", "empty"
    if case == "truncated_image":
        _write_shot(shots, "bad", flunky)
        data = (shots / "bad.png").read_bytes()
        (shots / "bad.png").write_bytes(data[:40])
        return "bad.png", "Cannot decode"
    if case == "missing_xml":
        _write_shot(shots, "bad", flunky)
        (shots / "bad.xml").unlink()
        return "bad.png", "has no annotation bad.xml"
    if case == "missing_image":
        _write_shot(shots, "bad", flunky)
        (shots / "bad.png").unlink()
        return "bad.xml", "has no screenshot beside it"
    raise AssertionError(case)


BAD_CASES = [
    "malformed_xml", "truncated_xml", "not_voc", "box_outside", "box_empty", "unknown_label", "wrong_suit",
    "unreadable_image", "empty_image", "truncated_image", "missing_xml", "missing_image",
]


@pytest.mark.parametrize("case", BAD_CASES)
def test_bad_input_is_named_and_the_batch_completes(case, tmp_path, capsys):
    root = tmp_path / "ds"
    shots = make_screenshot_dataset(root, 6, seed=5, toon_every=0)
    folder = root / "raw" / "screenshots"
    file_name, words = _bad_case(case, folder)
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 1
    lines = [line for line in err.splitlines() if file_name in line]
    assert len(lines) == 1, err
    assert words in lines[0] and lines[0].startswith("problem: ")
    assert "Traceback" not in err
    # every good box was extracted
    wanted = sum(len(s.objects) for s in shots)
    assert len(list((root / "unsorted" / "cog").glob("*.png"))) == wanted
    assert "skipped (see the messages above)" in out.splitlines()[-1]
    assert no_temp_files(root)
    # the bad file is reported again on the next run, and nothing is duplicated
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 1 and file_name in err
    assert len(list((root / "unsorted" / "cog").glob("*.png"))) == wanted


def test_box_partly_outside_is_clipped(tmp_path, capsys):
    root = tmp_path / "ds"
    shots = root / "raw" / "screenshots"
    shots.mkdir(parents=True)
    _write_shot(shots, "edge", (VocObject("cog_cb_moneybags", (280, 100, 360, 260)),))
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0
    assert "edge.xml" in err and "clipped to [280, 100, 320, 240]" in err
    crop = read_image_rgb(root / "unsorted" / "cog" / "cog_cb_moneybags_0.png")
    assert crop.shape == (600, 200, 3)
    color = SUIT_BY_CODE["cb"].color
    assert tuple(crop[300, 100]) == tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))


def test_all_bad_inputs_in_one_batch(tmp_path, capsys):
    root = tmp_path / "ds"
    shots = make_screenshot_dataset(root, 4, seed=9, toon_every=0)
    folder = root / "raw" / "screenshots"
    named = []
    for case in BAD_CASES:
        sub = folder / "tmp_case"
        sub.mkdir()
        file_name, _ = _bad_case(case, sub)
        for path in sub.iterdir():
            path.rename(folder / path.name.replace("bad", case))
        sub.rmdir()
        named.append(file_name.replace("bad", case))
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 1
    for name in named:
        assert name in err, name
    assert len(list((root / "unsorted" / "cog").glob("*.png"))) == sum(len(s.objects) for s in shots)
    assert f"{len(BAD_CASES)} files or boxes skipped" in out


def test_missing_dataset_folder(tmp_path, capsys):
    code, out, err = run(capsys, "extract", str(tmp_path / "nowhere"))
    assert code == 2
    assert err.strip() == (f"toonvision: error: Dataset folder {tmp_path / 'nowhere'} does not exist: check "
                           "the path, or create it with the screenshots under raw/screenshots/.")
    assert not (tmp_path / "nowhere").exists()


def test_dataset_without_screenshots(tmp_path, capsys):
    code, _, err = run(capsys, "extract", str(tmp_path))
    assert code == 2 and "has no raw/screenshots folder" in err
    (tmp_path / "raw" / "screenshots").mkdir(parents=True)
    code, _, err = run(capsys, "extract", str(tmp_path))
    assert code == 2 and "No screenshots" in err


def test_a_file_where_the_crop_folder_must_be(real_data, tmp_path, capsys):
    root = real_dataset(real_data, tmp_path / "ds")
    (root / "unsorted").write_bytes(b"not a folder")
    code, _, err = run(capsys, "extract", str(root))
    assert code == 2
    assert "toonvision: error: Could not write" in err and "unsorted" in err
    assert (root / "unsorted").read_bytes() == b"not a folder"


def test_unreadable_ledger_stops_with_a_sentence(real_data, tmp_path, capsys):
    root = real_dataset(real_data, tmp_path / "ds")
    paths = dataset_paths(root)
    paths.unsorted_cog.mkdir(parents=True)
    paths.ledger.write_text("{ half")
    code, _, err = run(capsys, "extract", str(root))
    assert code == 2 and "ledger.json is unreadable" in err
    assert crop_names(paths.unsorted_cog) == []


@pytest.mark.parametrize("crop_folders_exist", [False, True])
def test_read_only_dataset_folder(real_data, tmp_path, crop_folders_exist):
    root = real_dataset(real_data, tmp_path / "ds")
    if crop_folders_exist:
        (root / "unsorted" / "cog").mkdir(parents=True)
        (root / "unsorted" / "toon").mkdir(parents=True)
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    result = read_only_run(root, "dataset", "extract", str(root))
    if result.returncode == 99:
        pytest.skip(f"this kernel does not allow a read-only bind mount in a user namespace: {result.stderr}")
    assert result.returncode == 2, result.stderr
    err = result.stderr.strip()
    assert err.startswith("toonvision: error: ") and "\n" not in err
    assert str(root / "unsorted") in err and ("not writable" in err or "Read-only" in err)
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_extract_api_reports_problems_without_printing(tmp_path):
    root = tmp_path / "ds"
    make_screenshot_dataset(root, 3, seed=2)
    (root / "raw" / "screenshots" / "lonely.png").write_bytes(b"x")
    result = extract_dataset(root, progress=False)
    assert not result.ok and len(result.problems) == 1 and "lonely.png" in result.problems[0]
    assert result.extracted == 3 and result.screenshots == 4
    assert os.path.isfile(result.crops[0])


def test_screenshot_without_boxes_is_noted(tmp_path, capsys):
    root = tmp_path / "ds"
    shots = root / "raw" / "screenshots"
    shots.mkdir(parents=True)
    _write_shot(shots, "empty_street", ())
    _write_shot(shots, "one", (VocObject("cog_lb_spindoctor", (10, 10, 60, 200)),))
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0
    assert "empty_street.xml has no boxes" in err
    assert "Extracted 1 crops (1 cog, 0 toon) from 1 of 2 screenshots" in out


def test_full_disk_stops_cleanly_and_the_ledger_matches_the_crops(tmp_path):
    """unsorted/ on a 40 KiB tmpfs (private mount namespace): the disk fills up part way."""
    root = tmp_path / "ds"
    make_screenshot_dataset(root, 40, seed=0)
    (root / "unsorted").mkdir()
    script = (
        'mount -t tmpfs -o size=40k tmpfs "$1/unsorted" || exit 99\n'
        '"$2" dataset extract "$1" --no-progress; echo "rc=$?"\n'
        'echo "FILES"; cd "$1/unsorted" && find . -type f | sort\n'
        'echo "LEDGER"; cat "$1/ledger.json" 2>/dev/null; echo\n'
    )
    result = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh", str(root),
         str(TOONVISION)],
        capture_output=True, text=True, timeout=120,
    )
    if result.returncode == 99:
        pytest.skip(f"this kernel does not allow a tmpfs mount in a user namespace: {result.stderr}")
    out = result.stdout
    assert "rc=2" in out
    assert result.stderr.strip().splitlines()[-1].endswith("the disk is full: free some space and try again.")
    files = out.split("FILES\n", 1)[1].split("LEDGER\n", 1)[0].split()
    crops = {f[2:] for f in files if f.endswith(".png")}
    assert not [f for f in files if ".tmp-" in f or ".probe-" in f]
    assert crops, "the disk filled before the first crop: make the tmpfs larger"
    ledger_text = out.split("LEDGER\n", 1)[1].strip()
    recorded = set()
    if ledger_text:
        for entry in json.loads(ledger_text)["screenshots"].values():
            recorded |= {o["crop"] for o in entry["objects"]}
    assert crops == recorded  # every crop on disk is in the ledger: a re-run would not make it twice


def test_a_replaced_image_is_cut_again_and_the_old_crops_are_named(tmp_path, capsys):
    root = tmp_path / "ds"
    shots = root / "raw" / "screenshots"
    shots.mkdir(parents=True)
    box = (VocObject("cog_lb_bigwig", (10, 10, 60, 200)),)
    _write_shot(shots, "ttc_1", box)
    assert run(capsys, "extract", str(root), "--no-progress")[0] == 0
    (shots / "ttc_1.png").unlink()
    write_png(shots / "ttc_1.png", synthetic_frame((320, 240), box, seed=99))
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0
    assert "ttc_1.png is a different image" in err and "cog/cog_lb_bigwig_0.png" in err
    assert crop_names(root / "unsorted" / "cog") == ["cog_lb_bigwig_0.png", "cog_lb_bigwig_1.png"]
