"""One bench session: the real live session (capture, crop stage, tracker, onnxruntime, Qt overlay)
run for a warm-up and a measured window, listened to through its callbacks.

The bench only listens: ``CaptureThread.on_grabbed`` logs every grab's start, the worker's
``on_processed`` each result with its thread's CPU time, the overlay's ``on_painted`` each paint;
CPU time per thread group and the whole process is read at the start and end of the window.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toonvision_live.errors import CaptureError
from toonvision_live.tools.bench.appear import PaintedLog, appearance_latency
from toonvision_live.tools.bench.stats import (
    MB,
    FrameLog,
    GrabLog,
    Sample,
    Sampler,
    cpu_split_ms_per_frame,
    percentiles,
    thread_cpu_seconds,
)

STAGES = ("grab", "propose", "preprocess", "inference", "track", "paint")


@dataclass(frozen=True, slots=True)
class BenchOptions:
    duration_s: float = 10.0
    warmup_s: float = 2.0
    resolution_wh: tuple[int, int] = (1280, 720)
    cogs: int = 8
    batch: int = 16
    provider: str = "cpu"
    model: Path | None = None
    keras_model: Path | None = None
    window: str | None = None  # a live game window instead of the demo street
    seed: int = 0
    scene_fps: float = 30.0
    fps_cap: float = 120.0
    soak_minutes: float | None = None
    cpu_load: int = 0
    compare: bool = True
    compare_seconds: float = 3.0
    progress: bool = True
    full_search_every: int | None = None  # None: the settings' default (Settings.full_search_every)
    baseline: bool = False  # also run the behaviour before tracks were classified, in the same run
    crop_stage: str = "nametags"  # the crop stage measured (Settings.crop_stage)
    versus: str | None = None  # also run this crop stage after it, on the same scene and load
    reader: bool = True  # read the nametags as run/demo do (the baseline, from before the reader, never does)

    @property
    def measure_s(self) -> float:
        return self.soak_minutes * 60.0 if self.soak_minutes else self.duration_s


def first_label_latency(rows: np.ndarray, col: dict[str, int]) -> np.ndarray:
    """ms from the grab of each frame that brought new labels to the first paint showing them.

    The overlay paints only the newest result when several arrive between two paints (and skips a
    result identical to the one on screen), so a new label is shown by the first paint at or after
    its frame, which need not be its own frame's paint.  Rows are in processing order."""
    painted_at = rows[:, col["painted_at"]]
    at = np.where(np.isfinite(painted_at), painted_at, np.inf)
    shown_at = np.minimum.accumulate(at[::-1])[::-1]  # the first paint at or after each row
    new = np.nan_to_num(rows[:, col["new_labels"]]).astype(int)
    keep = np.isfinite(shown_at) & (new > 0)
    return np.repeat((shown_at[keep] - rows[keep, col["grab_start"]]) * 1000.0, new[keep])


def summarise(rows: np.ndarray, t_from: float, t_to: float) -> dict[str, Any]:
    """Percentiles of the frames whose grab started inside [t_from, t_to]."""
    col = {name: i for i, name in enumerate(FrameLog.COLS)}
    in_window = rows[(rows[:, col["grab_start"]] >= t_from) & (rows[:, col["grab_start"]] <= t_to)]
    stages = {name: percentiles(in_window[:, col[name]]) for name in STAGES if name != "paint"}
    painted = in_window[np.isfinite(in_window[:, col["painted_at"]])]
    stages["paint"] = percentiles(painted[:, col["paint"]])
    latency = (painted[:, col["painted_at"]] - painted[:, col["grab_start"]]) * 1000.0
    stage_sum = painted[:, [col[s] for s in STAGES]].sum(axis=1)
    worker_wall = in_window[:, [col[s] for s in ("propose", "preprocess", "inference", "track")]].sum(axis=1)
    first = first_label_latency(in_window, col)
    return {
        "stages_ms": stages,
        "worker_wall_ms": percentiles(worker_wall),
        "worker_cpu_ms": percentiles(in_window[:, col["worker_cpu"]]),
        "wait_ms": percentiles(in_window[:, col["wait"]]),
        "latency_ms": percentiles(latency),
        "first_label_ms": percentiles(first),
        "latency_minus_stage_sum_ms": percentiles(latency - stage_sum),
        "painted": int(len(painted)),
        "crops": int(np.nansum(in_window[:, col["crops"]])),
        "processed": int(len(in_window)),
    }


