"""Label smoothing: track ids across frames, smoothed labels, stale tracks dropped."""

from __future__ import annotations

import numpy as np
import pytest

from toonvision_live.classify.classifier import CogPrediction, predictions_from_probs
from toonvision_live.find.nametags import Proposal
from toonvision_live.taxonomy import COG_KEYS, COG_SUIT_INDEX, SUIT_CODES
from toonvision_live.track import LabelSmoother, TrackedCog, resize_about_centre, smoothed_label


def proposal(x: int, y: int = 100, w: int = 60, h: int = 180) -> Proposal:
    return Proposal(body_xyxy=(x, y, x + w, y + h), tag_xyxy=(x, y - 40, x + w, y - 5), score=0.9)


def predict(cog: str, p: float = 0.8, suit: str | None = None) -> CogPrediction:
    e = COG_KEYS.index(cog)
    suit_probs = np.full((1, 4), 0.02)
    suit_probs[0, SUIT_CODES.index(suit) if suit else COG_SUIT_INDEX[e]] = 0.94
    entity = np.full((1, 32), (1 - p) / 31)
    entity[0, e] = p
    return predictions_from_probs(suit_probs, entity)[0]


def test_boxes_keep_their_ids_while_they_move():
    smoother = LabelSmoother(window_s=0.07)
    ids = []
    for frame in range(6):
        cogs = smoother.update([proposal(100 + 5 * frame), proposal(600 - 5 * frame)],
                               [predict("coldcaller"), predict("bloodsucker")], t=frame / 30)
        ids.append([c.track_id for c in cogs])
        assert [c.cog for c in cogs] == ["coldcaller", "bloodsucker"]
        assert [c.suit for c in cogs] == ["sb", "lb"]
        assert all(c.agree for c in cogs)
    assert all(i == ids[0] for i in ids) and ids[0][0] != ids[0][1]
    assert [c.hits for c in cogs] == [6, 6]


def test_a_single_wrong_frame_does_not_flip_the_label():
    smoother = LabelSmoother(window_s=0.13)
    labels = []
    for frame, cog in enumerate(["flunky", "flunky", "flunky", "coldcaller", "flunky"]):
        (tracked,) = smoother.update([proposal(300)], [predict(cog, 0.9)], t=frame * 0.03)
        labels.append(tracked.cog)
    assert labels == ["flunky"] * 5


def test_a_lasting_change_wins_once_it_fills_the_window():
    smoother = LabelSmoother(window_s=0.07)
    for frame in range(3):
        smoother.update([proposal(300)], [predict("flunky", 0.9)], t=frame * 0.03)
    labels = [smoother.update([proposal(300)], [predict("yesman", 0.9)], t=0.1 + k * 0.03)[0].cog
              for k in range(3)]
    assert labels[0] == "flunky" and labels[-1] == "yesman"


def test_window_zero_follows_each_frame():
    smoother = LabelSmoother(window_s=0)
    assert smoother.update([proposal(0)], [predict("flunky")], 0.0)[0].cog == "flunky"
    assert smoother.update([proposal(0)], [predict("yesman")], 0.03)[0].cog == "yesman"


def test_new_boxes_get_new_ids_and_stale_tracks_are_dropped():
    smoother = LabelSmoother(max_age_s=0.5)
    (a,) = smoother.update([proposal(100)], [predict("flunky")], t=0.0)
    (b,) = smoother.update([proposal(800)], [predict("flunky")], t=0.1)
    assert b.track_id != a.track_id
    assert smoother.track_count == 2
    # the first box is back within max_age: same id
    (a2,) = smoother.update([proposal(102)], [predict("flunky")], t=0.4)
    assert a2.track_id == a.track_id
    # long after: both stale, a box at the same place starts a new track
    (a3,) = smoother.update([proposal(102)], [predict("flunky")], t=2.0)
    assert a3.track_id not in (a.track_id, b.track_id)
    assert smoother.track_count == 1


def test_disagreement_survives_smoothing():
    smoother = LabelSmoother()
    (tracked,) = smoother.update([proposal(0)], [predict("coldcaller", 0.9, suit="bb")], 0.0)
    assert (tracked.suit, tracked.cog, tracked.agree) == ("sb", "coldcaller", False)
    assert tracked.confidence < 0.1


def test_predictions_without_probabilities_vote_by_confidence():
    smoother = LabelSmoother(window_s=0.07)
    plain = [CogPrediction("sb", 0.9, "coldcaller", 0.9, True), CogPrediction("sb", 0.9, "coldcaller", 0.9, True),
             CogPrediction("bb", 0.6, "flunky", 0.6, True)]
    for k, p in enumerate(plain):
        (tracked,) = smoother.update([proposal(0)], [p], k * 0.03)
    assert (tracked.cog, tracked.suit) == ("coldcaller", "sb")


