"""Compare the nametag reader with a general OCR (rapidocr-onnxruntime) on the same tags.

    python -m training.reader.compare_ocr --reader models/reader.onnx -n 600 --json out.json

rapidocr-onnxruntime is NOT a dependency of ToonVision Live: install it by hand into the venv for
this script only (``pip install --no-deps rapidocr-onnxruntime pyclipper shapely six PyYAML tqdm``;
its own onnxruntime requirement is met by onnxruntime-gpu).  Its text is matched to the tag's closed
vocabulary (closest name, closest department, the digits after "Level", "v2.0") so both are scored
alike: exact name + department + level + v2.0, per line-height bucket, on the first N tags of the
held-out test seed (9000), plus both real tags of ../shared/data/real/sample_img0 at window scales
0.5x-3x, and CPU milliseconds per tag.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toonvision_live.classify.reader import DEPT_CLASSES, NAME_CLASSES, TagReader
from toonvision_live.fileio import read_image_rgb
from toonvision_live.find.nametags import find_nametags
from toonvision_live.taxonomy import COGS, SUITS
from training.reader.seeds import shard_seed
from training.reader.tags import iter_tag_samples
from training.reader.train import EM_BUCKETS

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
_NAMES = {**{c.name.replace(" ", "").lower(): c.key for c in COGS}, "skelecog": "skelecog"}
_DEPTS = {**{s.name.lower(): s.code for s in SUITS}, "boardbot": "boardbot"}
_DIGITS = str.maketrans({"l": "1", "I": "1", "|": "1", "i": "1", "O": "0", "o": "0", "S": "5", "B": "8", "Z": "2"})


def _closest(text: str, vocab: dict[str, str], cutoff: float = 0.6) -> str | None:
    key = re.sub(r"[^a-z]", "", text.lower())
    hit = difflib.get_close_matches(key, list(vocab), n=1, cutoff=cutoff)
    return vocab[hit[0]] if hit else None


def _rows(result: list[Any] | None) -> list[str]:
    """OCR boxes grouped into text rows, top to bottom, each row's pieces left to right."""
    if not result:
        return []
    items = sorted(((float(np.mean([p[1] for p in box])), float(min(p[0] for p in box)),
                     float(max(p[1] for p in box) - min(p[1] for p in box)), text) for box, text, _ in result))
    rows: list[list[tuple[float, str]]] = []
    last_y = -1e9
    for y, x, h, text in items:
        if rows and abs(y - last_y) < 0.5 * max(h, 1):
            rows[-1].append((x, text))
        else:
            rows.append([(x, text)])
            last_y = y
    return [" ".join(t for _, t in sorted(r)) for r in rows]


def ocr_fields(result: list[Any] | None) -> tuple[str, str, int | None, bool]:
    """(name class, dept class, level, v2) from rapidocr's result, matched to the vocabulary."""
    rows = _rows(result)
    if not rows:
        return "other", "other", None, False
    level_row = next((i for i in range(len(rows) - 1, -1, -1) if "lev" in rows[i].lower()), len(rows) - 1)
    text = rows[level_row]
    v2 = bool(re.search(r"v\s*2", text, re.IGNORECASE))
    tail = re.split(r"[Ll][eE][vV][eE]?[lL1I]?", text, maxsplit=1)[-1]
    tail = re.split(r"[vV]\s*2", tail)[0].translate(_DIGITS)
    digits = re.findall(r"\d+", tail)
    level = int(digits[0]) if digits else None
    name = _closest(rows[0], _NAMES) if level_row > 0 else None
    dept = (_closest(rows[level_row - 1], _DEPTS) or "other") if level_row >= 2 else "none"
    return name or "other", dept, level, v2


def compare(reader_path: Path, n: int) -> dict[str, Any]:
    from rapidocr_onnxruntime import RapidOCR

    engine, reader = RapidOCR(), TagReader(reader_path, ["CPUExecutionProvider"])
    rows = []
    t_ocr = t_reader = 0.0
    for patch, box, label in iter_tag_samples(n, shard_seed("test", 0)):
        x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), box[2], box[3]
        crop = np.ascontiguousarray(patch[y0:y1, x0:x1, ::-1])
        t0 = time.process_time()
        got = ocr_fields(engine(crop)[0])
        t1 = time.process_time()
        (r,) = reader.read(patch, [box])
        t2 = time.process_time()
        t_ocr, t_reader = t_ocr + t1 - t0, t_reader + t2 - t1
        truth = (NAME_CLASSES[label.name], DEPT_CLASSES[label.dept], label.level, label.v2)
        rows.append((label.em, got == truth, (r.name, r.dept, r.level, r.v2) == truth))
    em = np.array([r[0] for r in rows])
    ok = {"rapidocr": np.array([r[1] for r in rows]), "reader": np.array([r[2] for r in rows])}
    out: dict[str, Any] = {"n": n, "ms_per_tag_cpu": {"rapidocr": 1000 * t_ocr / n,
                                                      "reader_single": 1000 * t_reader / n}}
    for lo, hi in EM_BUCKETS:
        sel = (em >= lo) & (em < hi)
        scores = {k: float(v[sel].mean()) if sel.any() else None for k, v in ok.items()}
        out[f"em_{lo:g}_{hi:g}"] = {"n": int(sel.sum()), **scores}
    out["all"] = {k: float(v.mean()) for k, v in ok.items()}
    out["real_sample_img0"] = real_scales(engine, reader)
    return out


def real_scales(engine: Any, reader: TagReader) -> dict[str, Any]:
    """Both tags of sample_img0 read by each at window scales 0.5x..3x (tags found by the crop stage)."""
    truth = [("coldcaller", "sb", 1, False), ("bloodsucker", "lb", 3, False)]
    frame0 = read_image_rgb(REAL / "sample_img0.png")
    out = {}
    for scale in (0.5, 0.75, 1.0, 1.5, 2.0, 3.0):
        frame = cv2.resize(frame0, None, fx=scale, fy=scale,
                           interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        tags = sorted(find_nametags(frame), key=lambda t: t.tag_xyxy[0])
        boxes = [t.tag_xyxy for t in tags]
        ours = [(r.name, r.dept, r.level, r.v2) for r in reader.read(frame, boxes)]
        theirs = [ocr_fields(engine(np.ascontiguousarray(frame[b[1]:b[3], b[0]:b[2], ::-1]))[0]) for b in boxes]
        out[f"{scale:g}x"] = {"reader": ours == truth, "rapidocr": theirs == truth,
                              "reader_read": ours, "rapidocr_read": theirs}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reader", type=Path, default=Path("models/reader.onnx"))
    p.add_argument("-n", type=int, default=600)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    result = compare(args.reader, args.n)
    text = json.dumps(result, indent=1, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
