"""The committed demo sprite atlas (assets/demo_atlas.*), its packer, and the contact sheet."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from toonvision_live.taxonomy import COG_KEYS

ASSETS = Path(__file__).resolve().parents[1] / "assets"


@pytest.fixture(scope="module")
def atlas():
    meta = json.loads((ASSETS / "demo_atlas.json").read_text())
    bgra = cv2.imread(str(ASSETS / meta.get("image", "demo_atlas.png")), cv2.IMREAD_UNCHANGED)
    return meta, bgra


def test_atlas_files_are_small_and_rgba(atlas):
    meta, bgra = atlas
    size = (ASSETS / meta["image"]).stat().st_size + (ASSETS / "demo_atlas.json").stat().st_size
    assert size <= 4_000_000
    assert bgra is not None and bgra.ndim == 3 and bgra.shape[2] == 4
    assert meta["version"] == 1 and meta["px_per_unit"] > 0 and meta["source"]


def test_atlas_has_every_cog_and_clip(atlas):
    meta, _ = atlas
    assert sorted(meta["cogs"]) == sorted(COG_KEYS)
    n = len(meta["sprites"])
    for entry in meta["cogs"].values():
        assert set(entry["clips"]) == {"walk_right", "walk_left", "neutral_front"}
        assert len(entry["clips"]["walk_right"]) >= 4 and len(entry["clips"]["walk_left"]) >= 4
        assert len(entry["clips"]["neutral_front"]) >= 2
        assert all(0 <= i < n for ids in entry["clips"].values() for i in ids)


def test_sprites_are_tight_and_true_to_scale(atlas):
    meta, bgra = atlas
    H, W = bgra.shape[:2]
    taken = np.zeros((H, W), bool)
    for sprite in meta["sprites"]:
        x, y, w, h = sprite["x"], sprite["y"], sprite["w"], sprite["h"]
        assert x >= 0 and x + w <= W and y >= 0 and y + h <= H
        assert not taken[y : y + h, x : x + w].any()  # sprites never overlap
        taken[y : y + h, x : x + w] = True
        alpha = bgra[y : y + h, x : x + w, 3]
        # tight: every edge row/column touches the body
        assert (
            alpha[0].max() > 32
            and alpha[-1].max() > 32
            and alpha[:, 0].max() > 32
            and alpha[:, -1].max() > 32
        )
        fx, fy = sprite["foot"]
        assert 0 <= fx <= w and 0.8 * h <= fy <= 1.05 * h
    ppu = meta["px_per_unit"]
    heights = {}
    for key, entry in meta["cogs"].items():
        front = meta["sprites"][entry["clips"]["neutral_front"][0]]
        # the head top is world_height above the ground point (10 degree camera: a few % of slack)
        assert front["foot"][1] == pytest.approx(entry["world_height"] * ppu, rel=0.08)
        heights[key] = front["h"]
    assert max(heights.values()) == pytest.approx(360, abs=20)
    assert heights["mrhollywood"] > heights["flunky"] > heights["micromanager"]


def test_walk_clips_hold_distinct_frames(atlas):
    """Each walk clip shows the cycle moving (frames differ), and right and left are different views."""
    meta, bgra = atlas

    def pixels(sid):
        s = meta["sprites"][sid]
        return bgra[s["y"] : s["y"] + s["h"], s["x"] : s["x"] + s["w"]]

    for key in ("mrhollywood", "coldcaller", "pencilpusher"):
        clips = meta["cogs"][key]["clips"]
        for clip in ("walk_right", "walk_left"):
            shapes = {pixels(sid).shape for sid in clips[clip]}
            assert len(shapes) >= 3  # the legs swing: the tight box changes through the cycle
        assert not np.array_equal(pixels(clips["walk_right"][0]), pixels(clips["walk_left"][0]))


def test_shelf_packer_places_boxes_without_overlap():
    from training.render.atlas import pack_shelves

    sizes = [(30, 50), (100, 20), (60, 60), (10, 10), (90, 45)]
    corners, height = pack_shelves(sizes, 128)
    boxes = [(x, y, x + w, y + h) for (x, y), (w, h) in zip(corners, sizes, strict=True)]
    for i, a in enumerate(boxes):
        assert a[2] <= 128 and a[3] <= height
        for b in boxes[i + 1 :]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1]
    with pytest.raises(ValueError):
        pack_shelves([(200, 10)], 128)


@pytest.mark.train
def test_contact_sheet_shows_all_cogs(game_resources):
    from training.render.cogs import CogRenderer
    from training.render.sheet import CELL_WH, LABEL_H, render_contact_sheet

    with CogRenderer(game_resources, (360, 360)) as renderer:
        sheet = render_contact_sheet(renderer)
    w, h = CELL_WH
    assert sheet.shape == (4 * h, 8 * w, 3)
    for row in range(4):
        for col in range(8):
            cell = sheet[row * h : (row + 1) * h - LABEL_H, col * w : (col + 1) * w].astype(int)
            backdrop = cell[2, 2]
            body = np.abs(cell - backdrop).sum(axis=2) > 40
            assert body.mean() > 0.03  # a Cog stands in every cell


@pytest.mark.train
@pytest.mark.slow
def test_build_atlas_reproduces_the_committed_layout(game_resources, tmp_path, atlas):
    from training.render.atlas import build_atlas

    png, meta_path = build_atlas(game_resources, tmp_path)
    meta = json.loads(meta_path.read_text())
    committed, _ = atlas
    assert meta["px_per_unit"] == committed["px_per_unit"]
    assert meta["cogs"] == committed["cogs"]
    assert len(meta["sprites"]) == len(committed["sprites"])
    assert png.stat().st_size + meta_path.stat().st_size <= 4_000_000
    assert png.name == meta["image"] == committed["image"]