def test_box_size_is_steadied_but_follows_the_position():
    smoother = LabelSmoother(window_s=0.07)
    heights = [180, 180, 240, 180]
    for k, h in enumerate(heights):
        (tracked,) = smoother.update([proposal(100 + 10 * k, h=h)], [predict("flunky")], k * 0.03)
    x0, y0, x1, y1 = tracked.body_xyxy
    assert y1 - y0 == 180  # the one tall outlier is voted out
    assert (x0 + x1) / 2 == pytest.approx(100 + 30 + 30, abs=1)


def test_empty_frames_and_mismatched_inputs():
    smoother = LabelSmoother()
    assert smoother.update([], [], 0.0) == []
    with pytest.raises(ValueError, match="1 proposals but 0 predictions"):
        smoother.update([proposal(0)], [], 0.0)
    with pytest.raises(ValueError):
        LabelSmoother(window_s=-1)


def test_tracked_cog_fields():
    smoother = LabelSmoother()
    (tracked,) = smoother.update([proposal(10)], [predict("flunky")], 0.0)
    assert isinstance(tracked, TrackedCog)
    assert tracked.tag_xyxy == proposal(10).tag_xyxy
    with pytest.raises(AttributeError):
        tracked.cog = "yesman"  # frozen


@pytest.mark.parametrize(("box", "size", "expected"), [
    ((0, 0, 10, 20), (10, 20), (0, 0, 10, 20)),
    ((0, 0, 10, 20), (20, 10), (-5, 0, 15, 10)),
    ((100, 50, 140, 150), (40, 120), (100, 50, 140, 170)),
])
def test_resize_about_centre(box, size, expected):
    assert resize_about_centre(box, size) == expected


def test_smoothed_label_averages_probabilities():
    a = np.eye(32)[COG_KEYS.index("flunky")] * 0.6
    b = np.eye(32)[COG_KEYS.index("yesman")] * 1.0
    s = np.eye(4)[0]
    suit, cog, conf, agree = smoothed_label([s, s, s], [a, a, b])
    assert (suit, cog, agree) == ("bb", "flunky", True)  # a mean of 0.4 beats 0.333
    assert conf == pytest.approx(0.4)


def test_track_ids_hold_on_a_rendered_street_video():
    """Real proposals (with their frame-to-frame jitter) on walking Cogs keep their track ids."""
    from toonvision_live.demo.scene import StreetScene
    from toonvision_live.demo.sprites import SpriteAtlas
    from toonvision_live.find.nametags import propose_cog_boxes
    from toonvision_live.geometry import greedy_matches, iou_matrix

    scene = StreetScene(SpriteAtlas.load(), (1280, 720), n_cogs=5, n_toons=1, seed=41)
    smoother = LabelSmoother(window_s=0.13)
    ids_by_cog: dict[str, list[int]] = {}
    for i in range(15):
        frame = scene.frame(i / 30)
        cogs = [o for o, tag in zip(frame.objects, frame.tags_xyxy, strict=True)
                if o.name.startswith("cog_") and tag is not None]
        proposals = propose_cog_boxes(frame.rgb)
        pairs = dict(greedy_matches(iou_matrix([p.body_xyxy for p in proposals], [o.xyxy for o in cogs]), 0.3))
        # each proposal "classified" as the Cog it covers (the classifier is not under test here)
        predictions = [predict(cogs[pairs[k]].name.split("_", 2)[2] if k in pairs else "flunky")
                       for k in range(len(proposals))]
        tracked = smoother.update(proposals, predictions, t=i / 30)
        for k, c in pairs.items():
            ids_by_cog.setdefault(cogs[c].name, []).append(tracked[k].track_id)
    # the share of its frames each Cog spent under its most frequent track id
    steady = [max(ids.count(i) for i in set(ids)) / len(ids) for ids in ids_by_cog.values() if len(ids) >= 5]
    assert len(steady) >= 3
    assert min(steady) >= 0.8


def test_unreliable_predictions_move_the_track_but_do_not_vote():
    """A crop under the overlay's own card (pipeline.covered_proposals) keeps its Cog's label."""
    smoother = LabelSmoother(window_s=1.0)
    for k in range(3):
        smoother.update([proposal(300 + k)], [predict("flunky", 0.9)], t=k * 0.03)
    for k in range(3, 8):
        (tracked,) = smoother.update([proposal(300 + 4 * k)], [predict("yesman", 0.99)], t=k * 0.03, unreliable={0})
        assert tracked.cog == "flunky"
    assert (tracked.body_xyxy[0] + tracked.body_xyxy[2]) / 2 == pytest.approx(300 + 28 + 30, abs=1)
    # a new track's first prediction counts even when unreliable: it has nothing else
    (fresh,) = smoother.update([proposal(900)], [predict("yesman", 0.9)], t=0.3, unreliable={0})
    assert fresh.cog == "yesman"


