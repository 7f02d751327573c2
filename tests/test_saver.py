"""saver.py: a labelled frame becomes PNG + VOC XML + 600x200 crops, all or nothing, never overwriting.

Faults: a missing dataset folder, a read-only one (a read-only tmpfs mount when we may mount, else a
chmod 555 folder for a non-root user), and a full disk: a real 64 KiB tmpfs when mounting is allowed,
and, always, an OSError(ENOSPC) injected at ``fileio.write_temp`` (the single place bytes are written)
on its third call, to check that files already staged are cleaned up.
"""

from __future__ import annotations

import errno
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from toonvision_live import fileio, saver
from toonvision_live.errors import SaveError
from toonvision_live.fileio import read_image_rgb
from toonvision_live.saver import FrameSaver, save_labelled_frame
from toonvision_live.taxonomy import parse_label
from toonvision_live.voc import read_voc


@dataclass(frozen=True)
class Tracked:
    body_xyxy: tuple[int, int, int, int]
    suit: str
    cog: str


COGS = (
    Tracked((10, 20, 60, 170), "sb", "coldcaller"),
    Tracked((100, 30, 150, 190), "lb", "bigwig"),
    Tracked((200, 10, 240, 130), "sb", "coldcaller"),
    Tracked((300, 50, 400, 260), "cb", "moneybags"),
)
WHEN = datetime(2026, 11, 23, 12, 34, 56, 789000)


def frame_rgb(width: int = 400, height: int = 240, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (height, width, 3), dtype=np.uint8)


