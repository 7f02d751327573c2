"""``run_bench``: the demo street (or a game window), the session(s), the comparison, the report."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from toonvision_live.errors import CaptureError, ModelError
from toonvision_live.tools.bench.compare import comparison_crops, find_keras_model, run_comparison
from toonvision_live.tools.bench.processes import HOG_CHILD, start_scene_process, stop_process
from toonvision_live.tools.bench.report import soak_summary, targets
from toonvision_live.tools.bench.session import BenchOptions, run_session
from toonvision_live.tools.bench.stats import machine_facts, model_facts

REPORT_VERSION = 2


def bench_settings(options: BenchOptions, model_path: Path, *, baseline: bool = False,
                   crop_stage: str | None = None) -> Any:
    """The live settings the bench runs with (``baseline``: window geometry re-read on every grab, as before;
    ``crop_stage``: instead of ``options.crop_stage``)."""
    from toonvision_live.demo.window import DEMO_WINDOW_PATTERN
    from toonvision_live.settings import load_settings

    overrides: dict[str, Any] = {
        "window": options.window or DEMO_WINDOW_PATTERN,
        "model": str(model_path),
        "provider": options.provider,
        "batch_size": options.batch,
        "fps_cap": options.fps_cap,
        "dataset": tempfile.gettempdir(),
        "crop_stage": crop_stage or options.crop_stage,
    }
    if options.full_search_every is not None:  # in-turn searches instead of the background thread
        overrides["full_search_every"] = options.full_search_every
        overrides["background_search"] = False
    if baseline:  # the behaviour before this work: the nametag search, geometry re-read on every grab
        overrides["requery_every"] = 1
        overrides["crop_stage"] = "nametags"
    return load_settings(overrides=overrides)


def no_cog_classified(report: dict[str, Any]) -> str:
    """The sentence saying why a run classified no Cog ("" when it classified some)."""
    if report["frames"]["crops"] > 0:
        return ""
    why = ""
    if not report["machine"].get("compositor") and report["config"]["cogs"]:
        why = (" No compositing manager runs on this X display, so the demo window may never have been "
               "drawn where it was grabbed: start one (xcompmgr) or use --xvfb, which does.")
    elif report["config"]["cogs"] == 0:
        why = " The demo street was asked for 0 Cogs (--cogs 0)."
    return (f"The bench classified no Cog in {report['frames']['processed']} processed frames, so its figures "
            f"describe an empty screen, not the pipeline.{why}")


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run the pipeline as configured (and the baseline after it with ``options.baseline``) and
    return the report (a JSON-able dict).  Raises CaptureError when no Cog was classified."""
    import psutil
    from PyQt6.QtWidgets import QApplication

    from toonvision_live.capture.window import x11_compositor_running
    from toonvision_live.classify.classifier import CogClassifier, providers_for
    from toonvision_live.classify.reader import TagReader
    from toonvision_live.model_card import default_model_path
    from toonvision_live.pipeline import Tuning

    model_path = Path(options.model) if options.model is not None else default_model_path()
    if not model_path.is_file():
        raise ModelError(f"The model file {model_path} is missing: train and export one, or pass --model PATH.")
    settings = bench_settings(options, model_path)
    classifier = CogClassifier(model_path, providers_for(options.provider))
    reader = TagReader(None, providers_for(options.provider)) if options.reader else None
    keras_path, keras_note = find_keras_model(model_path, classifier.card, options.keras_model)
    app = QApplication.instance() or QApplication(["toonvision-bench"])
    machine = machine_facts()
    machine["compositor"] = x11_compositor_running()
    scene_proc, scene_t0 = None, None
    hogs: list[subprocess.Popen] = []
    try:
        if options.window is None:
            scene_proc, scene_t0 = start_scene_process(options.resolution_wh, options.cogs, options.seed,
                                                       options.scene_fps)
        hogs = [subprocess.Popen([sys.executable, "-c", HOG_CHILD]) for _ in range(options.cpu_load)]
        report = run_session(app, settings, classifier, options, scene_proc, Tuning.for_stage(settings.crop_stage),
                             reader, scene_t0=scene_t0)
        if options.baseline:  # the same scene and load, with the behaviour before tracks were classified
            before = CogClassifier(model_path, providers_for(options.provider), threads=2)
            base = run_session(app, bench_settings(options, model_path, baseline=True), before, options,
                               scene_proc, Tuning.baseline(), scene_t0=scene_t0)
            base.pop("_soak"), base.pop("_recent")
            report["baseline"] = base
        if options.versus:  # the same scene and load with the other crop stage
            other = run_session(app, bench_settings(options, model_path, crop_stage=options.versus), classifier,
                                options, scene_proc, Tuning.for_stage(options.versus), reader, scene_t0=scene_t0)
            other.pop("_soak"), other.pop("_recent")
            report["versus"] = dict(other, crop_stage=options.versus)
    finally:
        for proc in hogs:
            stop_process(proc)
        stop_process(scene_proc)
    report.update(config(options, report, settings), provider=classifier.provider, version=REPORT_VERSION,
                  machine=machine, model=model_facts(model_path, classifier.card))
    why = no_cog_classified(report)
    if why:
        raise CaptureError(why)
    if options.baseline:
        report["cpu_ratio_baseline_over_new"] = round(
            report["baseline"]["cpu"]["process_cpu_ms_per_processed_frame"]
            / max(1e-9, report["cpu"]["process_cpu_ms_per_processed_frame"]), 2)
    if options.versus:
        report["cpu_ratio_versus_over_new"] = round(
            report["versus"]["cpu"]["process_cpu_ms_per_processed_frame"]
            / max(1e-9, report["cpu"]["process_cpu_ms_per_processed_frame"]), 2)
    samples = report.pop("_soak")
    report["soak"] = soak_summary(samples, options) if options.soak_minutes else None
    recent = report.pop("_recent")
    report["comparison"] = run_comparison(classifier, comparison_crops(recent), options.batch, keras_path,
                                          keras_note, options.compare_seconds) if options.compare else None
    report["targets"] = targets(report)
    report["process"] = {"pid": os.getpid(), "threads_now": psutil.Process().num_threads()}
    return report


def config(options: BenchOptions, report: dict[str, Any], settings: Any) -> dict[str, Any]:
    recent = report.get("_recent") or []
    return {"config": {
        "source": (f"window /{options.window}/" if options.window else
                   f"demo street {options.resolution_wh[0]}x{options.resolution_wh[1]}, "
                   f"{options.cogs} Cogs, seed {options.seed}, redrawn at {options.scene_fps:g} fps "
                   "in its own process"),
        "resolution": list(recent[-1].frame.size_wh) if recent else list(options.resolution_wh),
        "cogs": options.cogs if options.window is None else None,
        "batch": options.batch,
        "provider_requested": options.provider,
        "fps_cap": options.fps_cap,
        "warmup_s": options.warmup_s,
        "duration_s": round(options.measure_s, 3),
        "cpu_load_processes": options.cpu_load,
        "proposer": report["proposer"],
        "crop_stage": options.crop_stage,
        "versus": options.versus,
        "soak_minutes": options.soak_minutes,
        "baseline": options.baseline,
        "reader": options.reader,
        "command": "toonvision " + " ".join(sys.argv[1:]),
    }}
