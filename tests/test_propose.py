"""Crop stage: nametag-anchored proposals on real and drawn frames; the video proposers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from toonvision_live.demo.nametag import draw_cog_nametag, draw_toon_nametag
from toonvision_live.demo.street import make_street_background
from toonvision_live.fileio import read_image_rgb
from toonvision_live.find import nametags as propose
from toonvision_live.find.evaluate import evaluate_proposals
from toonvision_live.find.nametags import (
    Proposal,
    find_nametags,
    propose_cog_boxes,
)
from toonvision_live.geometry import as_xyxy_array, greedy_matches, iou_matrix, match_boxes
from toonvision_live.taxonomy import SUITS
from toonvision_live.voc import read_voc


@pytest.fixture(scope="module")
def real_frame(real_data):
    rgb = read_image_rgb(real_data / "sample_img0.png")
    truth = [o.xyxy for o in read_voc(real_data / "sample_img0.xml").objects]
    return rgb, truth


@pytest.fixture(scope="module")
def street():
    rgb, _ = make_street_background((1280, 720), seed=3)
    return rgb


def draw_overlay_label(rgb: np.ndarray, x: int, y: int, lines: list[str], card_rgb: tuple[int, int, int],
                       text_rgb: tuple[int, int, int], em: float, alpha: float = 235 / 255) -> None:
    """A label as the overlay paints it: text lines on a saturated card (in place)."""
    scale = em / 30
    widths = [cv2.getTextSize(t, cv2.FONT_HERSHEY_DUPLEX, scale, 1)[0][0] for t in lines]
    w, h = max(widths) + int(em), int(em * (len(lines) + 0.5))
    card = rgb[y:y + h, x:x + w].astype(np.float32)
    card[:] = card * (1 - alpha) + np.array(card_rgb, np.float32) * alpha
    rgb[y:y + h, x:x + w] = card.astype(np.uint8)
    for i, (t, tw) in enumerate(zip(lines, widths, strict=True)):
        cv2.putText(rgb, t, (x + (w - tw) // 2, y + int(em * (i + 0.95))), cv2.FONT_HERSHEY_DUPLEX, scale,
                    text_rgb, 1, cv2.LINE_AA)


# --- the real screenshot ----------------------------------------------------------------------------

def test_both_cogs_of_the_real_frame_are_proposed_tightly(real_frame):
    rgb, truth = real_frame
    proposals = propose_cog_boxes(rgb)
    assert len(proposals) == 2
    ious = iou_matrix([p.body_xyxy for p in proposals], truth)
    assert sorted(greedy_matches(ious, 0.5)) == [(0, 0), (1, 1)]
    for p, t in zip(proposals, truth, strict=True):
        # the tag sits above the body, centred on it
        assert p.tag_xyxy[3] <= p.body_xyxy[1] <= t[1] + 10
        assert abs((p.tag_xyxy[0] + p.tag_xyxy[2]) / 2 - (t[0] + t[2]) / 2) < 0.25 * (t[2] - t[0])
        assert 0 < p.score <= 1


def test_real_frame_evaluation_reports_full_precision_and_recall(real_frame):
    rgb, truth = real_frame
    report = evaluate_proposals([(rgb, truth)])
    assert (report["frames"], report["tp"], report["fp"], report["fn"]) == (1, 2, 0, 0)
    assert report["precision"] == report["recall"] == 1.0
    assert 0.5 <= report["mean_iou"] <= 1.0


@pytest.mark.parametrize("size_wh", [(1280, 720), (1920, 1080), (1024, 768)])
def test_real_tags_are_found_at_other_window_sizes(real_frame, size_wh):
    rgb, truth = real_frame
    resized = cv2.resize(rgb, size_wh, interpolation=cv2.INTER_AREA)
    sx, sy = size_wh[0] / rgb.shape[1], size_wh[1] / rgb.shape[0]
    scaled = [(x0 * sx, y0 * sy, x1 * sx, y1 * sy) for x0, y0, x1, y1 in truth]
    tp, fp, fn = match_boxes([p.body_xyxy for p in propose_cog_boxes(resized)], scaled, 0.5)
    assert (tp, fp, fn) == (2, 0, 0)


# --- drawn nametags ------------------------------------------------------------------------------

COG_TAGS = [  # centre x, card bottom y, name, department, level, em (line height, px)
    (150, 200, "Cold Caller", "Sellbot", 1, 8.0),
    (420, 180, "Bloodsucker", "Lawbot", 3, 12.0),
    (700, 260, "The Big Cheese", "Bossbot", 9, 16.0),
    (1010, 320, "Robber Baron", "Cashbot", 12, 21.0),
    (300, 520, "Flunky", "Bossbot", 2, 10.0),
    (880, 600, "Mr. Hollywood", "Sellbot", 8, 14.0),
]


def test_drawn_cog_nametags_are_all_found_with_their_card_boxes(street):
    rgb = street.copy()
    truth = [draw_cog_nametag(rgb, cx, by, name, dept, lvl, em) for cx, by, name, dept, lvl, em in COG_TAGS]
    tags = find_nametags(rgb)
    ious = iou_matrix([t.tag_xyxy for t in tags], truth)
    assert len(tags) == len(truth)
    assert len(greedy_matches(ious, 0.7)) == len(truth)
    for tag in tags:
        em = next(e for (_, _, _, _, _, e), box in zip(COG_TAGS, truth, strict=True)
                  if iou_matrix([tag.tag_xyxy], [box])[0, 0] > 0.7)
        assert tag.line_height == pytest.approx(em, rel=0.25)


def test_each_tag_gives_one_body_box_below_it_inside_the_frame(street):
    rgb = street.copy()
    for cx, by, name, dept, lvl, em in COG_TAGS:
        draw_cog_nametag(rgb, cx, by, name, dept, lvl, em)
    proposals = propose_cog_boxes(rgb)
    assert len(proposals) == len(COG_TAGS)
    for p in proposals:
        x0, y0, x1, y1 = p.body_xyxy
        assert 0 <= x0 < x1 <= 1280 and 0 <= y0 < y1 <= 720
        assert y0 >= p.tag_xyxy[3]
        assert x0 < (p.tag_xyxy[0] + p.tag_xyxy[2]) / 2 < x1
    assert [p.body_xyxy[0] for p in proposals] == sorted(p.body_xyxy[0] for p in proposals)


def test_known_tags_are_not_verified_again(street):
    """find_nametags(known=...): the tags verified already (the detector's confirmed ones) are left out,
    the others found as without it."""
    rgb = street.copy()
    truth = [draw_cog_nametag(rgb, cx, by, name, dept, lvl, em) for cx, by, name, dept, lvl, em in COG_TAGS]
    every = find_nametags(rgb)
    rest = find_nametags(rgb, known=truth[:2])
    assert len(rest) == len(every) - 2
    assert {t.tag_xyxy for t in rest} <= {t.tag_xyxy for t in every}
    assert iou_matrix([t.tag_xyxy for t in rest], truth[:2]).max() < 0.3
    assert len(propose_cog_boxes(rgb, known=truth)) == 0


def test_hershey_text_on_a_light_card_counts_as_a_cog_tag(street):
    """Not only the scene's own drawing: any three dark lines on a light translucent card."""
    rgb = street.copy()
    draw_overlay_label(rgb, 500, 300, ["Name Dropper", "Sellbot", "Level 4"], (204, 204, 204), (20, 20, 20),
                       16.0, alpha=0.55)
    assert len(find_nametags(rgb)) == 1


def test_toon_nametags_are_ignored(street):
    rgb = street.copy()
    for i, (color, em) in enumerate([((40, 70, 200), 12.0), ((220, 110, 0), 16.0), ((0, 140, 40), 20.0)]):
        draw_toon_nametag(rgb, 250 + 350 * i, 250, "Lucky Bumblebee", color, em)
        draw_toon_nametag(rgb, 250 + 350 * i, 450, "Flippy", color, em)
    assert propose_cog_boxes(rgb) == []


@pytest.mark.parametrize(("text_rgb", "alpha"), [
    ((255, 255, 255), 235 / 255),  # as the overlay paints them
    ((255, 255, 255), 0.7),  # more see-through
    ((20, 20, 20), 235 / 255),  # even with dark text
], ids=["white", "white-translucent", "dark"])
def test_overlay_labels_on_saturated_cards_are_ignored(real_frame, text_rgb, alpha):
    rgb, truth = real_frame
    drawn = rgb.copy()
    for i, suit in enumerate(SUITS):
        card = tuple(int(suit.color[k:k + 2], 16) for k in (1, 3, 5))
        x = 20 + 190 * i
        draw_overlay_label(drawn, x, 470, ["Cold Caller", suit.name, "97%"], card, text_rgb, 14.0, alpha)
        draw_overlay_label(drawn, x, 60, ["Bloodsucker", suit.name, "Level 3"], card, text_rgb, 11.0, alpha)
    proposals = propose_cog_boxes(drawn)
    # the two real Cogs are still found, and nothing else
    assert match_boxes([p.body_xyxy for p in proposals], truth, 0.5) == (2, 0, 0)


def test_overlay_drawing_on_top_of_a_real_tag_does_not_add_proposals(real_frame):
    rgb, truth = real_frame
    drawn = rgb.copy()
    # the overlay's own box and caption card above the Cold Caller, as it draws them
    cv2.rectangle(drawn, (152, 279), (266, 423), (178, 34, 34), 2)
    draw_overlay_label(drawn, 150, 425, ["Cold Caller", "Sellbot 97%", "#3"], (178, 34, 34), (255, 255, 255),
                       12.0)
    proposals = propose_cog_boxes(drawn)
    assert match_boxes([p.body_xyxy for p in proposals], truth, 0.5) == (2, 0, 0)


@pytest.mark.parametrize("frame", [
    np.zeros((720, 1280, 3), np.uint8),
    np.full((720, 1280, 3), 255, np.uint8),
    np.full((600, 800, 3), (204, 204, 204), np.uint8),
    np.zeros((4, 4, 3), np.uint8),
    np.zeros((1, 1280, 3), np.uint8),
    np.zeros((1, 1, 3), np.uint8),
    np.zeros((0, 5, 3), np.uint8),
    np.full((20, 20, 3), 200, np.uint8),
], ids=["black", "white", "grey", "tiny", "one-row", "one-pixel", "empty", "20px"])
def test_frames_without_tags_give_no_proposals(frame):
    from toonvision_live.find.proposers import IncrementalProposer

    assert propose_cog_boxes(frame) == []
    assert IncrementalProposer()(frame) == []


def test_random_noise_gives_no_proposals():
    rgb = np.random.default_rng(0).integers(0, 256, (720, 1280, 3), dtype=np.uint8)
    assert propose_cog_boxes(rgb) == []


def test_a_tag_at_the_bottom_edge_gives_a_clipped_body(street):
    rgb = street.copy()
    draw_cog_nametag(rgb, 640, 700, "Bloodsucker", "Lawbot", 3, 12.0)
    proposals = propose_cog_boxes(rgb)
    assert all(p.body_xyxy[3] <= 720 for p in proposals)


@pytest.mark.parametrize("bad", [np.zeros((10, 10), np.uint8), np.zeros((10, 10, 4), np.uint8),
                                 np.zeros((10, 10, 3), np.float32), [[0, 0, 0]]])
def test_bad_frames_are_refused(bad):
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        propose_cog_boxes(bad)


def test_merge_duplicate_tags_keeps_the_best_of_overlapping_cards():
    a = propose.Nametag((0, 0, 100, 40), 12.0, 0.9)
    b = propose.Nametag((2, 1, 101, 41), 12.0, 0.5)
    c = propose.Nametag((200, 0, 300, 40), 12.0, 0.4)
    inner = propose.Nametag((10, 5, 60, 30), 8.0, 0.3)
    assert propose.merge_duplicate_tags([b, c, a, inner]) == [a, c]


# --- rendered street scenes and the overlay's own drawings ----------------------------------------

def scene_items(seeds, times):
    from toonvision_live.demo.scene import StreetScene
    from toonvision_live.demo.sprites import SpriteAtlas

    atlas = SpriteAtlas.load()
    for seed in seeds:
        scene = StreetScene(atlas, (1280, 720), n_cogs=8, n_toons=2, seed=seed)
        for t in times:
            frame = scene.frame(t)
            pairs = zip(frame.objects, frame.tags_xyxy, strict=True)
            cogs = [(o, tag) for o, tag in pairs if o.name.startswith("cog_")]
            truth = [o.xyxy for o, tag in cogs if tag is not None and not o.difficult]
            ignore = [o.xyxy for o, tag in cogs if tag is None or o.difficult]
            yield frame.rgb, truth, ignore


def test_street_scenes_most_cogs_are_proposed():
    """Crowded rendered streets (8 Cogs, 2 Toons, overlaps): a floor on precision and recall."""
    report = evaluate_proposals(list(scene_items(seeds=(21, 22, 23), times=(0.0, 3.0))))
    assert report["tp"] + report["fn"] >= 25
    assert report["recall"] >= 0.7 and report["precision"] >= 0.7
    assert 0.8 <= report["height_ratio"] <= 1.2


def overlay_drawn(rgb: np.ndarray, proposals: list[Proposal]) -> np.ndarray:
    """The frame as the next capture sees it with the overlay on top (box just outside, card above the tag)."""
    out = rgb.copy()
    for p in proposals:
        x0, y0, x1, y1 = p.body_xyxy
        cv2.rectangle(out, (x0 - 3, y0 - 3), (x1 + 2, y1 + 2), (178, 34, 34), 2)
        draw_overlay_label(out, max(0, (x0 + x1) // 2 - 70), max(0, p.tag_xyxy[1] - 30), ["Cold Caller sb 97%"],
                           (178, 34, 34), (255, 255, 255), 16.0)
    return out


def test_boxes_do_not_creep_when_the_overlay_is_captured(real_frame):
    """The overlay's box, drawn just outside a body, must not make the next box bigger (feedback)."""
    rgb, truth = real_frame
    first = propose_cog_boxes(rgb)
    proposals = first
    for _ in range(6):
        proposals = propose_cog_boxes(overlay_drawn(rgb, proposals))
        assert len(proposals) == len(first) == 2
        for p, q in zip(proposals, first, strict=True):
            assert abs((p.body_xyxy[3] - p.body_xyxy[1]) - (q.body_xyxy[3] - q.body_xyxy[1])) <= 8
            assert abs((p.body_xyxy[2] - p.body_xyxy[0]) - (q.body_xyxy[2] - q.body_xyxy[0])) <= 8
    assert match_boxes([p.body_xyxy for p in proposals], truth, 0.5) == (2, 0, 0)


# --- incremental proposals for a video ----------------------------------------------------------------

def test_incremental_proposer_follows_tags_between_full_searches():
    from toonvision_live.demo.scene import StreetScene
    from toonvision_live.demo.sprites import SpriteAtlas
    from toonvision_live.find.proposers import IncrementalProposer

    scene = StreetScene(SpriteAtlas.load(), (1280, 720), n_cogs=6, n_toons=1, seed=31)
    proposer = IncrementalProposer(full_every=4)
    followed = agreeing = 0
    for i in range(12):
        rgb = scene.frame(i / 30).rgb
        incremental = proposer(rgb)
        full = propose_cog_boxes(rgb)
        if i % 4:  # a followed frame: compare with a full search of the same frame
            followed += len(full)
            agreeing += match_boxes([p.body_xyxy for p in incremental], [p.body_xyxy for p in full], 0.5)[0]
        else:
            assert incremental == full
    assert proposer.full_searches == 3
    assert followed >= 10 and agreeing >= 0.8 * followed


def test_incremental_proposer_drops_a_tag_that_is_gone_and_rescans_on_resize(real_frame):
    from toonvision_live.find.proposers import IncrementalProposer

    rgb, truth = real_frame
    proposer = IncrementalProposer(full_every=10)
    assert len(proposer(rgb)) == 2
    assert len(proposer(rgb)) == 2 and proposer.full_searches == 1
    blanked = rgb.copy()
    blanked[220:280, 160:260] = (90, 140, 200)  # the Cold Caller's tag is covered
    after = proposer(blanked)
    assert match_boxes([p.body_xyxy for p in after], truth[1:], 0.5) == (1, 0, 0)
    bigger = cv2.resize(rgb, (1024, 768))
    assert len(proposer(bigger)) == 2 and proposer.full_searches == 2
    proposer.reset()
    proposer(rgb)
    assert proposer.full_searches == 3
    with pytest.raises(ValueError):
        IncrementalProposer(full_every=0)


def test_incremental_proposer_with_full_every_one_is_the_plain_search(real_frame):
    from toonvision_live.find.proposers import IncrementalProposer

    rgb, _ = real_frame
    proposer = IncrementalProposer(full_every=1)
    assert proposer(rgb) == proposer(rgb) == propose_cog_boxes(rgb)
    assert proposer.full_searches == 2


@pytest.mark.parametrize("degrade", ["dark-0.3", "dark-0.15", "jpeg-40", "jpeg-25", "blur-0.6"])
def test_tags_survive_dark_streets_compression_and_slight_blur(degrade):
    """The card is drawn unlit (0.5 grey over the scene), so it stays light on a dark street."""
    kind, amount = degrade.split("-")
    rgb, _ = make_street_background((1280, 720), seed=3)
    rgb = (rgb * float(amount)).astype(np.uint8) if kind == "dark" else rgb.copy()
    truth = [draw_cog_nametag(rgb, cx, by, name, dept, lvl, em) for cx, by, name, dept, lvl, em in COG_TAGS]
    if kind == "jpeg":
        _, data = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, int(amount)])
        rgb = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    elif kind == "blur":
        rgb = cv2.GaussianBlur(rgb, (0, 0), float(amount))
    assert match_boxes([t.tag_xyxy for t in find_nametags(rgb)], truth, 0.5) == (len(truth), 0, 0)


