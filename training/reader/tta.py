"""Choose the reader's test-time reads on the VALIDATION shard (seed 5000), never on the held-out test shard.

    python -m training.reader.tta --data TAGS [--model models/reader.onnx] [--max-reads 8] --json X.json

Each candidate read is a change of the tag box (fractions of its height added to x0, y0, x1, y1) and a
way of sampling it: ``round`` (the box rounded to whole pixels, as :func:`tag_input` does) or ``subpix``
(the box kept to fractions of a pixel: :func:`toonvision_live.classify.reader.tag_input` with
``subpixel=True``).  Every candidate reads the validation tags once (re-rendered from the shard's
seed); sets of reads are then scored offline by averaging their heads' probabilities, grown greedily
up to ``--max-reads`` reads, each set scored on the whole tags: exact read >= 8 px, 5-8 px, level >= 6 px.
With ``--halves`` the reads are also chosen on the first half of the validation tags only and every set
of that greedy path (and each ``--sets`` set) is checked on the other half, which the choice never saw.
"""

from __future__ import annotations

import argparse
import json
import pickle
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from toonvision_live.classify.reader import INPUT_H, INPUT_W, tag_input
from training.reader.cli import DEFAULT_OUT

#: candidate reads: name -> (box change in fractions of the box height, sampling)
CANDIDATES: dict[str, tuple[tuple[float, float, float, float], bool]] = {}
for _sub in (False, True):
    _m = "s" if _sub else "r"
    for _name, _d in {
        "as_found": (0.0, 0.0, 0.0, 0.0), "tight4": (0.04, 0.04, -0.04, -0.04), "loose4": (-0.04, -0.04, 0.04, 0.04),
        "tight8": (0.08, 0.08, -0.08, -0.08), "loose8": (-0.08, -0.08, 0.08, 0.08),
        "loose12": (-0.12, -0.12, 0.12, 0.12),
        "up3": (0.0, -0.03, 0.0, -0.03), "down3": (0.0, 0.03, 0.0, 0.03),
        "left3": (-0.03, 0.0, -0.03, 0.0), "right3": (0.03, 0.0, 0.03, 0.0),
        "ul3": (-0.03, -0.03, -0.03, -0.03), "dr3": (0.03, 0.03, 0.03, 0.03),
        "ur3": (0.03, -0.03, 0.03, -0.03), "dl3": (-0.03, 0.03, -0.03, 0.03),
        "narrow": (0.04, 0.0, -0.04, 0.0), "wide": (-0.04, 0.0, 0.04, 0.0),
        "short": (0.0, 0.04, 0.0, -0.04), "tall": (0.0, -0.04, 0.0, 0.04),
    }.items():
        CANDIDATES[f"{_m}_{_name}"] = (_d, _sub)


def val_samples(data: Path, n: int, cache: Path | None) -> tuple[list[np.ndarray], list[Any], Any]:
    """(patches, boxes, val TagSet) of the first ``n`` validation tags, re-rendered from the shard's seed."""
    from training.reader.seeds import shard_seed
    from training.reader.tags import iter_tag_samples, load_tag_set
    from training.reader.train import ensure_shards

    val = load_tag_set(ensure_shards(data, "val", 1)[0])
    if cache is not None and cache.is_file():
        with cache.open("rb") as f:
            patches, boxes = pickle.load(f)
        if len(patches) >= n:
            return patches[:n], boxes[:n], val
    patches, boxes = [], []
    for i, (patch, box, label) in enumerate(iter_tag_samples(n, shard_seed("val", 0))):
        if " / ".join(label.lines) != val.texts[i]:
            raise SystemExit("the validation shard was rendered by another version of the renderer")
        patches.append(patch)
        boxes.append(box)
    if cache is not None:
        with cache.open("wb") as f:
            pickle.dump((patches, boxes), f)
    return patches, boxes, val


def read_candidate(session: Any, patches: Sequence[np.ndarray], boxes: Sequence[Any],
                   change: tuple[float, float, float, float], subpixel: bool) -> dict[str, np.ndarray]:
    """The heads' probabilities of every tag read once through the changed box."""
    x = np.empty((len(patches), INPUT_H, INPUT_W, 1), np.float32)
    for i, (patch, box) in enumerate(zip(patches, boxes, strict=True)):
        x0, y0, x1, y1 = (float(v) for v in box)
        h = y1 - y0
        a, b, c, d = change
        tag_input(patch, (x0 + a * h, y0 + b * h, x1 + c * h, y1 + d * h), out=x[i, :, :, 0], subpixel=subpixel)
    names = [o.name for o in session.get_outputs()]
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i in range(0, len(x), 256):
        for k, v in zip(names, session.run(names, {"tag": x[i : i + 256]}), strict=True):
            parts[k].append(v)
    return {k: np.concatenate(v) for k, v in parts.items()}


def score(probs: dict[str, np.ndarray], tags: Any) -> dict[str, float]:
    from training.reader.train import bucket_metrics

    m = bucket_metrics(probs, tags)
    return {"ge8": m["em_ge_8"]["exact"], "5_8": m["em_5_8"]["exact"], "lvl_ge6": m["em_ge_6"]["level"],
            "5_6": m["em_5_6"]["exact"], "6_8": m["em_6_8"]["exact"], "all_whole": m["exact"]}