def test_the_window_is_in_seconds_whatever_the_frame_rate():
    smoother = LabelSmoother(window_s=0.5)
    for k in range(100):  # 1 s of flunky at 100 fps, then 0.6 s of yesman at 10 fps
        smoother.update([proposal(300)], [predict("flunky", 0.9)], t=k * 0.01)
    labels = [smoother.update([proposal(300)], [predict("yesman", 0.9)], t=1.0 + k * 0.1)[0].cog for k in range(7)]
    assert labels[0] == "flunky" and labels[-1] == "yesman"


# ---- CogTracker: tracks followed every frame, classified when due ---------------------------------

from toonvision_live.track import CogTracker  # noqa: E402


def crossing_walk(tracker_update) -> list[list[int]]:
    """Two Cogs walking through each other (20 px a frame, same row); the ids given each frame."""
    ids = []
    for k in range(12):
        a, b = proposal(100 + 20 * k), proposal(320 - 20 * k)
        ids.append(tracker_update([a, b], k / 30))
    return ids


def test_motion_keeps_identities_where_plain_overlap_swaps_them():
    tracker = CogTracker()
    with_motion = crossing_walk(lambda ps, t: [tr.track_id for tr in tracker.associate(ps, t)])
    assert all(ids == with_motion[0] for ids in with_motion), with_motion
    smoother = LabelSmoother()
    plain = crossing_walk(lambda ps, t: [c.track_id for c in smoother.update(ps, [predict("flunky")] * 2, t)])
    assert any(ids != plain[0] for ids in plain)  # the behaviour before: the labels swap at the crossing


def test_new_tracks_are_due_at_once_then_at_the_recheck_rate():
    tracker = CogTracker(recheck_s=0.25, min_recheck_s=0.1, settle_votes=1)
    tracks = tracker.associate([proposal(100), proposal(600)], 0.0)
    assert tracker.due(tracks, 0.0) == [0, 1]
    assert tracker.tracked(tracks) == []  # nothing is shown before its first label
    for tr in tracks:
        tracker.vote(tr, predict("flunky", 0.9), 0.0)
    assert len(tracker.tracked(tracks)) == 2
    tracks = tracker.associate([proposal(102), proposal(598)], 0.1)
    assert tracker.due(tracks, 0.1) == []
    tracks = tracker.associate([proposal(104), proposal(596)], 0.26)
    assert sorted(tracker.due(tracks, 0.26)) == [0, 1]
    assert len(tracker.due(tracks, 0.26, limit=1)) == 1  # a budget holds re-checks back
    tracks = tracker.associate([proposal(104), proposal(596), proposal(1000)], 0.27)
    assert tracker.due(tracks, 0.27, limit=0) == [2]  # ... but never a new track


def test_unsure_jumping_and_young_tracks_are_rechecked_sooner():
    tracker = CogTracker(recheck_s=1.0, min_recheck_s=0.1, settle_votes=3, low_confidence=0.6)
    (young,) = tracker.associate([proposal(100)], 0.0)
    tracker.vote(young, predict("flunky", 0.9), 0.0)
    (young,) = tracker.associate([proposal(100)], 0.12)
    assert tracker.due([young], 0.12) == [0]  # 1 of 3 settling votes
    tracker = CogTracker(recheck_s=1.0, min_recheck_s=0.1, settle_votes=1, low_confidence=0.6)
    (unsure,) = tracker.associate([proposal(100)], 0.0)
    tracker.vote(unsure, predict("flunky", 0.3), 0.0)
    assert tracker.due(tracker.associate([proposal(100)], 0.3), 0.3) == []
    assert tracker.due(tracker.associate([proposal(100)], 0.55), 0.55) == [0]  # unsure: twice as often
    (sure,) = tracker.associate([proposal(800)], 0.6)
    tracker.vote(sure, predict("yesman", 0.95), 0.6)
    for t in (0.65, 0.7):
        (sure,) = tracker.associate([proposal(802)], t)  # standing (a pixel or two of jitter)
    assert tracker.due([sure], 0.7) == []
    (sure,) = tracker.associate([proposal(802, y=125)], 0.75)  # its tag jumped more than half its height
    assert tracker.due([sure], 0.75) == [0]


def test_a_confident_other_cog_after_a_crossing_restarts_the_votes():
    tracker = CogTracker(recheck_s=0.25, settle_votes=1, swap_confidence=0.8)
    (a,) = tracker.associate([proposal(100)], 0.0)
    for k in range(3):
        tracker.vote(a, predict("flunky", 0.9), k * 0.3)
    a.crossed, a.crossing = True, False  # it just came out of a crossing
    tracker.vote(a, predict("yesman", 0.95), 1.0)
    assert tracker.tracked([a])[0].cog == "yesman"
    (b,) = tracker.associate([proposal(700)], 1.0)
    for k in range(3):
        tracker.vote(b, predict("flunky", 0.9), 1.0 + k * 0.3)
    tracker.vote(b, predict("yesman", 0.95), 2.0)  # no crossing: one look is outvoted
    assert tracker.tracked([b])[0].cog == "flunky"