@pytest.mark.parametrize("text_rgb", [(40, 70, 200), (200, 30, 30), (0, 140, 40), (170, 40, 170)])
def test_three_coloured_lines_are_not_a_cog_tag(street, text_rgb):
    """Even a Toon name wrapped onto three lines: Cog tags are dark text only."""
    from toonvision_live.demo.nametag import render_nametag
    from toonvision_live.demo.sprites import blend_premultiplied

    rgb = street.copy()
    tag = render_nametag(("Lucky", "Bumble", "Doodlebee"), (text_rgb,) * 3, 16.0)
    assert blend_premultiplied(rgb, tag.premul_rgb, tag.inv_alpha, 500, 300) is not None
    dark = render_nametag(("Lucky", "Bumble", "Doodlebee"), ((25, 25, 25),) * 3, 16.0)
    control = street.copy()
    blend_premultiplied(control, dark.premul_rgb, dark.inv_alpha, 500, 300)
    assert len(find_nametags(control)) == 1  # the same card in dark text is found
    assert find_nametags(rgb) == []


@pytest.mark.parametrize("centre_x", [40, 25, 1240, 1255])
def test_a_tag_cut_by_the_frame_side_is_still_found(street, centre_x):
    """A Cog walking into view: its tag's lines are cut at the frame edge, so they no longer share a centre."""
    rgb = street.copy()
    truth = draw_cog_nametag(rgb, centre_x, 300, "Bloodsucker", "Lawbot", 3, 14.0)
    assert truth[0] == 0 or truth[2] == 1280  # really cut
    (proposal,) = propose_cog_boxes(rgb)
    assert iou_matrix([proposal.tag_xyxy], [truth])[0, 0] >= 0.7
    assert proposal.body_xyxy[1] >= truth[3]


