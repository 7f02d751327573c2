"""``toonvision bench``: the real pipeline, timed, on the demo street (or a live game window).

What runs is exactly what ``toonvision demo`` runs: mss captures the demo window (drawn by a
child process, as the game would be: its CPU is reported apart), the crop stage proposes and
crops, onnxruntime classifies, the tracker smooths and the real Qt overlay paints on top.
The bench only listens: it records each processed frame's stage times (``FrameResult.times``)
and each paint (``PaintRecord``), samples CPU, memory and threads, and after a warm-up counts
frames over ``--duration`` seconds.

Figures:

- capture / processed / painted FPS.  Frames are counted by the start of their grab inside the
  measured window, so painted <= processed <= captured, and dropped = captured - processed (grabbed
  but never processed: replaced unread in the one-slot mailbox, or still in flight at the end);
- per-stage milliseconds p50/p95/p99 (grab, propose, preprocess, inference, track, paint);
- end-to-end latency from the START of the grab to the end of the overlay's paint, so for
  every painted frame latency >= grab + propose + preprocess + inference + track + paint;
- a comparison on the same crops (taken from the last processed frames): onnxruntime batched,
  onnxruntime batch=1 and Keras ``model.predict`` per crop (ToonVision's way).  Keras runs in
  a child process (this runtime package never imports TensorFlow) and needs the [train] extra
  and the .keras file the ONNX model was exported from.
- ``--soak MINUTES``: RSS and thread counts sampled over the run, growth and its slope.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toonvision_live.demo.xscreen import VirtualScreen
from toonvision_live.errors import CaptureError, ConfigError, ModelError
from toonvision_live.settings import parse_size_wh

log = logging.getLogger(__name__)

REPORT_VERSION = 1
STAGES = ("grab", "propose", "preprocess", "inference", "track", "paint")
#: DESIGN.md "Figures we hold ourselves to" (the bench reports each against its target)
TARGET_FPS = 60.0
TARGET_P95_MS = 30.0
TARGET_KERAS_RATIO = 20.0
TARGET_GROWTH_MB_10MIN = 20.0
MB = 1024.0 * 1024.0


# ---- pure helpers ------------------------------------------------------------------------------


def percentiles(values: Any) -> dict[str, float | int]:
    """{n, mean, min, p50, p95, p99, max} of ``values`` in their unit (zeros when there are none)."""
    arr = np.asarray(values, np.float64)
    arr = arr[np.isfinite(arr)]
    if arr.size == 0:
        return {"n": 0, "mean": 0.0, "min": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {
        "n": int(arr.size),
        "mean": round(float(arr.mean()), 3),
        "min": round(float(arr.min()), 3),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(arr.max()), 3),
    }


def linear_slope(t_s: Any, values: Any) -> float:
    """Least-squares slope of ``values`` against ``t_s`` (units per second; 0 for < 2 points)."""
    t, v = np.asarray(t_s, np.float64), np.asarray(values, np.float64)
    if t.size < 2 or np.ptp(t) == 0:
        return 0.0
    return float(np.polyfit(t, v, 1)[0])




def machine_facts() -> dict[str, Any]:
    """CPU model, cores, OS, Python and library versions, load average."""
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    facts: dict[str, Any] = {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "physical_cores": psutil.cpu_count(logical=False),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
    }
    for name in ("onnxruntime", "numpy", "cv2", "mss", "PyQt6.QtCore"):
        try:
            module = __import__(name, fromlist=["_"])
            version = getattr(module, "__version__", None) or getattr(module, "PYQT_VERSION_STR", "?")
        except ImportError:
            version = None
        facts[name.split(".")[0].lower() if name != "cv2" else "opencv"] = version
    if hasattr(os, "getloadavg"):
        facts["load_average_1m_at_start"] = round(os.getloadavg()[0], 2)
    return facts


def model_facts(model_path: Path, card: Any | None) -> dict[str, Any]:
    raw = getattr(card, "raw", {}) or {}
    model = raw.get("model", {}) if isinstance(raw.get("model"), dict) else {}
    return {
        "file": str(model_path),
        "size_bytes": model_path.stat().st_size if model_path.is_file() else None,
        "params": model.get("params"),
        "keras_file": model.get("keras_file"),
        "created": raw.get("created"),
        "opset": (raw.get("onnx") or {}).get("opset") if isinstance(raw.get("onnx"), dict) else None,
    }


def find_keras_model(model_path: Path, card: Any | None, given: Path | None) -> tuple[Path | None, str]:
    """The .keras file the ONNX model came from (``--keras-model`` or the card's ``model.keras_file``
    beside the ONNX file), and a note when there is none."""
    if given is not None:
        if not given.is_file():
            raise ConfigError(f"The Keras model {given} does not exist: pass the .keras file 'train' wrote.")
        return given, ""
    raw = getattr(card, "raw", {}) or {}
    name = (raw.get("model") or {}).get("keras_file") if isinstance(raw.get("model"), dict) else None
    if name:
        for candidate in (model_path.parent / name, model_path.with_suffix(".keras")):
            if candidate.is_file():
                return candidate, ""
        return None, (
            f"the card names the Keras model {name}, but it is not beside {model_path.name}; "
            "pass --keras-model FILE for the Keras row"
        )
    return None, (
        f"{model_path.name} records no Keras model (not exported by 'toonvision export'); "
        "pass --keras-model FILE for the Keras row"
    )


# ---- the screen: an X display, or our own Xvfb (toonvision_live.demo.xscreen) ---------------------


def require_bench_display(environ: dict[str, str] | None = None) -> None:
    """One sentence (CaptureError) when no X display answers, naming --xvfb (before Qt is imported)."""
    from toonvision_live.commands import require_display

    env = os.environ if environ is None else environ
    try:
        require_display(dict(env))
    except CaptureError:
        display = env.get("DISPLAY", "")
        where = f"the display '{display}' does not answer" if display else "DISPLAY is not set"
        raise CaptureError(
            f"No display to capture ({where}): toonvision bench times a real window on screen, so run it "
            "in a desktop session or pass --xvfb to start its own virtual screen."
        ) from None


# ---- child processes: the demo street (the "game") and CPU hogs --------------------------------

_SCENE_CHILD = r"""
import sys
from PyQt6.QtWidgets import QApplication
from toonvision_live.demo.window import DemoWindow, load_street_scene
w, h, cogs, seed, fps, x, y = (float(v) for v in sys.argv[1:8])
app = QApplication(["toonvision-bench-scene"])
window = DemoWindow(load_street_scene((int(w), int(h)), int(cogs), int(seed)), fps=fps)
window.move(int(x), int(y))
window.show()
window.start()
app.processEvents()
print("ready", flush=True)
app.exec()
"""

_HOG_CHILD = "while True:\n    pass\n"


def start_scene_process(size_wh: tuple[int, int], cogs: int, seed: int, fps: float) -> subprocess.Popen:
    """The demo street window in its own process (like the game); returns once it is on screen."""
    args = [sys.executable, "-c", _SCENE_CHILD, *(str(v) for v in (*size_wh, cogs, seed, fps, 0, 0))]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if line.strip() != "ready":
        proc.kill()
        _, err = proc.communicate(timeout=10)
        tail = (err or "").strip().splitlines()[-1:] or ["no output"]
        raise CaptureError(f"The demo street window did not open ({tail[0]}); check the display and assets.")
    return proc


def stop_process(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


# ---- recording ---------------------------------------------------------------------------------


class FrameLog:
    """Per-frame figures in preallocated arrays (a ring once full), so recording does not grow memory.

    Columns: frame_id, grab_start, grab, wait, propose, preprocess, inference, track (ms), crops,
    and, once painted, paint (ms) and painted_at.
    """

    SLOTS = 4096  # frames between a result and its paint, at most
    COLS = ("frame_id", "grab_start", "grab", "wait", "propose", "preprocess", "inference", "track",
            "crops", "paint", "painted_at", "worker_cpu")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(64, capacity)
        self.data = np.full((self.capacity, len(self.COLS)), np.nan)  # touched now: RSS counted up front
        # frame id -> row, in fixed arrays (a dict would grow by ~100 bytes a frame during a soak)
        self._slot_frame = np.full(self.SLOTS, -1, np.int64)
        self._slot_row = np.zeros(self.SLOTS, np.int64)
        self._next = 0
        self._lock = threading.Lock()
        self.recent: deque = deque(maxlen=4)  # the last FrameResults with proposals (for comparison crops)

    def add_result(self, result: Any, worker_cpu_ms: float) -> None:
        t = result.times
        frame = result.frame
        row = (frame.frame_id, frame.grab_time - frame.grab_s, t.grab_ms, t.wait_ms, t.propose_ms,
               t.preprocess_ms, t.inference_ms, t.track_ms, len(result.proposals), np.nan, np.nan,
               worker_cpu_ms)
        with self._lock:
            i = self._next % self.capacity
            self.data[i] = row
            slot = frame.frame_id % self.SLOTS
            self._slot_frame[slot], self._slot_row[slot] = frame.frame_id, i
            self._next += 1
        if result.proposals:
            self.recent.append(result)

    def add_paint(self, record: Any) -> None:
        slot = record.frame_id % self.SLOTS
        with self._lock:
            if self._slot_frame[slot] == record.frame_id:
                i = int(self._slot_row[slot])
                if self.data[i, 0] == record.frame_id:  # not overwritten since (ring)
                    self.data[i, 9] = record.paint_ms
                    self.data[i, 10] = record.painted_at

    def rows(self) -> np.ndarray:
        with self._lock:
            n = min(self._next, self.capacity)
            return self.data[:n].copy()


class GrabLog:
    """Start time of every grabbed frame (processed or not), in a preallocated ring."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(64, capacity)
        self.start = np.full(self.capacity, np.nan)
        self._next = 0

    def add(self, frame: Any) -> None:
        self.start[self._next % self.capacity] = frame.grab_time - frame.grab_s
        self._next += 1

    def count_between(self, t_from: float, t_to: float) -> int:
        starts = self.start[: min(self._next, self.capacity)]
        return int(np.count_nonzero((starts >= t_from) & (starts <= t_to)))


