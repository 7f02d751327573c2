"""What limits the reader on small text: its reads at 5-8 px per degradation, and on clean tags.

    python -m training.reader.limits --data TAGS [--model models/reader.onnx] --json X.json --sheet X.png

On the VALIDATION shard's tags (seed 5000, re-rendered with a record of what :func:`_degrade` applied),
the whole tags at 5-8 px per line are read as :class:`TagReader` reads them and their exact reads are
split by degradation (none but light; window rescale, and the line height left after it; blur; noise;
JPEG).  Then ``--clean`` tags at uniform 5-8 px are rendered twice from the same seed, once without
degradation (the game font at that size, on its translucent card over a background, nothing else) and
once with it, and read the same way.  ``--sheet`` draws the 5-6 px misses (the reader's inputs).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from toonvision_live.classify.reader import DEPT_CLASSES, NAME_CLASSES, TagReader, level_probs, tag_input
from training.reader.cli import DEFAULT_OUT, tag_sheet


def _exact(probs: dict[str, np.ndarray], name: np.ndarray, dept: np.ndarray, level: np.ndarray, v2: np.ndarray
           ) -> tuple[np.ndarray, np.ndarray]:
    lv = level_probs(probs["tens"], probs["units"]).argmax(1) + 1
    ok_level = lv == level
    ok = ((probs["name"].argmax(1) == name) & (probs["dept"].argmax(1) == dept) & ok_level
          & (probs["v2"].argmax(1) == v2))
    return ok, ok_level


def _rate(ok: np.ndarray, sel: np.ndarray) -> dict[str, Any]:
    return {"n": int(sel.sum()), "exact": round(float(ok[sel].mean()), 4) if sel.any() else None}


def validation_by_degradation(reader: TagReader, data: Path) -> tuple[dict[str, Any], list[Any]]:
    """Exact reads of the whole 5-8 px validation tags, split by what degraded them; and the 5-6 px misses."""
    from training.reader.seeds import shard_seed
    from training.reader.tags import TagRenderer, iter_tag_samples, load_tag_set
    from training.reader.train import SHARD_SIZE, ensure_shards

    val = load_tag_set(ensure_shards(data, "val", 1)[0])
    renderer = TagRenderer()
    rows, probs = [], []
    for i, (patch, box, label) in enumerate(iter_tag_samples(SHARD_SIZE, shard_seed("val", 0), renderer)):
        if not (5 <= label.em < 8) or label.hidden:
            continue
        assert " / ".join(label.lines) == val.texts[i]
        rows.append((i, label, dict(renderer.last_degradations), patch, box))
        probs.append(reader.probabilities(patch, [box]))
    p = {k: np.concatenate([q[k] for q in probs]) for k in probs[0]}
    idx = np.array([r[0] for r in rows])
    ok, ok_level = _exact(p, val.name[idx], val.dept[idx], val.level[idx], val.v2[idx])
    deg = [r[2] for r in rows]
    em = np.array([r[1].em for r in rows])
    eff = np.array([r[1].em * d.get("rescale", 1.0) for r, d in zip(rows, deg, strict=True)])
    has = {k: np.array([k in d for d in deg]) for k in ("light", "rescale", "blur", "noise", "jpeg")}
    blur = np.array([d.get("blur", 0.0) for d in deg])
    jpeg = np.array([d.get("jpeg", 100) for d in deg])
    clean = ~(has["rescale"] | has["blur"] | has["noise"] | has["jpeg"])
    out = {
        "all": _rate(ok, np.ones_like(ok)), "level_all": _rate(ok_level, np.ones_like(ok)),
        "5_6": _rate(ok, em < 6), "6_8": _rate(ok, em >= 6),
        "no_degradation_but_light": _rate(ok, clean),
        "rescaled": _rate(ok, has["rescale"]), "not_rescaled": _rate(ok, ~has["rescale"]),
        "line_left_after_rescale_lt_4px": _rate(ok, eff < 4), "line_left_4_5px": _rate(ok, (eff >= 4) & (eff < 5)),
        "line_left_ge_5px": _rate(ok, eff >= 5),
        "blur_sigma_gt_0.6": _rate(ok, blur > 0.6), "blur_le_0.6_or_none": _rate(ok, blur <= 0.6),
        "noise": _rate(ok, has["noise"]), "jpeg_q_lt_50": _rate(ok, jpeg < 50),
        "jpeg_ge_50_or_none": _rate(ok, jpeg >= 50),
        "only_one_of_rescale_blur_jpeg_lt50": _rate(ok, (has["rescale"].astype(int) + (blur > 0) + (jpeg < 50)) == 1),
        "two_or_more_of_them": _rate(ok, (has["rescale"].astype(int) + (blur > 0) + (jpeg < 50)) >= 2),
    }
    lv = level_probs(p["tens"], p["units"]).argmax(1) + 1
    misses = []
    for k in np.flatnonzero(~ok & (em < 6))[:24]:
        i, label, d, patch, box = rows[k]
        read = (f"{NAME_CLASSES[int(p['name'][k].argmax())]}/{DEPT_CLASSES[int(p['dept'][k].argmax())]}/{lv[k]}"
                f"{' v2' if p['v2'][k].argmax() else ''}")
        what = " ".join(f"{n[0]}{v:.2g}" if n != "light" else "L" for n, v in d.items())
        misses.append((tag_input(patch, box), [f"{label.em:.1f}px {' / '.join(label.lines)}"[:44],
                                               f"read {read}"[:44], f"[{what}]"[:44]]))
    return out, misses


def clean_versus_degraded(reader: TagReader, n: int, seed: int) -> dict[str, Any]:
    """Exact reads of ``n`` tags at uniform 5-8 px, the same tags rendered clean and degraded."""
    from training.reader.tags import TagRenderer, sample_label

    renderer = TagRenderer()
    out: dict[str, Any] = {}
    for degrade in (False, True):
        rng = np.random.default_rng([seed, 0xC1EA])
        probs, labels = [], []
        for _ in range(n):
            label = sample_label(rng)
            em = float(rng.uniform(5.0, 8.0))
            sub = np.random.default_rng(int(rng.integers(1 << 31)))  # same tag both ways; degradation apart
            patch, box, lab = renderer.sample(sub, label=label, em=em, degrade=degrade)
            if lab.hidden:
                continue
            labels.append(lab)
            probs.append(reader.probabilities(patch, [box]))
        p = {k: np.concatenate([q[k] for q in probs]) for k in probs[0]}
        arr = {f: np.array([getattr(lb, f) for lb in labels]) for f in ("name", "dept", "level", "v2", "em")}
        ok, ok_level = _exact(p, arr["name"], arr["dept"], arr["level"], arr["v2"].astype(int))
        key = "degraded" if degrade else "clean"
        out[key] = {"5_6": _rate(ok, arr["em"] < 6), "6_8": _rate(ok, arr["em"] >= 6), "all": _rate(ok, ok | ~ok),
                    "level_5_6": _rate(ok_level, arr["em"] < 6), "level_6_8": _rate(ok_level, arr["em"] >= 6)}
    return out


def main() -> None:
    from toonvision_live.fileio import write_png

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--model", type=Path, default=DEFAULT_OUT)
    p.add_argument("--clean", type=int, default=2000, help="tags rendered clean and degraded at 5-8 px")
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--sheet", type=Path, default=None)
    args = p.parse_args()
    reader = TagReader(args.model, ["CPUExecutionProvider"])
    by_deg, misses = validation_by_degradation(reader, args.data)
    out = {"model": str(args.model), "validation_5_8px_by_degradation": by_deg,
           "clean_versus_degraded_5_8px": clean_versus_degraded(reader, args.clean, 77)}
    print(json.dumps(out, indent=1))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")
    if args.sheet and misses:
        sheet = tag_sheet([m[0] for m in misses], [m[1] for m in misses])
        write_png(args.sheet, np.repeat(sheet[:, :, None], 3, axis=2), overwrite=True)


if __name__ == "__main__":
    main()
