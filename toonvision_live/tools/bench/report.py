"""The bench report: DESIGN.md targets, the soak summary, and the tables printed."""

from __future__ import annotations

from typing import Any

import numpy as np

from toonvision_live.tools.bench.session import STAGES, BenchOptions
from toonvision_live.tools.bench.stats import Sample, linear_slope

#: DESIGN.md "Figures we hold ourselves to" (the bench reports each against its target)
TARGET_FPS = 60.0
TARGET_P95_MS = 33.0
TARGET_CPU_MS = 12.0
TARGET_CPU_RATIO = 4.0
TARGET_FIRST_LABEL_MS = 200.0
TARGET_KERAS_RATIO = 20.0
TARGET_GROWTH_MB_10MIN = 20.0


def soak_summary(samples: list[Sample], options: BenchOptions) -> dict[str, Any]:
    """Growth of RSS and threads over the soak: first to last sample, and the fitted slope."""
    if not samples:
        return {"samples": []}
    t = np.array([s.t_s for s in samples])
    rss = np.array([s.rss_mb for s in samples])
    threads = np.array([s.threads for s in samples])
    slope_per_min = linear_slope(t, rss) * 60.0
    half = t >= t[-1] / 2
    slope_late = linear_slope(t[half], rss[half]) * 60.0
    return {
        "minutes": options.soak_minutes,
        "sample_every_s": round(float(np.median(np.diff(t))), 2) if len(t) > 1 else None,
        "rss_first_mb": float(rss[0]),
        "rss_last_mb": float(rss[-1]),
        "rss_max_mb": float(rss.max()),
        "rss_growth_mb": round(float(rss[-1] - rss[0]), 2),
        "rss_slope_mb_per_min": round(slope_per_min, 3),
        "rss_slope_second_half_mb_per_min": round(slope_late, 3),
        "extrapolated_growth_10min_mb": round(max(slope_per_min, slope_late) * 10.0, 2),
        "threads_first": int(threads[0]),
        "threads_last": int(threads[-1]),
        "threads_max": int(threads.max()),
        "samples": [[s.t_s, s.rss_mb, s.threads] for s in samples],
    }


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Each DESIGN.md figure the report measures, with its target and whether it is met."""
    out = []
    cfg = report["config"]
    scene_is_target = cfg["resolution"] == [1280, 720] and cfg.get("cogs") == 8
    cpu = report["cpu"]["process_cpu_ms_per_processed_frame"]
    out.append({"figure": "CPU ms per processed frame, whole process (1280x720, 8 Cogs)",
                "target": f"<= {TARGET_CPU_MS:g}", "measured": cpu, "met": cpu <= TARGET_CPU_MS,
                "same_scene_as_target": scene_is_target})
    base = report.get("baseline")
    if base:
        ratio = report["cpu_ratio_baseline_over_new"]
        out.append({"figure": "CPU per frame, before (--baseline) / now, same run",
                    "target": f">= {TARGET_CPU_RATIO:g}x", "measured": ratio, "met": ratio >= TARGET_CPU_RATIO,
                    "same_scene_as_target": scene_is_target})
    first = report["first_label_ms"]
    out.append({"figure": "new track -> its label painted p95 (ms)", "target": f"<= {TARGET_FIRST_LABEL_MS:g}",
                "measured": first["p95"], "met": None if first["n"] == 0 else first["p95"] <= TARGET_FIRST_LABEL_MS})
    appear = report.get("appear_ms") or {}
    if appear.get("appearances"):
        out.append({"figure": "Cog comes on screen -> its right label painted p95 (ms)",
                    "target": f"<= {TARGET_FIRST_LABEL_MS:g}", "measured": appear.get("p95"),
                    "met": None if "p95" not in appear else appear["p95"] <= TARGET_FIRST_LABEL_MS})
    fps = report["frames"]["processed_fps"]
    out.append({"figure": "processed frames/s (1280x720, 8 Cogs)", "target": f">= {TARGET_FPS:g}",
                "measured": fps, "met": fps >= TARGET_FPS, "same_scene_as_target": scene_is_target})
    p95 = report["latency_ms"]["p95"]
    out.append({"figure": "capture->overlay latency p95 (ms)", "target": f"<= {TARGET_P95_MS:g}",
                "measured": p95, "met": 0 < p95 <= TARGET_P95_MS, "same_scene_as_target": scene_is_target})
    comparison = report.get("comparison") or {}
    ratio = comparison.get("onnx_batched_speedup_vs_keras_predict")
    out.append({"figure": "onnxruntime batched vs Keras predict per crop",
                "target": f">= {TARGET_KERAS_RATIO:g}x",
                "measured": ratio, "met": None if ratio is None else ratio >= TARGET_KERAS_RATIO})
    soak = report.get("soak")
    if soak and soak.get("samples"):
        growth = soak["extrapolated_growth_10min_mb"]
        out.append({"figure": "memory growth over 10 minutes (MB, extrapolated)",
                    "target": f"<= {TARGET_GROWTH_MB_10MIN:g}", "measured": growth,
                    "met": growth <= TARGET_GROWTH_MB_10MIN})
    return out


def render_report(report: dict[str, Any], console: Any) -> None:
    """The report as rich tables."""
    console.print(_head_table(report))
    console.print(_cpu_table(report))
    console.print(_stage_table(report))
    comp = report.get("comparison")
    if comp:
        console.print(_comparison_table(comp))
        if comp.get("note"):
            console.print(f"note: {comp['note']}")
    soak = report.get("soak")
    if soak and soak.get("samples"):
        console.print(
            f"soak {soak['minutes']:g} min: RSS {soak['rss_first_mb']:.1f} -> {soak['rss_last_mb']:.1f} MB "
            f"(max {soak['rss_max_mb']:.1f}), slope {soak['rss_slope_mb_per_min']:+.3f} MB/min "
            f"(second half {soak['rss_slope_second_half_mb_per_min']:+.3f}), 10-min extrapolation "
            f"{soak['extrapolated_growth_10min_mb']:+.1f} MB; threads {soak['threads_first']} -> "
            f"{soak['threads_last']} (max {soak['threads_max']})"
        )
    console.print(_targets_table(report))


def _head_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    f, cfg, m, mc = report["frames"], report["config"], report["model"], report["machine"]
    head = Table(title="toonvision bench", show_header=False, title_justify="left")
    head.add_column("what", style="bold")
    head.add_column("value")
    head.add_row("source", str(cfg["source"]))
    head.add_row("provider", report["provider"])
    params = f", {m['params']:,} params" if m.get("params") else ""
    size = f"{m['size_bytes'] / 1024:.0f} KiB" if m.get("size_bytes") else "?"
    head.add_row("model", f"{m['file']} ({size}{params})")
    head.add_row("machine", f"{mc['cpu']}, {mc['logical_cores']} cores, {mc['os']}, Python {mc['python']}, "
                 f"onnxruntime {mc['onnxruntime']}, load {mc.get('load_average_1m_at_start')}, "
                 f"compositor {'yes' if mc.get('compositor') else 'no'}")
    head.add_row("run", f"{f['seconds']:.1f} s measured after {cfg['warmup_s']:g} s warm-up, "
                 f"batch {cfg['batch']}, proposer {cfg['proposer']}, "
                 f"capture cap {cfg['fps_cap']:g} fps, CPU hogs {cfg['cpu_load_processes']}")
    head.add_row("frames", f"captured {f['captured']} ({f['capture_fps']:.1f}/s), processed {f['processed']} "
                 f"({f['processed_fps']:.1f}/s), dropped {f['dropped']}, painted {f['painted']} "
                 f"({f['painted_fps']:.1f}/s)")
    head.add_row("crops", f"{f['crops']} classified ({f['crops_per_s']:.1f}/s, {f['crops_per_frame']:.2f}/frame)")
    if f.get("degraded_at_end") or f.get("rate_changes"):
        head.add_row("rates", f"{f['rate_changes']} change(s); at the end: {f['degraded_at_end'] or 'full rate'}")
    mem = report["memory"]
    head.add_row("memory", f"RSS start {mem['rss_start_mb']:.0f} MB, peak {mem['rss_peak_mb']:.0f} MB, "
                 f"final {mem['rss_final_mb']:.0f} MB")
    return head


def _cpu_table(report: dict[str, Any]) -> Any:
    """CPU ms per processed frame, whole process and per thread group (and the --baseline run's)."""
    from rich.table import Table

    runs = [("now", report)] + ([("before (--baseline)", report["baseline"])] if report.get("baseline") else []) \
        + ([(f"{report['versus']['crop_stage']} (--versus)", report["versus"])] if report.get("versus") else [])
    table = Table(title="CPU per processed frame (ms)", title_justify="left")
    table.add_column("")
    for name, _ in runs:
        table.add_column(name, justify="right")
    table.add_row("[bold]whole process[/]",
                  *(f"{r['cpu']['process_cpu_ms_per_processed_frame']:.2f}" for _, r in runs))
    for group in report["cpu"]["thread_cpu_ms_per_processed_frame"]:
        table.add_row(f"  {group} thread(s)",
                      *(f"{r['cpu']['thread_cpu_ms_per_processed_frame'].get(group, 0.0):.2f}" for _, r in runs))
    table.add_row("processed frames/s", *(f"{r['frames']['processed_fps']:.1f}" for _, r in runs))
    table.add_row("crops classified / frame", *(f"{r['frames']['crops_per_frame']:.2f}" for _, r in runs))
    table.add_row("grab -> painted p50 / p95",
                  *(f"{r['latency_ms']['p50']:.1f} / {r['latency_ms']['p95']:.1f}" for _, r in runs))
    if any(r.get("appear_ms") for _, r in runs):
        table.add_row("Cog on screen -> right label p50 / p95", *(_appear_cell(r.get("appear_ms")) for _, r in runs))
    c = report["cpu"]
    scene = c["scene_process_percent_of_one_core"]
    table.caption = (f"bench process {c['process_percent_of_one_core']:.0f} % of one core; machine "
                     f"{c['machine_busy_percent']:.0f} % busy ({c['machine_cores']} cores)"
                     + (f"; demo street process {scene:.0f} %" if scene is not None else "")
                     + (f"; before / now: {report['cpu_ratio_baseline_over_new']:.2f}x"
                        if report.get("baseline") else "")
                     + (f"; --versus / now: {report['cpu_ratio_versus_over_new']:.2f}x"
                        if report.get("versus") else ""))
    return table


def _appear_cell(appear: dict[str, Any] | None) -> str:
    """'p50 / p95 (named of appearances)' of the on-screen -> right label figure."""
    if not appear or not appear.get("appearances"):
        return "n/a"
    times = f"{appear['p50']:.0f} / {appear['p95']:.0f}" if "p95" in appear else "-"
    return f"{times} ({appear['named']} of {appear['appearances']} named)"


def _stage_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    stages = Table(title="milliseconds per frame", title_justify="left")
    for col in ("stage", "p50", "p95", "p99", "mean", "n"):
        stages.add_column(col, justify="left" if col == "stage" else "right")
    for name in STAGES:
        s = report["stages_ms"][name]
        stages.add_row(name, *(f"{s[k]:.2f}" for k in ("p50", "p95", "p99", "mean")), str(s["n"]))
    for label, key in (("(wait in mailbox)", "wait_ms"), ("worker wall (propose..track)", "worker_wall_ms"),
                       ("worker CPU (thread time)", "worker_cpu_ms"),
                       ("new track -> label painted", "first_label_ms")):
        w = report[key]
        stages.add_row(label, *(f"{w[k]:.2f}" for k in ("p50", "p95", "p99", "mean")), str(w["n"]))
    lat = report["latency_ms"]
    stages.add_row("[bold]grab -> overlay painted[/]", f"{lat['p50']:.2f}", f"{lat['p95']:.2f}",
                   f"{lat['p99']:.2f}", f"{lat['mean']:.2f}", str(lat["n"]))
    return stages


def _comparison_table(comp: dict[str, Any]) -> Any:
    from rich.table import Table

    table = Table(title=f"same {comp['crops']} crops, per crop", title_justify="left")
    for col in ("classifier", "ms/crop", "x onnx batched", "CPU ms/crop", "CPU x onnx batched"):
        table.add_column(col, justify="left" if col == "classifier" else "right")
    for row in comp["rows"]:
        table.add_row(row["name"], f"{row['per_crop_ms']:.3f}", f"{row['x_vs_onnx_batched']:.1f}",
                      f"{row['cpu_ms_per_crop']:.3f}", f"{row['cpu_x_vs_onnx_batched']:.1f}")
    return table


def _targets_table(report: dict[str, Any]) -> Any:
    from rich.table import Table

    tt = Table(title="targets (DESIGN.md)", title_justify="left")
    for col in ("figure", "target", "measured", "met"):
        tt.add_column(col)
    for t in report["targets"]:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "no")
        tt.add_row(t["figure"], t["target"], "n/a" if t["measured"] is None else str(t["measured"]), met)
    return tt
