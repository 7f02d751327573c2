"""Figures of a bench run: percentiles, per-frame logs, memory samples and CPU per thread."""

from __future__ import annotations

import os
import platform
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

MB = 1024.0 * 1024.0
#: CPU-time groups of the process's threads, by thread name (the rest: onnxruntime's pool, Qt's helpers)
THREAD_GROUPS = {"toonvision-capture": "capture", "toonvision-inference": "worker", "nametag-search": "search",
                 "toonvision-nametag-search": "search", "MainThread": "qt"}



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





class FrameLog:
    """Per-frame figures in preallocated arrays (a ring once full), so recording does not grow memory.

    Columns: frame_id, grab_start, grab, wait, propose, preprocess, inference, track (ms), crops classified,
    and, once painted, paint (ms) and painted_at.
    """

    SLOTS = 4096  # frames between a result and its paint, at most
    COLS = ("frame_id", "grab_start", "grab", "wait", "propose", "preprocess", "inference", "track",
            "crops", "paint", "painted_at", "worker_cpu", "new_labels")

    def __init__(self, capacity: int) -> None:
        self.capacity = max(64, capacity)
        self.data = np.full((self.capacity, len(self.COLS)), np.nan)  # touched now: RSS counted up front
        # frame id -> row, in fixed arrays (a dict would grow by ~100 bytes a frame during a soak)
        self._slot_frame = np.full(self.SLOTS, -1, np.int64)
        self._slot_row = np.zeros(self.SLOTS, np.int64)
        self._next = 0
        self._lock = threading.Lock()
        self._seen: set[int] = set()
        self._seen_order: deque[int] = deque()
        self.recent: deque = deque(maxlen=4)  # the last FrameResults with proposals (for comparison crops)

    def add_result(self, result: Any, worker_cpu_ms: float) -> None:
        """An ``InferenceWorker.on_processed`` callback (worker thread)."""
        t = result.times
        frame = result.frame
        row = (frame.frame_id, frame.grab_time - frame.grab_s, t.grab_ms, t.wait_ms, t.propose_ms,
               t.preprocess_ms, t.inference_ms, t.track_ms, result.classified, np.nan, np.nan,
               worker_cpu_ms, self._new_labels(result))
        with self._lock:
            i = self._next % self.capacity
            self.data[i] = row
            slot = frame.frame_id % self.SLOTS
            self._slot_frame[slot], self._slot_row[slot] = frame.frame_id, i
            self._next += 1
        if result.proposals:
            self.recent.append(result)

    def _new_labels(self, result: Any) -> int:
        """How many tracks show a label for the first time in ``result`` (ids seen, in a bounded ring)."""
        fresh = [c.track_id for c in result.cogs if c.track_id not in self._seen]
        self._seen.update(fresh)
        self._seen_order.extend(fresh)
        while len(self._seen_order) > 4096:
            self._seen.discard(self._seen_order.popleft())
        return len(fresh)

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



def thread_cpu_seconds() -> dict[str, float]:
    """CPU seconds (user + system) each thread group of this process has used so far (Linux: per
    thread from /proc; elsewhere the whole process as "other")."""
    import psutil

    groups = {name: 0.0 for name in (*THREAD_GROUPS.values(), "other")}
    by_id = {t.native_id: THREAD_GROUPS.get(t.name, "other") for t in threading.enumerate()
             if t.native_id is not None}
    for t in psutil.Process().threads():
        groups[by_id.get(t.id, "other")] += t.user_time + t.system_time
    return groups


def cpu_split_ms_per_frame(before: dict[str, float], after: dict[str, float], frames: int) -> dict[str, float]:
    """CPU milliseconds per processed frame of each thread group between two snapshots."""
    return {name: round(1000.0 * (after[name] - before.get(name, 0.0)) / max(1, frames), 2) for name in after}
