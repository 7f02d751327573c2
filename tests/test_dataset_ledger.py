"""One ledger for the hotkey saver and ``dataset extract``; leak-free groups in split; ``dataset check``.

Real files, real processes: saves through ``save_labelled_frame``, extract/split/check through the CLI,
two processes writing at once, a read-only bind mount (``unshare``) for the read-only dataset.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from dataset_factory import make_crop_files, make_screenshot_dataset, read_only_run

from toonvision_live.cli import main
from toonvision_live.fileio import read_image_rgb, write_png
from toonvision_live.ledger import Ledger
from toonvision_live.saver import save_labelled_frame
from training.dataset.layout import SPLITS, dataset_paths

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Tracked:
    body_xyxy: tuple[int, int, int, int]
    suit: str
    cog: str


COGS = (Tracked((10, 20, 60, 170), "sb", "coldcaller"), Tracked((100, 30, 150, 190), "lb", "bigwig"))
WHEN = datetime(2026, 11, 23, 12, 34, 56, 789000)


def frame(seed: int, shift: int = 0) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 255, (240, 400, 3), dtype=np.uint8)
    return np.roll(rgb, shift, axis=1)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["dataset", *args])
    out, err = capsys.readouterr()
    return code, out, err


def split_of(root: Path) -> dict[str, str]:
    return {f"{p.parent.name}/{p.name}": split for split in SPLITS
            for p in (root / "data" / split).glob("*/*.png")}


def test_two_saves_100_ms_apart_then_extract_makes_no_new_crop_and_split_keeps_them_together(tmp_path, capsys):
    root = tmp_path / "ds"
    root.mkdir()
    first = save_labelled_frame(frame(0), COGS, root, when=WHEN)
    second = save_labelled_frame(frame(0, shift=1), COGS, root, when=WHEN + timedelta(milliseconds=100))
    crops = sorted(p.name for p in (root / "unsorted" / "cog").glob("*.png"))
    assert len(crops) == 4
    ledger = Ledger.load(root)
    assert set(ledger.screenshots) == {first.screenshot.name, second.screenshot.name}
    assert sorted(Path(c).name for c in ledger.crop_sources()) == crops

    code, out, _ = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0 and "Extracted 0 crops" in out and "2 were already extracted" in out
    assert sorted(p.name for p in (root / "unsorted" / "cog").glob("*.png")) == crops
    assert all(e["source"] == "hotkey" and e["captured"] for e in Ledger.load(root).screenshots.values())

    code, out, _ = run(capsys, "split", str(root), "--no-progress")
    assert code == 0 and "2 groups kept whole" in out
    placed = split_of(root)
    for label in ("cog_sb_coldcaller", "cog_lb_bigwig"):  # the two saves of one Cog: one split
        assert len({placed[f"cog/{label}_{i}.png"] for i in (0, 1)}) == 1


SAVER = """
import sys, time
from datetime import datetime, timedelta
import numpy as np
from toonvision_live.saver import save_labelled_frame
from test_dataset_ledger import COGS
start = datetime(2026, 1, 1)
for i in range(int(sys.argv[2])):
    rgb = np.random.default_rng(i).integers(0, 255, (240, 400, 3), dtype=np.uint8)
    save_labelled_frame(rgb, COGS, sys.argv[1], when=start + timedelta(minutes=i))
    print(time.monotonic(), flush=True)
    time.sleep(0.1)
