"""Fusion of the classifier and the nametag reader, the level prior and the HP rule (pure, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from toonvision_live.classify.classifier import predictions_from_probs
from toonvision_live.classify.fusion import cog_hp, fuse, fuse_all, level_prior
from toonvision_live.classify.reader import DEPT_CLASSES, NAME_CLASSES, OUTPUTS, readings_from_outputs
from toonvision_live.taxonomy import COG_KEYS, SUIT_CODES, cog


def _peaked(n: int, picks: dict[int, float]) -> np.ndarray:
    rest = 1.0 - sum(picks.values())
    p = np.full(n, rest / (n - len(picks)))
    for i, v in picks.items():
        p[i] = v
    return p[None]


def reading(name: str | dict[str, float], dept: str, level: int | dict[int, float], v2: bool = False,
            v2_p: float = 0.995):
    names = name if isinstance(name, dict) else {name: 0.98}
    levels = level if isinstance(level, dict) else {level: 0.98}
    tens = np.zeros(6)
    units = np.zeros(10)
    for lv, p in levels.items():
        tens[lv // 10] += p
        units[lv % 10] += p
    tens += (1 - tens.sum()) / 6
    units += (1 - units.sum()) / 10
    out = {"name": _peaked(OUTPUTS["name"], {NAME_CLASSES.index(k): v for k, v in names.items()}),
           "dept": _peaked(OUTPUTS["dept"], {DEPT_CLASSES.index(dept): 0.98}),
           "tens": tens[None], "units": units[None], "v2": np.array([[1 - v2_p, v2_p] if v2 else [v2_p, 1 - v2_p]])}
    return readings_from_outputs(out)[0]


def prediction(key: str, p: float = 0.9):
    c = cog(key)
    return predictions_from_probs(_peaked(4, {SUIT_CODES.index(c.suit): p}), _peaked(32, {COG_KEYS.index(key): p}))[0]


def test_hp_rule_of_toontown_rewritten() -> None:
    assert [cog_hp(v) for v in (1, 2, 5, 10, 11)] == [6, 12, 42, 132, 156]
    assert cog_hp(12) == 13 * 14 + 14 == 196
    assert cog_hp(20) == 21 * 22 + 14
    with pytest.raises(ValueError):
        cog_hp(0)


def test_tag_alone_names_cog_level_and_hp() -> None:
    label = fuse(None, reading("headhunter", "bb", 10))
    assert (label.kind, label.cog, label.suit, label.level, label.hp, label.source) == (
        "cog", "headhunter", "bb", 10, 132, "tag")
    assert label.card_text() == "Head Hunter · Lv 10 · 132 HP"
    assert label.agree is None and label.level_plausible


def test_v2_shows_both_layers() -> None:
    label = fuse(prediction("coldcaller"), reading("coldcaller", "sb", 3, v2=True))
    assert label.v2 and label.hp == 20 and label.total_hp == 40
    assert label.card_text() == "Cold Caller · Lv 3 v2.0 · 20+20 HP"
    assert label.agree is True and label.source == "both"


def test_body_alone_has_no_level() -> None:
    label = fuse(prediction("bloodsucker"), None)
    assert (label.kind, label.cog, label.level, label.hp, label.source) == ("cog", "bloodsucker", None, None, "body")
    assert label.card_text() == "Bloodsucker"
    with pytest.raises(ValueError):
        fuse(None, None)


def test_disagreement_is_reported_and_the_tag_wins_when_sure() -> None:
    label = fuse(prediction("coldcaller", 0.8), reading("telemarketer", "sb", 3))
    assert label.cog == "telemarketer" and label.agree is False


def test_confident_body_outweighs_an_unsure_tag() -> None:
    unsure = reading({"flunky": 0.4, "pencilpusher": 0.35}, "bb", 3)
    assert fuse(prediction("pencilpusher", 0.97), unsure).cog == "pencilpusher"


def test_a_read_that_doubts_itself_does_not_outweigh_a_sure_body() -> None:
    # a box on part of a card (seed 1 of the demo replay): a confident name beside an unsure level
    doubtful = reading({"namedropper": 0.7}, "sb", {18: 0.08, 5: 0.05})
    assert doubtful.confidence < 0.1
    assert fuse(prediction("bottomfeeder", 0.95), doubtful).cog == "bottomfeeder"
    # the same name read with a sure level still wins over the body
    assert fuse(prediction("bottomfeeder", 0.95), reading({"namedropper": 0.7}, "sb", 5)).cog == "namedropper"


def test_skelecog_and_boardbot_are_never_forced_into_the_32() -> None:
    skele = fuse(prediction("flunky", 0.95), reading("skelecog", "sb", 5))
    assert skele.kind == "skelecog" and skele.cog is None and skele.suit == "sb"
    assert skele.card_text() == "Skelecog (Sellbot) · Lv 5 · 42 HP"
    board = fuse(prediction("flunky", 0.95), reading("other", "boardbot", 12))
    assert board.kind == "boardbot" and board.cog is None and board.hp is None
    assert board.card_text() == "Boardbot · Lv 12"
    unknown = fuse(None, reading("other", "cb", 7))
    assert unknown.display_name == "Unknown Cashbot"


def test_level_range_prior_corrects_a_misread() -> None:
    # a Flunky (tier 1, levels 1..5) read as "Level 9" with a close second "Level 4"
    label = fuse(None, reading("flunky", "bb", {9: 0.55, 4: 0.40}))
    assert label.level == 4 and label.level_plausible is False
    # a sure read in range stays as read, also in a Cog HQ (a few levels above the street range)
    assert fuse(None, reading("thebigcheese", "bb", 12)).level == 12
    assert fuse(None, reading("flunky", "bb", {7: 0.98})).level == 7


def test_level_prior_shape() -> None:
    p = level_prior(6)
    assert p.shape == (50,) and p[5:10].min() == 1.0 and p[4] < 1e-3 and 0 < p[10] < 1 and p[13] < 1e-3 and p[30] < 1e-3


def test_two_line_tag_without_department() -> None:
    label = fuse(prediction("beancounter", 0.6), reading("beancounter", "none", 6))
    assert (label.cog, label.level, label.hp) == ("beancounter", 6, 56)


def test_fuse_all_pairs_lists() -> None:
    labels = fuse_all([prediction("flunky"), None], [None, reading("yesman", "bb", 4)])
    assert [lb.cog for lb in labels] == ["flunky", "yesman"]
    with pytest.raises(ValueError):
        fuse_all([None], [])


def test_small_tags_weigh_less_against_the_body() -> None:
    from dataclasses import replace

    from toonvision_live.classify.fusion import reader_name_temper

    assert reader_name_temper(4.5) > reader_name_temper(5.5) > reader_name_temper(7) > reader_name_temper(20)
    assert reader_name_temper(0) == reader_name_temper(20)
    misread = reading("flunky", "bb", 3)
    body = prediction("pencilpusher", 0.97)
    assert fuse(body, replace(misread, line_px=20.0)).cog == "flunky"  # a sharp tag outweighs the body
    assert fuse(body, replace(misread, line_px=4.5)).cog == "pencilpusher"  # a 4-px tag does not


def test_other_is_not_a_sink_for_unsure_reads() -> None:
    # the reader was shown "other" names 9 times as often as any one Cog; that prior is undone
    unsure = reading({"other": 0.45, "coldcaller": 0.4}, "sb", 2)
    assert fuse(prediction("coldcaller", 0.6), unsure).cog == "coldcaller"


def test_average_readings() -> None:
    from toonvision_live.classify.reader import average_readings

    a, b, c = reading("flunky", "bb", 3), reading("flunky", "bb", 3), reading("yesman", "bb", 4, v2=True)
    avg = average_readings([a, b, c])
    assert (avg.name, avg.level, avg.v2) == ("flunky", 3, False)
    assert avg.name_conf == pytest.approx((0.98 * 2 + float(c.name_probs[NAME_CLASSES.index("flunky")])) / 3)
    assert average_readings([c]) is c


def test_an_unsure_level_is_not_shown() -> None:
    """A tag whose level the reader cannot make out (a speech balloon read as a tag on a real battle frame:
    level 19 at 0.42 beside 0.29 for the name) named a Glad Hander "Lv 4 v2.0 · 30+30 HP" from the level
    range alone: a level under LEVEL_SHOW_MIN sure is not shown, nor its HP; the Cog still is."""
    from toonvision_live.classify.fusion import LEVEL_SHOW_MIN

    flat = {lv: 0.02 for lv in range(1, 50)}
    label = fuse(prediction("gladhander", 0.6), reading("gladhander", "sb", flat, v2=True))
    assert label.kind == "cog" and label.cog == "gladhander"
    assert label.level is None and label.hp is None and not label.v2 and label.level_conf < LEVEL_SHOW_MIN
    assert label.card_text() == "Glad Hander"
    # two close levels in the Cog's range: still unsure
    assert fuse(None, reading("flunky", "bb", {2: 0.3, 3: 0.3, 4: 0.3})).level is None
    sure = fuse(None, reading("flunky", "bb", {2: 0.2, 3: 0.7}))
    assert sure.level == 3 and sure.level_conf >= LEVEL_SHOW_MIN and sure.hp == 20
    # a Skelecog keeps its name without a level
    skele = fuse(None, reading("skelecog", "sb", flat))
    assert skele.kind == "skelecog" and skele.level is None and skele.card_text() == "Skelecog (Sellbot)"


def test_v2_is_shown_only_when_read_surely() -> None:
    """A half-covered "Level 7" tag read "v2.0" at 0.9 doubled the HP shown (the demo has no v2.0 Cog)."""
    unsure = fuse(None, reading("beancounter", "cb", 7, v2=True, v2_p=0.9))
    assert not unsure.v2 and unsure.hp == 72 and unsure.card_text() == "Bean Counter · Lv 7 · 72 HP"
    sure = fuse(None, reading("beancounter", "cb", 7, v2=True, v2_p=0.995))
    assert sure.v2 and sure.total_hp == 144 and sure.card_text() == "Bean Counter · Lv 7 v2.0 · 72+72 HP"