def test_speech_balloons_are_not_cog_tags(street):
    """The game's chat balloons: three centred dark lines, but on an opaque white card."""
    rgb = street.copy()
    draw_overlay_label(rgb, 400, 200, ["Hello there,", "want to go", "to the trolley?"], (255, 255, 255), (0, 0, 0),
                       16.0, alpha=1.0)
    draw_overlay_label(rgb, 800, 400, ["Cold Caller", "Sellbot", "Level 3"], (250, 250, 250), (10, 10, 10), 12.0,
                       alpha=1.0)
    assert find_nametags(rgb) == []
    # the same text on the game's translucent grey card is a tag
    draw_overlay_label(rgb, 800, 550, ["Cold Caller", "Sellbot", "Level 3"], (204, 204, 204), (25, 25, 25), 12.0,
                       alpha=0.5)
    assert len(find_nametags(rgb)) == 1


def test_background_search_proposer_finds_the_same_cogs_and_stops_cleanly():
    """The full search runs on a helper thread; the caller follows tags.  On a walking street it must
    keep the Cogs the synchronous search finds, and close() must end its thread."""
    import time

    from toonvision_live.demo.scene import StreetScene
    from toonvision_live.demo.sprites import SpriteAtlas
    from toonvision_live.find.proposers import BackgroundSearchProposer

    scene = StreetScene(SpriteAtlas.load(), seed=2)
    proposer = BackgroundSearchProposer()
    found = expected = 0
    try:
        for i in range(40):
            frame = scene.frame(i / 30).rgb
            got = proposer(frame)
            if i >= 10:  # after the first few searches
                want = propose_cog_boxes(frame)
                expected += len(want)
                if want and got:
                    found += int((iou_matrix(as_xyxy_array([p.tag_xyxy for p in want]),
                                             as_xyxy_array([p.tag_xyxy for p in got])).max(axis=1) > 0.5).sum())
            time.sleep(0.01)
        assert proposer.full_searches >= 3
    finally:
        proposer.close()
    assert expected > 50
    assert found / expected > 0.85
    assert not proposer.searching


