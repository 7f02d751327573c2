"""Nametags: the suit-font glyph atlas and the Cog/Toon nametag drawer, checked against the real frame."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from toonvision_live.demo import nametag as scene
from toonvision_live.demo.nametag import (
    TAG_CARD_ALPHA,
    TAG_CARD_RGB,
    draw_cog_nametag,
    draw_toon_nametag,
    nametag_em_px,
    render_nametag,
    suit_font,
)
from toonvision_live.fileio import read_image_rgb
from training.render.glyphs import GLYPH_CHARS, render_glyph_atlas, suit_font_path, write_glyph_atlas

#: card boxes (exclusive ends) and em of the two nametags in ../shared/data/real/sample_img0.png, measured
#: by eye on 8x zooms: "Cold Caller / Sellbot / Level 1" and "Bloodsucker / Lawbot / Level 3"
REAL_TAGS = (
    (("Cold Caller", "Sellbot", 1), (178, 236, 244, 268), 10.0, (152, 279, 266, 423)),
    (("Bloodsucker", "Lawbot", 3), (631, 114, 730, 161), 14.0, (631, 174, 720, 510)),
)


def _dark_bands(mask_rows: np.ndarray) -> int:
    """Number of separate runs of rows that hold dark pixels."""
    rows = mask_rows.astype(int)
    return int(np.sum(np.diff(np.concatenate([[0], rows, [0]])) == 1))


def test_committed_glyph_atlas_is_the_suit_font_rendered(game_resources, tmp_path):
    files = write_glyph_atlas(game_resources, tmp_path)
    from importlib import resources

    assets = resources.files("toonvision_assets")
    assert json.loads(files.json.read_text()) == json.loads(
        assets.joinpath("suit_font_glyphs.json").read_text()
    )
    fresh = cv2.imread(str(files.png), cv2.IMREAD_UNCHANGED)
    shipped = cv2.imread(str(assets.joinpath("suit_font_glyphs.png")), cv2.IMREAD_UNCHANGED)
    assert fresh.shape == shipped.shape
    # identical when rendered alone; once panda3d (with its own FreeType) is loaded in the same process a
    # few anti-aliased edge pixels can differ by one level
    diff = np.abs(fresh.astype(int) - shipped.astype(int))
    assert diff.max() <= 2 and (diff > 0).mean() < 0.01


def test_glyph_atlas_covers_printable_ascii_with_ink(game_resources):
    sheet, meta = render_glyph_atlas(suit_font_path(game_resources))
    assert set(meta["glyphs"]) == set(GLYPH_CHARS)
    for ch, g in meta["glyphs"].items():
        assert sheet[g["y"] : g["y"] + g["h"], g["x"] : g["x"] + g["w"]].max() > 128, ch
    # a typewriter font: every glyph has the same advance; the game's space is 0.25 em
    assert len({round(g["advance"], 3) for g in meta["glyphs"].values()}) == 1
    assert meta["space_advance_px"] == pytest.approx(0.25 * meta["size_px"])


def test_missing_font_names_the_file(tmp_path):
    from toonvision_live.errors import ResourceError

    with pytest.raises(ResourceError, match="vtRemingtonPortable.ttf"):
        suit_font_path(tmp_path)


@pytest.mark.parametrize("bg_rgb", [(255, 255, 255), (0, 0, 0), (240, 110, 60), (30, 95, 215)])
def test_cog_tag_card_is_half_transparent_light_grey_with_three_dark_lines(bg_rgb):
    img = np.empty((200, 400, 3), np.uint8)
    img[:] = bg_rgb
    box = draw_cog_nametag(img, 200, 150, "Cold Caller", "Sellbot", 1, 14)
    assert box is not None
    x0, y0, x1, y1 = box
    assert y1 == 150 and abs((x0 + x1) / 2 - 200) <= 1
    card = img[y0:y1, x0:x1].astype(float)
    expected = TAG_CARD_ALPHA * np.array(TAG_CARD_RGB) + (1 - TAG_CARD_ALPHA) * np.array(bg_rgb)
    # the bottom padding row, middle third: card only, no text
    pad_row = card[-3, card.shape[1] // 3 : 2 * card.shape[1] // 3]
    assert np.abs(pad_row - expected).max() <= 3
    # three lines of near-black text, centred
    inner = card[:, 4:-4]  # away from the rounded corners (dark over a black background)
    dark = inner.max(axis=2) < 70
    assert _dark_bands(dark.any(axis=1)) == 3
    assert dark.sum() > 100
    # outside the card the image is untouched
    untouched = img.copy()
    untouched[y0:y1, x0:x1] = bg_rgb
    assert np.all(untouched == np.array(bg_rgb, np.uint8))


def test_tag_size_scales_with_em_and_matches_the_real_frame(real_data):
    for (name, dept, level), real_box, em, _ in REAL_TAGS:
        tag = render_nametag(scene.cog_tag_lines(name, dept, level), (scene.COG_TAG_TEXT_RGB,) * 3, em)
        w, h = tag.size_wh
        rw, rh = real_box[2] - real_box[0], real_box[3] - real_box[1]
        assert abs(w - rw) <= 4 and abs(h - rh) <= 3, (name, (w, h), (rw, rh))
    small = render_nametag(("Flunky", "Bossbot", "Level 1"), ((25, 25, 25),) * 3, 8.0).size_wh
    big = render_nametag(("Flunky", "Bossbot", "Level 1"), ((25, 25, 25),) * 3, 16.0).size_wh
    assert big[1] == pytest.approx(2 * small[1], abs=2) and big[0] == pytest.approx(2 * small[0], abs=2)


def test_gap_and_em_rule_match_the_real_frame(real_data):
    """The em follows the Cog's px-per-unit, and the card sits TAG_GAP_EM above the head, as measured."""
    heights = {"Cold Caller": 4.63, "Bloodsucker": 6.17}  # cogs.json heights
    for (name, _, _), real_box, em, body in REAL_TAGS:
        ppu = (body[3] - body[1]) / heights[name]
        assert nametag_em_px(ppu, 600) == pytest.approx(em, abs=1.0)
        gap = body[1] - real_box[3]
        assert gap == pytest.approx(scene.TAG_GAP_EM * em, abs=3)


