"""``toonvision replay`` and the scorer it shares with tests/test_e2e.py: the pipeline's worker on
rendered demo streets (no display), scored against the streets' ground truth."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from model_factory import make_tiny_model

from toonvision_live.classify.classifier import CogClassifier
from toonvision_live.cli import main
from toonvision_live.demo.window import ShownFrame
from toonvision_live.model_card import default_model_path
from toonvision_live.pipeline import FrameResult
from toonvision_live.tools.replay import Score, replay_street, score_result, tag_cover

#: the shipped model on streets 0-7 (5 s at 10 fps, full search every frame), tracks classified when due:
#: 0.964 of the Cogs named right with the load governor off, as replay now runs (2026-12-02 15:00;
#: 0.960 at 08:20 with it on, 0.967 before main's crop stage changes; classifying every proposal on
#: every frame: 0.962).  The
#: replay is deterministic, so this is a regression guard at issue 6's 95 %, not a noisy sample.
REPLAY_ACCURACY = 0.95


def test_scores_count_right_wrong_and_missed_cogs():
    """The scorer itself, on hand-made results (so the accuracy test cannot pass by miscounting)."""
    from toonvision_live.frames import Frame
    from toonvision_live.geometry import ScreenRect
    from toonvision_live.pipeline import StageTimes
    from toonvision_live.track import TrackedCog
    from toonvision_live.voc import VocObject

    shown = ShownFrame(
        0.0,
        0.0,
        (
            VocObject("cog_sb_coldcaller", (100, 300, 160, 480)),
            VocObject("cog_lb_bigwig", (400, 300, 470, 500)),
            VocObject("cog_cb_moneybags", (700, 300, 780, 520)),
            VocObject("cog_bb_flunky", (1250, 300, 1280, 500), truncated=True),
            VocObject("toon_dog", (900, 400, 950, 500)),
        ),
        (
            (100, 250, 160, 290),
            (400, 250, 470, 290),
            (700, 250, 780, 290),
            (1240, 250, 1280, 290),
            (900, 370, 950, 390),
        ),
    )
    cogs = (
        TrackedCog(1, (102, 302, 160, 478), "sb", "coldcaller", 0.9, True),
        TrackedCog(2, (400, 300, 470, 500), "lb", "backstabber", 0.9, True),
        TrackedCog(3, (20, 20, 60, 100), "cb", "tightwad", 0.9, True),
    )
    frame = Frame(1, np.zeros((720, 1280, 3), np.uint8), 0.0, 0.0, ScreenRect(0, 0, 1280, 720))
    result = FrameResult(frame, (), cogs, StageTimes(0, 0, 0, 0, 0, 0), 0.0, "cpu", 1)
    score = Score()
    score_result(score, result, shown)
    assert (score.cogs_on_screen, score.found, score.right) == (3, 2, 1)
    assert (score.tags, score.tags_on_tags) == (0, 0)
    assert (score.boxes, score.boxes_on_cogs) == (3, 2)
    assert sorted(score.misses) == ["cog_cb_moneybags not found", "cog_lb_bigwig as cog_lb_backstabber"]
    assert score.accuracy == pytest.approx(1 / 3)
    # a Cog whose body box is off but whose nametag matches still counts as found
    tagged = (TrackedCog(4, (700, 380, 780, 520), "cb", "moneybags", 0.9, True, tag_xyxy=(701, 250, 780, 290)),)
    score = Score()
    score_result(score, FrameResult(frame, (), tagged, StageTimes(0, 0, 0, 0, 0, 0), 0.0, "cpu", 1), shown)
    assert (score.found, score.right, score.tags_on_tags) == (1, 1, 1)


def test_a_tag_is_covered_only_by_nearer_tags():
    # far to near: the first tag is half covered by the second, which the third does not touch
    cover = tag_cover(((100, 100, 200, 140), (150, 100, 250, 140), (400, 100, 500, 140), None))
    assert cover == [0.5, 0.0, 0.0, 1.0]


def test_tag_visible_matches_tracks_among_all_cogs_with_a_tag_in_view():
    """A mostly hidden Mr. Hollywood (tag above) behind a Name Dropper whose own tag was not found: the one
    track, on Mr. Hollywood's tag, names Mr. Hollywood and its body box covers the Name Dropper.  The
    replay's first figure scores it as the Name Dropper named wrong; 'tag visible' gives the track to
    Mr. Hollywood (not counted: mostly hidden) and the Name Dropper is not found."""
    from toonvision_live.frames import Frame
    from toonvision_live.geometry import ScreenRect
    from toonvision_live.pipeline import StageTimes
    from toonvision_live.track import TrackedCog
    from toonvision_live.voc import VocObject

    shown = ShownFrame(0.0, 0.0, (VocObject("cog_sb_mrhollywood", (382, 145, 564, 537), difficult=True),
                                  VocObject("cog_sb_namedropper", (392, 222, 616, 640)),
                                  VocObject("cog_lb_bigwig", (800, 300, 900, 500)),
                                  VocObject("cog_lb_legaleagle", (850, 290, 960, 510))),
                       ((402, 89, 507, 134), (445, 145, 572, 203), (810, 240, 890, 280), (860, 250, 950, 290)))
    frame = Frame(1, np.zeros((720, 1280, 3), np.uint8), 0.0, 0.0, ScreenRect(0, 0, 1280, 720))

    def scored(*cogs: TrackedCog) -> Score:
        score = Score()
        score_result(score, FrameResult(frame, (), cogs, StageTimes(0, 0, 0, 0, 0, 0), 0.0, "cpu", 1), shown)
        return score

    hollywood = TrackedCog(4, (380, 180, 600, 620), "sb", "mrhollywood", 0.9, True, tag_xyxy=(398, 89, 511, 135))
    score = scored(hollywood)
    # the Big Wig's tag lies under the nearer Legal Eagle's: neither counts as tag visible
    assert (score.cogs_on_screen, score.found, score.right) == (3, 1, 0)
    assert score.misses[0] == "cog_sb_namedropper as cog_sb_mrhollywood"
    assert (score.tag_visible, score.visible_found, score.visible_right) == (2, 0, 0)
    assert score.visible_misses == ["cog_sb_namedropper not found", "cog_lb_legaleagle not found"]
    assert (score.tag_in_view, score.in_view_found, score.in_view_right) == (3, 1, 1)  # Mr. Hollywood too
    dropper = TrackedCog(5, (390, 222, 615, 640), "sb", "namedropper", 0.9, True, tag_xyxy=(444, 145, 572, 204))
    score = scored(hollywood, dropper)
    assert (score.visible_found, score.visible_right, score.visible_accuracy) == (1, 1, 0.5)
    assert score.visible_miss_frames == [(0.0, "cog_lb_legaleagle not found")]
    assert score.as_dict()["tag_visible"]["accuracy"] == 0.5



def test_tag_visible_cogs_named_right_have_their_level_scored():
    """Of the tag-visible Cogs named right with a level on the card, those whose level is the tag's."""
    from toonvision_live.classify.fusion import FusedLabel, cog_hp
    from toonvision_live.frames import Frame
    from toonvision_live.geometry import ScreenRect
    from toonvision_live.pipeline import StageTimes
    from toonvision_live.track import TrackedCog
    from toonvision_live.voc import VocObject

    shown = ShownFrame(0.0, 0.0, (VocObject("cog_lb_bigwig", (100, 300, 200, 500), level=8),
                                  VocObject("cog_sb_coldcaller", (500, 300, 600, 500), level=3),
                                  VocObject("cog_cb_tightwad", (900, 300, 1000, 500), level=5)),
                       ((110, 240, 190, 280), (510, 240, 590, 280), (910, 240, 990, 280)))
    frame = Frame(1, np.zeros((720, 1280, 3), np.uint8), 0.0, 0.0, ScreenRect(0, 0, 1280, 720))

    def fused(cog: str, suit: str, level: int) -> FusedLabel:
        return FusedLabel("cog", cog, suit, 0.9, level, False, cog_hp(level), True, "both")

    cogs = (TrackedCog(1, (100, 300, 200, 500), "lb", "bigwig", 0.9, True, fused=fused("bigwig", "lb", 8)),
            TrackedCog(2, (500, 300, 600, 500), "sb", "coldcaller", 0.9, True, fused=fused("coldcaller", "sb", 4)),
            TrackedCog(3, (900, 300, 1000, 500), "cb", "tightwad", 0.9, True))  # tag not read: no level shown
    score = Score()
    score_result(score, FrameResult(frame, (), cogs, StageTimes(0, 0, 0, 0, 0, 0), 0.0, "cpu", 1), shown)
    assert (score.visible_right, score.visible_level_shown, score.visible_level_right) == (3, 2, 1)
    assert score.as_dict()["tag_visible"]["level_accuracy"] == 0.5