def test_background_search_proposer_raises_a_search_failure_in_the_caller():
    import time

    from toonvision_live.find.proposers import BackgroundSearchProposer

    failing = [False]

    def search(rgb: np.ndarray) -> list[Proposal]:  # the full search it is given, failing when told to
        if failing[0]:
            raise ZeroDivisionError("division by zero")
        return propose_cog_boxes(rgb)

    frame = np.full((120, 200, 3), 90, np.uint8)
    proposer = BackgroundSearchProposer(full_search=search)
    try:
        proposer(frame)  # first frame: searched in the caller
        failing[0] = True
        proposer(frame)  # hands the frame to the search stage, which fails
        with pytest.raises(RuntimeError, match="search thread failed"):
            for _ in range(100):
                time.sleep(0.01)
                proposer(frame)
    finally:
        proposer.close()


def test_text_lines_joined_by_a_descender_are_split_apart():
    """A descender touching the ascender below merges two lines into one blob; it is cut at the
    nearly empty row between them (the demo's Money Bags tag over a yellow wall was lost this way)."""
    lines = np.zeros((40, 60), np.uint8)
    lines[5:12, 5:55] = 255  # "Money Bags"
    lines[14:21, 10:50] = 255  # "Cashbot"
    lines[12:14, 40:42] = 255  # the y's descender meets the h's ascender
    lines[30:33, 0:20] = 255  # an unrelated thin stroke stays whole
    rects = propose._split_stacked(np.array([[5, 5, 50, 16], [0, 30, 20, 3]], np.int32), lines)
    assert sorted(map(tuple, rects.tolist())) == [(0, 30, 20, 3), (5, 5, 50, 7), (10, 14, 40, 7)]


