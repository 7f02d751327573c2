"""``toonvision bench --replay``: the worker and the searches timed on replayed streets, as live but
without a screen: CPU time, which depends much less on how busy the machine is than frame rates.

Live, the capture grabs the game window about 120 times a second while the game redraws 30-60
times, so most grabs repeat the last picture; the full nametag searches run on a helper thread at
most ``searches_per_s`` times a second and their result reaches the worker a frame or two later.
Here the demo streets of ``toonvision replay`` are rendered at ``scene_fps`` and handed to a fresh
:class:`~toonvision_live.pipeline.InferenceWorker` ``grab_fps`` times a second of scene time (a new
array each time, the same picture between redraws), and the background search is run in the
worker's thread on the frame it would have been handed, its result delivered ``delay_s`` of scene
time later and its pacing read from the same rules (:class:`~toonvision_live.find.proposers.
BackgroundSearchProposer` with a scene-time clock).  The CPU time (``thread_time``) of the worker
and of the searches is summed apart, per processed frame; accuracy, identity switches and the
time from a Cog coming on screen to its right label are scored as ``toonvision replay`` scores
them.  Capture and the overlay are not part of it (the live bench measures those).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from toonvision_live.find.nametags import Proposal, propose_cog_boxes
from toonvision_live.find.proposers import BackgroundSearchProposer, FullSearch, LazyGrey, Search


class SceneTimeSearch(BackgroundSearchProposer):
    """The background search run in the caller's thread on scene time: a frame is handed when the
    stage would be idle (its paced period passed since the last hand-over) and searched at once, its
    result delivered ``delay_s`` later; ``now`` is set by the caller before each frame."""

    def __init__(self, max_searches_per_s: float, delay_s: float, backoff: float,
                 full_search: FullSearch = propose_cog_boxes) -> None:
        super().__init__(max_searches_per_s=max_searches_per_s, backoff=backoff, full_search=full_search)
        self.now = 0.0
        self.delay_s = delay_s
        self.clock = lambda: self.now
        self.searches = 0
        self.search_cpu_s = 0.0
        self._pending: tuple[float, Search] | None = None
        self._handed_at = -math.inf

    def _handed_search(self, frame_rgb: np.ndarray) -> Search | None:
        result = None
        if self._pending is not None and self._pending[0] <= self.now + 1e-9:
            result, self._pending = self._pending[1], None
        self._handed = self._pending is None and self.now - self._handed_at >= self._search.min_period_s - 1e-9
        if self._handed:
            started = time.thread_time()
            found: list[Proposal] = self.full_search(frame_rgb)
            self.search_cpu_s += time.thread_time() - started
            self._pending, self._handed_at = (self.now + self.delay_s, (found, LazyGrey(frame_rgb))), self.now
            self.searches += 1
        return result

    def close(self, timeout: float = 2.0) -> None:
        pass  # no thread


@dataclass(frozen=True, slots=True)
class LiveLikeOptions:
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6, 7)
    seconds: float = 5.0
    grab_fps: float = 120.0
    scene_fps: float = 30.0
    delay_s: float = 0.025  # from a frame handed to the search to its result reaching the worker
    size_wh: tuple[int, int] = (1280, 720)
    cogs: int = 8


def replay_live_like(classifier: Any, tuning: Any, options: LiveLikeOptions, reader: Any = None,
                     scenes: dict[int, Any] | None = None,
                     full_search: Callable[[], FullSearch] = lambda: propose_cog_boxes) -> dict[str, Any]:
    """The streets of ``options.seeds`` replayed as live (see the module's text); CPU ms per processed
    frame of the worker (searches excluded) and of the searches, and the replay's scores.  ``scenes``:
    the streets by seed, made once for several calls (made here when missing); ``full_search`` makes
    the crop stage's full search for each street (default the nametag search)."""
    from toonvision_live.demo.window import ShownFrame, load_street_scene
    from toonvision_live.frames import Frame, LatestFrame
    from toonvision_live.geometry import ScreenRect
    from toonvision_live.pipeline import InferenceWorker
    from toonvision_live.tools.replay import Score, score_result

    total = Score()
    worker_s = search_s = 0.0
    frames = searches = crops = 0
    rect = ScreenRect(0, 0, *options.size_wh)
    for seed in options.seeds:
        scenes = {} if scenes is None else scenes
        if seed not in scenes:
            scenes[seed] = load_street_scene(options.size_wh, n_cogs=options.cogs, seed=seed)
        scene = scenes[seed]
        search = SceneTimeSearch(tuning.searches_per_s, options.delay_s, tuning.search_backoff, full_search())
        worker = InferenceWorker(LatestFrame(), LatestFrame(), classifier, propose=search, tuning=tuning,
                                 reader=reader)
        score, shown, shown_t = Score(), None, -1.0
        for i in range(max(1, round(options.seconds * options.grab_fps))):
            t = i / options.grab_fps
            t_scene = math.floor(t * options.scene_fps + 1e-9) / options.scene_fps  # the last redraw
            if shown is None or t_scene != shown_t:
                shown, shown_t = scene.frame(t_scene), t_scene
            search.now = t
            before, cpu0 = search.search_cpu_s, time.thread_time()
            result = worker.process(Frame(i, shown.rgb.copy(), t, 0.0, rect, "replay", overlay_free=True))
            worker_s += time.thread_time() - cpu0 - (search.search_cpu_s - before)
            frames += 1
            crops += result.classified
            score_result(score, result, ShownFrame(t_scene, t_scene, shown.objects, shown.tags_xyxy))
        score.end()
        total.add(score)
        search_s += search.search_cpu_s
        searches += search.searches
    per_frame = 1000.0 / max(1, frames)
    return {
        "frames": frames, "searches": searches, "searches_per_s": round(searches / (len(options.seeds)
                                                                                  * options.seconds), 2),
        "crops_per_frame": round(crops / max(1, frames), 3),
        "worker_cpu_ms_per_frame": round(worker_s * per_frame, 3),
        "search_cpu_ms_per_frame": round(search_s * per_frame, 3),
        "score": total.as_dict(),
    }


def live_like_report(options: LiveLikeOptions, *, baseline: bool, reader_on: bool, model: Any = None,
                     provider: str = "cpu", crop_stage: str = "nametags", versus: str | None = None) -> dict[str, Any]:
    """Replay as live with today's tuning and crop stage ``crop_stage`` (and, with ``versus``, another crop
    stage; with ``baseline``, the tuning before tracks were classified, the nametag search, no reader, as
    the live bench's --baseline); the figures of each and their CPU ratios."""
    from dataclasses import replace
    from pathlib import Path

    from toonvision_live.classify.classifier import CogClassifier, providers_for
    from toonvision_live.classify.reader import TagReader
    from toonvision_live.model_card import default_model_path
    from toonvision_live.pipeline import Tuning

    classifier = CogClassifier(Path(model) if model else default_model_path(), providers_for(provider))
    reader = TagReader(None, providers_for(provider)) if reader_on else None
    # the load governor stays off: frames carry scene time (as toonvision replay)
    report: dict[str, Any] = {"mode": "replay (live-like)", "options": {
        "seeds": list(options.seeds), "seconds": options.seconds, "grab_fps": options.grab_fps,
        "scene_fps": options.scene_fps, "search_delay_s": options.delay_s, "resolution": list(options.size_wh),
        "cogs": options.cogs, "reader": reader_on, "model": str(classifier.model_path), "crop_stage": crop_stage}}
    scenes: dict[int, Any] = {}
    tuning = lambda stage: replace(Tuning.for_stage(stage), adaptive=False)  # noqa: E731  (searches paced as live)
    report["now"] = replay_live_like(classifier, tuning(crop_stage), options, reader, scenes, _searches(crop_stage))
    cpu = lambda r: r["worker_cpu_ms_per_frame"] + r["search_cpu_ms_per_frame"]  # noqa: E731
    if versus is not None:
        report["versus"] = dict(replay_live_like(classifier, tuning(versus), options, reader, scenes,
                                                 _searches(versus)), crop_stage=versus)
        report["cpu_ratio_versus_over_new"] = round(cpu(report["versus"]) / max(1e-9, cpu(report["now"])), 2)
    if baseline:
        report["baseline"] = replay_live_like(classifier, Tuning.baseline(), options, None, scenes)
        report["cpu_ratio_baseline_over_new"] = round(cpu(report["baseline"]) / max(1e-9, cpu(report["now"])), 2)
    return report


def _searches(stage: str) -> Callable[[], FullSearch]:
    """A maker of the full search of crop stage ``stage``, one per street (the detector's model loaded once)."""
    if stage == "nametags":
        return lambda: propose_cog_boxes
    from toonvision_live.find.confirm import full_search
    from toonvision_live.find.detector import CogDetector

    detector = CogDetector()
    return lambda: full_search(stage, detector)


def render_live_like(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    o = report["options"]
    runs = [(f"now ({o.get('crop_stage', 'nametags')})", report["now"])]
    if "versus" in report:
        runs.append((f"{report['versus']['crop_stage']} (--versus)", report["versus"]))
    if "baseline" in report:
        runs.append(("before (--baseline, nametags)", report["baseline"]))
    title = (f"replayed as live: {len(o['seeds'])} streets x {o['seconds']:g} s, grabbed {o['grab_fps']:g}/s, "
             f"redrawn {o['scene_fps']:g}/s, {o['cogs']} Cogs (CPU ms per processed frame)")
    table = Table(title=title, title_justify="left")
    table.add_column("")
    for name, _ in runs:
        table.add_column(name, justify="right")
    rows = [("worker thread", lambda r: f"{r['worker_cpu_ms_per_frame']:.3f}"),
            ("searches", lambda r: f"{r['search_cpu_ms_per_frame']:.3f}"),
            ("searches / s", lambda r: f"{r['searches_per_s']:.2f}"),
            ("crops classified / frame", lambda r: f"{r['crops_per_frame']:.3f}"),
            ("Cogs named right", lambda r: f"{r['score']['accuracy']:.2%} of {r['score']['cogs_on_screen']}"),
            ("tag visible: named right", lambda r: f"{r['score']['tag_visible']['accuracy']:.2%}"),
            ("found (recall)", lambda r: f"{r['score']['recall']:.2%}"),
            ("identity switches", lambda r: str(r["score"]["identity_switches"])),
            ("on screen -> named right p50 / p95 / max (ms)", lambda r: "{p50:.0f} / {p95:.0f} / {max:.0f}".format(
                **r["score"]["first_label_ms"]))]
    for label, cell in rows:
        table.add_row(label, *(cell(r) for _, r in runs))
    ratios = [f"{name} / now: {report[key]:.2f}x" for name, key in (
        ("--versus", "cpu_ratio_versus_over_new"), ("before", "cpu_ratio_baseline_over_new")) if key in report]
    if ratios:
        table.caption = "worker + searches, " + "; ".join(ratios)
    console.print(table)