def test_replay_scores_every_frame_of_a_street(tmp_path):
    """The tiny contract model's labels are random: the boxes are scored, not the names."""
    classifier = CogClassifier(make_tiny_model(tmp_path), ["cpu"])
    score = replay_street(classifier, seed=1, seconds=1.0, fps=10.0)
    assert score.frames == 10
    assert score.cogs_on_screen >= 20
    assert score.recall >= 0.9, score
    assert score.tag_precision >= 0.9, score
    assert score.right < score.found  # random labels are not all right


def test_replays_are_deterministic_the_load_governor_stays_off(tmp_path):
    """Frames carry scene time, so a governor would judge them all late and lower the rates by how fast
    the machine replays: replay keeps it off, and the same street scores the same twice."""
    classifier = CogClassifier(make_tiny_model(tmp_path), ["cpu"])
    degraded: list[str] = []
    scores = [replay_street(classifier, seed=3, seconds=2.0, fps=10.0,
                            on_processed=lambda result, _ms: degraded.append(result.degraded)).as_dict()
              for _ in range(2)]
    assert len(degraded) == 40 and set(degraded) == {""}
    assert scores[0] == scores[1]


def test_the_shipped_model_names_the_cogs_of_replayed_streets():
    model = default_model_path()
    assert model.is_file(), f"the shipped model {model} is missing"  # fail, never skip: it ships
    classifier = CogClassifier(model, ["cpu"])
    total = Score()
    for seed in range(8):
        total.add(replay_street(classifier, seed=seed, seconds=5.0, fps=10.0))
    print(f"replayed streets 0-7: {total.accuracy:.3f} of {total.cogs_on_screen} Cogs named right, "
          f"recall {total.recall:.3f}; most missed {total.most_missed(3)}")
    assert total.cogs_on_screen >= 1500
    assert total.accuracy >= REPLAY_ACCURACY, (total.accuracy, total.most_missed(5))
    # no counted Cog's tag is ever covered by another tag on these streets: 'tag visible' counts the same Cogs
    assert total.tag_visible == total.cogs_on_screen
    assert total.visible_accuracy >= REPLAY_ACCURACY, Counter(total.visible_misses).most_common(5)


