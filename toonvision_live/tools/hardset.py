"""The hard-set scorer: a crop stage's boxes against rendered ground truth, per nametag line height,
per degradation and per window size (recall, false boxes per frame, median body IoU).

Pure scoring (no rendering): each frame is a :class:`HardFrame` (its group labels, the true Cogs and the
stage's predicted body boxes).  A prediction matches a true Cog one-to-one, highest IoU first, when their
body boxes overlap with IoU >= MATCH_IOU.  Cogs more than half covered by nearer avatars, or with less
than half of their body inside the frame, are "difficult":
they count neither as found nor as missed, and a prediction matched to one is not a false box.  Rendering
the held-out scenes is training/detector/hardset.py (``toonvision hardset``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from toonvision_live.geometry import greedy_matches, iou_matrix

MATCH_IOU = 0.5
DIFFICULT_COVERED = 0.5
#: nametag line-height buckets in frame pixels: [lo, hi)
LINE_BUCKETS: tuple[tuple[float, float], ...] = ((3, 4), (4, 6), (6, 8), (8, 12), (12, 24), (24, float("inf")))

XYXYF = tuple[float, float, float, float]


def bucket_name(lo: float, hi: float) -> str:
    return f"{lo:g}+" if hi == float("inf") else f"{lo:g}-{hi:g}"


def line_bucket(line_px: float) -> str | None:
    for lo, hi in LINE_BUCKETS:
        if lo <= line_px < hi:
            return bucket_name(lo, hi)
    return None  # below 3 px: not scored by bucket


@dataclass(frozen=True, slots=True)
class TrueCog:
    body_xyxy: XYXYF
    line_px: float
    covered: float = 0.0
    visible: float = 1.0  # share of the whole body inside the frame

    @property
    def difficult(self) -> bool:
        return self.covered > DIFFICULT_COVERED or self.visible < 1 - DIFFICULT_COVERED


@dataclass(frozen=True, slots=True)
class HardFrame:
    groups: tuple[str, ...]  # e.g. ("degradation:jpeg", "size:1280x720", "kind:cogs")
    truths: tuple[TrueCog, ...]
    predictions: tuple[XYXYF, ...]


@dataclass(slots=True)
class Tally:
    found: int = 0
    missed: int = 0
    false_boxes: int = 0
    frames: int = 0
    ious: list[float] = field(default_factory=list)

    @property
    def recall(self) -> float | None:
        n = self.found + self.missed
        return self.found / n if n else None

    def as_dict(self) -> dict:
        return {"found": self.found, "missed": self.missed, "recall": self.recall, "frames": self.frames,
                "false_boxes": self.false_boxes,
                "false_per_frame": self.false_boxes / self.frames if self.frames else None,
                "median_body_iou": float(np.median(self.ious)) if self.ious else None}


def score_frame(frame: HardFrame) -> tuple[list[tuple[TrueCog, float | None]], int]:
    """Each scored (not difficult) truth with its matched IoU (None: missed), and the false boxes."""
    truths = list(frame.truths)
    preds = list(frame.predictions)
    iou = iou_matrix([t.body_xyxy for t in truths], preds) if truths and preds else None
    pairs = greedy_matches(iou, MATCH_IOU) if iou is not None else []
    matched_t = {r: c for r, c in pairs}
    matched_p = {c for _, c in pairs}
    scored: list[tuple[TrueCog, float | None]] = []
    for i, t in enumerate(truths):
        if t.difficult:
            continue
        scored.append((t, float(iou[i, matched_t[i]]) if i in matched_t and iou is not None else None))
    false_boxes = len(preds) - len(matched_p)
    return scored, false_boxes


def score(frames: Iterable[HardFrame]) -> dict:
    """Tallies per group, per group x line bucket and overall: {"groups": {...}, "overall": {...}}."""
    tallies: dict[str, Tally] = {}

    def get(name: str) -> Tally:
        return tallies.setdefault(name, Tally())

    overall = Tally()
    for frame in frames:
        scored, false_boxes = score_frame(frame)
        for group in (*frame.groups, "all"):
            t = get(group)
            t.frames += 1
            t.false_boxes += false_boxes
        overall.frames += 1
        overall.false_boxes += false_boxes
        for truth, iou in scored:
            bucket = line_bucket(truth.line_px)
            names = ["all", *frame.groups]
            if bucket is not None:
                names += [f"line:{bucket}", *(f"{g}|line:{bucket}" for g in frame.groups)]
            for name in (*names, "__overall__"):
                t = overall if name == "__overall__" else get(name)
                if iou is None:
                    t.missed += 1
                else:
                    t.found += 1
                    t.ious.append(iou)
    out = {name: t.as_dict() for name, t in sorted(tallies.items())}
    return {"groups": out, "overall": overall.as_dict(), "match_iou": MATCH_IOU,
            "line_buckets": [bucket_name(lo, hi) for lo, hi in LINE_BUCKETS]}


def recall_from(result: dict, lo: float, hi: float = float("inf"), group: str = "all") -> tuple[int, int]:
    """(found, scored) in ``group`` over the line buckets inside [lo, hi) (e.g. the target's >= 6 px)."""
    found = scored = 0
    for b_lo, b_hi in LINE_BUCKETS:
        if b_lo >= lo and b_hi <= hi:
            name = f"line:{bucket_name(b_lo, b_hi)}"
            t = result["groups"].get(name if group == "all" else f"{group}|{name}")
            if t:
                found, scored = found + t["found"], scored + t["found"] + t["missed"]
    return found, scored


def summary(result: dict) -> str:
    """One line with the targets' figures: recall >= 6 px (and the worst degradation), 4-6 px, false boxes
    per frame on Cog-free and Toon-only frames, median body IoU."""
    f6, n6 = recall_from(result, 6)
    f4, n4 = recall_from(result, 4, 6)
    degs = sorted(g for g in result["groups"] if g.startswith("degradation:") and "|" not in g)
    worst = min(((recall_from(result, 6, group=g), g) for g in degs if recall_from(result, 6, group=g)[1]),
                key=lambda x: x[0][0] / x[0][1], default=None)
    neg = [result["groups"].get(f"kind:{k}", {}).get("false_per_frame") for k in ("empty", "toons_only")]
    out = f">= 6 px {100 * f6 / max(n6, 1):.1f} % ({f6} of {n6})"
    if worst is not None:
        (wf, wn), wg = worst
        out += f", worst {wg.split(':')[1]} {100 * wf / wn:.1f} %"
    out += f"; 4-6 px {100 * f4 / max(n4, 1):.1f} % ({f4} of {n4}); false/frame on negatives "
    out += " / ".join("-" if v is None else f"{v:.3f}" for v in neg)
    iou = result["groups"].get("all", {}).get("median_body_iou")
    return out + ("" if iou is None else f"; median body IoU {iou:.3f}")


def _pct(v: float | None) -> str:
    return "   -  " if v is None else f"{100 * v:5.1f}%"


def table(result: dict, prefixes: Sequence[str] = ("degradation:", "size:", "kind:")) -> str:
    """A text table: one row per group (recall per line bucket, overall recall, false/frame, median IoU)."""
    groups = result["groups"]
    buckets = result["line_buckets"]
    head = f"{'group':26s}" + "".join(f"{b:>8s}" for b in buckets) + f"{'recall':>8s}{'false/fr':>9s}{'medIoU':>8s}"
    lines = [head, "-" * len(head)]
    names = ["all"] + sorted(n for n in groups if "|" not in n and n.startswith(tuple(prefixes)))
    for name in names:
        g = groups[name]
        cells = []
        for b in buckets:
            sub = groups.get(f"line:{b}" if name == "all" else f"{name}|line:{b}")
            cells.append(f"{_pct(sub['recall']) if sub else '   -  ':>8s}")
        fpf = g["false_per_frame"]
        iou = g["median_body_iou"]
        lines.append(f"{name:26s}" + "".join(cells) + f"{_pct(g['recall']):>8s}"
                     + f"{'-' if fpf is None else f'{fpf:.3f}':>9s}" + f"{'-' if iou is None else f'{iou:.3f}':>8s}")
    return "\n".join(lines)


def to_json(result: dict) -> str:
    return json.dumps(result, indent=1, sort_keys=True)
