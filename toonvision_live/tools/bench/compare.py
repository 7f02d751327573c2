"""The comparison: the pipeline's own crops through onnxruntime batched, batch=1 and Keras ``predict``
(ToonVision's way), per crop.  Keras runs in a child process (the runtime never imports TensorFlow)
and needs the [train] extra; without the .keras file it rebuilds the card's architecture."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from toonvision_live.errors import ConfigError


def find_keras_model(model_path: Path, card: Any | None,
                     given: Path | None) -> tuple[Path | dict[str, Any] | None, str]:
    """The .keras file the ONNX model came from (``--keras-model`` or the card's ``model.keras_file``
    beside the ONNX file), else the card's architecture (``model.spec``) for the child to rebuild (the
    time of ``predict`` does not depend on the weights), and a note saying which."""
    if given is not None:
        if not given.is_file():
            raise ConfigError(f"The Keras model {given} does not exist: pass the .keras file 'train' wrote.")
        return given, ""
    raw = getattr(card, "raw", {}) or {}
    model: dict[str, Any] = raw["model"] if isinstance(raw.get("model"), dict) else {}
    name = model.get("keras_file")
    if name:
        for candidate in (model_path.parent / name, model_path.with_suffix(".keras")):
            if candidate.is_file():
                return candidate, ""
    if isinstance(model.get("spec"), dict):
        return model["spec"], (
            f"Keras rows: the architecture of {model_path.name} rebuilt from its card "
            f"({model.get('params') or '?'} params; predict takes as long whatever the weights)")
    if name:
        return None, (
            f"the card names the Keras model {name}, but it is not beside {model_path.name}; "
            "pass --keras-model FILE for the Keras row"
        )
    return None, (
        f"{model_path.name} records no Keras model (not exported by 'toonvision export'); "
        "pass --keras-model FILE for the Keras row"
    )



_KERAS_CHILD = r"""
import json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
from training.model import ModelSpec, build_model, load_keras_model
crops = np.load(sys.argv[2])
seconds = float(sys.argv[3])
batch = int(sys.argv[4])
if sys.argv[1].startswith("spec:"):  # the card's architecture rebuilt (weights do not change the time)
    model = build_model(ModelSpec.from_json(json.loads(sys.argv[1][5:])))
else:
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
                  "per_crop_cpu": cpu, "batched_cpu": cpu_b, "params": int(model.count_params()),
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


def run_comparison(classifier: Any, crops: np.ndarray, batch: int, keras_path: Path | dict[str, Any] | None,
                   note: str, seconds: float = 3.0) -> dict[str, Any]:
    """Per-crop milliseconds: onnxruntime batched, onnxruntime batch=1, Keras predict (child process).

    ``keras_path``: the .keras file, or the card's architecture (``model.spec``) to rebuild."""
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
            source = keras_path if isinstance(keras_path, Path) else "spec:" + json.dumps(keras_path)
            proc = subprocess.run(
                [sys.executable, "-c", _KERAS_CHILD, str(source), str(crops_file), str(seconds),
                 str(batch)],
                capture_output=True, text=True, timeout=600,
            )
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
        if proc.returncode == 0 and lines:
            got = json.loads(lines[-1])
            keras_info = {"keras_file": str(keras_path) if isinstance(keras_path, Path) else None,
                          "keras": got["keras"], "backend": got["backend"], "keras_params": got["params"]}
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


