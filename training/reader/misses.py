"""Contact sheets of the held-out tags a reader misses, as the reader sees them (its 40x128 input).

    python -m training.reader.misses --data TAGS [--model models/reader.onnx] --out docs/reader/misses.png

One sheet per line-height bucket (``--buckets 8-12 24-61``, default the buckets of the >= 8 px target)
of the whole test-shard tags (seed 9000) whose one read is not exact: each tile shows the input, the
line height and the truth (top) and the read (bottom).  ``--out X.png`` writes ``X_<lo>_<hi>.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from toonvision_live.classify.reader import DEPT_CLASSES, NAME_CLASSES, level_probs
from toonvision_live.fileio import write_png
from training.reader.cli import DEFAULT_OUT, tag_sheet


def miss_sheets(model: Path, data: Path, buckets: list[tuple[float, float]], per_sheet: int = 16,
                ) -> dict[tuple[float, float], np.ndarray]:
    """For each (lo, hi) bucket, the sheet of up to ``per_sheet`` missed whole tags (grey uint8)."""
    import onnxruntime as ort

    from training.reader.tags import load_tag_set
    from training.reader.train import ensure_shards, exact_reads, onnx_outputs

    test = load_tag_set(ensure_shards(data, "test", 1)[0])
    probs = onnx_outputs(ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]), test.images)
    wrong = ~exact_reads(probs, test)["exact"]
    hidden = test.hidden if test.hidden is not None else np.zeros(len(wrong), bool)
    level = level_probs(probs["tens"], probs["units"]).argmax(axis=1) + 1
    sheets = {}
    for lo, hi in buckets:
        picked = np.flatnonzero(wrong & ~hidden & (test.em >= lo) & (test.em < hi))[:per_sheet]
        captions = []
        for i in picked:
            read = (f"{NAME_CLASSES[int(probs['name'][i].argmax())]} / {DEPT_CLASSES[int(probs['dept'][i].argmax())]}"
                    f" / {level[i]}{' v2' if probs['v2'][i].argmax() else ''}")
            captions.append([f"{test.em[i]:.0f}px {test.texts[i]}"[:44], f"read: {read}"[:44]])
        if len(picked):
            sheets[(lo, hi)] = tag_sheet([test.images[i].astype(np.float32) for i in picked], captions)
    return sheets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="folder with (or for) the rendered shards")
    p.add_argument("--model", type=Path, default=DEFAULT_OUT)
    p.add_argument("--out", type=Path, required=True, help="X.png: writes X_<lo>_<hi>.png per bucket")
    p.add_argument("--buckets", nargs="+", default=["8-12", "12-24", "24-61"], help="line heights lo-hi (px)")
    args = p.parse_args()
    buckets = [(float(b.split("-")[0]), float(b.split("-")[1])) for b in args.buckets]
    for (lo, hi), sheet in miss_sheets(args.model, args.data, buckets).items():
        path = args.out.with_name(f"{args.out.stem}_{lo:g}_{hi:g}.png")
        write_png(path, np.repeat(sheet[:, :, None], 3, axis=2), overwrite=True)
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
