"""The reader's exact reads per *effective* line height and per degradation, beside the final height.

A rendered tag's line height ``em`` is its height in the final patch.  The window-rescale degradation
(:func:`training.reader.tags._degrade`: the patch drawn at 0.5-0.95x and scaled back up) leaves the text
with fewer pixels of information than that: its **effective** line height is ``em`` times the rescale
factor (``em`` when not rescaled), the smallest height the text had through its degradation chain.
Blur, noise and JPEG keep the pixel count and are reported per degradation instead.

The figures here are computed on the same tags as the headline (whole tags of the held-out test
shard, read as :class:`~toonvision_live.classify.reader.TagReader` reads), only grouped differently;
the per-final-height figure stays the headline (the issue's targets are set on it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

#: effective line-height buckets (pixels): a rescaled 4 px line keeps 2-3.8 px
EFFECTIVE_BUCKETS = ((2.0, 3.0), (3.0, 4.0), (4.0, 5.0), (5.0, 6.0), (6.0, 8.0), (8.0, 12.0), (12.0, 24.0),
                     (24.0, 61.0))
#: JPEG quality below which a tag counts as heavily compressed, blur sigma (px) above which as blurred
JPEG_HEAVY, BLUR_HEAVY = 50, 0.6


def effective_em(em: np.ndarray, degradations: Sequence[Mapping[str, float]]) -> np.ndarray:
    """Each tag's effective line height: ``em`` times its rescale factor (1 when not rescaled)."""
    factor = np.array([d.get("rescale", 1.0) for d in degradations], np.float32)
    return np.asarray(em, np.float32) * factor


def degradation_groups(degradations: Sequence[Mapping[str, float]]) -> dict[str, np.ndarray]:
    """Boolean masks over the tags by what :func:`_degrade` applied to them."""
    has = {k: np.array([k in d for d in degradations], bool) for k in ("light", "rescale", "blur", "noise", "jpeg")}
    blur = np.array([d.get("blur", 0.0) for d in degradations], np.float32)
    jpeg = np.array([d.get("jpeg", 100.0) for d in degradations], np.float32)
    heavy = has["rescale"].astype(int) + (blur > BLUR_HEAVY) + (jpeg < JPEG_HEAVY)
    return {
        "none": ~(has["light"] | has["rescale"] | has["blur"] | has["noise"] | has["jpeg"]),
        "light_only": has["light"] & ~(has["rescale"] | has["blur"] | has["noise"] | has["jpeg"]),
        "rescaled": has["rescale"], "not_rescaled": ~has["rescale"],
        f"blur_gt_{BLUR_HEAVY:g}": blur > BLUR_HEAVY, "noise": has["noise"],
        f"jpeg_lt_{JPEG_HEAVY}": jpeg < JPEG_HEAVY,
        "none_of_rescale_heavy_blur_heavy_jpeg": heavy == 0, "two_or_more_of_them": heavy >= 2,
    }


def _rates(ok: Mapping[str, np.ndarray], sel: np.ndarray) -> dict[str, Any]:
    n = int(sel.sum())
    return {"n": n, "exact": round(float(ok["exact"][sel].mean()), 5) if n else None,
            "level": round(float(ok["level"][sel].mean()), 5) if n else None}


def effective_report(ok: Mapping[str, np.ndarray], em: np.ndarray, degradations: Sequence[Mapping[str, float]],
                     whole: np.ndarray) -> dict[str, Any]:
    """Exact and level reads of the ``whole`` tags per effective line height, the target ranges by final
    and by effective height side by side, the final 5-8 px and >= 8 px tags split by effective height,
    and each final range per degradation.  ``ok``: per-tag booleans (``exact``, ``level``) of
    :func:`training.reader.train.exact_reads`."""
    em = np.asarray(em, np.float32)
    eff = effective_em(em, degradations)
    out: dict[str, Any] = {"definition": "effective line height = final line height x the window-rescale "
                                         "factor (0.5-0.95; 1 when not rescaled)"}
    out["by_effective_line_height"] = {f"{lo:g}_{hi:g}": _rates(ok, whole & (eff >= lo) & (eff < hi))
                                       for lo, hi in EFFECTIVE_BUCKETS}
    ranges = {"ge_8": (8.0, 1e9), "5_8": (5.0, 8.0), "ge_6": (6.0, 1e9)}
    out["final_versus_effective"] = {
        name: {"final": _rates(ok, whole & (em >= lo) & (em < hi)),
               "effective": _rates(ok, whole & (eff >= lo) & (eff < hi))}
        for name, (lo, hi) in ranges.items()}
    final_5_8, final_ge_8 = whole & (em >= 5) & (em < 8), whole & (em >= 8)
    out["final_5_8_by_effective"] = {
        "lt_4": _rates(ok, final_5_8 & (eff < 4)), "4_5": _rates(ok, final_5_8 & (eff >= 4) & (eff < 5)),
        "5_8": _rates(ok, final_5_8 & (eff >= 5))}
    out["final_ge_8_by_effective"] = {"lt_8": _rates(ok, final_ge_8 & (eff < 8)),
                                      "ge_8": _rates(ok, final_ge_8 & (eff >= 8))}
    groups = degradation_groups(degradations)
    out["by_degradation"] = {
        name: {g: _rates(ok, sel & mask) for g, mask in groups.items()}
        for name, sel in (("final_5_8", final_5_8), ("final_ge_8", final_ge_8),
                          ("final_6_8", whole & (em >= 6) & (em < 8)), ("final_8_12", whole & (em >= 8) & (em < 12)))}
    return out


def print_effective(report: Mapping[str, Any]) -> None:
    """The report as the tables ``toonvision evaluate-reader`` prints under the headline."""
    print(f"per effective line height ({report['definition']}):")
    print(f"{'effective':>12} {'n':>6} {'exact':>7} {'level':>7}")
    for key, r in report["by_effective_line_height"].items():
        if r["n"]:
            print(f"{key:>12} {r['n']:>6} {r['exact']:>7.4f} {r['level']:>7.4f}")
    print("target ranges, by final (headline) and by effective line height: exact (level)")
    for key, r in report["final_versus_effective"].items():
        f, e = r["final"], r["effective"]
        print(f"{key:>12} final {f['exact']:.4f} ({f['level']:.4f}) n={f['n']}   "
              f"effective {e['exact']:.4f} ({e['level']:.4f}) n={e['n']}")
    for name in ("final_5_8_by_effective", "final_ge_8_by_effective"):
        parts = ", ".join(f"{k} {r['exact']:.4f} (n={r['n']})" for k, r in report[name].items() if r["n"])
        print(f"{name}: {parts}")
    print("per degradation, exact (n):")
    groups = list(next(iter(report["by_degradation"].values())))
    print(f"{'':>12} " + " ".join(f"{g[:14]:>18}" for g in groups))
    for name, row in report["by_degradation"].items():
        cells = " ".join(f"{row[g]['exact']:>10.4f} ({row[g]['n']:>5})" if row[g]["n"] else f"{'-':>18}"
                         for g in groups)
        print(f"{name:>12} {cells}")