"""


def test_saver_and_extract_in_two_processes_record_every_crop_once(tmp_path):
    """The live saver saves 25 frames while extract runs again and again over 30 labelled screenshots."""
    root = tmp_path / "ds"
    shots = make_screenshot_dataset(root, 30, seed=4, toon_every=0)
    boxes = sum(len(s.objects) for s in shots)
    saver = subprocess.Popen([sys.executable, "-c", SAVER, str(root), "25"], cwd=ROOT / "tests",
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs, started = [], []
    while saver.poll() is None or len(outputs) < 2:
        started.append(time.monotonic())
        done = subprocess.run([sys.executable, "-m", "toonvision_live", "dataset", "extract", str(root),
                               "--no-progress"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert saver.wait() == 0, saver.stderr.read() if saver.stderr else ""
    saved_at = [float(line) for line in saver.stdout.read().split()] if saver.stdout else []
    assert started[0] < saved_at[-1] and saved_at[0] < started[-1]  # the two really ran at once
    assert sum(int(out.split("Extracted ")[1].split()[0]) for out in outputs) == boxes  # each box cut once
    crops = sorted(f"cog/{p.name}" for p in (root / "unsorted" / "cog").glob("*.png"))
    assert len(crops) == boxes + 50
    ledger = Ledger.load(root)
    recorded = [o["crop"] for e in ledger.screenshots.values() for o in e["objects"]]
    assert sorted(recorded) == crops  # every crop recorded, none twice, no hotkey crop cut again
    assert sum(e["source"] == "hotkey" for e in ledger.screenshots.values()) == 25
    assert len(ledger.screenshots) == 55


def _planted(root: Path) -> dict[str, list[str]]:
    """Distinct crops of two Cogs, plus an identical copy, a near-identical copy and three hotkey saves."""
    paths = dataset_paths(root)
    make_crop_files(paths.unsorted_cog, {"cog_sb_coldcaller": 10, "cog_bb_flunky": 10}, seed=3)
    for path in paths.unsorted_cog.glob("*.png"):  # 600x200 like real crops
        write_png(path, cv2.resize(read_image_rgb(path), (200, 600), interpolation=cv2.INTER_NEAREST),
                  overwrite=True)
    shutil.copyfile(paths.unsorted_cog / "cog_sb_coldcaller_2.png", paths.unsorted_cog / "cog_sb_coldcaller_10.png")
    near = read_image_rgb(paths.unsorted_cog / "cog_bb_flunky_4.png").astype(int)
    near[::50, ::50] += 3  # a few pixels a little brighter: not identical, same perceptual hash
    write_png(paths.unsorted_cog / "cog_bb_flunky_10.png", np.clip(near, 0, 255).astype(np.uint8))
    manifest = [json.dumps({"file": f"unsorted/cog/{p.name}"}) for p in paths.unsorted_cog.glob("*.png")]
    paths.manifest.write_text("\n".join(manifest) + "\n")
    for i in range(3):  # one encounter: three saves 2 s apart
        save_labelled_frame(frame(10 + i), (Tracked((10, 20, 60, 170), "sb", "coldcaller"),), root,
                            when=WHEN + timedelta(seconds=2 * i))
    return {"identical": ["cog/cog_sb_coldcaller_2.png", "cog/cog_sb_coldcaller_10.png"],
            "near": ["cog/cog_bb_flunky_4.png", "cog/cog_bb_flunky_10.png"],
            "moment": [f"cog/cog_sb_coldcaller_{i}.png" for i in (11, 12, 13)]}


def test_split_keeps_planted_groups_whole_and_check_reports_them(tmp_path, capsys):
    root = tmp_path / "ds"
    groups = _planted(root)
    for seed in ("0", "1", "2"):
        code, out, _ = run(capsys, "split", str(root), "--no-progress", "--seed", seed, "--force")
        assert code == 0
        assert "(1 identical duplicates, 5 near-identical crops)" in out
        placed = split_of(root)
        assert len(placed) == 25
        for members in groups.values():
            assert len({placed[k] for k in members}) == 1, (seed, members, placed)
    record = json.loads((root / "data" / "split.json").read_text())
    assert record["duplicates"] == 1 and record["groups"] == 25 - 1 - 1 - 2
    assert record["near_identical"] == 2 + 3  # the near copy and its original, the three saves

    code, out, err = run(capsys, "check", str(root), "--no-progress")
    assert code == 1
    assert "duplicate crop: " in err and "cog_sb_coldcaller_10.png has the same pixels as" in err
    assert "near-identical crops" in out and "│ 5 " in out
    assert "leak across splits: " not in err


def test_check_fix_quarantines_and_a_second_check_is_clean(tmp_path, capsys):
    root = tmp_path / "ds"
    groups = _planted(root)
    assert run(capsys, "split", str(root), "--no-progress")[0] == 0
    placed = split_of(root)
    # plant a leak: one of the three saves also in another split; a crop the ledger names is deleted;
    # a crop without a source; an unreadable crop; a screenshot whose XML names an unknown Cog
    key = groups["moment"][0]
    other = next(s for s in SPLITS if s != placed[key])
    shutil.copyfile(root / "unsorted" / key, root / "data" / other / key)
    (root / "unsorted" / groups["moment"][2]).unlink()
    for split in SPLITS:
        (root / "data" / split / groups["moment"][2]).unlink(missing_ok=True)
    make_crop_files(root / "unsorted" / "cog", {"cog_cb_tightwad": 1}, seed=9)
    (root / "unsorted" / "cog" / "cog_cb_moneybags_0.png").write_bytes(b"not a png")
    shots = root / "raw" / "screenshots"
    bad_xml = next(shots.glob("*.xml"))
    bad_xml.write_text(bad_xml.read_text().replace("cog_sb_coldcaller", "cog_sb_nosuchcog"))
    before = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())

    code, out, err = run(capsys, "check", str(root), "--no-progress")
    assert code == 1
    for kind in ("bad screenshot", "bad crop", "crop without source", "missing crop", "duplicate crop",
                 "leak across splits"):
        assert f"{kind}: " in err, kind
    code, out, err = run(capsys, "check", str(root), "--no-progress", "--fix")
    assert code == 0 and "into quarantine/" in out
    code, out, err = run(capsys, "check", str(root), "--no-progress")
    assert code == 0 and "The dataset is consistent." in out and err == ""
    # nothing lost: every file is where it was or in quarantine/ at the same relative path
    after = {p.relative_to(root) for p in root.rglob("*") if p.is_file()}
    for rel in before:
        assert rel in after or Path("quarantine") / rel in after, rel
    assert (root / "quarantine" / "raw" / "screenshots" / bad_xml.name).is_file()
    # the deleted crop is recorded as removed: extract does not cut it again
    assert run(capsys, "extract", str(root), "--no-progress")[0] in (0, 1)
    assert not (root / "unsorted" / groups["moment"][2]).exists()


def test_check_fix_on_a_read_only_dataset_is_one_sentence_and_changes_nothing(tmp_path):
    root = tmp_path / "ds"
    _planted(root)
    before = {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = read_only_run(root, "dataset", "check", str(root), "--fix", "--no-progress")
    if result.returncode == 99:
        pytest.skip(f"this kernel does not allow a read-only bind mount in a user namespace: {result.stderr}")
    assert result.returncode == 2, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("toonvision: error: ") and "writable" in last and "Traceback" not in result.stderr
    assert {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    # without --fix a read-only dataset is checked as usual
    result = read_only_run(root, "dataset", "check", str(root), "--no-progress")
    assert result.returncode == 1 and "duplicate crop" in result.stderr


def test_check_fix_on_a_full_disk_is_one_sentence_and_moves_nothing(tmp_path):
    """The dataset copied onto a tmpfs that is then filled up: the ledger cannot be rewritten."""
    root = tmp_path / "ds"
    _planted(root)
    script = (
        'cp -a "$1" "$1.copy" && mount -t tmpfs -o size=16m tmpfs "$1" || exit 99\n'
        'cp -a "$1.copy/." "$1/" || exit 98\n(dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null; true)\n'
        '"$2" dataset check "$1" --fix --no-progress; echo "rc=$?"\n'
        'cd "$1" && find . -type f ! -name filler | sort\n'
    )
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
                             str(root), str(Path(sys.executable).with_name("toonvision"))],
                            capture_output=True, text=True, timeout=120)
    if result.returncode == 99:
        pytest.skip(f"this kernel does not allow a tmpfs mount in a user namespace: {result.stderr}")
    assert "rc=2" in result.stdout, result.stdout + result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("the disk is full: free some space and try again.")
    files = result.stdout.split("rc=2\n", 1)[1].split()
    assert not [f for f in files if "quarantine" in f or ".tmp-" in f]
    assert sorted(f[2:] for f in files) == sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_an_unreadable_ledger_is_quarantined_and_rebuilt_from_the_files(tmp_path, capsys):
    root = tmp_path / "ds"
    root.mkdir()
    save_labelled_frame(frame(0), COGS, root, when=WHEN)
    save_labelled_frame(frame(1), COGS, root, when=WHEN + timedelta(seconds=30))
    good = Ledger.load(root).screenshots
    (root / "unsorted" / "cog" / "cog_lb_bigwig_1.png").unlink()  # a crop the user deleted
    (root / "ledger.json").write_text("{ half")
    code, out, err = run(capsys, "extract", str(root), "--no-progress")
    assert code == 2 and "ledger.json is unreadable" in err and "check --fix" in err
    code, out, err = run(capsys, "check", str(root), "--no-progress")
    assert code == 1 and "unreadable ledger: " in err and "crop without source" not in err
    assert run(capsys, "check", str(root), "--no-progress", "--fix")[0] == 0
    assert (root / "quarantine" / "ledger.json").read_text() == "{ half"
    rebuilt = Ledger.load(root).screenshots
    assert set(rebuilt) == set(good)
    for rel, entry in good.items():  # same boxes, same crops; the deleted one recorded as removed
        crops = [o["crop"] if o["crop"] != "cog/cog_lb_bigwig_1.png" else None for o in entry["objects"]]
        assert [o["crop"] for o in rebuilt[rel]["objects"]] == crops
        assert rebuilt[rel]["captured"] == entry["captured"]
    code, out, err = run(capsys, "check", str(root), "--no-progress")
    assert code == 0 and "The dataset is consistent." in out
    code, out, _ = run(capsys, "extract", str(root), "--no-progress")
    assert code == 0 and "Extracted 0 crops" in out  # nothing cut twice, the deleted crop not cut again


def test_split_on_a_full_disk_is_one_sentence_loses_nothing_and_finishes_once_there_is_room(tmp_path):
    root = tmp_path / "ds"
    _planted(root)
    script = (
        'cp -a "$1" "$1.copy" && mount -t tmpfs -o size=16m tmpfs "$1" || exit 99\n'
        'cp -a "$1.copy/." "$1/" || exit 98\n(dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null; true)\n'
        '"$2" dataset split "$1" --no-progress; echo "rc=$?"\n'
        'cd "$1" && find unsorted raw -type f | sort | xargs md5sum; echo FREED; rm filler\n'
        '"$2" dataset split "$1" --no-progress; echo "rc=$?"\n'
    )
    result = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script, "sh",
                             str(root), str(Path(sys.executable).with_name("toonvision"))],
                            capture_output=True, text=True, timeout=120)
    if result.returncode == 99:
        pytest.skip(f"this kernel does not allow a tmpfs mount in a user namespace: {result.stderr}")
    full, freed = result.stdout.split("FREED\n")
    assert "rc=2" in full, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("toonvision: error:")]
    assert len(errors) == 1 and errors[0].endswith("the disk is full: free some space and try again.")
    assert "Traceback" not in result.stderr
    sums = subprocess.run(["sh", "-c", 'cd "$1" && find unsorted raw -type f | sort | xargs md5sum', "sh",
                           str(root)], capture_output=True, text=True).stdout
    assert full.split("rc=2\n", 1)[1] == sums  # every crop, screenshot and XML as it was
    assert "rc=0" in freed and "Split 25 crops" in freed