def test_replay_command_prints_a_table_and_writes_json(tmp_path, capsys):
    model = make_tiny_model(tmp_path)
    out = tmp_path / "replay.json"
    assert main(["replay", "--seeds", "0,2", "--seconds", "0.5", "--fps", "4", "--model", str(model),
                 "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "replayed streets" in printed and "named right" in printed
    report = json.loads(out.read_text())
    assert set(report["seeds"]) == {"0", "2"}
    assert report["all"]["frames"] == 4 and report["all"]["cogs_on_screen"] > 0


def test_replay_command_rejects_bad_input_in_one_sentence(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["replay", "--seeds", "zero"])
    assert exc.value.code == 2
    assert "is not a list of seeds" in capsys.readouterr().err
    assert main(["replay", "--seeds", "0", "--model", str(tmp_path / "missing.onnx")]) != 0
    err = capsys.readouterr().err
    assert err.startswith("toonvision: error:") and "Traceback" not in err
    assert main(["replay", "--seeds", "0", "--fps", "0", "--model", str(make_tiny_model(tmp_path))]) != 0
    assert "--fps must be positive" in capsys.readouterr().err


def test_replay_baseline_classifies_every_proposal_and_tracks_fewer(tmp_path, capsys):
    model = make_tiny_model(tmp_path)
    reports = {}
    for name, extra in (("tracks", []), ("baseline", ["--baseline"])):
        out = tmp_path / f"{name}.json"
        assert main(["replay", "--seeds", "1", "--seconds", "2", "--fps", "10", "--model", str(model),
                     "--json", str(out), *extra]) == 0
        reports[name] = json.loads(out.read_text())
    printed = capsys.readouterr().out
    assert "tracks classified:" in printed and "every proposal classified on every frame:" in printed
    tracks, baseline = reports["tracks"], reports["baseline"]
    assert baseline["baseline"] is True and tracks["baseline"] is False
    assert tracks["all"]["found"] == baseline["all"]["found"]  # the same boxes: only the labelling differs
    # measured 0.59 of the baseline's crops, 0.61 since the detector stage's tag assignment (2026-12-03: more
    # boxes on this crowded street, the Cogs of left-over tags; the tiny random model keeps labels unsure)
    assert tracks["crops_per_frame"] < 0.66 * baseline["crops_per_frame"]
    assert tracks["all"]["appearances"] > 0  # (random labels: the tiny model names few Cogs right)