def test_our_tag_looks_like_the_real_one(real_data):
    """Drawn over the real frame's own background next to the real tag, colour statistics agree."""
    real = read_image_rgb(real_data / "sample_img0.png")
    (name, dept, level), (x0, y0, x1, y1), em, _ = REAL_TAGS[1]
    ours = real.copy()
    box = draw_cog_nametag(ours, (x0 + x1) / 2, y1, name, dept, level, em)
    assert box is not None
    a = real[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].reshape(-1, 3).astype(float)
    b = ours[y0 + 2 : y1 - 2, x0 + 2 : x1 - 2].reshape(-1, 3).astype(float)
    # ours goes over the real tag, so compare against what the real tag did to the real background:
    # mean brightness and share of dark text pixels within a few percent
    assert abs(np.median(a.mean(1)) - np.median(b.mean(1))) < 25
    share_a, share_b = (a.max(1) < 90).mean(), (b.max(1) < 90).mean()
    assert abs(share_a - share_b) < 0.06


def test_toon_tag_is_one_coloured_line_on_the_same_card():
    img = np.full((120, 400, 3), 255, np.uint8)
    box = draw_toon_nametag(img, 200, 100, "Lucky Dizzysocks", (40, 70, 200), 14)
    x0, y0, x1, y1 = box
    card = img[y0:y1, x0:x1].astype(int)
    ink = (card.max(2) - card.min(2)) > 60  # saturated text pixels
    assert _dark_bands(ink.any(axis=1)) == 1
    assert ink.sum() > 50
    assert not (card.max(2) < 70).any()  # no dark-grey text: it cannot pass for a Cog tag
    assert y1 - y0 < 0.6 * render_nametag(("a", "b", "c"), ((0, 0, 0),) * 3, 14).size_wh[1]


def test_tag_clipped_or_outside_the_frame():
    img = np.zeros((100, 100, 3), np.uint8)
    box = draw_cog_nametag(img, 5, 40, "The Big Cheese", "Bossbot", 12, 12)
    assert box is not None and box[0] == 0 and box[1] >= 0 and box[3] == 40
    before = img.copy()
    assert draw_cog_nametag(img, -500, 40, "Flunky", "Bossbot", 1, 12) is None
    assert draw_cog_nametag(img, 50, -5, "Flunky", "Bossbot", 1, 12) is None
    assert np.array_equal(img, before)


def test_unknown_characters_draw_as_question_marks():
    font = suit_font()
    assert font.line_width("é") == font.line_width("?")
    img = np.full((80, 200, 3), 255, np.uint8)
    assert draw_toon_nametag(img, 100, 60, "Zoë", (0, 140, 40), 12) is not None
