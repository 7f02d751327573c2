"""The live replay's naming accuracy where the nametag can be read (issue 15's fusion target).

    python -m training.reader.replay_visible [--seeds 0-7] [--reader FILE] [--json OUT]

``toonvision replay`` counts a Cog when it is fully in view, not mostly hidden and its tag box lies
inside the frame (:func:`toonvision_live.tools.replay.on_screen_cogs`).  The demo street draws every
tag over the bodies, farther tags first, so a nearer Cog's tag can still cover one that counts.  Here
the same replay (:func:`~toonvision_live.tools.replay.replay_street`: the default crop stage, tracks,
the reader fused, the load governor off, so runs are identical) is scored three ways on the same
frames: every Cog that ``toonvision replay`` counts; only those whose tag no nearer tag covers
(``visible``); and of those, the ones the crop stage found (``visible_found``: the share that the
reader and fusion answer for).  ``strict`` matches each track among all Cogs with a tag in view,
mostly hidden ones too (:func:`strict_frame`): ``toonvision replay`` matches only the counted Cogs,
so a track that rightly names a mostly hidden Cog by its tag is scored against the visible Cog in
front whose body its body box overlaps, as a naming miss, when that Cog's own tag was not found.
The naming misses of the found Cogs (strict matching) are listed with their tag's line height.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from toonvision_live.geometry import XYXY, greedy_matches, iou_matrix, union_covered_fraction

if TYPE_CHECKING:
    from toonvision_live.demo.scene import SceneFrame
    from toonvision_live.demo.window import ShownFrame
    from toonvision_live.pipeline import FrameResult
    from toonvision_live.track import TrackedCog

SIZE_WH = (1280, 720)
#: a tag counts as visible when nearer tags cover at most this fraction of its card
MAX_TAG_COVERED = 0.0
#: a three-line card is about 3.4 lines high (as TagReader.read assumes)
LINES_PER_CARD = 3.4


def tag_cover(tags_xyxy: tuple[XYXY | None, ...]) -> list[float]:
    """For each tag (objects far to near, as the scene draws them), the fraction of it nearer tags cover."""
    out = []
    for k, tag in enumerate(tags_xyxy):
        nearer = [t for t in tags_xyxy[k + 1 :] if t is not None]
        out.append(1.0 if tag is None else union_covered_fraction(tag, nearer))
    return out


def with_hidden_tags_dropped(shown: SceneFrame, t: float, max_covered: float = MAX_TAG_COVERED) -> ShownFrame:
    """The truth of a scene frame shown at ``t``, each Cog whose tag nearer tags cover (more than
    ``max_covered``) marked ``difficult``: the replay's scoring does not count it (its box still takes
    part in the matching)."""
    from toonvision_live.demo.window import ShownFrame

    cover = tag_cover(shown.tags_xyxy)
    objects = tuple(dataclasses.replace(o, difficult=True) if c > max_covered and o.name.startswith("cog_") else o
                    for o, c in zip(shown.objects, cover, strict=True))
    return ShownFrame(t, t, objects, shown.tags_xyxy)


def strict_frame(cogs: Sequence[TrackedCog], shown: ShownFrame) -> tuple[int, int, int, list[dict[str, Any]]]:
    """Counted Cogs, found, named right and the naming misses of one frame, each track matched to the
    Cog whose tag or body it covers among ALL Cogs with a tag in view (mostly hidden or cut ones too),
    so a track on a hidden Cog's tag is that Cog's (not counted), never a visible neighbour's whose
    body its body box happens to overlap; only the counted Cogs (``on_screen_cogs``) are tallied."""
    from toonvision_live.tools.replay import on_screen_cogs

    counted = set(on_screen_cogs(shown, SIZE_WH))
    truth = [(o, t) for o, t in zip(shown.objects, shown.tags_xyxy, strict=True)
             if o.name.startswith("cog_") and t is not None]
    n = sum(1 for o, _ in truth if o in counted)
    if not truth or not cogs:
        return n, 0, 0, []
    body = iou_matrix([o.xyxy for o, _ in truth], [c.body_xyxy for c in cogs])
    tag = iou_matrix([t for _, t in truth], [c.tag_xyxy or (0, 0, 0, 0) for c in cogs])
    found = right = 0
    misses = []
    for r, c in greedy_matches(np.maximum(body, tag), 0.5):
        cog, (obj, tag_box) = cogs[c], truth[r]
        if obj not in counted:
            continue
        found += 1
        if f"cog_{cog.suit}_{cog.cog}" == obj.name:
            right += 1
            continue
        fused = cog.fused
        misses.append({"truth": obj.name, "shown": f"cog_{cog.suit}_{cog.cog}",
                       "line_px": round((tag_box[3] - tag_box[1]) / LINES_PER_CARD, 1),
                       "tag_iou": round(float(tag[r, c]), 2), "tag_read": fused is not None, "agree": cog.agree})
    return n, found, right, misses


def replay_visible(seeds: list[int], reader_path: Path | None = None, no_reader: bool = False,
                   seconds: float = 5.0, fps: float = 20.0) -> dict[str, Any]:
    """The three scores of the replay of ``seeds`` (see the module's doc) and the naming misses."""
    from toonvision_live.classify.classifier import CogClassifier
    from toonvision_live.classify.reader import TagReader
    from toonvision_live.demo.window import load_street_scene
    from toonvision_live.model_card import default_model_path
    from toonvision_live.tools.replay import Score, replay_street, score_result

    providers = ["CPUExecutionProvider"]
    classifier = CogClassifier(default_model_path(), providers)
    reader = None if no_reader else TagReader(reader_path, providers=providers)
    every, visible = Score(), Score()
    strict: Counter[str] = Counter()
    misses: list[dict[str, Any]] = []
    per_seed = {}
    for seed in seeds:
        scene = load_street_scene(SIZE_WH, n_cogs=8, seed=seed)
        seen = Score()

        def on_processed(result: FrameResult, _cpu_ms: float, seen: Score = seen, scene: Any = scene,
                         seed: int = seed) -> None:
            t = result.frame.grab_time
            shown = with_hidden_tags_dropped(scene.frame(t), t)
            score_result(seen, result, shown)
            n, found, right, wrong = strict_frame(result.cogs, shown)
            strict.update(cogs=n, found=found, right=right)
            misses.extend({"seed": seed, "t": round(t, 2), **m} for m in wrong)

        score = replay_street(classifier, seed=seed, size_wh=SIZE_WH, seconds=seconds, fps=fps,
                              on_processed=on_processed, reader=reader)
        seen.end()
        every.add(score)
        visible.add(seen)
        per_seed[seed] = {"all": round(score.accuracy, 4), "visible": round(seen.accuracy, 4),
                          "visible_found": round(seen.right / max(1, seen.found), 4)}
    grouped = Counter(f"{m['truth']} as {m['shown']}" for m in misses)
    return {
        "all": {"cogs": every.cogs_on_screen, "found": every.found, "right": every.right,
                "accuracy": round(every.accuracy, 4)},
        "visible": {"cogs": visible.cogs_on_screen, "found": visible.found, "right": visible.right,
                    "accuracy": round(visible.accuracy, 4)},
        "visible_found": {"cogs": visible.found, "right": visible.right,
                          "accuracy": round(visible.right / max(1, visible.found), 4)},
        "strict": {"cogs": strict["cogs"], "found": strict["found"], "right": strict["right"],
                   "accuracy": round(strict["right"] / max(1, strict["cogs"]), 4),
                   "of_found": round(strict["right"] / max(1, strict["found"]), 4)},
        "per_seed": per_seed, "naming_misses": grouped.most_common(20), "naming_miss_frames": misses,
        "max_tag_covered": MAX_TAG_COVERED, "seconds": seconds, "fps": fps,
        "reader": None if reader is None else str(reader.model_path),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="0-7")
    p.add_argument("--reader", type=Path, default=None, help="reader ONNX (default: the shipped one)")
    p.add_argument("--no-reader", action="store_true", help="the body alone")
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args()
    lo, _, hi = args.seeds.partition("-")
    result = replay_visible(list(range(int(lo), int(hi or lo) + 1)), args.reader, args.no_reader)
    for key in ("all", "visible", "visible_found", "strict"):
        r = result[key]
        print(f"{key:>14}: {r['right']}/{r['cogs']} named right = {r['accuracy']:.2%}")
    strict = result["strict"]
    print(f"{'strict, found':>14}: {strict['right']}/{strict['found']} named right = {strict['of_found']:.2%}")
    for text, n in result["naming_misses"]:
        print(f"  {n:>3} x {text}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