def all_files(root: Path) -> list[str]:
    """Every file under ``root`` but the dataset's (empty) lock file, which stays by design."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.name != ".ledger.lock")


def test_saves_frame_xml_and_named_crops(tmp_path: Path):
    rgb = frame_rgb()
    saved = save_labelled_frame(rgb, COGS, tmp_path, when=WHEN)
    assert saved.screenshot == tmp_path / "raw/screenshots/2026-11-23_12-34-56-789.png"
    assert saved.annotation == saved.screenshot.with_suffix(".xml")
    assert [p.name for p in saved.crops] == [
        "cog_sb_coldcaller_0.png",
        "cog_lb_bigwig_0.png",
        "cog_sb_coldcaller_1.png",
        "cog_cb_moneybags_0.png",
    ]
    assert np.array_equal(read_image_rgb(saved.screenshot), rgb)
    voc = read_voc(saved.annotation)
    assert (voc.filename, voc.width, voc.height) == (saved.screenshot.name, 400, 240)
    # the last box reaches past the frame's bottom edge: clipped
    assert [(o.name, o.xyxy) for o in voc.objects] == [
        ("cog_sb_coldcaller", (10, 20, 60, 170)),
        ("cog_lb_bigwig", (100, 30, 150, 190)),
        ("cog_sb_coldcaller", (200, 10, 240, 130)),
        ("cog_cb_moneybags", (300, 50, 400, 240)),
    ]
    for crop in saved.crops:
        assert read_image_rgb(crop).shape == (600, 200, 3)
        parse_label(crop.stem.rsplit("_", 1)[0])  # a valid ToonVision label
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_never_overwrites_and_numbers_on(tmp_path: Path):
    first = save_labelled_frame(frame_rgb(seed=1), COGS[:1], tmp_path, when=WHEN)
    second = save_labelled_frame(frame_rgb(seed=2), COGS[:1], tmp_path, when=WHEN)  # same timestamp
    assert first.screenshot.name == "2026-11-23_12-34-56-789.png"
    assert second.screenshot.name == "2026-11-23_12-34-56-789_1.png"
    assert [p.name for p in (*first.crops, *second.crops)] == [
        "cog_sb_coldcaller_0.png",
        "cog_sb_coldcaller_1.png",
    ]
    assert not np.array_equal(read_image_rgb(first.screenshot), read_image_rgb(second.screenshot))


def test_a_frame_without_cogs_is_saved_with_an_empty_annotation(tmp_path: Path):
    saved = save_labelled_frame(frame_rgb(), (), tmp_path, when=WHEN)
    assert saved.crops == () and read_voc(saved.annotation).objects == ()


def test_missing_dataset_folder(tmp_path: Path):
    with pytest.raises(SaveError, match=r"does not exist: create it or choose another dataset folder \(--dataset\)"):
        save_labelled_frame(frame_rgb(), COGS, tmp_path / "unplugged" / "dataset")
    assert all_files(tmp_path) == []


def _mount_tmpfs(target: Path, options: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
    return done.returncode == 0


def _umount(target: Path) -> None:
    subprocess.run(["umount", str(target)], check=True)


def test_read_only_dataset_folder(tmp_path: Path):
    root = tmp_path / "ro"
    if _mount_tmpfs(root, "ro,size=1m"):
        try:
            with pytest.raises(SaveError, match=r"read-only or no permission\): choose a writable dataset folder"):
                save_labelled_frame(frame_rgb(), COGS, root)
            assert all_files(root) == []
        finally:
            _umount(root)
    elif os.geteuid() != 0:
        root.chmod(0o555)
        try:
            with pytest.raises(SaveError, match="read-only"):
                save_labelled_frame(frame_rgb(), COGS, root)
        finally:
            root.chmod(0o755)
    else:
        pytest.skip("root without mount rights: a chmod cannot make a folder read-only for root")


def test_full_disk_on_a_real_tiny_tmpfs(tmp_path: Path):
    root = tmp_path / "full"
    if not _mount_tmpfs(root, "size=64k"):
        pytest.skip("mounting a tmpfs needs privileges here; test_full_disk_injected covers ENOSPC")
    try:
        big = frame_rgb(1280, 720)  # ~2.7 MB of noise: its PNG cannot fit in 64 KiB
        with pytest.raises(SaveError, match="the disk is full: free some space"):
            save_labelled_frame(big, COGS, root)
        assert [p for p in all_files(root)] == []  # no partial files, no temp files
        small = save_labelled_frame(np.zeros((60, 80, 3), np.uint8), (), root)  # still usable after
        assert small.screenshot.is_file()
    finally:
        _umount(root)


def test_full_disk_injected(tmp_path: Path, monkeypatch):
    """ENOSPC injected at the single write point, on the 3rd file: the two staged ones are removed."""
    calls = {"n": 0}
    real = fileio.write_temp

    def failing(folder, data, suffix):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(folder, data, suffix)

    monkeypatch.setattr(fileio, "write_temp", failing)
    with pytest.raises(SaveError) as info:
        save_labelled_frame(frame_rgb(), COGS, tmp_path)
    assert "the disk is full" in str(info.value) and str(tmp_path) in str(info.value)
    assert all_files(tmp_path) == []


def test_frame_saver_reports_to_a_callback_from_its_thread(tmp_path: Path):
    outcomes = []
    frame_saver, missing = FrameSaver(tmp_path), FrameSaver(tmp_path / "missing")
    frame_saver.save(frame_rgb(), COGS[:2], outcomes.append).result(10)
    frame_saver.close()  # waits for its thread, which runs the callback
    missing.save(frame_rgb(), COGS, outcomes.append).exception(10)
    missing.close()
    assert len(outcomes) == 2
    assert isinstance(outcomes[0], saver.SavedFrame) and len(outcomes[0].crops) == 2
    assert isinstance(outcomes[1], SaveError)


def test_saved_files_have_the_usual_mode_not_0600(tmp_path: Path):
    """Hotkey saves were created 0600 (mkstemp's mode) while every other file was 0666 less the umask."""
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    saved = save_labelled_frame(frame_rgb(), COGS, tmp_path, when=WHEN)
    other = fileio.atomic_write_bytes(tmp_path / "other.txt", b"x")
    want = 0o666 & ~umask
    assert want != 0o600
    for path in (saved.screenshot, saved.annotation, *saved.crops, other):
        assert stat.S_IMODE(path.stat().st_mode) == want, path
