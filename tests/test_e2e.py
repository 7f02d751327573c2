"""End to end on the Xvfb screen with the xcompmgr compositor: the demo street window (StreetScene),
the real pipeline (mss capture of that window found by its title, crop stage, onnxruntime, smoothing)
and the real overlay on top, scored against the ground truth of the frames the window showed (with
the scorer of ``toonvision replay``, toonvision_live/tools/replay.py, tested in test_replay.py).

Live runs share the machine with whatever else runs, so they assert behaviour with bounds that hold
beside two busy processes (found, labelled, no queue, latency bounded); the accuracy figure itself is
asserted on deterministic replays (test_replay.py, >= 0.95 on 8 streets).  The accuracy test needs
the shipped model and fails without it.  The other tests use the tiny contract model from
tests/model_factory.py, whose labels are random, so they check where the boxes land, not what they say.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from model_factory import make_tiny_model

from toonvision_live.capture.stage import ScreenSource
from toonvision_live.classify.classifier import CogClassifier
from toonvision_live.demo.window import DEMO_WINDOW_PATTERN, DemoWindow, ShownFrame, load_street_scene
from toonvision_live.model_card import default_model_path
from toonvision_live.pipeline import FrameResult
from toonvision_live.settings import load_settings
from toonvision_live.tools.replay import Score, score_result
from toonvision_live.ui.session import LiveSession

SIZE = (1280, 720)
#: Issue 6 asks for >= 0.95 of the Cogs on screen named right; the deterministic replay asserts it
#: (test_replay.py).  Live, the bound is one that holds on a busy machine (measured 2026-12-02 with the
#: shipped model: 0.998-1.000 quiet; a fresh clone beside one busy process once gave 0.942).
E2E_ACCURACY = 0.85
#: seconds after a scene restart before scoring (> smoothing window + LabelSmoother's max track age)
RESTART_SETTLE_S = 1.6
#: frames painted this long before (and after: timestamps are taken after painting) a grab are candidates
WINDOW_S, AFTER_S = 0.3, 0.05


def shown_frame_grabbed(scene, result: FrameResult, candidates: list[ShownFrame]) -> ShownFrame | None:
    """Of the frames the window painted around the grab, the one the grab saw: the scene is
    deterministic, so each candidate is re-rendered and compared with the captured pixels (the
    compositor's delay and the odd torn grab make timestamps alone unreliable)."""
    if not candidates:
        return None
    captured = result.frame.rgb[::4, ::4].astype(np.int16)
    if captured.shape[:2] != (SIZE[1] // 4, SIZE[0] // 4):
        return None

    def difference(shown: ShownFrame) -> float:
        return float(np.abs(scene.frame(shown.t_scene).rgb[::4, ::4].astype(np.int16) - captured).mean())

    return min(candidates, key=difference)


class DemoRun:
    """A demo window + live session in this process, scoring every processed frame."""

    def __init__(
        self, qtbot, classifier, tmp_path: Path, *, n_cogs: int = 8, seed: int = 0, position: tuple[int, int] = (0, 0),
        region: bool = False,
    ) -> None:
        """``region``: capture the window's rectangle of the screen (``--region``) instead of the window
        found by its title: the screen is grabbed, the overlay on top included."""
        self.qtbot = qtbot
        self.scene = load_street_scene(SIZE, n_cogs=n_cogs, seed=seed)
        self.window = self.open_window(position)
        target = {"region": f"{position[0]},{position[1]},{SIZE[0]},{SIZE[1]}"} if region else {
            "window": DEMO_WINDOW_PATTERN}
        settings = load_settings(overrides={**target, "dataset": str(tmp_path)})
        self.session = LiveSession(settings, ScreenSource.from_settings(settings), classifier, hotkeys=False)
        # collect what the overlay is handed to paint (the session shows results at most 60 times a second,
        # some from a timer after result_ready): what is scored is what was shown
        overlay = self.session.overlay
        show_result = overlay.show_result

        def show_and_collect(result: FrameResult) -> None:
            show_result(result)
            self._collect(result)

        overlay.show_result = show_and_collect  # type: ignore[method-assign]
        self.pairs: list[tuple[FrameResult, list[ShownFrame]]] = []
        self.statuses: list[str] = []
        self.session.status_changed.connect(self.statuses.append)

    def open_window(self, position: tuple[int, int]) -> DemoWindow:
        window = DemoWindow(self.scene, fps=30)  # not given to qtbot: tests destroy it themselves
        window.move(*position)
        window.show()
        window.start()
        self.qtbot.waitExposed(window)
        return window

    def close(self) -> None:
        self.session.stop()
        self.window.close()
        self.window.deleteLater()

    def _collect(self, result: FrameResult) -> None:
        grab = result.frame.grab_time
        candidates = [s for s in self.window.history if grab - WINDOW_S <= s.shown_at <= grab + AFTER_S]
        self.pairs.append((result, candidates))

    def run_for(self, seconds: float) -> Score:
        start = len(self.pairs)
        self.qtbot.wait(int(seconds * 1000))
        score = Score()
        for result, candidates in self.pairs[start:]:
            shown = shown_frame_grabbed(self.scene, result, candidates)
            if shown is not None:
                score_result(score, result, shown)
        return score


@pytest.fixture(scope="module")
def tiny_classifier(tmp_path_factory) -> CogClassifier:
    return CogClassifier(make_tiny_model(tmp_path_factory.mktemp("model")), ["cpu"])


def test_pipeline_boxes_land_on_the_demo_cogs(x_display, qtbot, tmp_path, tiny_classifier):
    run = DemoRun(qtbot, tiny_classifier, tmp_path, position=(200, 150))
    run.session.start()
    try:
        qtbot.waitUntil(lambda: len(run.pairs) >= 5, timeout=15000)
        score = run.run_for(3.0)
    finally:
        run.close()
    assert score.frames >= 10
    assert score.found > 0
    # the boxes are in the demo window's pixels although it sits at (200, 150) on screen: every nametag
    # box the pipeline reports is one of the scene's nametags (body boxes are the crop stage's estimate)
    assert score.tag_precision >= 0.9, score
    paints = list(run.session.overlay.paint_records)
    assert paints and all(p.latency_ms > 0 for p in paints)
    assert np.percentile([p.latency_ms for p in paints], 95) < 1000  # bounded, even on a busy machine
    counts = run.session.pipeline.counts()
    assert counts["processed"] <= counts["captured"]
    assert counts["dropped"] == 0  # frames are grabbed when the worker is ready: nothing queues or piles up


def test_closing_and_reopening_the_game_window_recovers(x_display, qtbot, tmp_path, tiny_classifier):
    run = DemoRun(qtbot, tiny_classifier, tmp_path, n_cogs=4, seed=2, position=(0, 0))
    run.session.start()
    try:
        qtbot.waitUntil(lambda: len(run.pairs) >= 3, timeout=15000)
        run.window.close()
        run.window.deleteLater()  # destroyed: the X window is gone, not just hidden
        qtbot.waitUntil(lambda: any(s.startswith("No window titled like") for s in run.statuses), timeout=5000)
        assert run.session.overlay.result is None  # boxes cleared while waiting
        assert "still looking" in run.session.overlay.message
        processed = len(run.pairs)
        run.window = run.open_window((300, 200))  # the game comes back, elsewhere
        qtbot.waitUntil(lambda: len(run.pairs) >= processed + 3, timeout=15000)
        assert run.statuses[-1] == ""
        latest = run.pairs[-1][0]
        assert (latest.frame.rect.left, latest.frame.rect.top) == (300, 200)
        g = run.session.overlay.geometry()
        assert (g.x(), g.y(), g.width(), g.height()) == (300, 200, 1280, 720)
        assert run.session.exit_reason is None
    finally:
        run.close()


def test_the_overlay_on_top_does_not_hide_cogs_from_a_region_capture(x_display, qtbot, tmp_path, tiny_classifier):
    """Over the same 4 s of street (scene clock restarted), the Cogs found with the overlay drawn on top
    against those found without it.  Model-independent: the tiny model's labels are not scored, only recall.

    The screen is grabbed (``--region``), the overlay's boxes and label cards included; the cards keep clear
    of the nametags and crops under them do not vote, so most Cogs are still found (the overlay lags the
    Cogs by a frame or two, more on a slow machine, so a card can land on a tag that walked into it).
    (A window capture, where the overlay is never in the frame: test_trained_model_names_the_cogs...)"""
    run = DemoRun(qtbot, tiny_classifier, tmp_path, n_cogs=8, seed=1, region=True)
    run.session.start()
    scores, own_pixels = {}, {}
    try:
        qtbot.waitUntil(lambda: len(run.pairs) >= 5, timeout=15000)
        for label in ("without overlay", "with overlay"):
            run.session.on_action("toggle_overlay")
            run.window.start()
            qtbot.wait(int(1000 * RESTART_SETTLE_S))  # see test_trained_model_names_the_cogs...
            start = len(run.pairs)
            scores[label] = run.run_for(4.0)
            own_pixels[label] = {result.frame.overlay_free for result, _ in run.pairs[start:]}
    finally:
        run.close()
    bare, covered = scores["without overlay"], scores["with overlay"]
    print(f"region capture: recall {bare.recall:.3f} without the overlay, {covered.recall:.3f} with it")
    assert bare.cogs_on_screen >= 30 and covered.cogs_on_screen >= 30
    assert bare.recall >= 0.7, bare  # the crop stage itself works on this street (also on a busy machine)
    assert own_pixels == {"without overlay": {False}, "with overlay": {False}}  # the screen, overlay included
    assert covered.recall >= 0.7, (bare.recall, covered.recall)


def test_trained_model_names_the_cogs_with_or_without_the_overlay(x_display, qtbot, tmp_path):
    """Two passes over the same 5 s of the street (the scene clock restarts): first with the overlay
    hidden, then drawn on top.  Both must name at least E2E_ACCURACY of the Cogs on screen, and the
    overlay must not spoil what the pipeline sees: the game window is grabbed by itself (X11 with a
    compositor, like the overlay's exclusion from capture on Windows), so the overlay is never in the
    frame, and with it drawn on top no more than sampling noise (5 points) fewer Cogs are found and no
    more of its cards are taken for nametags.  The two passes' naming
    accuracy is not compared: on a busy machine frames come far apart where two Cogs cross, and one
    identity swap there (seen once beside two busy loops: a Bean Counter shown as the Spin Doctor it
    crossed for 26 frames, 0.931 vs 0.984) moves it by 5 points whichever pass it falls in; naming
    accuracy is asserted on the deterministic replays (test_replay)."""
    model = default_model_path()
    assert model.is_file(), f"the shipped model {model} is missing"  # fail, never skip: it ships
    classifier = CogClassifier(model, ["cpu"])
    run = DemoRun(qtbot, classifier, tmp_path, n_cogs=8, seed=0)
    run.session.start()
    scores, own_pixels = {}, {}
    try:
        qtbot.waitUntil(lambda: len(run.pairs) >= 5, timeout=20000)
        for label in ("without overlay", "with overlay"):
            run.session.on_action("toggle_overlay")  # first hides it, then shows it again
            assert run.session.overlay.isVisible() is (label == "with overlay")
            run.window.start()  # the same street, from t = 0
            # the restart teleports every Cog, which never happens in the game: a Cog now where another
            # stood would inherit that one's label history, so the tracks of the street before the
            # restart are left to expire (smoothing window + track age) before scoring starts
            qtbot.wait(int(1000 * (RESTART_SETTLE_S)))
            start = len(run.pairs)
            scores[label] = run.run_for(5.0)
            own_pixels[label] = {result.frame.overlay_free for result, _ in run.pairs[start:]}
    finally:
        run.close()
    for label, score in scores.items():
        assert score.cogs_on_screen >= 50, (label, score)
        top_misses = sorted(set(score.misses), key=score.misses.count, reverse=True)[:5]
        print(f"{label}: {score.accuracy:.3f} of {score.cogs_on_screen} Cogs named right "
              f"(at least {E2E_ACCURACY}), recall {score.recall:.3f}; "
              f"most missed: {[(m, score.misses.count(m)) for m in top_misses]}")
        assert score.accuracy >= E2E_ACCURACY, (
            label, f"{score.accuracy:.3f}", f"recall {score.recall:.3f}", top_misses)
    assert own_pixels == {"without overlay": {True}, "with overlay": {True}}  # the window alone, never the overlay
    assert scores["with overlay"].recall >= scores["without overlay"].recall - 0.05
    assert scores["with overlay"].tag_precision >= scores["without overlay"].tag_precision - 0.05
