"""Detection scenes (training/detector): sprites from the game's models, deterministic scenes with exact
boxes, negatives without Cogs, degradations keeping the frame size, the working-size dataset files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from toonvision_live.find.detector import work_long
from training.detector.data import CANVAS_H, CANVAS_W, build_dataset, load_dataset
from training.detector.scenes import DEGRADATIONS, BackgroundPool, degrade, random_scene
from training.detector.sprites import SPRITE_PX, load_sprite_cache, render_sprite_cache

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def sprites_npz(game_resources: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sprites") / "sprites.npz"
    n, _ = render_sprite_cache(game_resources, path, per_cog=2, seed=3, workers=2)
    assert n >= 60  # 32 Cogs x 2 poses, a pose that does not fit the buffer skipped
    return path


def test_sprites_are_tight_and_sized(sprites_npz: Path) -> None:
    sprites = load_sprite_cache(sprites_npz)
    assert len({s.key for s in sprites}) == 32
    for s in sprites:
        a = s.rgba[:, :, 3]
        assert (a[0] > 32).any() and (a[-1] > 32).any() and (a[:, 0] > 32).any() and (a[:, -1] > 32).any()
        assert 0.7 * SPRITE_PX <= s.rgba.shape[0] <= 1.15 * SPRITE_PX  # camera elevation changes it a little


def _scene(sprites, seed: int, **kw):
    rng = np.random.default_rng(seed)
    return random_scene(rng, sprites, BackgroundPool(np.random.default_rng(seed + 1), size=1), **kw)


def test_scenes_are_deterministic_with_boxes_inside(sprites_npz: Path) -> None:
    sprites = load_sprite_cache(sprites_npz)
    a = _scene(sprites, 5, size_wh=(800, 600), kind="cogs", degradation="none")
    b = _scene(sprites, 5, size_wh=(800, 600), kind="cogs", degradation="none")
    assert np.array_equal(a.rgb, b.rgb) and a.objects == b.objects
    assert a.rgb.shape == (600, 800, 3) and a.objects
    for o in a.objects:
        x0, y0, x1, y1 = o.body_xyxy
        assert 0 <= x0 < x1 <= 800 and 0 <= y0 < y1 <= 600
        assert o.line_px >= 2.5
        if o.tag_xyxy is not None:
            assert o.tag_xyxy[3] <= y0 + 1  # the tag is above the head
    for kind in ("empty", "toons_only"):
        assert _scene(sprites, 6, size_wh=(640, 480), kind=kind).objects == []
    assert _scene(sprites, 6, size_wh=(640, 480), kind="toons_only").toon_boxes


@pytest.mark.parametrize("name", DEGRADATIONS)
def test_degradations_keep_the_frame(name: str) -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)
    out = degrade(rgb, name, np.random.default_rng(1))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.array_equal(out, rgb) == (name == "none")


@pytest.mark.parametrize("hard", [False, True])
def test_dataset_files(sprites_npz: Path, tmp_path: Path, hard: bool) -> None:
    """Frames at the detector's working size (work_long); a working image larger than the canvas is stored
    as a canvas-sized window, its boxes relative to the window's corner, black beyond the valid extent."""
    rate = build_dataset(tmp_path / "d", 6, sprites_npz, seed=2, workers=2, chunk=3, hard=hard)
    assert rate > 0
    images, meta = load_dataset(tmp_path / "d")
    assert images.shape == (6, CANVAS_H, CANVAS_W, 3) and len(meta["frames"]) == 6
    assert meta["mix"] == ("hard" if hard else "standard")
    sizes = set()
    for img, fr in zip(images, meta["frames"], strict=True):
        w, h = fr["size"]
        sizes.add((w, h))
        assert max(w, h) * fr["scale"] == pytest.approx(work_long((w, h)))
        (ox, oy), (vw, vh) = fr["window"], fr["valid"]
        assert ox % 4 == oy % 4 == 0 and 0 < vw <= CANVAS_W and 0 < vh <= CANVAS_H
        assert ox + vw <= round(w * fr["scale"]) and oy + vh <= round(h * fr["scale"])
        assert not img[vh:].any() and not img[:, vw:].any() and img.any()
        for o in fr["objects"]:
            x0, y0, x1, y1 = o["body"]
            assert x0 < x1 and -ox - 0.01 <= x0 and x1 <= w * fr["scale"] - ox + 0.01
    if hard:
        assert any(max(s) > 1536 for s in sizes)  # the hard mix holds large windows
