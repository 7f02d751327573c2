"""``toonvision bench``: the real pipeline, timed, on the demo street (or a live game window).

What runs is exactly what ``toonvision demo`` runs: mss captures the demo window (drawn by a
child process, as the game would be: its CPU is reported apart), the crop stage proposes and
crops, onnxruntime classifies, the tracker smooths and the real Qt overlay paints on top.
The bench only listens: it records each processed frame's stage times (``FrameResult.times``)
and each paint (``PaintRecord``), samples CPU, memory and threads, and after a warm-up counts
frames over ``--duration`` seconds.

Figures (the headline: CPU milliseconds per processed frame of the whole process, split by thread:
capture, worker, search, Qt, other; ``--baseline`` runs the behaviour before tracks were classified on
the same scene right after, for the ratio):

- capture / processed / painted FPS.  Frames are counted by the start of their grab inside the
  measured window, so painted <= processed <= captured, and dropped = captured - processed (grabbed
  but never processed: replaced unread in the one-slot mailbox, or still in flight at the end);
- per-stage milliseconds p50/p95/p99 (grab, propose, preprocess, inference, track, paint) and the
  time from a track's first frame to its label painted;
- end-to-end latency from the START of the grab to the end of the overlay's paint, so for
  every painted frame latency >= grab + propose + preprocess + inference + track + paint;
- a comparison on the same crops (taken from the last processed frames): onnxruntime batched,
  onnxruntime batch=1 and Keras ``model.predict`` per crop (ToonVision's way).  Keras runs in
  a child process (this runtime package never imports TensorFlow) and needs the [train] extra;
  without the .keras file the ONNX model was exported from, it rebuilds the card's architecture.
- ``--soak MINUTES``: RSS and thread counts sampled over the run, growth and its slope.

A run that classified no Cog exits non-zero with a sentence saying why (its figures would describe an
empty screen).  ``--replay`` times the worker and the searches on replayed streets instead (no screen,
deterministic).  Modules: session (one live session, recorded through its callbacks), run (the scene,
the sessions, the report), appear (Cog on screen -> its right label painted), livelike (--replay),
stats, compare, processes, report.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from toonvision_live.demo.xscreen import VirtualScreen
from toonvision_live.errors import ConfigError
from toonvision_live.settings import Settings, parse_size_wh
from toonvision_live.tools.bench.compare import comparison_crops, find_keras_model, run_comparison
from toonvision_live.tools.bench.processes import require_bench_display
from toonvision_live.tools.bench.report import render_report, targets
from toonvision_live.tools.bench.run import REPORT_VERSION, run_bench
from toonvision_live.tools.bench.session import STAGES, BenchOptions
from toonvision_live.tools.bench.stats import linear_slope, model_facts, percentiles

__all__ = ["REPORT_VERSION", "STAGES", "BenchOptions", "bench_command", "comparison_crops", "find_keras_model",
           "linear_slope", "model_facts", "percentiles", "register", "render_report", "require_bench_display",
           "run_bench", "run_comparison", "targets"]


def check_args(args: argparse.Namespace) -> None:
    """One sentence (ConfigError) for the first out-of-range option."""
    if args.duration <= 0:
        raise ConfigError(f"--duration {args.duration} must be more than 0 seconds.")
    if args.soak is not None and args.soak <= 0:
        raise ConfigError(f"--soak {args.soak} must be more than 0 minutes.")
    if not 0 <= args.cogs <= 64:
        raise ConfigError(f"--cogs {args.cogs} is out of range: use 0 to 64 Cogs.")
    if args.batch < 1:
        raise ConfigError(f"--batch {args.batch} must be 1 or more.")
    if args.warmup < 0:
        raise ConfigError(f"--warmup {args.warmup} must be 0 or more seconds.")
    if args.scene_fps <= 0 or args.compare_seconds <= 0:
        raise ConfigError("--scene-fps and --compare-seconds must be more than 0.")
    if args.full_search_every is not None and args.full_search_every < 1:
        raise ConfigError(f"--full-search-every {args.full_search_every} must be 1 or more frames.")
    if args.cpu_load < 0:
        raise ConfigError(f"--cpu-load {args.cpu_load} must be 0 or more processes.")
    if args.search_delay < 0:
        raise ConfigError(f"--search-delay {args.search_delay} must be 0 or more seconds.")


def bench_command(args: argparse.Namespace) -> int:
    check_args(args)
    if args.replay:
        return replay_command(args)
    options = BenchOptions(
        duration_s=args.duration, warmup_s=args.warmup, resolution_wh=args.resolution, cogs=args.cogs,
        batch=args.batch, provider=args.provider, model=args.model, keras_model=args.keras_model,
        window=args.window, seed=args.seed, scene_fps=args.scene_fps, fps_cap=args.fps_cap,
        soak_minutes=args.soak, cpu_load=args.cpu_load, compare=not args.no_compare,
        compare_seconds=args.compare_seconds, progress=not args.no_progress,
        full_search_every=args.full_search_every, baseline=args.baseline, crop_stage=args.crop_stage,
        versus=args.versus, reader=not args.no_reader,
    )
    screen = None
    if args.xvfb:
        screen = VirtualScreen(args.resolution)
    try:
        require_bench_display()
        report = run_bench(options)
    finally:
        if screen is not None:
            screen.close()
    from rich.console import Console

    render_report(report, Console())
    if args.json is not None:
        from toonvision_live.fileio import atomic_write_bytes

        atomic_write_bytes(Path(args.json), (json.dumps(report, indent=2) + "\n").encode(), overwrite=True)
        print(f"Wrote {args.json}", file=sys.stderr)
    return 0


def replay_command(args: argparse.Namespace) -> int:
    """``--replay``: the worker and the searches on replayed streets, as live (tools/bench/livelike.py)."""
    from rich.console import Console

    from toonvision_live.tools.bench.livelike import LiveLikeOptions, live_like_report, render_live_like

    options = LiveLikeOptions(seconds=args.duration, grab_fps=args.fps_cap, scene_fps=args.scene_fps,
                              size_wh=args.resolution, cogs=args.cogs, delay_s=args.search_delay)
    report = live_like_report(options, baseline=args.baseline, reader_on=not args.no_reader, model=args.model,
                              provider=args.provider, crop_stage=args.crop_stage, versus=args.versus)
    report["command"] = "toonvision " + " ".join(sys.argv[1:])
    render_live_like(report, Console())
    if args.json is not None:
        from toonvision_live.fileio import atomic_write_bytes

        atomic_write_bytes(Path(args.json), (json.dumps(report, indent=2) + "\n").encode(), overwrite=True)
        print(f"Wrote {args.json}", file=sys.stderr)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "bench",
        help="measure FPS, latency and memory of the real pipeline",
        description="Run the real pipeline (mss capture of the demo street or a game window, crop stage, "
        "onnxruntime, the Qt overlay) for a fixed time and report frames per second, per-stage and "
        "end-to-end latency percentiles, CPU and memory, and onnxruntime against Keras on the same crops.",
    )
    p.add_argument("--duration", type=float, default=10.0, metavar="S", help="seconds measured (default 10)")
    p.add_argument("--warmup", type=float, default=2.0, metavar="S",
                   help="seconds run before measuring (default 2)")
    p.add_argument("--resolution", type=parse_size_wh, default=(1280, 720), metavar="WxH",
                   help="demo street size (default 1280x720)")
    p.add_argument("--cogs", type=int, default=8, metavar="N", help="Cogs in the demo street (default 8)")
    p.add_argument("--batch", type=int, default=16, metavar="N",
                   help="most crops per onnxruntime batch (default 16)")
    p.add_argument("--provider", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="onnxruntime execution provider (default cpu)")
    p.add_argument("--model", type=Path, metavar="FILE", help="ONNX model (default: the shipped one)")
    p.add_argument("--keras-model", type=Path, metavar="FILE",
                   help="the .keras file the ONNX model was exported from (default: from its card)")
    p.add_argument("--window", metavar="PATTERN", help="bench on a live game window (title regex) instead")
    p.add_argument("--seed", type=int, default=0, help="demo street seed (default 0)")
    p.add_argument("--scene-fps", type=float, default=30.0, metavar="FPS",
                   help="how often the demo street is redrawn (default 30)")
    p.add_argument("--fps-cap", type=float, default=120.0, metavar="FPS",
                   help="most frames captured per second (default 120)")
    p.add_argument("--soak", type=float, metavar="MINUTES",
                   help="run this many minutes and report RSS and thread counts over time")
    p.add_argument("--cpu-load", type=int, default=0, metavar="N",
                   help="start N busy-looping processes during the run (latency under load)")
    p.add_argument("--full-search-every", type=int, metavar="N",
                   help="search the whole frame for nametags in turn every N frames, known tags followed in "
                   "between (1: every frame), instead of on a helper thread (the default)")
    p.add_argument("--baseline", action="store_true",
                   help="after the run, run the behaviour before tracks were classified (every proposal "
                   "classified on every frame, searches up to 30/s, window geometry re-read on every grab, 2 "
                   "onnxruntime threads) on the same scene and report the CPU per frame of both and their ratio")
    p.add_argument("--crop-stage", choices=("nametags", "detector", "combined"), default=Settings().crop_stage,
                   help="crop stage measured: the nametag search, the learned detector with its tags confirmed "
                   "by the nametag verifier, or combined (both searches; all run their full searches on a helper "
                   f"thread; default {Settings().crop_stage}, as live; --baseline always runs the nametag search)")
    p.add_argument("--versus", choices=("nametags", "detector", "combined"), metavar="STAGE",
                   help="after the run, run this crop stage on the same scene and load and report the CPU per "
                   "frame of both (nametags, detector or combined)")
    p.add_argument("--compare-seconds", type=float, default=3.0, metavar="S",
                   help="seconds timed per comparison row (default 3)")
    p.add_argument("--no-compare", action="store_true", help="skip the onnxruntime/Keras comparison")
    p.add_argument("--no-reader", action="store_true",
                   help="leave the nametag reader out (run and demo read each new track's tag; --baseline never does)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--xvfb", action="store_true", help="start a private Xvfb (+ xcompmgr) screen for the run")
    p.add_argument("--replay", action="store_true",
                   help="no screen: replay the 8 demo streets of 'toonvision replay' as live (grabbed --fps-cap times "
                   "a second, redrawn --scene-fps times, searches paced in scene time) for --duration seconds each "
                   "and report the CPU of the worker and the searches per frame, which depends much less on how busy "
                   "the machine is than frame rates, with the replay's accuracy, for --crop-stage (default, as live: "
                   f"{Settings().crop_stage}; --versus STAGE: also that stage; --baseline: also the old behaviour, "
                   "with the nametag search)")
    p.add_argument("--search-delay", type=float, default=0.025, metavar="S",
                   help="--replay: scene seconds from a frame handed to the search to its result reaching the worker "
                   "(default 0.025; a starved machine: more)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    p.set_defaults(handler=bench_command)
