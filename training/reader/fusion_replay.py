"""Fusion on the demo replay: Cog accuracy of the classifier alone, the reader alone and both fused.

    python -m training.reader.fusion_replay --seeds 0-7 --json out.json [--reader models/reader.onnx]

For each demo street (:class:`~toonvision_live.demo.scene.StreetScene`, 1280x720, 8 Cogs) frames are
taken every ``1/fps`` s of scene time for ``seconds``; the Cogs that count are those of
:func:`toonvision_live.tools.replay.on_screen_cogs` (fully in view, tag inside the frame).  The
crop stage's proposals are matched to them by tag or body IoU >= 0.5; each matched Cog is classified
(body crop), read (tag crop) and fused, one frame at a time (no tracking), and each answer is
scored against the truth.  Unmatched Cogs count as wrong for all three.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from toonvision_live.classify.classifier import CogClassifier
from toonvision_live.classify.fusion import fuse
from toonvision_live.classify.reader import TagReader
from toonvision_live.crops import CropBatcher
from toonvision_live.demo.scene import StreetScene
from toonvision_live.demo.sprites import SpriteAtlas
from toonvision_live.find.nametags import propose_cog_boxes
from toonvision_live.geometry import greedy_matches, iou_matrix
from toonvision_live.model_card import default_model_path
from toonvision_live.tools.replay import on_screen_cogs


def replay_fusion(seeds: list[int], seconds: float = 5.0, fps: float = 4.0,
                  reader_path: Path | None = None) -> dict[str, Any]:
    providers = ["CPUExecutionProvider"]
    classifier = CogClassifier(default_model_path(), providers)
    reader = TagReader(reader_path, providers=providers)
    batcher = CropBatcher(32)
    atlas = SpriteAtlas.load()
    counts: Counter[str] = Counter()
    misses: Counter[str] = Counter()
    per_seed = {}
    for seed in seeds:
        scene = StreetScene(atlas, (1280, 720), n_cogs=8, seed=seed)
        seed_counts: Counter[str] = Counter()
        for i in range(max(1, round(seconds * fps))):
            shown = scene.frame(i / fps)
            counted = on_screen_cogs(shown, (1280, 720))
            truth = [(o, t) for o, t in zip(shown.objects, shown.tags_xyxy, strict=True) if o in counted]
            seed_counts["cogs"] += len(truth)
            proposals = propose_cog_boxes(shown.rgb)[:32]
            if not truth or not proposals:
                continue
            body = iou_matrix([o.xyxy for o, _ in truth], [p.body_xyxy for p in proposals])
            tag = iou_matrix([t for _, t in truth], [p.tag_xyxy for p in proposals])
            pairs = greedy_matches(np.maximum(body, tag), 0.5)
            if not pairs:
                continue
            chosen = [proposals[c] for _, c in pairs]
            preds = classifier.classify(batcher.crop(shown.rgb, chosen))
            reads = reader.read(shown.rgb, [p.tag_xyxy for p in chosen])
            for (r, _), pred, read in zip(pairs, preds, reads, strict=True):
                want = truth[r][0].name
                label = fuse(pred, read)
                seed_counts["found"] += 1
                seed_counts["classifier"] += f"cog_{pred.suit}_{pred.cog}" == want
                seed_counts["reader"] += read.name != "other" and want.endswith(f"_{read.name}")
                ok = label.kind == "cog" and f"cog_{label.suit}_{label.cog}" == want
                seed_counts["fused"] += ok
                if not ok:
                    misses[f"{want} as {label.display_name} (body {pred.cog}, tag {read.name})"] += 1
        per_seed[seed] = {k: seed_counts[k] / max(1, seed_counts["cogs"]) for k in ("classifier", "reader", "fused")}
        counts.update(seed_counts)
    n = max(1, counts["cogs"])
    return {"cogs": counts["cogs"], "found": counts["found"],
            **{k: counts[k] / n for k in ("classifier", "reader", "fused")},
            "per_seed": per_seed, "fused_misses": misses.most_common(10),
            "frames_per_seed": max(1, round(seconds * fps)), "fps": fps}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-7")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--fps", type=float, default=4.0)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--reader", type=Path, default=None, help="reader ONNX (default: the shipped one)")
    args = p.parse_args()
    lo, _, hi = args.seeds.partition("-")
    seeds = list(range(int(lo), int(hi or lo) + 1))
    result = replay_fusion(seeds, args.seconds, args.fps, args.reader)
    text = json.dumps(result, indent=1)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
