"""The bench's 'Cog comes on screen -> its right label painted' figure, scored on the real demo street
(deterministic: paints made from the street's own truth, no screen)."""

from __future__ import annotations

import pytest

from toonvision_live.demo.window import load_street_scene
from toonvision_live.tools.bench.appear import PaintedCogs, appearance_latency
from toonvision_live.track import TrackedCog

FPS = 30.0
T0 = 1000.0  # the street's scene clock started at this perf_counter()


def paints(scene, seconds: float, *, mislabel: str = "", blank_s: float = 0.0) -> list[PaintedCogs]:
    """One paint per redraw, 5 ms after its grab, showing every Cog of the frame the grab saw
    (``mislabel`` shown as another Cog; none at all before scene time ``blank_s``)."""
    out = []
    for k in range(int(seconds * FPS)):
        grab = T0 + k / FPS + 0.5 / FPS
        frame = scene.frame(k / FPS)
        cogs = []
        if k / FPS < blank_s:
            out.append(PaintedCogs(grab, grab + 0.005, ()))
            continue
        for i, (obj, tag) in enumerate(zip(frame.objects, frame.tags_xyxy, strict=True)):
            if not obj.name.startswith("cog_"):
                continue
            _, suit, cog = obj.name.split("_")
            if obj.name == mislabel:
                cog = "flunky" if cog != "flunky" else "yesman"
                suit = "bb"
            cogs.append(TrackedCog(i, obj.xyxy, suit, cog, 0.9, True, 5, tag))
        out.append(PaintedCogs(grab, grab + 0.005, tuple(cogs)))
    return out


@pytest.fixture(scope="module")
def scene():
    return load_street_scene((1280, 720), n_cogs=8, seed=0)


def test_cogs_shown_right_at_once_count_within_a_redraw(scene):
    figures = appearance_latency(scene, T0, paints(scene, 6.0), T0 + 1.0, T0 + 6.0, FPS)
    assert figures["appearances"] >= 5
    assert figures["named"] == figures["appearances"] and figures["never_named"] == 0
    assert 0 <= figures["p50"] <= figures["p95"] <= 1000 / FPS + 5.1


def test_a_cog_never_shown_right_is_never_named_and_one_shown_late_counts_late(scene):
    right = appearance_latency(scene, T0, paints(scene, 6.0), T0 + 1.0, T0 + 6.0, FPS)
    wrong = appearance_latency(scene, T0, paints(scene, 6.0, mislabel="cog_sb_namedropper"), T0 + 1.0,
                               T0 + 6.0, FPS)
    assert wrong["appearances"] == right["appearances"]
    assert wrong["never_named"] >= 1 and wrong["named"] == right["named"] - wrong["never_named"]
    # the street's seed 0 brings a Cog on screen at 1.47 s of scene time: nothing is shown before 2.5 s
    late = appearance_latency(scene, T0, paints(scene, 6.0, blank_s=2.5), T0 + 1.0, T0 + 6.0, FPS)
    assert late["named"] == right["named"] and late["max"] > 1000.0 > right["max"]
