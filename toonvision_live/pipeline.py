"""The live pipeline: capture thread -> latest frame -> inference worker -> latest result.

``InferenceWorker`` runs propose -> CropBatcher -> CogClassifier -> LabelSmoother on
the newest frame and times each stage; ``Pipeline`` is the supervisor: it starts
both threads, and when either ends (stop, error, closed mailbox) it closes every
mailbox so the other wakes and ends too, then reports the reason once through
``on_stopped``.  Nothing here imports Qt: results are handed over through a
one-slot mailbox and ``on_result_ready`` is called only when that slot was
empty, so a slow consumer (the overlay) never lets anything queue up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from toonvision_live.capture.stage import CaptureThread
from toonvision_live.errors import ToonVisionError
from toonvision_live.frames import Frame, FrameSource, LatestFrame, StageThread
from toonvision_live.geometry import MIN_FRAME_SIDE
from toonvision_live.settings import Settings

log = logging.getLogger(__name__)


def stop_reason(stage_name: str, error: BaseException) -> str:
    """The sentence shown when a stage dies: a user error's own sentence, else what broke where."""
    if isinstance(error, ToonVisionError):
        return str(error)
    return f"The {stage_name} stage stopped: {type(error).__name__}: {error}"


#: a crop with more than this share of its box under the overlay's own drawings does not vote on its label
MAX_COVERED = 0.04


def covered_proposals(proposals: Sequence, occluders: Sequence[tuple[int, int, int, int]]) -> set[int]:
    """Indices of the proposals whose body box is more than MAX_COVERED under ``occluders`` (pure).

    Where the screen is grabbed on X11 the capture sees the overlay: its label cards drawn over a Cog spoil
    that Cog's crop (frames of the game window grabbed by itself are ``overlay_free`` and skip this)."""
    if not occluders or not proposals:
        return set()
    from toonvision_live.geometry import as_xyxy_array, box_area, intersection_matrix

    bodies = as_xyxy_array([p.body_xyxy for p in proposals])
    covered = intersection_matrix(bodies, occluders).sum(axis=1) / np.maximum(1.0, box_area(bodies))
    return {int(i) for i in np.flatnonzero(covered > MAX_COVERED)}


class Classifier(Protocol):
    """What the worker needs from toonvision_live.classify.classifier.CogClassifier."""

    @property
    def provider(self) -> str: ...

    def classify(self, batch: np.ndarray) -> list: ...


@dataclass(frozen=True, slots=True)
class StageTimes:
    """Milliseconds spent on one frame in each stage (paint is measured by the overlay)."""

    grab_ms: float
    wait_ms: float  # from grab done to the worker picking the frame up
    propose_ms: float
    preprocess_ms: float
    inference_ms: float
    track_ms: float

    @property
    def worker_ms(self) -> float:
        return self.propose_ms + self.preprocess_ms + self.inference_ms + self.track_ms


@dataclass(frozen=True, slots=True)
class FrameResult:
    """One processed frame: the frame, its proposals, the tracked Cogs and the stage times."""

    frame: Frame
    proposals: tuple  # tuple[propose.Proposal, ...]
    cogs: tuple  # tuple[tracking.TrackedCog, ...]
    times: StageTimes
    done_time: float  # perf_counter() when the worker finished
    provider: str
    index: int  # 1 for the first processed frame, ...


class InferenceWorker(StageThread):
    """Classifies every Cog proposal of the newest frame, in batches of ``batch_size``."""

    name = "inference"

    def __init__(
        self,
        frames: LatestFrame[Frame],
        results: LatestFrame[FrameResult],
        classifier: Classifier,
        *,
        batch_size: int = 16,
        min_proposal_score: float = 0.0,
        smoothing_s: float = 1.0,
        on_result_ready: Callable[[], None] | None = None,
        propose: Callable[[np.ndarray], Sequence] | None = None,
        occluders: Callable[[], Sequence[tuple[int, int, int, int]]] | None = None,
    ) -> None:
        super().__init__()
        from toonvision_live.crops import CropBatcher
        from toonvision_live.find.nametags import propose_cog_boxes
        from toonvision_live.track import LabelSmoother

        self.frames = frames
        self.results = results
        self.classifier = classifier
        self.batch_size = batch_size
        self.min_proposal_score = min_proposal_score
        self.propose = propose or propose_cog_boxes
        self.batcher = CropBatcher(batch_size)
        self.smoother = LabelSmoother(smoothing_s)
        self.on_result_ready = on_result_ready or (lambda: None)
        self.occluders = occluders or (lambda: ())
        self.processed = 0
        self.crops = 0

    def process(self, frame: Frame) -> FrameResult:
        """Run every stage on one frame (also usable without the thread, e.g. by the bench)."""
        picked = time.perf_counter()
        height, width = frame.rgb.shape[:2]
        if min(height, width) < MIN_FRAME_SIDE:
            proposals = []  # a window shrunk to a few pixels shows no Cog worth naming
        else:
            proposals = [p for p in self.propose(frame.rgb) if p.score >= self.min_proposal_score]
        t_proposed = time.perf_counter()
        preprocess_s = inference_s = 0.0
        predictions: list = []
        for start in range(0, len(proposals), self.batch_size):
            chunk = proposals[start : start + self.batch_size]
            t0 = time.perf_counter()
            batch = self.batcher.crop(frame.rgb, chunk)
            t1 = time.perf_counter()
            predictions.extend(self.classifier.classify(batch))
            t2 = time.perf_counter()
            preprocess_s += t1 - t0
            inference_s += t2 - t1
        t_classified = time.perf_counter()
        covered = set() if frame.overlay_free else covered_proposals(proposals, self.occluders())
        cogs = self.smoother.update(proposals, predictions, frame.grab_time, covered)
        done = time.perf_counter()
        self.processed += 1
        self.crops += len(proposals)
        times = StageTimes(
            grab_ms=frame.grab_s * 1000.0,
            wait_ms=max(0.0, picked - frame.grab_time) * 1000.0,
            propose_ms=(t_proposed - picked) * 1000.0,
            preprocess_ms=preprocess_s * 1000.0,
            inference_ms=inference_s * 1000.0,
            track_ms=(done - t_classified) * 1000.0,
        )
        return FrameResult(frame, tuple(proposals), tuple(cogs), times, done, self.classifier.provider, self.processed)

    def run_stage(self) -> None:
        while not self.stopping:
            frame = self.frames.get()
            result = self.process(frame)
            if self.results.put(result):
                self.on_result_ready()

    def cleanup(self) -> None:
        self.frames.close()
        self.results.close()
        close = getattr(self.propose, "close", None)
        if callable(close):
            close()


