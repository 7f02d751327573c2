"""Cog comes on screen -> its right label painted: the bench's demo street scored after the run.

The demo street runs in its own process on the scene clock ``perf_counter() - t0`` (the child says its
``t0``; ``perf_counter`` is the system's monotonic clock, the same in both processes), and its scene is
deterministic for (seed, time).  So after the measured window the bench re-renders the street in its own
process, finds when each Cog came on screen (fully in view, not mostly hidden, nametag inside the frame,
as ``toonvision replay`` counts them: a Cog walking in at an edge or stepping out from behind another)
and, for the paints that followed, whether the overlay showed that Cog with its right label.  A Cog
counts from the first 1/scene-fps step of scene time at which it is on screen; the game shows that
step at its next redraw, so the figure includes up to one redraw (33 ms at 30 fps) of the game's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

#: appearances this close to the end of the measured window are left out (too little time to be named)
TAIL_S = 0.5
#: at most this many paints are kept for the figure (a soak does not keep them)
MAX_PAINTS = 20_000


@dataclass(frozen=True, slots=True)
class PaintedCogs:
    """What one paint showed: the grab time (end) of its frame, when it was painted, its Cogs."""

    grab_time: float
    painted_at: float
    cogs: tuple[Any, ...]  # TrackedCog


class PaintedLog:
    """The Cogs of each paint, listened to through the overlay's ``on_painted`` (Qt thread)."""

    def __init__(self, overlay: Any, capacity: int = MAX_PAINTS) -> None:
        self.overlay = overlay
        self.capacity = capacity
        self.items: list[PaintedCogs] = []

    def add(self, record: Any) -> None:
        result = self.overlay.result
        if result is not None and result.index == record.result_index and len(self.items) < self.capacity:
            self.items.append(PaintedCogs(record.grab_time, record.painted_at, result.cogs))


def _appearances(scene: Any, t0: float, t_from: float, t_to: float, fps: float) -> list[tuple[str, float, float]]:
    """(Cog, wall time it came on screen, wall time it left or the scan ended) of the Cogs that came on
    screen between ``t_from`` and ``t_to - TAIL_S`` (wall clock), on the scene's steps of 1/``fps``."""
    from toonvision_live.demo.window import ShownFrame
    from toonvision_live.tools.replay import on_screen_cogs

    step = 1.0 / fps
    first, last = int(np.floor((t_from - t0) / step)) - 1, int(np.ceil((t_to - t0) / step))
    since: dict[str, float] = {}
    out: list[tuple[str, float, float]] = []
    for k in range(max(0, first), last + 1):
        s = k * step
        shown = scene.frame(s)
        names = {o.name for o in on_screen_cogs(ShownFrame(s, s, shown.objects, shown.tags_xyxy), scene.size_wh)}
        for name in list(since):
            if name not in names:
                out.append((name, since.pop(name), t0 + s))
        for name in names - set(since):
            since[name] = t0 + s if k > first else -np.inf  # on screen before the scan began: not counted
    out += [(name, at, t0 + last * step) for name, at in since.items()]
    return [(n, a, b) for n, a, b in out if t_from <= a <= t_to - TAIL_S]


def _named_right(shown: tuple[tuple[Any, ...], tuple[Any, ...]], paint: PaintedCogs, name: str) -> bool:
    """Whether ``paint`` shows the Cog ``name`` (a box on its body or tag, IoU >= 0.5) with its label,
    ``shown`` being the objects and nametag boxes of the scene frame its grab saw."""
    from toonvision_live.geometry import greedy_matches, iou_matrix

    truth = [(o, t) for o, t in zip(*shown, strict=True) if o.name.startswith("cog_")]
    if not truth or not paint.cogs:
        return False
    body = iou_matrix([o.xyxy for o, _ in truth], [c.body_xyxy for c in paint.cogs])
    tag = iou_matrix([t or (0, 0, 0, 0) for _, t in truth], [c.tag_xyxy or (0, 0, 0, 0) for c in paint.cogs])
    for r, c in greedy_matches(np.maximum(body, tag), 0.5):
        if truth[r][0].name == name:
            cog = paint.cogs[c]
            return f"cog_{cog.suit}_{cog.cog}" == name
    return False


def appearance_latency(scene: Any, t0: float, paints: list[PaintedCogs], t_from: float, t_to: float,
                       fps: float) -> dict[str, Any]:
    """ms from each Cog coming on screen (in [t_from, t_to - TAIL_S]) to the first paint showing it named
    right, before it left the screen: n, p50, p95, max, the slowest five (ms, Cog, scene time it came on
    screen), and how many were never named while on screen."""
    paints = sorted(paints, key=lambda p: p.painted_at)
    at = np.array([p.painted_at for p in paints])
    shown: dict[int, Any] = {}  # paint index -> the scene frame its grab saw (rendered once)
    named: list[float] = []
    slow: list[tuple[float, str, float]] = []  # (ms, Cog, scene time it came on screen)
    never = 0
    for name, came, left in _appearances(scene, t0, t_from, t_to, fps):
        first = None
        for i in range(int(np.searchsorted(at, came)), int(np.searchsorted(at, left, side="right"))):
            if i not in shown:  # the step on screen at the grab (the game redraws every 1/fps)
                frame = scene.frame(max(0.0, paints[i].grab_time - t0 - 0.5 / fps))
                shown[i] = (frame.objects, frame.tags_xyxy)  # (not its pixels)
            if _named_right(shown[i], paints[i], name):
                first = paints[i].painted_at
                break
        if first is None:
            never += 1
        else:
            named.append((first - came) * 1000.0)
            slow.append((round(named[-1], 1), name, round(came - t0, 2)))
    arr = np.asarray(named)
    figures: dict[str, Any] = {"appearances": len(named) + never, "named": len(named), "never_named": never}
    if arr.size:
        figures.update(p50=round(float(np.percentile(arr, 50)), 1), p95=round(float(np.percentile(arr, 95)), 1),
                       max=round(float(arr.max()), 1), slowest=sorted(slow, reverse=True)[:5])
    return figures