def mean_of(reads: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {k: np.mean([r[k] for r in reads], axis=0) for k in reads[0]}


def objective(s: dict[str, float]) -> float:
    """What a set of reads is chosen by: the three targets' figures together (5-8 px weighs as much)."""
    return s["ge8"] + s["5_8"] + s["lvl_ge6"]


def greedy(reads: dict[str, dict[str, np.ndarray]], tags: Any, max_reads: int, start: Sequence[str] = ()
           ) -> list[dict[str, Any]]:
    chosen = list(start)
    path = []
    if chosen:
        path.append({"reads": list(chosen), **score(mean_of([reads[c] for c in chosen]), tags)})
    while len(chosen) < max_reads:
        best: tuple[float, str, dict[str, float]] | None = None
        for name in reads:
            s = score(mean_of([reads[c] for c in [*chosen, name]]), tags)
            if best is None or objective(s) > best[0]:
                best = (objective(s), name, s)
        assert best is not None
        chosen.append(best[1])
        path.append({"reads": list(chosen), **best[2]})
        print(f"{len(chosen)} reads: {chosen[-1]:<14} " + " ".join(f"{k} {v:.4f}" for k, v in best[2].items()),
              flush=True)
    return path


def take(tags: Any, idx: np.ndarray) -> Any:
    """The tags ``idx`` of a TagSet."""
    from training.reader.tags import TagSet

    return TagSet(images=tags.images[idx], name=tags.name[idx], dept=tags.dept[idx], level=tags.level[idx],
                  v2=tags.v2[idx], em=tags.em[idx], texts=tuple(tags.texts[i] for i in idx),
                  hidden=None if tags.hidden is None else tags.hidden[idx])


def halves(reads: dict[str, dict[str, np.ndarray]], tags: Any, max_reads: int, sets: Sequence[str]
           ) -> dict[str, Any]:
    """Reads chosen greedily on the first half of the tags, each set of the path (and each of ``sets``)
    scored on both halves: the second half is what the choice never saw."""
    n = len(tags.name)
    idx = {"choose": np.arange(n // 2), "check": np.arange(n // 2, n)}
    part = {h: take(tags, i) for h, i in idx.items()}
    part_reads = {h: {c: {k: v[i] for k, v in r.items()} for c, r in reads.items()} for h, i in idx.items()}
    print(f"choosing on tags 0..{n // 2 - 1}, checking on {n // 2}..{n - 1}", flush=True)
    path = greedy(part_reads["choose"], part["choose"], max_reads)

    def both(names: Sequence[str]) -> dict[str, Any]:
        return {h: score(mean_of([part_reads[h][c] for c in names]), part[h]) for h in idx}

    out: dict[str, Any] = {"path": [{"reads": p["reads"], **both(p["reads"])} for p in path],
                           "sets": {spec: both(spec.split(",")) for spec in sets}}
    for row in [*out["path"], *({"reads": spec.split(","), **v} for spec, v in out["sets"].items())]:
        c = row["check"]
        print(f"check half {','.join(row['reads']):<48} objective {objective(c):.4f} "
              f"(choose half {objective(row['choose']):.4f}): ge8 {c['ge8']:.4f} 5_8 {c['5_8']:.4f} "
              f"lvl_ge6 {c['lvl_ge6']:.4f}", flush=True)
    return out


def main() -> None:
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, default=DEFAULT_OUT)
    p.add_argument("--n", type=int, default=10_000)
    p.add_argument("--max-reads", type=int, default=8)
    p.add_argument("--cache", type=Path, default=None, help="pickle of the re-rendered validation patches")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--candidates", nargs="+", default=None, choices=sorted(CANDIDATES),
                   help="only these candidate reads (default: all)")
    p.add_argument("--sets", nargs="+", default=(), help="also score these sets of reads (comma-separated names)")
    p.add_argument("--halves", action="store_true",
                   help="also choose on the first half of the tags and check on the second half")
    args = p.parse_args()
    t0 = time.monotonic()
    patches, boxes, val = val_samples(args.data, args.n, args.cache)
    tags = take(val, np.arange(min(args.n, len(val.name))))
    print(f"{len(patches)} validation tags in {time.monotonic() - t0:.0f} s", flush=True)
    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    names = [*(args.candidates or CANDIDATES), *(n for spec in args.sets for n in spec.split(","))]
    shipped = ["r_as_found", "r_tight4", "r_loose4"]
    reads = {name: read_candidate(session, patches, boxes, *CANDIDATES[name])
             for name in dict.fromkeys([*shipped, *names])}
    singles = {name: score(r, tags) for name, r in reads.items()}
    for name, s in singles.items():
        print(f"{name:<14} " + " ".join(f"{k} {v:.4f}" for k, v in s.items()), flush=True)
    out: dict[str, Any] = {"model": str(args.model), "n": len(patches), "singles": singles,
                           "shipped_three": score(mean_of([reads[c] for c in shipped]), tags)}
    print("shipped three:", out["shipped_three"], flush=True)
    geo = {k: np.exp(np.mean([np.log(np.maximum(reads[c][k], 1e-9)) for c in shipped], axis=0))
           for k in reads[shipped[0]]}
    out["shipped_three_geometric"] = score(geo, tags)
    out["sets"] = {spec: score(mean_of([reads[c] for c in spec.split(",")]), tags) for spec in args.sets}
    for spec, sc in out["sets"].items():
        print(spec, sc, flush=True)
    out["greedy"] = greedy(reads, tags, args.max_reads)
    out["greedy_from_shipped"] = greedy(reads, tags, args.max_reads, start=shipped)
    if args.halves:
        out["halves"] = halves(reads, tags, args.max_reads, args.sets)
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
