"""``toonvision dataset report``: tables, report.json and the balance charts, on real files."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from dataset_factory import make_crop_files, make_screenshot_dataset

from toonvision_live.cli import main
from toonvision_live.fileio import read_image_rgb
from toonvision_live.taxonomy import COGS, STREETS, SUIT_CODES
from training.dataset.layout import SPLITS, dataset_paths


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["dataset", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def extracted_dataset(tmp_path_factory):
    """60 generated screenshots, extracted and split (shared by the tests that only read it)."""
    root = tmp_path_factory.mktemp("report") / "ds"
    shots = make_screenshot_dataset(root, 60, seed=4)
    assert main(["dataset", "extract", str(root), "--no-progress"]) == 0
    assert main(["dataset", "split", str(root), "--no-progress"]) == 0
    return root, shots


def test_report_counts_match_the_files(extracted_dataset, capsys):
    root, shots = extracted_dataset
    code, out, err = run(capsys, "report", str(root))
    assert code == 0, err
    report_dir = root / "report"
    data = json.loads((report_dir / "report.json").read_text())
    cog_files = list((root / "unsorted" / "cog").glob("*.png"))
    toon_files = list((root / "unsorted" / "toon").glob("*.png"))
    assert data["totals"]["unsorted"] == len(cog_files) + len(toon_files)
    by_cog = Counter(p.name.rsplit("_", 1)[0] for p in cog_files)
    assert list(data["per_cog"]) == [c.label for c in COGS]  # all 32, model order
    assert {label: row["unsorted"] for label, row in data["per_cog"].items()} == {
        c.label: by_cog.get(c.label, 0) for c in COGS}
    assert list(data["per_suit"]) == list(SUIT_CODES)
    assert sum(row["unsorted"] for row in data["per_suit"].values()) == len(cog_files)
    for split in SPLITS:
        files = list((root / "data" / split).glob("*/*.png"))
        assert data["totals"][split] == len(files)
        assert sum(row[split] for row in data["per_cog"].values()) == len(
            [p for p in files if p.parent.name == "cog"])
    # streets: from the screenshot names/folders, through extract's ledger
    wanted = Counter(shot.street or "unknown" for shot in shots
                     for obj in shot.objects if obj.name.startswith("cog_"))
    assert data["per_street"] == {s: wanted.get(s, 0) for s in (*STREETS, "unknown")}
    assert data["per_toon"]["toon_dog"]["unsorted"] >= 1
    assert data["charts"] == ["suits.png", "cogs.png", "streets.png", "splits.png", "toons.png"]
    for name in data["charts"]:
        image = read_image_rgb(report_dir / name)
        assert image.shape[0] > 200 and image.shape[1] > 300
        assert image.std() > 10  # a drawn chart, not a blank page
    # the tables
    for title in ("Cog crops per suit", "Crops per Cog", "Crops per Toon animal", "Cog crops per street"):
        assert title in out
    assert "Mr. Hollywood" in out and "validate" in out
    assert out.strip().splitlines()[-1].startswith("Wrote suits.png, cogs.png")


def test_report_without_a_split_and_with_a_manifest(tmp_path, capsys):
    root = tmp_path / "ds"
    paths = dataset_paths(root)
    made = make_crop_files(paths.unsorted_cog, {"cog_lb_bigwig": 4, "cog_bb_flunky": 2})
    lines = [json.dumps({"file": f"unsorted/cog/{p.name}", "street": "dg" if "bigwig" in p.name else None})
             for p in made]
    paths.manifest.write_text("\n".join(lines) + "\n")
    out_dir = tmp_path / "charts"
    code, out, err = run(capsys, "report", str(root), "--out", str(out_dir))
    assert code == 0, err
    data = json.loads((out_dir / "report.json").read_text())
    assert data["totals"] == {"unsorted": 6}
    assert data["per_suit"]["lb"] == {"unsorted": 4} and data["per_suit"]["bb"] == {"unsorted": 2}
    assert data["per_street"]["dg"] == 4 and data["per_street"]["unknown"] == 2
    assert data["charts"] == ["suits.png", "cogs.png", "streets.png"]
    assert not (out_dir / "splits.png").exists() and not (root / "report").exists()


def test_report_bad_inputs(tmp_path, capsys):
    code, _, err = run(capsys, "report", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, _, err = run(capsys, "report", str(tmp_path))
    assert code == 2 and "has no crops" in err
    paths = dataset_paths(tmp_path)
    make_crop_files(paths.unsorted_cog, {"cog_sb_twoface": 3})
    (paths.unsorted_cog / "twoface.png").write_bytes(b"x")
    (paths.unsorted_cog / "cog_sb_twoface_x.png").write_bytes(b"x")
    code, out, err = run(capsys, "report", str(tmp_path))
    assert code == 1 and "twoface.png is not named" in err and "cog_sb_twoface_x.png is not named" in err
    paths.manifest.write_text('{"file": "unsorted/cog/cog_sb_twoface_0.png"}\nnot json\n')
    code, _, err = run(capsys, "report", str(tmp_path))
    assert code == 2 and "manifest.jsonl line 2 is not JSON" in err
    paths.manifest.unlink()
    (tmp_path / "blocker").write_bytes(b"a file, not a folder")
    code, _, err = run(capsys, "report", str(tmp_path), "--out", str(tmp_path / "blocker" / "out"))
    assert code == 2 and "Could not write" in err and "blocker" in err
