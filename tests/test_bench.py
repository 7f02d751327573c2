"""toonvision bench: the real pipeline (demo street in its own process, mss, tiny ONNX model, Qt overlay)
under Xvfb, checked for the structure and internal consistency of its report — never for timings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from model_factory import make_tiny_model

from toonvision_live.cli import main
from toonvision_live.errors import CaptureError, ConfigError
from toonvision_live.settings import Settings, parse_size_wh
from toonvision_live.tools import bench

ROOT = Path(__file__).resolve().parents[1]


def run_cli(args: list[str], env: dict[str, str] | None = None, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "toonvision_live", *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env or dict(os.environ),
    )


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("bench_model"))


def check_percentiles(stats: dict, name: str) -> None:
    assert set(stats) >= {"n", "mean", "min", "p50", "p95", "p99", "max"}, name
    assert 0 <= stats["min"] <= stats["p50"] <= stats["p95"] <= stats["p99"] <= stats["max"], (name, stats)
    assert stats["min"] <= stats["mean"] <= stats["max"], (name, stats)


@pytest.fixture(scope="module")
def short_run(x_display, tiny_model, tmp_path_factory) -> tuple[dict, str]:
    out = tmp_path_factory.mktemp("bench_out") / "report.json"
    proc = run_cli(["bench", "--duration", "3", "--warmup", "1.5", "--model", str(tiny_model), "--json", str(out),
                    "--no-progress", "--compare-seconds", "0.3", "--baseline"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout


def test_report_structure(short_run):
    report, _ = short_run
    assert report["version"] == bench.REPORT_VERSION
    assert report["provider"] == "CPUExecutionProvider"
    assert report["config"]["resolution"] == [1280, 720] and report["config"]["cogs"] == 8
    assert set(report["stages_ms"]) == set(bench.STAGES)
    assert report["model"]["file"].endswith("tiny.onnx") and report["model"]["size_bytes"] > 0
    machine = report["machine"]
    assert machine["logical_cores"] >= 1 and machine["onnxruntime"] and machine["python"].startswith("3.")
    assert report["machine"]["compositor"] is True  # the x_display fixture runs xcompmgr
    assert report["soak"] is None
    assert report["config"]["proposer"].startswith("BackgroundSearchProposer")  # the settings' default
    assert report["config"]["command"].startswith("toonvision bench ")
    assert {t["figure"] for t in report["targets"]} >= {
        "CPU ms per processed frame, whole process (1280x720, 8 Cogs)",
        "CPU per frame, before (--baseline) / now, same run",
        "processed frames/s (1280x720, 8 Cogs)", "capture->overlay latency p95 (ms)"}


def test_the_pipeline_found_and_labelled_cogs_without_queueing(short_run):
    """Behaviour, not arithmetic: Cogs were classified and labelled on screen, every painted frame is
    one the worker processed, and frames were never queued (the mailbox holds one)."""
    report, _ = short_run
    f = report["frames"]
    assert f["crops"] > 0 and report["first_label_ms"]["n"] > 0
    assert 0 < f["painted"] <= f["processed"] <= f["captured"]
    assert f["capture_mode"] == "on demand"
    assert report["wait_ms"]["p95"] < 1000  # a frame waits for the worker at most one frame, never a queue
    assert report["latency_minus_stage_sum_ms"]["min"] >= -0.01  # latency spans the stages it times
    # Cogs came on screen in the demo street during the 3 s (walking in, stepping out from behind others);
    # the tiny model may name none of them right, so only the bookkeeping is asserted
    for run in (report, report["baseline"]):
        appear = run["appear_ms"]
        assert appear["appearances"] > 0 and appear["named"] + appear["never_named"] == appear["appearances"]
        assert appear["named"] == 0 or 0 <= appear["p50"] <= appear["p95"] <= appear["max"]


def test_tracks_are_classified_not_frames(short_run):
    """Classifying tracks needs fewer crops per frame than the baseline (every proposal, every frame),
    measured on the same scene in the same run."""
    report, _ = short_run
    now, before = report, report["baseline"]
    assert now["tuning"]["per_track"] is True and before["tuning"]["per_track"] is False
    assert before["tuning"]["requery_every"] == 1 and now["tuning"]["requery_every"] > 1
    assert before["frames"]["crops_per_frame"] > now["frames"]["crops_per_frame"]
    assert report["cpu_ratio_baseline_over_new"] > 0


def test_cpu_is_split_by_thread(short_run):
    report, _ = short_run
    for run in (report, report["baseline"]):
        split = run["cpu"]["thread_cpu_ms_per_processed_frame"]
        assert set(split) == {"capture", "worker", "search", "qt", "other"}
        assert split["capture"] > 0 and split["worker"] > 0 and split["qt"] > 0 and split["search"] > 0
        assert split["other"] < split["search"]  # every thread of ours is named in its group
        # the thread groups are parts of the process (clock ticks of 10 ms: some slack)
        assert sum(split.values()) <= run["cpu"]["process_cpu_ms_per_processed_frame"] * 1.2 + 2
    assert report["cpu"]["scene_process_percent_of_one_core"] > 0
    mem = report["memory"]
    assert 0 < mem["rss_start_mb"] <= mem["rss_peak_mb"] and mem["rss_final_mb"] <= mem["rss_peak_mb"]


def test_comparison_rows(short_run):
    report, _ = short_run
    comp = report["comparison"]
    assert comp["crops"] > 0
    names = [r["name"] for r in comp["rows"]]
    assert names[0].startswith("onnxruntime batched") and names[1] == "onnxruntime batch=1"
    assert "records no Keras model" in comp["note"] and "--keras-model" in comp["note"]
    assert not any(n.startswith("Keras") for n in names)  # the tiny model's card names no architecture


def test_the_table_shows_the_json_numbers(short_run):
    report, table = short_run
    f = report["frames"]
    assert f"processed {f['processed']} ({f['processed_fps']:.1f}/s)" in table
    lat = report["latency_ms"]
    row = next(line for line in table.splitlines() if "grab -> overlay painted" in line)
    assert f"{lat['p50']:.2f}" in row and f"{lat['p95']:.2f}" in row and f"{lat['p99']:.2f}" in row
    for name in bench.STAGES:
        stats = report["stages_ms"][name]
        line = next(line for line in table.splitlines() if re.match(rf"^[│┃]\s*{name}\s+[│┃]", line))
        assert f"{stats['p50']:.2f}" in line and f"{stats['p99']:.2f}" in line
    whole = next(line for line in table.splitlines() if "whole process" in line)
    assert f"{report['cpu']['process_cpu_ms_per_processed_frame']:.2f}" in whole
    assert f"{report['baseline']['cpu']['process_cpu_ms_per_processed_frame']:.2f}" in whole
    assert report["provider"] in table


def test_a_run_that_classifies_no_cog_fails_saying_why(x_display, tiny_model):
    proc = run_cli(["bench", "--cogs", "0", "--duration", "1", "--warmup", "0.5", "--model", str(tiny_model),
                    "--no-progress", "--no-compare"])
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("toonvision: error: The bench classified no Cog") and "--cogs 0" in message
    assert "Traceback" not in proc.stderr


def test_soak_reports_memory_and_threads_over_time(x_display, tiny_model, tmp_path):
    out = tmp_path / "soak.json"
    proc = run_cli(["bench", "--soak", "0.08", "--warmup", "1", "--model", str(tiny_model), "--json", str(out),
                    "--no-progress", "--no-compare"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    soak = report["soak"]
    assert soak["minutes"] == 0.08 and report["config"]["duration_s"] == pytest.approx(4.8)
    samples = soak["samples"]
    assert len(samples) >= 3
    times = [s[0] for s in samples]
    assert times == sorted(times) and all(s[1] > 0 and s[2] >= 3 for s in samples)
    assert soak["threads_max"] == max(s[2] for s in samples) <= 64  # threads do not pile up
    assert report["comparison"] is None
    assert any(t["figure"].startswith("memory growth") for t in report["targets"])
    assert "soak 0.08 min" in proc.stdout


# python-xlib leaves the socket of a failed connect (":987" below) for the garbage collector
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_no_display_is_one_sentence_naming_xvfb(tiny_model):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = run_cli(["bench", "--model", str(tiny_model), "--duration", "1"], env=env, timeout=60)
    assert proc.returncode != 0
    message = proc.stderr.strip()
    assert message.startswith("toonvision: error: No display to capture (DISPLAY is not set)")
    assert "--xvfb" in message and "Traceback" not in message and message.count("\n") == 0
    with pytest.raises(CaptureError, match="does not answer"):
        bench.require_bench_display({"DISPLAY": ":987"})


def test_xvfb_option_starts_its_own_screen(tiny_model, tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    out = tmp_path / "r.json"
    proc = run_cli(["bench", "--xvfb", "--duration", "1.5", "--warmup", "1", "--model", str(tiny_model),
                    "--no-compare", "--no-progress", "--cogs", "3", "--full-search-every", "1", "--json", str(out)],
                   env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["frames"]["processed"] > 0 and report["config"]["cogs"] == 3
    # --full-search-every 1: the default crop stage searches every frame in turn
    assert report["config"]["proposer"] == "IncrementalProposer(full_every=1)"
    assert report["config"]["crop_stage"] == Settings().crop_stage


def test_a_missing_window_is_one_sentence(x_display, tiny_model):
    proc = run_cli(["bench", "--window", "^No Such Game Window$", "--duration", "1", "--warmup", "0.5",
                    "--model", str(tiny_model), "--no-progress"], timeout=60)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("toonvision: error: The bench processed no frame from window /^No Such Game Window$/")


@pytest.mark.parametrize("args, words", [
    (["--duration", "0"], "--duration 0.0 must be more than 0"),
    (["--cogs", "99"], "--cogs 99 is out of range"),
    (["--batch", "0"], "--batch 0 must be 1 or more"),
    (["--soak", "-1"], "--soak -1.0 must be more than 0"),
])
def test_bad_options_are_one_sentence(args, words, tiny_model, capsys):
    # in this process: the options are checked before anything starts (the CLI's own process: the tests above)
    code = main(["bench", "--model", str(tiny_model), *args])
    err = capsys.readouterr().err
    assert code != 0 and words in err and "Traceback" not in err


def test_late_search_results_still_land_on_the_cogs(tiny_model):
    """A busy machine's searches come late: here 120 ms of scene time after their frame, 20 frames a second.
    Their Cogs walked on meanwhile, so they are followed within a window grown with their age (model-
    independent: recall only).  Streets 1 and 3, 3 s: recall 0.881 with the usual window, 0.958 with it."""
    from dataclasses import replace

    from toonvision_live.classify.classifier import CogClassifier
    from toonvision_live.pipeline import Tuning
    from toonvision_live.tools.bench.livelike import LiveLikeOptions, replay_live_like
    from toonvision_live.tools.replay import Score

    classifier = CogClassifier(tiny_model, ["cpu"])
    options = LiveLikeOptions(seeds=(1, 3), seconds=3.0, grab_fps=20.0, delay_s=0.12)
    score = Score(**{k: v for k, v in replay_live_like(classifier, replace(Tuning(), adaptive=False), options)[
        "score"].items() if k in ("cogs_on_screen", "found")})
    assert score.cogs_on_screen >= 400
    assert score.recall >= 0.93, score.recall


def test_a_negative_search_delay_is_one_sentence(tiny_model, capsys):
    from toonvision_live.cli import main

    assert main(["bench", "--replay", "--search-delay", "-1", "--model", str(tiny_model)]) != 0
    err = capsys.readouterr().err
    assert "--search-delay -1.0 must be 0 or more seconds" in err and "Traceback" not in err


def test_missing_model_is_a_model_error(x_display, tmp_path):
    proc = run_cli(["bench", "--model", str(tmp_path / "nope.onnx"), "--duration", "1"], timeout=60)
    assert proc.returncode != 0 and "nope.onnx is missing" in proc.stderr


# ---- pure parts ---------------------------------------------------------------------------------


def test_percentiles_table():
    stats = bench.percentiles(np.arange(1, 101, dtype=float))
    assert stats["n"] == 100 and stats["min"] == 1 and stats["max"] == 100
    assert stats["p50"] == pytest.approx(50.5) and stats["p95"] == pytest.approx(95.05)
    assert bench.percentiles([])["n"] == 0
    assert bench.percentiles([np.nan, 2.0])["n"] == 1


def test_linear_slope():
    t = np.arange(10.0)
    assert bench.linear_slope(t, 3 * t + 1) == pytest.approx(3.0)
    assert bench.linear_slope([1.0], [5.0]) == 0.0


def test_parse_size_wh():
    assert parse_size_wh("1280x720") == (1280, 720)
    for bad in ("big", "10x10", "1280"):
        with pytest.raises(Exception, match="1280x720|outside"):
            parse_size_wh(bad)


def test_keras_model_is_found_from_the_card(tmp_path, tiny_model):
    from toonvision_live.model_card import load_card

    card = load_card(tiny_model)
    path, note = bench.find_keras_model(tiny_model, card, None)
    assert path is None and "records no Keras model" in note
    raw = dict(card.raw, model={"keras_file": "trained.keras", "params": 123})
    fake_card = type(card)(raw=raw, path=card.path)
    path, note = bench.find_keras_model(tiny_model, fake_card, None)
    assert path is None and "trained.keras" in note and "not beside" in note
    spec = {"filters": [4, 8], "dense_units": 8, "dropout": 0.1, "learning_rate": 0.01}
    with_spec = type(card)(raw=dict(raw, model={"keras_file": "trained.keras", "params": 123, "spec": spec}),
                           path=card.path)
    path, note = bench.find_keras_model(tiny_model, with_spec, None)
    assert path == spec and "rebuilt from its card" in note  # the Keras row works without the file
    keras_file = tiny_model.parent / "trained.keras"
    keras_file.write_bytes(b"placeholder: only its presence is checked here")
    try:
        assert bench.find_keras_model(tiny_model, fake_card, None) == (keras_file, "")
    finally:
        keras_file.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        bench.find_keras_model(tiny_model, card, tmp_path / "missing.keras")
    assert bench.model_facts(tiny_model, fake_card)["params"] == 123


def test_a_new_label_counts_from_its_grab_to_the_first_paint_that_shows_it() -> None:
    """The overlay paints only the newest of several results, so a frame's new label is shown by a
    later frame's paint; a label with no paint after it is not counted."""
    from toonvision_live.tools.bench.session import first_label_latency
    from toonvision_live.tools.bench.stats import FrameLog

    col = {name: i for i, name in enumerate(FrameLog.COLS)}
    rows = np.full((4, len(FrameLog.COLS)), np.nan)
    rows[:, col["grab_start"]] = [0.0, 0.010, 0.020, 0.030]
    rows[:, col["painted_at"]] = [0.005, np.nan, 0.035, np.nan]  # frame 1 is shown by frame 2's paint
    rows[:, col["new_labels"]] = [1, 2, 0, 1]
    assert first_label_latency(rows, col).round(3).tolist() == [5.0, 25.0, 25.0]


