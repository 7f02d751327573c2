"""pipeline.py: the worker on real frames with a real onnxruntime session (tiny model), the supervisor,
and clean shutdown when a stage dies."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_factory import make_tiny_model

from toonvision_live.classify.classifier import CogClassifier
from toonvision_live.demo.nametag import draw_cog_nametag
from toonvision_live.frames import LatestFrame, RecordedSource
from toonvision_live.pipeline import FrameResult, InferenceWorker, Pipeline
from toonvision_live.settings import load_settings

#: (centre x, foot y) of the grey-purple "Cogs" drawn by street_frame
COG_FEET = ((200, 600), (500, 650), (800, 560), (1100, 620))


def street_frame(n: int = len(COG_FEET)) -> np.ndarray:
    """A 1280x720 frame: sky, ground, n upright bodies each under a real Cog nametag (scene.py's)."""
    rgb = np.full((720, 1280, 3), (90, 140, 90), np.uint8)
    rgb[:300] = (120, 170, 230)
    for i, (x, foot) in enumerate(COG_FEET[:n]):
        rgb[foot - 220 : foot, x - 40 : x + 40] = (60 + 40 * i, 50, 120)
        draw_cog_nametag(rgb, x, foot - 232, "Cold Caller", "Sellbot", 3, 12.0)
    return rgb


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> CogClassifier:
    return CogClassifier(make_tiny_model(tmp_path_factory.mktemp("model")), ["cpu"])


def test_worker_process_runs_every_stage_and_times_it(classifier):
    frames, results = LatestFrame(), LatestFrame()
    worker = InferenceWorker(frames, results, classifier, batch_size=3)  # 4 Cogs: two batches
    source = RecordedSource([street_frame()])
    result = worker.process(source.grab())
    assert len(result.proposals) == 4 and len(result.cogs) == 4
    for cog in result.cogs:
        assert cog.suit in ("bb", "lb", "cb", "sb") and 0.0 <= cog.confidence <= 1.0
    feet = sorted((c.body_xyxy[0] + c.body_xyxy[2]) // 2 for c in result.cogs)
    assert feet == pytest.approx([x for x, _ in COG_FEET], abs=6)
    times = result.times
    assert min(times.propose_ms, times.preprocess_ms, times.inference_ms, times.track_ms, times.grab_ms) >= 0
    assert times.worker_ms == pytest.approx(
        times.propose_ms + times.preprocess_ms + times.inference_ms + times.track_ms
    )
    assert result.provider == "CPUExecutionProvider" and result.index == 1
    assert worker.crops == 4


@pytest.mark.parametrize("shape", [(90, 160, 3), (1, 1, 3), (2, 2, 3), (5, 300, 3), (300, 5, 3), (40, 2000, 3)])
def test_empty_and_tiny_frames_give_empty_results(classifier, shape):
    """A game window resized to a few pixels must not kill the worker."""
    worker = InferenceWorker(LatestFrame(), LatestFrame(), classifier)
    result = worker.process(RecordedSource([np.zeros(shape, np.uint8)]).grab())
    assert result.proposals == () and result.cogs == ()


def test_a_4k_frame_is_processed(classifier):
    big = cv2.resize(street_frame(), (3840, 2160), interpolation=cv2.INTER_NEAREST)
    result = InferenceWorker(LatestFrame(), LatestFrame(), classifier).process(RecordedSource([big]).grab())
    assert len(result.cogs) == 4


def test_pipeline_runs_and_stops_cleanly(classifier):
    # the frames are plain rectangles under real nametags: only the nametag search takes them for Cogs
    settings = load_settings(overrides={"fps_cap": 200, "crop_stage": "nametags"})
    ready = threading.Event()
    stopped: list[str] = []
    pipeline = Pipeline(
        RecordedSource([street_frame(), street_frame(2)]),
        classifier,
        settings,
        on_result_ready=ready.set,
        on_stopped=stopped.append,
    )
    pipeline.start()
    try:
        got: list[FrameResult] = []
        deadline = time.monotonic() + 20
        while len(got) < 5 and time.monotonic() < deadline:
            if ready.wait(1):
                ready.clear()
                result = pipeline.take_result()
                if result is not None:
                    got.append(result)
        assert len(got) >= 5
        assert [r.index for r in got] == sorted(r.index for r in got)
        assert {len(r.cogs) for r in got} <= {2, 4}
    finally:
        assert pipeline.stop(timeout=5)
    counts = pipeline.counts()
    assert counts["processed"] <= counts["captured"]
    assert counts["dropped"] <= counts["captured"]
    assert stopped == [""] and pipeline.reason == "" and pipeline.error is None
    assert not any(stage.is_alive() for stage in pipeline.stages)


class ExplodingClassifier:
    """A real classifier that raises on its third call (a bug in the worker thread)."""

    def __init__(self, inner: CogClassifier) -> None:
        self.inner, self.calls = inner, 0

    @property
    def provider(self) -> str:
        return self.inner.provider

    def classify(self, batch):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("inference exploded")
        return self.inner.classify(batch)


def test_a_dead_worker_shuts_everything_down_with_its_reason(classifier):
    stopped: list[str] = []
    done = threading.Event()
    pipeline = Pipeline(
        RecordedSource([street_frame(1)]),
        ExplodingClassifier(classifier),
        load_settings(overrides={"fps_cap": 200}),
        on_stopped=lambda reason: (stopped.append(reason), done.set()),
    )
    pipeline.start()
    assert done.wait(20), "the supervisor never reported the dead stage"
    for stage in pipeline.stages:
        assert stage.join(5), f"{stage.name} did not stop"
    assert stopped == ["The inference stage stopped: RuntimeError: inference exploded"]
    assert isinstance(pipeline.error, RuntimeError)
    assert pipeline.stop(timeout=1)  # stopping again is harmless
    assert stopped == [stopped[0]]


def test_a_dead_capture_stage_stops_the_worker_too(classifier):
    class BrokenSource(RecordedSource):
        def grab(self):
            raise OSError("the screen went away")

    stopped: list[str] = []
    done = threading.Event()
    pipeline = Pipeline(
        BrokenSource([street_frame(1)]),
        classifier,
        load_settings(),
        on_stopped=lambda reason: (stopped.append(reason), done.set()),
    )
    pipeline.start()
    assert done.wait(10)
    for stage in pipeline.stages:
        assert stage.join(5)
    assert stopped == ["The capture stage stopped: OSError: the screen went away"]
    assert isinstance(pipeline.error, OSError)


def test_the_worker_starts_from_a_model_file(tmp_path: Path):
    model = make_tiny_model(tmp_path, seed=3)
    pipeline = Pipeline(RecordedSource([street_frame(2)]), CogClassifier(model, ["cpu"]), load_settings())
    assert pipeline.provider == "CPUExecutionProvider"
    pipeline.stop(timeout=1)  # never started: stops at once


def test_covered_proposals_are_those_under_the_overlay_cards():
    from toonvision_live.find.nametags import Proposal
    from toonvision_live.pipeline import covered_proposals

    proposals = [Proposal((100, 100, 200, 400), (100, 60, 200, 90), 1.0),
                 Proposal((400, 100, 500, 400), (400, 60, 500, 90), 1.0)]
    assert covered_proposals(proposals, []) == set()
    assert covered_proposals([], [(0, 0, 10, 10)]) == set()
    assert covered_proposals(proposals, [(150, 380, 260, 400)]) == set()  # 1.7 % of the first body: noise
    assert covered_proposals(proposals, [(150, 360, 260, 400)]) == {0}
    assert covered_proposals(proposals, [(150, 360, 260, 400), (380, 100, 420, 400)]) == {0, 1}


def test_tracks_are_classified_when_they_appear_then_at_a_modest_rate(classifier):
    """Boxes follow the Cogs on every frame; crops are made and classified only for tracks that are due."""
    from toonvision_live.capture.window import ScreenRect
    from toonvision_live.frames import Frame
    from toonvision_live.pipeline import Tuning

    rgb = street_frame()
    rect = ScreenRect(0, 0, 1280, 720)
    per_track = InferenceWorker(LatestFrame(), LatestFrame(), classifier, tuning=Tuning(settle_votes=1))
    every = InferenceWorker(LatestFrame(), LatestFrame(), classifier, tuning=Tuning.baseline())
    got = {"per_track": [], "every": []}
    for k in range(30):  # half a second at 60 fps
        frame = Frame(k, rgb, k / 60, 0.0, rect, overlay_free=True)
        got["per_track"].append(per_track.process(frame))
        got["every"].append(every.process(frame))
    first = got["per_track"][0]
    assert first.classified == 4 and len(first.cogs) == 4  # each new track at once
    assert all(len(r.cogs) == 4 for r in got["per_track"])  # ... and shown on every frame
    assert sum(r.classified for r in got["per_track"][1:]) <= 4 * 2  # then at most ~4 Hz each
    assert all(r.classified == 4 for r in got["every"])
    ids = {tuple(sorted(c.track_id for c in r.cogs)) for r in got["per_track"]}
    assert len(ids) == 1  # the same four tracks throughout
    assert per_track.crops < every.crops / 5


def test_the_overlay_cards_reach_the_worker_through_the_board(classifier):
    """A crop under a card the overlay drew (published on the pipeline's board) does not re-check its
    label; an overlay-free frame ignores the cards."""
    from toonvision_live.capture.window import ScreenRect
    from toonvision_live.frames import Board, Frame
    from toonvision_live.pipeline import Tuning

    rgb = street_frame(1)
    cards: Board[tuple] = Board(())
    worker = InferenceWorker(LatestFrame(), LatestFrame(), classifier, cards=cards,
                             tuning=Tuning(settle_votes=1, recheck_s=0.1))
    rect = ScreenRect(0, 0, 1280, 720)
    assert worker.process(Frame(1, rgb, 0.0, 0.0, rect)).classified == 1  # new: classified at once
    (cog,) = worker.process(Frame(2, rgb, 0.05, 0.0, rect)).cogs
    cards.publish((cog.body_xyxy,))  # a card right over it
    assert worker.process(Frame(3, rgb, 0.3, 0.0, rect)).classified == 0
    assert worker.process(Frame(4, rgb, 0.6, 0.0, rect, overlay_free=True)).classified == 1
    cards.publish(())
    assert worker.process(Frame(5, rgb, 0.9, 0.0, rect)).classified == 1


def test_results_say_when_rates_are_lowered(classifier):
    from toonvision_live.capture.window import ScreenRect
    from toonvision_live.frames import Frame

    worker = InferenceWorker(LatestFrame(), LatestFrame(), classifier)
    rect = ScreenRect(0, 0, 1280, 720)
    frame = Frame(1, street_frame(1), time.perf_counter() - 0.2, 0.0, rect)  # grabbed 200 ms ago
    assert worker.process(frame).degraded.startswith("CPU busy")
    seen: list = []
    worker.on_processed.append(lambda result, cpu_ms: seen.append((result.index, cpu_ms)))
    worker.process(frame)
    assert seen and seen[0][0] == 2 and seen[0][1] >= 0


def test_same_pixels_tells_a_redrawn_frame_from_an_unchanged_one():
    from toonvision_live.frames import same_pixels

    a = street_frame()
    assert same_pixels(a, a.copy())
    for y in (0, 90, 359, 719):  # one changed value in any band of rows
        changed = a.copy()
        changed[y, 640, 1] ^= 1
        assert not same_pixels(a, changed) and not same_pixels(changed, a)
    assert not same_pixels(a, a) and not same_pixels(a, a[:, :])  # one buffer (it may have been written over)
    assert not same_pixels(a, None) and not same_pixels(None, a) and not same_pixels(a, a.copy()[:700])


def test_a_frame_the_game_did_not_redraw_keeps_its_proposals(classifier):
    """Grabs come faster than the game redraws: a frame with the last one's pixels keeps its proposals
    and tracks (no follow, search or matching run on it) for up to REUSE_MAX_S; a redrawn frame, or one
    after that, runs the crop stage again; Tuning.baseline() runs it on every frame."""
    from toonvision_live.capture.window import ScreenRect
    from toonvision_live.find.nametags import propose_cog_boxes
    from toonvision_live.frames import Frame
    from toonvision_live.pipeline import REUSE_MAX_S, Tuning

    rgb, rect = street_frame(), ScreenRect(0, 0, 1280, 720)
    calls: list[float] = []

    def propose(frame_rgb: np.ndarray):
        calls.append(1.0)
        return propose_cog_boxes(frame_rgb)

    worker = InferenceWorker(LatestFrame(), LatestFrame(), classifier, propose=propose)
    results = [worker.process(Frame(k, rgb.copy(), k / 120, 0.0, rect, overlay_free=True)) for k in range(4)]
    assert len(calls) == 1 and len(results[0].proposals) == 4
    assert all(r.proposals == results[0].proposals and len(r.cogs) == 4 for r in results)
    # nor the tracker: the same tracks, seen once (no velocity or box size learnt from a repeated picture)
    assert [c.track_id for c in results[3].cogs] == [c.track_id for c in results[0].cogs]
    assert all(c.hits == 1 for c in results[3].cogs)
    worker.process(Frame(4, rgb.copy(), 3 / 120 + REUSE_MAX_S, 0.0, rect, overlay_free=True))
    assert len(calls) == 2  # the same pixels, but the proposals are REUSE_MAX_S old
    redrawn = rgb.copy()
    redrawn[700, 5] = (0, 0, 0)
    worker.process(Frame(5, redrawn, 4 / 120 + REUSE_MAX_S, 0.0, rect, overlay_free=True))
    assert len(calls) == 3
    before = InferenceWorker(LatestFrame(), LatestFrame(), classifier, propose=propose, tuning=Tuning.baseline())
    for k in range(3):
        before.process(Frame(10 + k, rgb.copy(), k / 120, 0.0, rect, overlay_free=True))
    assert len(calls) == 6
