"""Two readers compared on the VALIDATION shard (seed 5000), each through a set of reads, tag by tag.

    python -m training.reader.paired --data TAGS --a A.onnx --b B.onnx [--reads-a R1,R2,..] [--reads-b ..]
        [--cache VAL.pkl] [--fresh 1,2] [--json X.json]

Each reader reads the whole validation tags (re-rendered from the shard's seed, as
:mod:`training.reader.tta` does) through its reads (default: the shipped ``READS``, by their
:data:`training.reader.tta.CANDIDATES` names), the heads' probabilities averaged; for the three targets
(exact >= 8 px, exact 5-8 px, level >= 6 px) and all whole tags it prints both figures and how many tags
only one of the two reads right, on all tags and on each half (tags 0-4,999 and 5,000-9,999), and the
sum of the three targets' figures (the choice).  One read of the shard's prepared inputs is scored too.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np


def shipped_reads() -> str:
    """The shipped ``READS`` by their :data:`training.reader.tta.CANDIDATES` names, comma-separated (it was a
    written-out copy that still named stage 7's five reads after stage 9 shipped with three)."""
    from toonvision_live.classify.reader import READS
    from training.reader.tta import CANDIDATES

    names = {read: name for name, read in CANDIDATES.items()}
    return ",".join(names[read] for read in READS)

#: target -> (whole tags selected by line height em, field)
TARGETS = {"ge8": (lambda em: em >= 8, "exact"), "5_8": (lambda em: (em >= 5) & (em < 8), "exact"),
           "lvl_ge6": (lambda em: em >= 6, "level"), "all_whole": (lambda em: em > 0, "exact")}


def paired(ok_a: dict[str, np.ndarray], ok_b: dict[str, np.ndarray], em: np.ndarray, whole: np.ndarray
           ) -> dict[str, Any]:
    """Per half (``all``, ``first_half``, ``second_half``) and target: n, both figures, the tags only A
    or only B reads right, and the sum of the three targets' figures (pure)."""
    n = len(em)
    halves = {"all": np.ones(n, bool), "first_half": np.arange(n) < n // 2, "second_half": np.arange(n) >= n // 2}
    out: dict[str, Any] = {}
    for half, in_half in halves.items():
        sums = {"A": 0.0, "B": 0.0}
        for target, (select, field) in TARGETS.items():
            sel = whole & in_half & select(em)
            a, b = ok_a[field][sel], ok_b[field][sel]
            row = {"n": int(sel.sum()), "A": round(float(a.mean()), 5), "B": round(float(b.mean()), 5),
                   "only_A_right": int((a & ~b).sum()), "only_B_right": int((b & ~a).sum())}
            out[f"{half}/{target}"] = row
            if target != "all_whole":
                sums["A"] += row["A"]
                sums["B"] += row["B"]
        out[f"{half}/sum_of_targets"] = {k: round(v, 5) for k, v in sums.items()}
    return out


def _indices(text: str) -> list[int]:
    """``--fresh``: validation shard indices >= 1 separated by commas (0 is the validation shard itself)."""
    try:
        out = [int(i) for i in text.split(",")]
    except ValueError:
        out = []
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of indices of at least 1 like 1,2")
    return out


def fresh_samples(indices: list[int]) -> tuple[list[Any], list[Any], Any]:
    """(patches, boxes, labels as a TagSet without images) of 10,000 fresh default-mix tags per validation shard
    index (seed 5000+i), rendered here and never stored."""
    from training.reader.seeds import shard_seed
    from training.reader.tags import TagSet, iter_tag_samples

    patches, boxes = [], []
    cols: dict[str, list] = {k: [] for k in ("name", "dept", "level", "v2", "em", "hidden")}
    for i in indices:
        for patch, box, label in iter_tag_samples(10_000, shard_seed("val", i)):
            patches.append(patch)
            boxes.append(box)
            for k in cols:
                cols[k].append(getattr(label, k))
    n = len(patches)
    labels = TagSet(np.zeros((n, 1, 1), np.float16), *(np.array(cols[k]) for k in ("name", "dept", "level", "v2")),
                    np.array(cols["em"], np.float32), ("",) * n, np.array(cols["hidden"], bool))
    return patches, boxes, labels


def main() -> None:
    import onnxruntime as ort

    from training.reader.train import exact_reads, onnx_outputs
    from training.reader.tta import CANDIDATES, mean_of, read_candidate, val_samples

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--a", type=Path, required=True)
    p.add_argument("--b", type=Path, required=True)
    p.add_argument("--reads-a", default=None, help="tta candidate names (default: the shipped READS)")
    p.add_argument("--reads-b", default=None, help="same for B")
    p.add_argument("--cache", type=Path, default=None, help="pickle of the re-rendered validation patches")
    p.add_argument("--fresh", type=_indices, default=None, metavar="I,J",
                   help="instead of the validation shard, 10,000 fresh tags per validation shard index given "
                   "(seed 5000+I; e.g. 1,2: tags no read set or checkpoint was chosen on); no one-read figures")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    args.reads_a, args.reads_b = args.reads_a or shipped_reads(), args.reads_b or shipped_reads()
    unknown = sorted({r for reads in (args.reads_a, args.reads_b) for r in reads.split(",")} - set(CANDIDATES))
    if unknown:
        p.error(f"unknown reads {', '.join(unknown)}: the names of training.reader.tta.CANDIDATES, e.g. r_as_found")
    if args.fresh:
        patches, boxes, val = fresh_samples(args.fresh)
    else:
        patches, boxes, val = val_samples(args.data, 10_000, args.cache)
    whole = ~val.hidden if val.hidden is not None else np.ones(len(val.name), bool)
    ok, one = {}, {}
    for key, model, reads in (("A", args.a, args.reads_a), ("B", args.b, args.reads_b)):
        session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
        ok[key] = exact_reads(mean_of([read_candidate(session, patches, boxes, *CANDIDATES[r])
                                       for r in reads.split(",")]), val)
        if not args.fresh:
            one[key] = exact_reads(onnx_outputs(session, val.images), val)
    out: dict[str, Any] = {"A": [str(args.a), args.reads_a], "B": [str(args.b), args.reads_b],
                           **paired(ok["A"], ok["B"], val.em, whole)}
    if one:
        out["one_read"] = paired(one["A"], one["B"], val.em, whole)
    for key, row in out.items():
        if key.startswith(("all/", "first_half/", "second_half/")):
            print(key, row, flush=True)
    if one:
        print("one read:", {k: v for k, v in out["one_read"].items() if k.startswith("all/")})
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