def test_replay_times_the_worker_and_searches_without_a_screen(tiny_model, tmp_path):
    """--replay: the demo streets handed to the worker as live grabs would be (no display needed);
    CPU per frame of the worker and the searches, and the replay's scores, for now and the baseline."""
    out = tmp_path / "replay.json"
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = run_cli(["bench", "--replay", "--duration", "0.3", "--baseline", "--model", str(tiny_model),
                    "--no-reader", "--versus", "nametags", "--json", str(out)], env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    now, before = report["now"], report["baseline"]
    # the default crop stage, as live (the baseline keeps the nametag search); --versus: another one beside it
    assert report["options"]["crop_stage"] == Settings().crop_stage
    assert report["versus"]["crop_stage"] == "nametags" and report["versus"]["frames"] == now["frames"]
    assert report["cpu_ratio_versus_over_new"] > 0 and "tag_visible" in now["score"]
    assert now["frames"] == before["frames"] == 8 * 36  # 8 streets, 0.3 s at 120 grabs a second
    assert now["worker_cpu_ms_per_frame"] > 0 and now["search_cpu_ms_per_frame"] > 0
    assert before["searches"] > now["searches"] > 0  # 30 searches a second before, at most 8 now
    assert before["crops_per_frame"] > now["crops_per_frame"]
    assert now["score"]["cogs_on_screen"] == before["score"]["cogs_on_screen"] > 0
    assert report["cpu_ratio_baseline_over_new"] > 0
    assert "replayed as live" in proc.stdout