class Pipeline:
    """Supervisor of the capture thread and the inference worker.

    ``on_stopped(reason)`` is called once, from the thread of the first stage to
    end; ``reason`` is "" after :meth:`stop` and one sentence otherwise.  After
    :meth:`stop` (or that call) :attr:`error` holds the first stage exception.
    """

    def __init__(
        self,
        source: FrameSource,
        classifier: Classifier,
        settings: Settings,
        *,
        on_result_ready: Callable[[], None] | None = None,
        on_status: Callable[[str], None] | None = None,
        on_stopped: Callable[[str], None] | None = None,
        propose: Callable[[np.ndarray], Sequence] | None = None,
        occluders: Callable[[], Sequence[tuple[int, int, int, int]]] | None = None,
    ) -> None:
        self.settings = settings
        self.frames: LatestFrame[Frame] = LatestFrame()
        self.results: LatestFrame[FrameResult] = LatestFrame()
        self.capture = CaptureThread(
            source, self.frames, fps_cap=settings.fps_cap, on_status=on_status, on_demand=settings.capture_on_demand
        )
        if propose is None and settings.background_search:
            from toonvision_live.find.proposers import BackgroundSearchProposer

            # full searches on the second core, off each frame's critical path (docs/bench.md)
            propose = BackgroundSearchProposer()
        elif propose is None and settings.full_search_every > 1:
            from toonvision_live.find.proposers import IncrementalProposer

            # a full search costs ~3x a followed frame (bench: ~1.5-1.75x the fps on the demo street);
            # Cog accuracy in test_e2e's harness within noise (0.714 vs 0.721 over 2 runs of 2 passes)
            propose = IncrementalProposer(full_every=settings.full_search_every)
        self.worker = InferenceWorker(
            self.frames,
            self.results,
            classifier,
            batch_size=settings.batch_size,
            min_proposal_score=settings.min_proposal_score,
            smoothing_s=settings.smoothing_s,
            on_result_ready=on_result_ready,
            propose=propose,
            occluders=occluders,
        )
        self.on_stopped = on_stopped or (lambda reason: None)
        self._lock = threading.Lock()
        self._ended = False
        self._stop_requested = False
        self.reason: str | None = None  # None while running
        self.error: BaseException | None = None
        self.started_at: float | None = None
        for stage in (self.capture, self.worker):
            stage.on_exit.append(self._stage_ended)

    @property
    def stages(self) -> tuple[StageThread, ...]:
        return (self.capture, self.worker)

    @property
    def provider(self) -> str:
        return self.worker.classifier.provider

    def start(self) -> None:
        import cv2

        # the stages already run in parallel threads; OpenCV's own pool only adds hand-offs on the
        # small regions of the crop stage (bench: ~5 % less CPU, ~20 % less wall time under load)
        cv2.setNumThreads(1)
        self.started_at = time.perf_counter()
        self.worker.start()
        self.capture.start()

    def _stage_ended(self, stage: StageThread) -> None:
        with self._lock:
            if self._ended:
                return
            self._ended = True
            if stage.error is not None:
                self.error = stage.error
                self.reason = stop_reason(stage.name, stage.error)
                if not isinstance(stage.error, ToonVisionError):
                    log.error("%s", self.reason, exc_info=stage.error)
            elif self._stop_requested:
                self.reason = ""
            else:
                other = next(s for s in self.stages if s is not stage)
                self.error = other.error  # it may have failed and closed our mailbox first
                self.reason = "" if other.error is None else stop_reason(other.name, other.error)
        for other in self.stages:
            other.stop()
        self.frames.close()
        self.results.close()
        self.on_stopped(self.reason)

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop both stages and wait for them; True when both threads ended within ``timeout``."""
        self._stop_requested = True
        for stage in self.stages:
            stage.stop()
        self.frames.close()
        self.results.close()
        deadline = time.perf_counter() + timeout
        ended = all(stage.join(max(0.0, deadline - time.perf_counter())) for stage in self.stages)
        if self.error is None:
            self.error = next((s.error for s in self.stages if s.error is not None), None)
        return ended

    def take_result(self) -> FrameResult | None:
        """The newest unread result (None when there is none)."""
        return self.results.take()

    def set_paused(self, paused: bool) -> None:
        self.capture.set_paused(paused)

    @property
    def paused(self) -> bool:
        return self.capture.paused

    @property
    def running(self) -> bool:
        return any(stage.is_alive() for stage in self.stages) and not self._ended

    def counts(self) -> dict[str, int]:
        """Frames captured, processed, and dropped (replaced before the worker took them)."""
        return {
            "captured": self.capture.frames,
            "processed": self.worker.processed,
            "dropped": self.frames.dropped,
            "crops": self.worker.crops,
        }