@dataclass(frozen=True, slots=True)
class Sample:
    t_s: float
    rss_mb: float
    threads: int


class Sampler:
    """RSS and thread count of this process over time."""

    def __init__(self) -> None:
        import psutil

        self.process = psutil.Process()
        self.samples: list[Sample] = []
        self.t0 = time.perf_counter()
        self.peak_rss = 0

    def sample(self) -> Sample:
        rss = self.process.memory_info().rss
        self.peak_rss = max(self.peak_rss, rss)
        s = Sample(round(time.perf_counter() - self.t0, 3), round(rss / MB, 2), self.process.num_threads())
        self.samples.append(s)
        return s


# ---- the comparison ----------------------------------------------------------------------------

_KERAS_CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from training.model import load_keras_model
crops = np.load(sys.argv[2])
seconds = float(sys.argv[3])
batch = int(sys.argv[4])
model = load_keras_model(sys.argv[1])
model.predict(crops[:1], verbose=0)
model.predict(crops[:batch], verbose=0)
def timed(fn, n_crops):
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        done += n_crops
        if time.perf_counter() - start >= seconds:
            return (1000.0 * (time.perf_counter() - start) / done, done,
                    1000.0 * (time.process_time() - cpu) / done)
one = lambda: [model.predict(c[None], verbose=0) for c in crops]
chunks = [crops[i:i + batch] for i in range(0, len(crops), batch)]
many = lambda: [model.predict(c, verbose=0) for c in chunks]
per, n, cpu = timed(one, len(crops))
per_b, n_b, cpu_b = timed(many, len(crops))
import keras
print(json.dumps({"per_crop": per, "crops": n, "batched": per_b, "batched_crops": n_b,
                  "per_crop_cpu": cpu, "batched_cpu": cpu_b,
                  "keras": keras.__version__, "backend": keras.backend.backend()}))
