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


def committed_sprite(meta: dict, bgra: np.ndarray, sid: int) -> tuple[dict, np.ndarray]:
    """Sprite number ``sid`` of an atlas: its JSON entry and its BGRA pixels."""
    s = meta["sprites"][sid]
    return s, bgra[s["y"] : s["y"] + s["h"], s["x"] : s["x"] + s["w"]]


@pytest.mark.train
def test_rendered_sprites_reproduce_the_committed_atlas(game_resources, atlas):
    """Every clip of every Cog rendered again (what `toonvision render atlas` packs): the committed atlas's
    scale and clips, and each sprite's size, ground point and silhouette (the sheet keeps alpha lossless)."""
    from training.render.atlas import RENDER_SIDE, render_atlas_sprites
    from training.render.cogs import CogRenderer

    committed, bgra = atlas
    with CogRenderer(game_resources, (RENDER_SIDE, RENDER_SIDE)) as renderer:
        px_per_unit, cogs, sprites = render_atlas_sprites(renderer)
    assert round(px_per_unit, 4) == committed["px_per_unit"]
    assert cogs == committed["cogs"]
    assert len(sprites) == len(committed["sprites"])
    for sid, sprite in enumerate(sprites):
        entry, pixels = committed_sprite(committed, bgra, sid)
        assert (sprite.rgba.shape[1], sprite.rgba.shape[0]) == (entry["w"], entry["h"]), sid
        assert list(sprite.foot_xy) == entry["foot"], sid
        assert np.array_equal(sprite.rgba[:, :, 3], pixels[:, :, 3]), sid


@pytest.mark.train
def test_build_atlas_writes_the_sheet_and_its_json(game_resources, tmp_path, atlas):
    """`toonvision render atlas`'s writer, on two Cogs (the full sheet's encoding takes minutes): their
    sprites as in the committed atlas, at its scale, and a stale sheet of the other format removed."""
    from training.render.atlas import build_atlas

    for stale in ("demo_atlas.png", "demo_atlas.webp"):
        (tmp_path / stale).write_bytes(b"stale")
    keys = ("mrhollywood", "micromanager")  # the tallest Cog and a small one
    sheet, meta_path = build_atlas(game_resources, tmp_path, keys)
    meta = json.loads(meta_path.read_text())
    committed, committed_bgra = atlas
    assert sheet.name == meta["image"] and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [meta["image"], "demo_atlas.json"])
    assert meta["version"] == 1 and meta["px_per_unit"] == committed["px_per_unit"] and meta["source"]
    assert list(meta["cogs"]) == list(keys)
    bgra = cv2.imread(str(sheet), cv2.IMREAD_UNCHANGED)
    assert bgra is not None and bgra.shape[2] == 4
    for key in keys:
        entry = meta["cogs"][key]
        assert entry["world_height"] == committed["cogs"][key]["world_height"]
        for clip, ids in entry["clips"].items():
            assert len(ids) == len(committed["cogs"][key]["clips"][clip])
            for sid, committed_sid in zip(ids, committed["cogs"][key]["clips"][clip], strict=True):
                mine, pixels = committed_sprite(meta, bgra, sid)
                theirs, committed_pixels = committed_sprite(committed, committed_bgra, committed_sid)
                assert (mine["w"], mine["h"], mine["foot"]) == (theirs["w"], theirs["h"], theirs["foot"])
                assert np.array_equal(pixels[:, :, 3], committed_pixels[:, :, 3])


@pytest.mark.train
def test_a_sheet_over_the_byte_budget_is_saved_as_lossy_webp():
    from training.render.atlas import encode_sheet

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:256, 0:512]
    rgba = np.zeros((256, 512, 4), np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 2] = xx // 2, yy, (xx + yy) // 3
    rgba[..., :3] = np.clip(rgba[..., :3] + rng.normal(0, 12, (256, 512, 3)), 0, 255)
    rgba[40:200, 30:480, 3] = 255  # a body on a transparent sheet
    expected = rgba.copy()
    expected[expected[..., 3] == 0] = 0  # transparent pixels are zeroed (they cost nothing)
    suffix, lossless = encode_sheet(rgba)
    back = cv2.imdecode(np.frombuffer(lossless, np.uint8), cv2.IMREAD_UNCHANGED)
    assert suffix in (".png", ".webp") and np.array_equal(cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA), expected)
    budget = len(lossless) // 3
    suffix, lossy = encode_sheet(rgba, max_bytes=budget)
    back = cv2.imdecode(np.frombuffer(lossy, np.uint8), cv2.IMREAD_UNCHANGED)
    assert suffix == ".webp" and len(lossy) <= budget
    assert np.array_equal(back[..., 3], expected[..., 3])  # the alpha stays lossless
    assert 0 < np.abs(cv2.cvtColor(back, cv2.COLOR_BGRA2RGBA).astype(int) - expected).mean() < 10