class Recorder:
    """What a session's callbacks and timers record, and the snapshots of the measured window."""

    def __init__(self, session: Any, options: BenchOptions, scene_proc: subprocess.Popen | None) -> None:
        import psutil

        total_s = options.warmup_s + options.measure_s
        self.session, self.options = session, options
        self.frames = FrameLog(int(total_s * min(options.fps_cap, 1000) * 1.1) + 256)
        self.grabs = GrabLog(self.frames.capacity)
        self.me = psutil.Process()
        self.scene_ps = psutil.Process(scene_proc.pid) if scene_proc is not None else None
        self.sampler = Sampler()
        self.start: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        self.soak: list[Sample] = []
        self.next_sample = 0.0
        self.sample_every_s = max(1.0, options.measure_s / 120.0) if options.soak_minutes else 1.0
        self.rss_start = self.me.memory_info().rss
        pipeline = session.pipeline
        pipeline.capture.on_grabbed.append(self.grabs.add)
        pipeline.worker.on_processed.append(self.frames.add_result)
        session.overlay.on_painted.append(self.frames.add_paint)
        # what each paint showed, scored against the demo street after the run (not during a soak)
        self.painted = PaintedLog(session.overlay)
        if scene_proc is not None and not options.soak_minutes:
            session.overlay.on_painted.append(self.painted.add)

    def snapshot(self) -> dict[str, Any]:
        import psutil

        scene_cpu = None
        if self.scene_ps is not None:
            try:
                c = self.scene_ps.cpu_times()
                scene_cpu = c.user + c.system
            except psutil.Error:
                scene_cpu = None
        c = self.me.cpu_times()
        return {"t": time.perf_counter(), "counts": self.session.pipeline.counts(), "cpu": c.user + c.system,
                "threads": thread_cpu_seconds(), "scene_cpu": scene_cpu, "sys": psutil.cpu_times(),
                "governor_changes": self.session.pipeline.worker.governor.changes}

    def begin(self) -> None:
        self.start = self.snapshot()

    def finish(self) -> None:
        if self.end is None:
            self.end = self.snapshot()

    def tick(self) -> None:
        if self.start is not None and self.end is None:
            if time.perf_counter() - self.start["t"] >= self.next_sample:
                self.soak.append(self.sampler.sample())
                self.next_sample += self.sample_every_s
        else:
            self.sampler.peak_rss = max(self.sampler.peak_rss, self.me.memory_info().rss)


def run_session(app: Any, settings: Any, classifier: Any, options: BenchOptions,
                scene_proc: subprocess.Popen | None, tuning: Any, reader: Any = None, *,
                scene_t0: float | None = None) -> dict[str, Any]:
    """Run one live session for the warm-up and the measured window; its figures (``scene_t0``: the
    demo street's scene clock, for the time from a Cog coming on screen to its label)."""
    from PyQt6.QtCore import QTimer

    from toonvision_live.capture.stage import ScreenSource
    from toonvision_live.ui.session import LiveSession, run_until_finished

    session = LiveSession(settings, ScreenSource.from_settings(settings), classifier, hotkeys=False, tuning=tuning,
                          reader=reader)
    rec = Recorder(session, options, scene_proc)
    progress = _Progress(options, session, rec) if options.progress else None
    ticker = QTimer()
    ticker.timeout.connect(rec.tick)
    if progress is not None:
        ticker.timeout.connect(progress.update)
    ticker.start(250)
    QTimer.singleShot(int(options.warmup_s * 1000), rec.begin)
    try:
        reason = run_until_finished(app, session, seconds=options.warmup_s + options.measure_s,
                                    on_timeout=rec.finish)
    finally:
        ticker.stop()
        if progress is not None:
            progress.stop()
    rec.finish()
    if reason:
        raise CaptureError(f"The pipeline stopped during the bench: {reason}")
    if rec.start is None:
        raise CaptureError("The bench ended before its warm-up did: give it a longer --duration.")
    figures = session_figures(rec, settings, tuning)
    figures["appear_ms"] = None
    if scene_t0 is not None and rec.painted.items:  # after the window: its CPU is not counted
        from toonvision_live.demo.window import load_street_scene

        assert rec.end is not None
        scene = load_street_scene(options.resolution_wh, options.cogs, options.seed)
        figures["appear_ms"] = appearance_latency(scene, scene_t0, rec.painted.items, rec.start["t"],
                                                  rec.end["t"], options.scene_fps)
    return figures


