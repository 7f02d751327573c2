"""StreetScene: frames, ground truth, nametags above every Cog, determinism, and written scenes."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from toonvision_live.demo import nametag as sc
from toonvision_live.demo.scene import StreetScene
from toonvision_live.demo.sprites import ALPHA_BOX_THRESHOLD, SpriteAtlas, scale_sprite
from toonvision_live.errors import DataError
from toonvision_live.taxonomy import COG_BY_KEY, COG_KEYS, parse_label

MAGENTA = (255, 0, 255)
SYNTH_KEYS = ("flunky", "coldcaller", "bigwig", "moneybags", "thebigcheese")
SYNTH_PPU = 30.0


def _synthetic_sprite(height_px: int, frame: int) -> tuple[np.ndarray, tuple[float, float]]:
    """A pure-magenta stick figure (head, body, two legs that move with ``frame``), transparent around."""
    w = max(12, height_px // 3)
    img = np.zeros((height_px + 6, w + 10, 4), np.uint8)
    cx = (w + 10) // 2
    colour = (*MAGENTA, 255)
    cv2.circle(img, (cx, 3 + height_px // 8), height_px // 8, colour, -1)
    cv2.rectangle(img, (cx - w // 3, height_px // 4), (cx + w // 3, int(height_px * 0.6)), colour, -1)
    swing = (frame % 4 - 1.5) * w / 8
    for side in (-1, 1):
        cv2.line(
            img,
            (cx + side * w // 6, int(height_px * 0.6)),
            (int(cx + side * (w // 4 + swing)), height_px + 2),
            colour,
            max(2, w // 8),
        )
    return img, (float(cx), float(height_px + 2))


def write_synthetic_atlas(folder: Path, keys=SYNTH_KEYS) -> Path:
    """A small demo_atlas.png/.json in the contract's layout with magenta stand-in Cogs."""
    sprites, placed, cogs = [], [], {}
    x = 0
    for key in keys:
        height = {"flunky": 4.88, "coldcaller": 4.63, "bigwig": 8.69, "moneybags": 6.97}.get(key, 7.0)
        clips = {}
        for clip, frames in (("walk_right", 4), ("walk_left", 4), ("neutral_front", 2)):
            ids = []
            for f in range(frames):
                rgba, foot = _synthetic_sprite(int(height * SYNTH_PPU), f)
                ids.append(len(sprites))
                sprites.append((rgba, foot))
            clips[clip] = ids
        cogs[key] = {"world_height": height, "clips": clips}
    sheet_h = max(s[0].shape[0] for s in sprites)
    sheet_w = sum(s[0].shape[1] for s in sprites)
    sheet = np.zeros((sheet_h, sheet_w, 4), np.uint8)
    for rgba, foot in sprites:
        h, w = rgba.shape[:2]
        sheet[:h, x : x + w] = rgba
        placed.append({"x": x, "y": 0, "w": w, "h": h, "foot": list(foot)})
        x += w
    folder.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(folder / "demo_atlas.png"), cv2.cvtColor(sheet, cv2.COLOR_RGBA2BGRA))
    meta = {"version": 1, "source": "test", "px_per_unit": SYNTH_PPU, "cogs": cogs, "sprites": placed}
    (folder / "demo_atlas.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory) -> Path:
    return write_synthetic_atlas(tmp_path_factory.mktemp("atlas"))


@pytest.fixture(scope="module")
def synth_atlas(synth_dir) -> SpriteAtlas:
    return SpriteAtlas.load(synth_dir)


def _magenta(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] > 200)


