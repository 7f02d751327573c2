"""Measure which near-duplicate rule separates one Cog's near-identical frames from other Cogs.

    python -m training.dataset.measure_grouping RENDERED_DATASET [--streets 8]

Near-identical pairs: the same Cog cut (600x200, as the hotkey saver cuts it) from two frames of a
rendered demo street ``dt`` seconds apart (0.1 s = two hotkey saves 100 ms apart).  Independent
pairs: two different 3D renders of the same Cog (``toonvision render crops``, random pose, view,
light, background), and crops of two different Cogs.  For each perceptual hash (imagehash
phash / dhash / whash, 64 bits) it prints the Hamming distances and, per threshold, the share of
near-identical pairs caught and of independent same-Cog pairs wrongly joined, and how long a
Cog stays on screen in the demo streets (what a capture-time window has to cover).
"""

from __future__ import annotations

import argparse
import itertools
from collections import defaultdict
from pathlib import Path

import cv2
import imagehash
import numpy as np
from PIL import Image

from toonvision_live.crops import crop_box
from toonvision_live.fileio import read_image_rgb

HASHES = {"phash": imagehash.phash, "dhash": imagehash.dhash, "whash": imagehash.whash}
SHRINK = {"phash": 32, "dhash": 9, "whash": 8}  # each hash's own input size (dhash: 9x8)
DTS = (0.1, 0.5, 1.0, 2.0, 5.0)


def _street_pairs(n_streets: int) -> dict[float, list[tuple[np.ndarray, np.ndarray]]]:
    from toonvision_live.demo.window import load_street_scene

    pairs: dict[float, list[tuple[np.ndarray, np.ndarray]]] = defaultdict(list)
    for seed in range(n_streets):
        scene = load_street_scene((1280, 720), n_cogs=8, seed=seed)
        for t0 in (1.0, 4.0):
            first = scene.frame(t0)
            for dt in DTS:
                later = scene.frame(t0 + dt)
                for obj in first.objects:
                    same = [o for o in later.objects if o.name == obj.name]
                    if not obj.name.startswith("cog_") or len(same) != 1 or obj.difficult or same[0].difficult:
                        continue
                    pairs[dt].append((crop_box(first.rgb, obj.xyxy), crop_box(later.rgb, same[0].xyxy)))
    return pairs


def _stays(n_streets: int, seconds: float = 60.0, step: float = 0.25) -> list[float]:
    """How long each Cog stays on screen in the demo streets (runs of its label being in the frame)."""
    from toonvision_live.demo.window import load_street_scene

    stays: list[float] = []
    for seed in range(n_streets):
        scene = load_street_scene((1280, 720), n_cogs=8, seed=seed)
        runs: dict[str, float] = {}
        for i in range(int(seconds / step)):
            shown = {o.name for o in scene.frame(i * step).objects if o.name.startswith("cog_")}
            for name in list(runs):
                if name not in shown:
                    stays.append(runs.pop(name))
            for name in shown:
                runs[name] = runs.get(name, 0.0) + step
    return stays


def _rendered(root: Path) -> dict[str, list[np.ndarray]]:
    by_label: dict[str, list[np.ndarray]] = defaultdict(list)
    for path in sorted((root / "unsorted" / "cog").glob("*.png")):
        by_label[path.stem.rsplit("_", 1)[0]].append(read_image_rgb(path))
    return by_label


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rendered", type=Path, help="a dataset made by 'toonvision render crops'")
    parser.add_argument("--streets", type=int, default=8)
    args = parser.parse_args()
    stays = np.array(_stays(args.streets))
    print(f"a Cog stays on screen (demo streets, runs ended within 60 s, {len(stays)} runs): median "
          f"{np.median(stays):.1f} s, 10th percentile {np.percentile(stays, 10):.1f} s, max {stays.max():.1f} s")
    near = _street_pairs(args.streets)
    rendered = _rendered(args.rendered)
    for name, fn in HASHES.items():
        def h(rgb: np.ndarray, fn=fn, size=SHRINK[name]) -> imagehash.ImageHash:
            # shrunk by OpenCV first, as training.dataset.groups does
            gray = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), (size, size if size != 9 else 8),
                              interpolation=cv2.INTER_AREA)
            return fn(Image.fromarray(gray))

        dist_near = {dt: np.array([h(a) - h(b) for a, b in near[dt]]) for dt in DTS}
        hashes = {label: [h(c) for c in crops] for label, crops in rendered.items()}
        same_cog = np.array([a - b for hs in hashes.values() for a, b in itertools.combinations(hs, 2)])
        other_cog = np.array([a - b for (_, x), (_, y) in itertools.combinations(hashes.items(), 2)
                              for a in x for b in y])
        print(f"\n{name}: Hamming distance (64 bits), median [min-max]")
        for dt in DTS:
            d = dist_near[dt]
            print(f"  same Cog, frames {dt:>3} s apart ({len(d)} pairs): {np.median(d):.0f} [{d.min()}-{d.max()}]")
        for what, d in (("two renders of one Cog", same_cog), ("two different Cogs", other_cog)):
            print(f"  {what} ({len(d)} pairs): {np.median(d):.0f} [{d.min()}-{d.max()}]")
        print("  threshold: caught at 0.1 s / 0.5 s / 1 s | independent same-Cog pairs joined")
        for t in (4, 6, 8, 10, 12, 14):
            caught = " / ".join(f"{np.mean(dist_near[dt] <= t):.0%}" for dt in (0.1, 0.5, 1.0))
            print(f"    <= {t:>2}: {caught} | {np.mean(same_cog <= t):.2%}")


if __name__ == "__main__":
    main()