def session_figures(rec: Recorder, settings: Any, tuning: Any) -> dict[str, Any]:
    """Frames, stage percentiles, CPU (whole process and per thread group) and memory of the window."""
    import resource

    import psutil

    assert rec.start is not None and rec.end is not None
    start, stop = rec.start, rec.end
    span = stop["t"] - start["t"]
    summary = summarise(rec.frames.rows(), start["t"], stop["t"])
    processed = summary["processed"]
    if processed == 0:
        waiting = rec.session.pipeline.capture.waiting or "no frame reached the worker"
        raise CaptureError(
            f"The bench processed no frame from {settings.capture_target} ({waiting.rstrip('.')}); "
            "open that window or check --window."
        )
    captured = rec.grabs.count_between(start["t"], stop["t"])
    sys_a, sys_b = start["sys"], stop["sys"]
    busy = lambda c: sum(c) - c.idle - getattr(c, "iowait", 0.0)  # noqa: E731
    scene_percent = None
    if start["scene_cpu"] is not None and stop["scene_cpu"] is not None:
        scene_percent = round(100.0 * (stop["scene_cpu"] - start["scene_cpu"]) / span, 1)
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    worker = rec.session.pipeline.worker
    return {
        "tuning": {"per_track": tuning.per_track, "recheck_s": tuning.recheck_s,
                   "searches_per_s": tuning.searches_per_s, "adaptive": tuning.adaptive,
                   "requery_every": settings.requery_every,
                   "classifier_threads": getattr(worker.classifier, "threads", None)},
        "proposer": proposer_name(worker.propose),
        "frames": {
            "seconds": round(span, 3), "captured": captured, "processed": processed,
            "dropped": captured - processed, "painted": summary["painted"],
            "capture_fps": round(captured / span, 2), "processed_fps": round(processed / span, 2),
            "painted_fps": round(summary["painted"] / span, 2), "crops": summary["crops"],
            "crops_per_s": round(summary["crops"] / span, 2),
            "crops_per_frame": round(summary["crops"] / processed, 2),
            "mailbox_replaced": stop["counts"]["dropped"] - start["counts"]["dropped"],
            "capture_mode": "on demand" if rec.session.pipeline.capture.on_demand else "free-running",
            "rate_changes": stop["governor_changes"] - start["governor_changes"],
            "degraded_at_end": worker.governor.message,
        },
        **{k: summary[k] for k in ("stages_ms", "wait_ms", "worker_wall_ms", "worker_cpu_ms", "latency_ms",
                                   "first_label_ms", "latency_minus_stage_sum_ms")},
        "cpu": {
            "process_cpu_ms_per_processed_frame": round(1000.0 * (stop["cpu"] - start["cpu"]) / processed, 2),
            "thread_cpu_ms_per_processed_frame": cpu_split_ms_per_frame(start["threads"], stop["threads"],
                                                                       processed),
            "process_percent_of_one_core": round(100.0 * (stop["cpu"] - start["cpu"]) / span, 1),
            "machine_cores": os.cpu_count() or 1,
            "machine_busy_percent": round(100.0 * (busy(sys_b) - busy(sys_a)) / max(1e-9, sum(sys_b) - sum(sys_a)), 1),
            "scene_process_percent_of_one_core": scene_percent,
        },
        "memory": {
            "rss_start_mb": round(rec.rss_start / MB, 1),
            "rss_peak_mb": round(max(rec.sampler.peak_rss, rec.me.memory_info().rss, max_rss) / MB, 1),
            "rss_final_mb": round(psutil.Process().memory_info().rss / MB, 1),
        },
        "_soak": rec.soak,
        "_recent": list(rec.frames.recent),
    }


def proposer_name(propose: Any) -> str:
    name = getattr(propose, "__name__", None) or type(propose).__name__
    if getattr(propose, "min_period_s", 0) > 0:
        return f"{name}(searches on a helper thread, at most {1 / propose.min_period_s:.0f}/s)"
    if hasattr(propose, "full_every"):
        return f"{name}(full_every={propose.full_every})"
    return name


class _Progress:
    """A rich progress bar on stderr: warming up / measuring, with the processed fps."""

    def __init__(self, options: BenchOptions, session: Any, rec: Recorder) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self.session, self.rec = session, rec
        self.total_s = options.warmup_s + options.measure_s
        self.started = time.perf_counter()
        self.bar = Progress(
            TextColumn("[bold]bench[/] {task.description}"), BarColumn(), TextColumn("{task.fields[fps]}"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=True,
        )
        self.bar.start()
        self.task = self.bar.add_task("warming up", total=self.total_s, fps="")

    def update(self) -> None:
        now = time.perf_counter()
        fps = ""
        start = self.rec.start
        if start is not None:
            done = self.session.pipeline.counts()["processed"] - start["counts"]["processed"]
            fps = f"{done / max(1e-6, now - start['t']):.0f} fps"
        self.bar.update(self.task, completed=min(self.total_s, now - self.started),
                        description="measuring" if start is not None else "warming up", fps=fps)

    def stop(self) -> None:
        self.bar.stop()