"""


def comparison_crops(results: Any, max_crops: int = 32) -> np.ndarray:
    """The 600x200 crops the pipeline classified in its last frames (float32 [N, 600, 200, 3])."""
    from toonvision_live.crops import CropBatcher

    batcher = CropBatcher(max(1, max_crops))
    crops: list[np.ndarray] = []
    for result in reversed(list(results)):
        room = max_crops - len(crops)
        if room <= 0:
            break
        props = list(result.proposals)[:room]
        crops.extend(batcher.crop(result.frame.rgb, props).copy())
    return np.stack(crops) if crops else np.zeros((0, 600, 200, 3), np.float32)


def _time_per_crop(fn: Any, n_crops: int, seconds: float) -> dict[str, Any]:
    """Wall and CPU (process) milliseconds per crop of calling ``fn`` for about ``seconds``."""
    fn()  # warm-up
    done, start, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        done += n_crops
        if time.perf_counter() - start >= seconds:
            return {"per_crop_ms": 1000.0 * (time.perf_counter() - start) / done,
                    "cpu_ms_per_crop": 1000.0 * (time.process_time() - cpu) / done, "crops_timed": done}


def run_comparison(classifier: Any, crops: np.ndarray, batch: int, keras_path: Path | None,
                   note: str, seconds: float = 3.0) -> dict[str, Any]:
    """Per-crop milliseconds: onnxruntime batched, onnxruntime batch=1, Keras predict (child process)."""
    n = len(crops)
    if n == 0:
        return {"crops": 0, "rows": [],
                "note": "no Cog crops were proposed during the run: nothing to compare"}
    batch = max(1, min(batch, n))
    chunks = [np.ascontiguousarray(crops[i:i + batch]) for i in range(0, n, batch)]
    batched = _time_per_crop(lambda: [classifier.run(c) for c in chunks], n, seconds)
    single = [np.ascontiguousarray(crops[i:i + 1]) for i in range(n)]
    rows = [
        {"name": f"onnxruntime batched ({batch}/batch)", **batched},
        {"name": "onnxruntime batch=1",
         **_time_per_crop(lambda: [classifier.run(c) for c in single], n, seconds)},
    ]
    batched_ms, batched_cpu = batched["per_crop_ms"], batched["cpu_ms_per_crop"]
    notes = [note] if note else []
    keras_info: dict[str, Any] = {}
    if keras_path is not None:
        with tempfile.TemporaryDirectory(prefix="toonvision-bench-") as tmp:
            crops_file = Path(tmp) / "crops.npy"
            np.save(crops_file, crops.astype(np.float32))
            proc = subprocess.run(
                [sys.executable, "-c", _KERAS_CHILD, str(keras_path), str(crops_file), str(seconds),
                 str(batch)],
                capture_output=True, text=True, timeout=600,
            )
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
        if proc.returncode == 0 and lines:
            got = json.loads(lines[-1])
            keras_info = {"keras_file": str(keras_path), "keras": got["keras"], "backend": got["backend"]}
            rows.append({"name": "Keras predict per crop (ToonVision)", "per_crop_ms": got["per_crop"],
                         "cpu_ms_per_crop": got["per_crop_cpu"], "crops_timed": got["crops"]})
            rows.append({"name": f"Keras predict batched ({batch}/batch)", "per_crop_ms": got["batched"],
                         "cpu_ms_per_crop": got["batched_cpu"], "crops_timed": got["batched_crops"]})
        else:
            err = (proc.stderr or "").strip().splitlines()
            why = "TensorFlow/Keras is not installed (the [train] extra)" if "ModuleNotFoundError" in (
                proc.stderr or "") else (err[-1] if err else f"exit {proc.returncode}")
            notes.append(f"Keras row skipped: {why}")
    for row in rows:
        row["x_vs_onnx_batched"] = round(row["per_crop_ms"] / batched_ms, 2) if batched_ms > 0 else None
        row["cpu_x_vs_onnx_batched"] = (
            round(row["cpu_ms_per_crop"] / batched_cpu, 2) if batched_cpu > 0 else None
        )
        row["per_crop_ms"] = round(row["per_crop_ms"], 4)
        row["cpu_ms_per_crop"] = round(row["cpu_ms_per_crop"], 4)
    out: dict[str, Any] = {"crops": n, "batch": batch, "seconds_per_row": seconds, "rows": rows, **keras_info}
    keras_row = next((r for r in rows if r["name"].startswith("Keras predict per crop")), None)
    out["onnx_batched_speedup_vs_keras_predict"] = (
        round(keras_row["per_crop_ms"] / batched_ms, 1) if keras_row and batched_ms > 0 else None
    )
    out["onnx_batched_cpu_speedup_vs_keras_predict"] = (
        round(keras_row["cpu_ms_per_crop"] / batched_cpu, 1) if keras_row and batched_cpu > 0 else None
    )
    out["note"] = "; ".join(notes)
    return out


# ---- the run -----------------------------------------------------------------------------------


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

    @property
    def measure_s(self) -> float:
        return self.soak_minutes * 60.0 if self.soak_minutes else self.duration_s


def _summarise(rows: np.ndarray, t_from: float, t_to: float) -> dict[str, Any]:
    col = {name: i for i, name in enumerate(FrameLog.COLS)}
    in_window = rows[(rows[:, col["grab_start"]] >= t_from) & (rows[:, col["grab_start"]] <= t_to)]
    stages = {name: percentiles(in_window[:, col[name]]) for name in STAGES if name != "paint"}
    painted = in_window[np.isfinite(in_window[:, col["painted_at"]])]
    stages["paint"] = percentiles(painted[:, col["paint"]])
    latency = (painted[:, col["painted_at"]] - painted[:, col["grab_start"]]) * 1000.0
    stage_sum = painted[:, [col[s] for s in STAGES]].sum(axis=1)
    worker_wall = in_window[:, [col[s] for s in ("propose", "preprocess", "inference", "track")]].sum(axis=1)
    return {
        "stages_ms": stages,
        "worker_wall_ms": percentiles(worker_wall),
        "worker_cpu_ms": percentiles(in_window[:, col["worker_cpu"]]),
        "wait_ms": percentiles(in_window[:, col["wait"]]),
        "latency_ms": percentiles(latency),
        "latency_minus_stage_sum_ms": percentiles(latency - stage_sum),
        "painted": int(len(painted)),
        "crops": int(np.nansum(in_window[:, col["crops"]])),
        "processed": int(len(in_window)),
    }


def run_bench(options: BenchOptions) -> dict[str, Any]:
    """Run the pipeline as configured and return the report (a JSON-able dict)."""
    import psutil
    from PyQt6.QtWidgets import QApplication

    from toonvision_live.capture.window import x11_compositor_running
    from toonvision_live.classify.classifier import CogClassifier, providers_for
    from toonvision_live.demo.window import DEMO_WINDOW_PATTERN
    from toonvision_live.model_card import default_model_path
    from toonvision_live.settings import load_settings

    model_path = Path(options.model) if options.model is not None else default_model_path()
    if not model_path.is_file():
        raise ModelError(
            f"The model file {model_path} is missing: train and export one, or pass --model PATH."
        )
    overrides: dict[str, Any] = {
        "window": options.window or DEMO_WINDOW_PATTERN,
        "model": str(model_path),
        "provider": options.provider,
        "batch_size": options.batch,
        "fps_cap": options.fps_cap,
        "dataset": tempfile.gettempdir(),
    }
    if options.full_search_every is not None:  # in-turn searches instead of the background thread
        overrides["full_search_every"] = options.full_search_every
        overrides["background_search"] = False
    settings = load_settings(overrides=overrides)
    classifier = CogClassifier(model_path, providers_for(options.provider))
    keras_path, keras_note = find_keras_model(model_path, classifier.card, options.keras_model)
    if not options.compare:
        keras_path, keras_note = None, ""

    app = QApplication.instance() or QApplication(["toonvision-bench"])
    machine = machine_facts()
    machine["compositor"] = x11_compositor_running()
    scene_proc = hogs = None
    hogs = []
    try:
        if options.window is None:
            scene_proc = start_scene_process(
                options.resolution_wh, options.cogs, options.seed, options.scene_fps
            )
        for _ in range(options.cpu_load):
            hogs.append(subprocess.Popen([sys.executable, "-c", _HOG_CHILD]))
        report = _run_session(app, settings, classifier, options, scene_proc)
    finally:
        for proc in hogs:
            stop_process(proc)
        stop_process(scene_proc)
    report["machine"] = machine
    report["model"] = model_facts(model_path, classifier.card)
    if options.compare:
        crops = comparison_crops(report.pop("_recent"))
        report["comparison"] = run_comparison(
            classifier, crops, options.batch, keras_path, keras_note, options.compare_seconds
        )
    else:
        report.pop("_recent")
        report["comparison"] = None
    report["targets"] = targets(report)
    report["process"] = {"pid": os.getpid(), "threads_now": psutil.Process().num_threads()}
    return report


def _run_session(app: Any, settings: Any, classifier: Any, options: BenchOptions,
                 scene_proc: subprocess.Popen | None) -> dict[str, Any]:
    import psutil
    from PyQt6.QtCore import QTimer

    from toonvision_live.capture.stage import ScreenSource
    from toonvision_live.ui.overlay import LiveSession, run_until_finished

    measure_s = options.measure_s
    total_s = options.warmup_s + measure_s
    log_rows = FrameLog(int(total_s * min(options.fps_cap, 1000) * 1.1) + 256)
    session = LiveSession(settings, ScreenSource.from_settings(settings), classifier, hotkeys=False)
    worker = session.pipeline.worker
    proposer = getattr(worker.propose, "__name__", None) or type(worker.propose).__name__
    if hasattr(worker.propose, "min_period_s"):
        proposer = f"{proposer}(searches on a helper thread, at most {1 / worker.propose.min_period_s:.0f}/s)"
    elif hasattr(worker.propose, "full_every"):
        proposer = f"{proposer}(full_every={worker.propose.full_every})"
    process_frame = worker.process

    def recording_process(frame: Any) -> Any:  # the worker's own method, with the result logged
        cpu0 = time.thread_time()
        result = process_frame(frame)
        log_rows.add_result(result, (time.thread_time() - cpu0) * 1000.0)
        return result

    worker.process = recording_process  # type: ignore[method-assign]
    grabs = GrabLog(log_rows.capacity)
    source = session.pipeline.capture.source
    grab_frame = source.grab

    def recording_grab() -> Any:  # the source's own grab, with every frame's start logged
        frame = grab_frame()
        if frame is not None:
            grabs.add(frame)
        return frame

    source.grab = recording_grab  # type: ignore[method-assign]
    session.overlay.on_painted.append(log_rows.add_paint)

    me = psutil.Process()
    scene_ps = psutil.Process(scene_proc.pid) if scene_proc is not None else None
    sampler = Sampler()
    state: dict[str, Any] = {}
    sample_every_s = max(1.0, measure_s / 120.0) if options.soak_minutes else 1.0

    def snapshot() -> dict[str, Any]:
        scene_cpu = None
        if scene_ps is not None:
            try:
                c = scene_ps.cpu_times()
                scene_cpu = c.user + c.system
            except psutil.Error:
                scene_cpu = None
        c = me.cpu_times()
        return {"t": time.perf_counter(), "counts": session.pipeline.counts(), "cpu": c.user + c.system,
                "scene_cpu": scene_cpu, "sys": psutil.cpu_times()}

    def begin() -> None:
        state["start"] = snapshot()
        state["soak"] = []
        state["next_sample"] = 0.0

    def end() -> None:
        state["end"] = snapshot()

    progress = None
    task = None
    if options.progress:
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        progress = Progress(
            TextColumn("[bold]bench[/] {task.description}"), BarColumn(), TextColumn("{task.fields[fps]}"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=True,
        )
        progress.start()
        task = progress.add_task("warming up", total=total_s, fps="")

    started = time.perf_counter()

    def tick() -> None:
        now = time.perf_counter()
        if "start" in state and "end" not in state:
            since = now - state["start"]["t"]
            if since >= state["next_sample"]:
                state["soak"].append(sampler.sample())
                state["next_sample"] += sample_every_s
        else:
            sampler.peak_rss = max(sampler.peak_rss, me.memory_info().rss)
        if progress is not None and task is not None:
            counts = session.pipeline.counts()
            label = "measuring" if "start" in state else "warming up"
            fps = ""
            if "start" in state:
                span = max(1e-6, now - state["start"]["t"])
                fps = f"{(counts['processed'] - state['start']['counts']['processed']) / span:.0f} fps"
            progress.update(task, completed=min(total_s, now - started), description=label, fps=fps)

    ticker = QTimer()
    ticker.timeout.connect(tick)
    ticker.start(250)
    QTimer.singleShot(int(options.warmup_s * 1000), begin)
    rss_start = me.memory_info().rss
    try:
        reason = run_until_finished(app, session, seconds=total_s, on_timeout=end)
    finally:
        ticker.stop()
        if progress is not None:
            progress.stop()
    if "end" not in state:
        end()
    if reason:
        raise CaptureError(f"The pipeline stopped during the bench: {reason}")
    if "start" not in state:
        raise CaptureError("The bench ended before its warm-up did: give it a longer --duration.")
    start, stop = state["start"], state["end"]
    span = stop["t"] - start["t"]
    counts = {k: stop["counts"][k] - start["counts"][k] for k in stop["counts"]}
    summary = _summarise(log_rows.rows(), start["t"], stop["t"])
    # frames counted by the start of their grab inside the window: processed ones are a subset of
    # the grabbed ones, painted ones a subset of the processed ones
    captured = grabs.count_between(start["t"], stop["t"])
    processed = summary["processed"]
    if processed == 0:
        waiting = session.pipeline.capture.waiting or "no frame reached the worker"
        raise CaptureError(
            f"The bench processed no frame from {settings.capture_target} ({waiting.rstrip('.')}); "
            "open that window or check --window."
        )
    import resource

    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    peak_rss = max(sampler.peak_rss, me.memory_info().rss, max_rss)
    cores = os.cpu_count() or 1
    sys_a, sys_b = start["sys"], stop["sys"]
    busy = lambda c: sum(c) - c.idle - getattr(c, "iowait", 0.0)  # noqa: E731
    sys_total = max(1e-9, sum(sys_b) - sum(sys_a))
    scene_percent = None
    if start["scene_cpu"] is not None and stop["scene_cpu"] is not None:
        scene_percent = round(100.0 * (stop["scene_cpu"] - start["scene_cpu"]) / span, 1)
    frames = {
        "seconds": round(span, 3),
        "captured": captured,
        "processed": processed,
        "dropped": captured - processed,
        "painted": summary["painted"],
        "capture_fps": round(captured / span, 2),
        "processed_fps": round(processed / span, 2),
        "painted_fps": round(summary["painted"] / span, 2),
        "crops": summary["crops"],
        "crops_per_s": round(summary["crops"] / span, 2),
        "crops_per_frame": round(summary["crops"] / processed, 2),
        "mailbox_replaced": counts["dropped"],  # the pipeline's own counter (frames replaced unread)
        "capture_mode": "on demand" if getattr(session.pipeline.capture, "on_demand", False) else "free-running",
    }
    report: dict[str, Any] = {
        "version": REPORT_VERSION,
        "config": {
            "source": (f"window /{options.window}/" if options.window else
                       f"demo street {options.resolution_wh[0]}x{options.resolution_wh[1]}, "
                       f"{options.cogs} Cogs, seed {options.seed}, redrawn at {options.scene_fps:g} fps "
                       "in its own process"),
            "resolution": list(session.last_result.frame.size_wh) if session.last_result else None,
            "cogs": options.cogs if options.window is None else None,
            "batch": options.batch,
            "provider_requested": options.provider,
            "fps_cap": options.fps_cap,
            "warmup_s": options.warmup_s,
            "duration_s": round(measure_s, 3),
            "cpu_load_processes": options.cpu_load,
            "proposer": proposer,
            "soak_minutes": options.soak_minutes,
        },
        "provider": classifier.provider,
        "frames": frames,
        "stages_ms": summary["stages_ms"],
        "wait_ms": summary["wait_ms"],
        "worker_wall_ms": summary["worker_wall_ms"],
        "worker_cpu_ms": summary["worker_cpu_ms"],
        "latency_ms": summary["latency_ms"],
        "latency_minus_stage_sum_ms": summary["latency_minus_stage_sum_ms"],
        "cpu": {
            "process_percent_of_one_core": round(100.0 * (stop["cpu"] - start["cpu"]) / span, 1),
            "process_cpu_ms_per_processed_frame": round(
                1000.0 * (stop["cpu"] - start["cpu"]) / processed, 2),
            "machine_cores": cores,
            "machine_busy_percent": round(100.0 * (busy(sys_b) - busy(sys_a)) / sys_total, 1),
            "scene_process_percent_of_one_core": scene_percent,
        },
        "memory": {
            "rss_start_mb": round(rss_start / MB, 1),
            "rss_peak_mb": round(peak_rss / MB, 1),
            "rss_final_mb": round(me.memory_info().rss / MB, 1),
        },
        "soak": soak_summary(state["soak"], options) if options.soak_minutes else None,
        "_recent": list(log_rows.recent),
    }
    return report


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


# ---- output ------------------------------------------------------------------------------------


def render_report(report: dict[str, Any], console: Any) -> None:
    """The report as rich tables."""
    from rich.table import Table

    f = report["frames"]
    head = Table(title="toonvision bench", show_header=False, title_justify="left")
    head.add_column("what", style="bold")
    head.add_column("value")
    cfg = report["config"]
    head.add_row("source", str(cfg["source"]))
    head.add_row("provider", report["provider"])
    m = report["model"]
    params = f", {m['params']:,} params" if m.get("params") else ""
    size = f"{m['size_bytes'] / 1024:.0f} KiB" if m.get("size_bytes") else "?"
    head.add_row("model", f"{m['file']} ({size}{params})")
    mc = report["machine"]
    head.add_row("machine", f"{mc['cpu']}, {mc['logical_cores']} cores, {mc['os']}, Python {mc['python']}, "
                 f"onnxruntime {mc['onnxruntime']}, load {mc.get('load_average_1m_at_start')}")
    head.add_row("run", f"{f['seconds']:.1f} s measured after {cfg['warmup_s']:g} s warm-up, "
                 f"batch {cfg['batch']}, proposer {cfg['proposer']}, "
                 f"capture cap {cfg['fps_cap']:g} fps, CPU hogs {cfg['cpu_load_processes']}")
    head.add_row("frames", f"captured {f['captured']} ({f['capture_fps']:.1f}/s), processed {f['processed']} "
                 f"({f['processed_fps']:.1f}/s), dropped {f['dropped']}, painted {f['painted']} "
                 f"({f['painted_fps']:.1f}/s)")
    head.add_row("crops", f"{f['crops']} ({f['crops_per_s']:.1f}/s, {f['crops_per_frame']:.2f}/frame)")
    c = report["cpu"]
    scene = c["scene_process_percent_of_one_core"]
    head.add_row("CPU", f"bench process {c['process_percent_of_one_core']:.0f} % of one core "
                 f"({c['process_cpu_ms_per_processed_frame']:.1f} ms CPU per processed frame); machine "
                 f"{c['machine_busy_percent']:.0f} % busy ({c['machine_cores']} cores)"
                 + (f"; demo street process {scene:.0f} %" if scene is not None else ""))
    mem = report["memory"]
    head.add_row("memory", f"RSS start {mem['rss_start_mb']:.0f} MB, peak {mem['rss_peak_mb']:.0f} MB, "
                 f"final {mem['rss_final_mb']:.0f} MB")
    console.print(head)

    stages = Table(title="milliseconds per frame", title_justify="left")
    for col in ("stage", "p50", "p95", "p99", "mean", "n"):
        stages.add_column(col, justify="left" if col == "stage" else "right")
    for name in STAGES:
        s = report["stages_ms"][name]
        stages.add_row(name, *(f"{s[k]:.2f}" for k in ("p50", "p95", "p99", "mean")), str(s["n"]))
    for label, key in (("(wait in mailbox)", "wait_ms"), ("worker wall (propose..track)", "worker_wall_ms"),
                       ("worker CPU (thread time)", "worker_cpu_ms")):
        w = report[key]
        stages.add_row(label, *(f"{w[k]:.2f}" for k in ("p50", "p95", "p99", "mean")), str(w["n"]))
    lat = report["latency_ms"]
    stages.add_row("[bold]grab -> overlay painted[/]", f"{lat['p50']:.2f}", f"{lat['p95']:.2f}",
                   f"{lat['p99']:.2f}", f"{lat['mean']:.2f}", str(lat["n"]))
    console.print(stages)

    comp = report.get("comparison")
    if comp:
        table = Table(title=f"same {comp['crops']} crops, per crop", title_justify="left")
        for col in ("classifier", "ms/crop", "x onnx batched", "CPU ms/crop", "CPU x onnx batched"):
            table.add_column(col, justify="left" if col == "classifier" else "right")
        for row in comp["rows"]:
            table.add_row(row["name"], f"{row['per_crop_ms']:.3f}", f"{row['x_vs_onnx_batched']:.1f}",
                          f"{row['cpu_ms_per_crop']:.3f}", f"{row['cpu_x_vs_onnx_batched']:.1f}")
        console.print(table)
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

    tt = Table(title="targets (DESIGN.md)", title_justify="left")
    for col in ("figure", "target", "measured", "met"):
        tt.add_column(col)
    for t in report["targets"]:
        met = "n/a" if t["met"] is None else ("yes" if t["met"] else "no")
        tt.add_row(t["figure"], t["target"], "n/a" if t["measured"] is None else str(t["measured"]), met)
    console.print(tt)


def bench_command(args: argparse.Namespace) -> int:
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
    options = BenchOptions(
        duration_s=args.duration, warmup_s=args.warmup, resolution_wh=args.resolution, cogs=args.cogs,
        batch=args.batch, provider=args.provider, model=args.model, keras_model=args.keras_model,
        window=args.window, seed=args.seed, scene_fps=args.scene_fps, fps_cap=args.fps_cap,
        soak_minutes=args.soak, cpu_load=args.cpu_load, compare=not args.no_compare,
        compare_seconds=args.compare_seconds, progress=not args.no_progress,
        full_search_every=args.full_search_every,
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
    p.add_argument("--compare-seconds", type=float, default=3.0, metavar="S",
                   help="seconds timed per comparison row (default 3)")
    p.add_argument("--no-compare", action="store_true", help="skip the onnxruntime/Keras comparison")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--xvfb", action="store_true", help="start a private Xvfb (+ xcompmgr) screen for the run")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
    p.set_defaults(handler=bench_command)