def test_a_tag_the_full_search_misses_is_kept_where_it_verifies_again(real_frame, monkeypatch):
    """Video proposers re-verify a known tag that a full search missed at the place template matching
    follows it to: kept while it still verifies there, dropped once it is really gone."""
    from toonvision_live.find.proposers import IncrementalProposer

    rgb, truth = real_frame
    proposer = IncrementalProposer(full_every=1)
    plain = IncrementalProposer(full_every=1, keep_missing=False)
    assert len(proposer(rgb)) == len(plain(rgb)) == 2
    monkeypatch.setattr(propose, "_coarse_candidates", lambda frame: ([], 1.0))  # the coarse pass finds nothing
    assert plain(rgb) == []
    kept = proposer(rgb)
    assert match_boxes([p.body_xyxy for p in kept], truth, 0.5) == (2, 0, 0)
    assert proposer.full_searches == 2
    blanked = rgb.copy()
    blanked[220:280, 160:260] = (90, 140, 200)  # the Cold Caller's tag is gone
    after = proposer(blanked)
    assert match_boxes([p.body_xyxy for p in after], truth[1:], 0.5) == (1, 0, 0)


def test_stacked_line_boxes_are_split_as_row_by_row():
    """_split_stacked finds the boxes to cut up from one integral image: the same boxes and parts as
    cutting every box up row by row, on random strokes (touching lines, gaps, boxes at the edges)."""
    from toonvision_live.find.nametags import _runs, _split_stacked

    def row_by_row(rects, lines):
        out = []
        for x, y, w, h in rects.tolist():
            profile = np.count_nonzero(lines[y:y + h, x:x + w], axis=1) if h >= 5 else None
            parts = [] if profile is None else _runs(profile > 0.2 * profile.max())
            if len(parts) < 2:
                out.append((x, y, w, h))
                continue
            for a, b in parts:
                if b - a >= 2:
                    cols = np.flatnonzero(np.count_nonzero(lines[y + a:y + b, x:x + w], axis=0))
                    out.append((x + int(cols[0]), y + a, int(cols[-1] - cols[0] + 1), b - a))
        return np.array(out, np.int32).reshape(-1, 4)

    rng = np.random.default_rng(5)
    split_some = False
    for _ in range(40):
        lines = np.zeros((120, 200), np.uint8)
        for _ in range(int(rng.integers(5, 40))):
            x, y = int(rng.integers(0, 200)), int(rng.integers(0, 120))
            lines[y:y + int(rng.integers(1, 9)), x:x + int(rng.integers(1, 40))] = 255
        contours, _ = cv2.findContours(lines, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        rects = np.array([cv2.boundingRect(c) for c in contours], np.int32).reshape(-1, 4)
        expected = row_by_row(rects, lines)
        assert np.array_equal(_split_stacked(rects, lines), expected)
        split_some = split_some or len(expected) != len(rects)
    assert split_some  # the strokes did touch somewhere


def test_background_searches_slow_down_while_no_cog_comes_or_goes():
    """Full rate for QUIET_S after the number of known Cogs changed, ``backoff`` times as far apart after
    that, but not while the load governor has lengthened the period."""
    from toonvision_live.find.proposers import QUIET_S, BackgroundSearchProposer

    proposer = BackgroundSearchProposer(max_searches_per_s=8.0, backoff=3.0)
    now = [0.0]
    proposer.clock = lambda: now[0]
    try:
        proposer._pace(0, 2)  # two Cogs came
        assert proposer._search.min_period_s == pytest.approx(0.125)
        now[0] = QUIET_S * 0.9
        proposer._pace(2, 2)
        assert proposer._search.min_period_s == pytest.approx(0.125)
        now[0] = QUIET_S * 1.1
        proposer._pace(2, 2)
        assert proposer._search.min_period_s == pytest.approx(0.375)
        proposer.min_period_s = 0.25  # the governor halves the rate (CPU short): its period, no back-off
        assert proposer.min_period_s == pytest.approx(0.25)
        assert proposer._search.min_period_s == pytest.approx(0.25)
        proposer.min_period_s = 0.125  # full rate again, still quiet
        assert proposer._search.min_period_s == pytest.approx(0.375)
        proposer._pace(2, 1)  # one left (or was lost where two cross)
        assert proposer._search.min_period_s == pytest.approx(0.125)
        assert BackgroundSearchProposer(backoff=1.0)._search.min_period_s == pytest.approx(1 / 30)
    finally:
        proposer.close()
