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

from toonvision_live.errors import CaptureError, ConfigError
from toonvision_live.settings import parse_size_wh
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
                    "--no-progress", "--compare-seconds", "0.3"])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(out.read_text()), proc.stdout


def test_report_structure(short_run):
    report, _ = short_run
    assert report["version"] == bench.REPORT_VERSION
    assert report["provider"] == "CPUExecutionProvider"
    assert report["config"]["resolution"] == [1280, 720] and report["config"]["cogs"] == 8
    assert set(report["stages_ms"]) == set(bench.STAGES)
    for key in ("captured", "processed", "dropped", "painted", "capture_fps", "processed_fps", "crops_per_s"):
        assert key in report["frames"]
    assert report["model"]["file"].endswith("tiny.onnx") and report["model"]["size_bytes"] > 0
    machine = report["machine"]
    assert machine["logical_cores"] >= 1 and machine["onnxruntime"] and machine["python"].startswith("3.")
    assert report["machine"]["compositor"] is True  # the x_display fixture runs xcompmgr
    assert report["soak"] is None
    assert report["config"]["proposer"].startswith("BackgroundSearchProposer")  # the settings' default
    assert report["frames"]["capture_mode"] in ("on demand", "free-running")
    assert {t["figure"] for t in report["targets"]} >= {
        "processed frames/s (1280x720, 8 Cogs)", "capture->overlay latency p95 (ms)"}


def test_frame_counts_are_consistent(short_run):
    report, _ = short_run
    f = report["frames"]
    assert f["processed"] > 0 and f["painted"] > 0
    assert f["painted"] <= f["processed"] <= f["captured"]
    # frames are counted by the start of their grab in the window: a grabbed frame is processed or dropped
    assert f["processed"] + f["dropped"] == f["captured"]
    assert f["dropped"] >= 0 and f["mailbox_replaced"] >= 0
    assert f["processed_fps"] == pytest.approx(f["processed"] / f["seconds"], rel=1e-3, abs=0.01)
    assert f["capture_fps"] == pytest.approx(f["captured"] / f["seconds"], rel=1e-3, abs=0.01)
    assert f["crops_per_s"] == pytest.approx(f["crops"] / f["seconds"], rel=1e-3, abs=0.01)
    assert f["crops"] > 0  # the demo street shows Cogs with nametags


def test_percentiles_are_ordered_and_latency_covers_the_stages(short_run):
    report, _ = short_run
    for name, stats in report["stages_ms"].items():
        check_percentiles(stats, name)
        assert stats["n"] > 0
    check_percentiles(report["latency_ms"], "latency")
    # latency runs from the start of the grab to the end of the paint, stages are disjoint parts of it
    assert report["latency_minus_stage_sum_ms"]["min"] >= -0.01
    assert report["latency_ms"]["p50"] >= sum(
        report["stages_ms"][s]["min"] for s in bench.STAGES
    )
    assert report["latency_ms"]["n"] == report["frames"]["painted"]


def test_cpu_and_memory_figures(short_run):
    report, _ = short_run
    cpu, mem = report["cpu"], report["memory"]
    assert cpu["process_percent_of_one_core"] > 0
    assert 0 <= cpu["machine_busy_percent"] <= 100
    assert cpu["scene_process_percent_of_one_core"] is not None and cpu["scene_process_percent_of_one_core"] > 0
    assert 0 < mem["rss_start_mb"] <= mem["rss_peak_mb"]
    assert mem["rss_final_mb"] <= mem["rss_peak_mb"]


def test_comparison_without_keras_says_why(short_run):
    report, _ = short_run
    comp = report["comparison"]
    assert comp["crops"] > 0
    names = [r["name"] for r in comp["rows"]]
    assert names[0].startswith("onnxruntime batched") and names[1] == "onnxruntime batch=1"
    assert not any(n.startswith("Keras") for n in names)
    assert "records no Keras model" in comp["note"] and "--keras-model" in comp["note"]
    assert comp["rows"][0]["x_vs_onnx_batched"] == 1.0
    assert comp["onnx_batched_speedup_vs_keras_predict"] is None
    keras_target = next(t for t in report["targets"] if t["figure"].startswith("onnxruntime batched"))
    assert keras_target["met"] is None


def test_the_table_shows_the_json_numbers(short_run):
    report, table = short_run
    f = report["frames"]
    assert f"processed {f['processed']} ({f['processed_fps']:.1f}/s)" in table
    assert f"captured {f['captured']} ({f['capture_fps']:.1f}/s)" in table
    lat = report["latency_ms"]
    row = next(line for line in table.splitlines() if "grab -> overlay painted" in line)
    assert f"{lat['p50']:.2f}" in row and f"{lat['p95']:.2f}" in row and f"{lat['p99']:.2f}" in row
    for name in bench.STAGES:
        stats = report["stages_ms"][name]
        line = next(line for line in table.splitlines() if re.match(rf"^[│┃]\s*{name}\s+[│┃]", line))
        assert f"{stats['p50']:.2f}" in line and f"{stats['p99']:.2f}" in line
    assert report["provider"] in table


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
    rss = [s[1] for s in samples]
    assert soak["rss_growth_mb"] == pytest.approx(rss[-1] - rss[0], abs=0.02)
    assert soak["rss_max_mb"] == max(rss) and soak["threads_max"] == max(s[2] for s in samples)
    assert soak["extrapolated_growth_10min_mb"] == pytest.approx(
        10 * max(soak["rss_slope_mb_per_min"], soak["rss_slope_second_half_mb_per_min"]), abs=0.05)
    assert report["comparison"] is None
    assert any(t["figure"].startswith("memory growth") for t in report["targets"])
    assert "soak 0.08 min" in proc.stdout


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
    assert report["config"]["proposer"] == "propose_cog_boxes"  # --full-search-every 1: every frame


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
def test_bad_options_are_one_sentence(args, words, tiny_model):
    proc = run_cli(["bench", "--model", str(tiny_model), *args], timeout=60)
    assert proc.returncode != 0 and words in proc.stderr and "Traceback" not in proc.stderr


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
    keras_file = tiny_model.parent / "trained.keras"
    keras_file.write_bytes(b"placeholder: only its presence is checked here")
    try:
        assert bench.find_keras_model(tiny_model, fake_card, None) == (keras_file, "")
    finally:
        keras_file.unlink()
    with pytest.raises(ConfigError, match="does not exist"):
        bench.find_keras_model(tiny_model, card, tmp_path / "missing.keras")
    assert bench.model_facts(tiny_model, fake_card)["params"] == 123