def _magenta_drawn(rgb: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Pixels pulled towards magenta: red and blue up, green down, (r + b) / 2 - g up by more than 20.
    A sprite pixel with alpha > 32 does that; shadows (all darker) and dark text do not."""
    d = rgb.astype(float) - background.astype(float)
    gain = (d[..., 0] + d[..., 2]) / 2 - d[..., 1]
    return (d[..., 0] > 4) & (d[..., 2] > 4) & (d[..., 1] < -4) & (gain > 20)


def test_frame_shape_dtype_and_default_size(synth_atlas):
    frame = StreetScene(synth_atlas, seed=1).frame(0.0)
    assert frame.rgb.shape == (720, 1280, 3) and frame.rgb.dtype == np.uint8
    assert len(frame.tags_xyxy) == len(frame.objects)
    small = StreetScene(synth_atlas, size_wh=(640, 360), n_cogs=3, n_toons=1, seed=1).frame(0.4)
    assert small.rgb.shape == (360, 640, 3)
    empty = StreetScene(synth_atlas, size_wh=(640, 360), n_cogs=0, n_toons=0, seed=1)
    frame = empty.frame(3.0)
    assert frame.objects == () and np.array_equal(frame.rgb, empty.background)
    with pytest.raises(DataError, match="No Cog keys"):
        StreetScene(synth_atlas, n_cogs=2, cog_keys=())


def test_deterministic_for_seed_and_t(synth_atlas):
    a = StreetScene(synth_atlas, n_cogs=6, n_toons=2, seed=7)
    b = StreetScene(synth_atlas, n_cogs=6, n_toons=2, seed=7)
    fa, fb = a.frame(2.5), b.frame(2.5)
    assert np.array_equal(fa.rgb, fb.rgb) and fa.objects == fb.objects and fa.tags_xyxy == fb.tags_xyxy
    a.frame(9.0)  # no hidden state between frames
    assert np.array_equal(a.frame(2.5).rgb, fa.rgb)
    other = StreetScene(synth_atlas, n_cogs=6, n_toons=2, seed=8).frame(2.5)
    assert not np.array_equal(other.rgb, fa.rgb)


def test_boxes_are_inside_the_frame_and_tight_around_the_body(synth_atlas):
    """One Cog, magenta: every box edge touches magenta, and no magenta lies outside the box."""
    scene = StreetScene(synth_atlas, n_cogs=1, n_toons=0, seed=3, cog_keys=("bigwig",))
    seen = 0
    for t in np.arange(0, 12, 0.7):
        frame = scene.frame(float(t))
        mag = _magenta_drawn(frame.rgb, scene.background)
        for tag in frame.tags_xyxy:  # the half-grey card can pull some colours towards magenta too
            if tag is not None:
                mag[tag[1] : tag[3], tag[0] : tag[2]] = False
        if not frame.objects:
            assert not mag.any()
            continue
        (obj,) = frame.objects
        x0, y0, x1, y1 = obj.xyxy
        assert 0 <= x0 < x1 <= 1280 and 0 <= y0 < y1 <= 720
        inside = np.zeros_like(mag)
        inside[y0:y1, x0:x1] = True
        assert not (mag & ~inside).any()
        # every edge of the box holds sprite pixels (faint ones only shift the colour a little)
        d = frame.rgb[y0:y1, x0:x1].astype(float) - scene.background[y0:y1, x0:x1].astype(float)
        box = ((d[..., 0] + d[..., 2]) / 2 - d[..., 1]) > 8
        assert box[0].any() and box[-1].any() and box[:, 0].any() and box[:, -1].any()
        assert obj.truncated == (x0 == 0 or x1 == 1280)
        seen += 1
    assert seen >= 5


def test_scale_sprite_is_cropped_to_alpha(synth_atlas):
    sprite = synth_atlas.cogs["flunky"].clips["walk_right"][0]
    for factor in (0.3, 1.0, 2.2):
        s = scale_sprite(sprite, factor)
        alpha = 255 - s.inv_alpha[:, :, 0].astype(int)
        for edge in (alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]):
            assert edge.max() > ALPHA_BOX_THRESHOLD
        assert s.foot_xy[1] == pytest.approx(s.premul_rgb.shape[0], abs=0.05 * s.premul_rgb.shape[0] + 2)


def test_every_cog_has_its_nametag_above_its_head(synth_atlas):
    scene = StreetScene(synth_atlas, n_cogs=5, n_toons=0, seed=11)
    checked = 0
    for t in (0.0, 1.3, 2.9, 4.4):
        frame = scene.frame(t)
        for obj, tag in zip(frame.objects, frame.tags_xyxy, strict=True):
            if obj.truncated:
                continue
            assert tag is not None
            tx0, ty0, tx1, ty1 = tag
            em = (ty1 - ty0) / 3.4
            x0, y0, x1, y1 = obj.xyxy
            assert ty1 < y0 and y0 - ty1 <= sc.TAG_GAP_EM * em + 0.25 * (y1 - y0)
            assert tx0 < (x0 + x1) / 2 < tx1
            # half-transparent grey card over the background, with dark text
            card = frame.rgb[ty0:ty1, tx0:tx1].astype(int)
            assert (card.max(2) < 80).sum() > 20
            checked += 1
    assert checked >= 8


def test_card_over_background_is_grey_half_blend(synth_atlas):
    scene = StreetScene(synth_atlas, n_cogs=1, n_toons=0, seed=5, cog_keys=("flunky",))
    for t in np.arange(0, 10, 0.5):
        frame = scene.frame(float(t))
        if frame.objects and not frame.objects[0].truncated:
            break
    tx0, ty0, tx1, ty1 = frame.tags_xyxy[0]
    row = ty1 - 2  # bottom padding: card only
    got = frame.rgb[row, tx0 + (tx1 - tx0) // 3 : tx0 + 2 * (tx1 - tx0) // 3].astype(float)
    bg = scene.background[row, tx0 + (tx1 - tx0) // 3 : tx0 + 2 * (tx1 - tx0) // 3].astype(float)
    expected = sc.TAG_CARD_ALPHA * np.array(sc.TAG_CARD_RGB) + (1 - sc.TAG_CARD_ALPHA) * bg
    assert np.abs(got - expected).max() <= 3


def test_toon_tags_are_one_line_and_toons_are_labelled(synth_atlas):
    seen = 0
    for seed in (2, 3, 4):
        scene = StreetScene(synth_atlas, n_cogs=0, n_toons=1, seed=seed)
        (label,) = scene.labels
        assert parse_label(label).kind == "toon"
        frame = next(
            f for f in map(scene.frame, np.arange(0, 20, 0.5)) if f.objects and not f.objects[0].truncated
        )
        tx0, ty0, tx1, ty1 = frame.tags_xyxy[0]
        card = frame.rgb[ty0:ty1, tx0:tx1].astype(float)
        bg = scene.background[ty0:ty1, tx0:tx1].astype(float)
        expected = sc.TAG_CARD_ALPHA * np.array(sc.TAG_CARD_RGB) + (1 - sc.TAG_CARD_ALPHA) * bg
        ink = np.abs(card - expected).max(2) > 50  # text pixels: far from the bare card
        # coloured, not dark grey: the text pixels are saturated
        text = card[ink]
        assert (text.max(1) - text.min(1)).mean() > 60
        rows = ink[:, 3:-3].any(1).astype(int)
        bands = int(np.sum(np.diff(np.concatenate([[0], rows, [0]])) == 1))
        assert bands == 1
        seen += 1
    assert seen == 3


def test_cogs_walk_animate_and_come_back(synth_atlas):
    scene = StreetScene(synth_atlas, n_cogs=4, n_toons=0, seed=4)
    first = {o.name: o.xyxy for o in scene.frame(0.0).objects}
    later = {o.name: o.xyxy for o in scene.frame(0.5).objects}
    moved = [n for n in first if n in later and first[n][0] != later[n][0]]
    assert moved
    labels = set(scene.labels)
    assert all(parse_label(n).kind == "cog" for n in labels)
    seen_whole: set[str] = set()
    for t in np.arange(0, 80, 1.0):
        seen_whole |= {o.name for o in scene.frame(float(t)).objects if not o.truncated}
    assert seen_whole == labels  # every Cog crosses the frame, leaves and re-enters
    # the walk cycle changes the sprite from one animation frame to the next
    x, spr_a = scene.walker_state(0, 0.0)
    frames = {id(scene.walker_state(0, t / 20)[1]) for t in range(20)}
    assert len(frames) > 1 and spr_a is not None and np.isfinite(x)


def test_nametags_stay_mostly_visible(synth_atlas):
    scene = StreetScene(synth_atlas, n_cogs=8, n_toons=2, seed=21)
    for t in np.arange(0, 30, 0.9):
        tags = [tg for tg in scene.frame(float(t)).tags_xyxy if tg is not None]
        for i, a in enumerate(tags):
            area = (a[2] - a[0]) * (a[3] - a[1])
            for b in tags[i + 1 :]:
                ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
                iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
                assert ix * iy <= 0.3 * min(area, (b[2] - b[0]) * (b[3] - b[1]))


def test_every_cog_key_renders_from_the_shipped_atlas():
    """The real demo atlas (assets/demo_atlas.*): all 32 Cogs, each clip non-empty, each drawn in a scene."""
    atlas = SpriteAtlas.load()
    assert set(atlas.cogs) == set(COG_KEYS)
    for key, cog in atlas.cogs.items():
        assert cog.world_height > 2
        for clip in ("walk_right", "walk_left", "neutral_front"):
            assert cog.clips.get(clip), (key, clip)
            for sprite in cog.clips[clip]:
                assert sprite.rgba.shape[2] == 4 and (sprite.rgba[:, :, 3] > 32).sum() > 200
        # sprites share one px_per_unit: the body is about world_height tall
        h = cog.clips["neutral_front"][0].rgba.shape[0]
        assert h == pytest.approx(cog.world_height * atlas.px_per_unit, rel=0.15), key
    scene = StreetScene(atlas, n_cogs=32, n_toons=0, seed=0)
    seen: set[str] = set()
    for t in np.arange(0, 60, 1.5):
        seen |= {o.name for o in scene.frame(float(t)).objects}
    assert seen == {COG_BY_KEY[k].label for k in COG_KEYS}


def test_atlas_errors_name_the_file(tmp_path, synth_dir):
    with pytest.raises(DataError, match="demo_atlas"):
        SpriteAtlas.load(tmp_path)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "demo_atlas.png").write_bytes((synth_dir / "demo_atlas.png").read_bytes())
    (bad / "demo_atlas.json").write_text(
        '{"version": 1, "px_per_unit": 30, "cogs": {"nobody": {}}, "sprites": []}'
    )
    with pytest.raises(DataError, match="demo_atlas.json"):
        SpriteAtlas.load(bad)
    with pytest.raises(DataError, match="no sprites for Cog 'twoface'"):
        StreetScene(SpriteAtlas.load(synth_dir), cog_keys=("flunky", "twoface"))
