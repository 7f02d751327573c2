"""Toontown-like street scenes: rendered Cog sprites walking with in-game nametags, plus ground truth.

Runtime code (numpy + cv2 only).  Used by ``toonvision demo`` (the window the real pipeline watches)
and by ``toonvision render scenes`` (labelled full frames for the crop stage's tests).  The parts:
:mod:`~toonvision_live.demo.nametag` (the tags), :mod:`~toonvision_live.demo.sprites` (Cogs from the
atlas, drawn Toons), :mod:`~toonvision_live.demo.street` (the background).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from toonvision_live.demo.nametag import (
    COG_TAG_TEXT_RGB,
    TAG_GAP_EM,
    TAG_PAD_BOTTOM_EM,
    TAG_PAD_TOP_EM,
    TOON_TAG_TEXT_RGBS,
    TagImage,
    blend_tag,
    cog_tag_lines,
    nametag_em_px,
    render_nametag,
)
from toonvision_live.demo.sprites import (
    TOON_ANIMALS,
    TOON_CLOTHES,
    TOON_FUR,
    TOON_WORLD_HEIGHTS,
    ScaledSprite,
    SpriteAtlas,
    blend_premultiplied,
    make_toon_sprite,
    mirrored,
    scale_sprite,
    shadow_sprite,
    toon_name,
)
from toonvision_live.demo.street import cached_background
from toonvision_live.errors import DataError
from toonvision_live.geometry import XYXY, union_covered_fraction
from toonvision_live.taxonomy import COG_BY_KEY, SUIT_BY_CODE
from toonvision_live.voc import VocObject

#: seconds per walk cycle (the game's 24-frame walk at 24 fps); the atlas samples the cycle evenly
WALK_CYCLE_S = 1.0

@dataclass(frozen=True, slots=True)
class SceneFrame:
    """One composed frame and its ground truth.

    ``objects`` are the avatars at least partly in view (Cogs ``cog_<suit>_<key>``, Toons ``toon_<animal>``),
    boxes tight around the body (alpha > 32), exclusive ends, clipped to the frame, ``truncated`` when
    clipped, ``difficult`` when nearer bodies cover more than half of the box.  ``tags_xyxy[i]`` is the
    nametag card box of ``objects[i]`` clipped to the frame, or None when the tag is out of view.
    """

    rgb: np.ndarray
    objects: tuple[VocObject, ...]
    tags_xyxy: tuple[XYXY | None, ...]


@dataclass(frozen=True, slots=True)
class _Walker:
    label: str
    is_cog: bool
    frames: tuple[ScaledSprite, ...]
    tag: TagImage
    shadow: ScaledSprite  # the game's drop shadow under the feet (not part of the body box)
    foot_y: float
    tag_bottom_dy: float  # tag bottom relative to foot_y (negative: above)
    x0: float
    speed_px: float  # signed, pixels per second (0: standing)
    anim_fps: float
    anim_phase: float
    level: int | None = None  # the level on a Cog's tag


@dataclass(frozen=True, slots=True)
class _Actor:
    """An avatar before it walks: its sprites and nametag at its foot row, the way it faces."""

    label: str
    is_cog: bool
    frames: tuple[ScaledSprite, ...]
    tag: TagImage
    foot_y: float
    tag_dy: float  # tag bottom relative to foot_y (negative: above)
    direction: int
    ppu: float
    level: int | None = None  # the level on a Cog's tag


def _depth_buckets(atlas_ppu: float, ppu: float) -> float:
    """Round the scale factor so that sprites of nearby depths share one precomputed scale."""
    return round(ppu / atlas_ppu * 64) / 64


class StreetScene:
    """Cogs (from the sprite atlas) and Toon-like figures walking across a street, with nametags.

    Deterministic for (seed, t): everything random is drawn once from ``seed``; ``frame(t)`` only moves
    the walkers along their lanes, wrapping them round when they leave the frame, and picks animation frames.
    """

    WALK_SPEED_UNITS = 4.8  # the game's Cog walk speed, world units per second

    def __init__(
        self,
        atlas: SpriteAtlas,
        size_wh: tuple[int, int] = (1280, 720),
        n_cogs: int = 8,
        n_toons: int = 2,
        seed: int = 0,
        cog_keys: tuple[str, ...] | None = None,
    ) -> None:
        if n_cogs > 0 and not atlas.cogs:
            raise DataError("The sprite atlas holds no Cogs; regenerate it with 'toonvision render atlas'.")
        self.atlas, self.size_wh, self.seed = atlas, (int(size_wh[0]), int(size_wh[1])), seed
        w, h = self.size_wh
        self.background, self.layout = cached_background(self.size_wh, int(seed))
        rng = np.random.default_rng([seed, 0xC06])
        keys = list(cog_keys) if cog_keys is not None else sorted(atlas.cogs)
        for key in keys:
            if key not in atlas.cogs:
                raise DataError(f"The sprite atlas has no sprites for Cog '{key}'.")
        if n_cogs > 0 and not keys:
            raise DataError("No Cog keys to draw: pass at least one key the sprite atlas holds.")
        chosen = list(rng.permutation(keys))
        while len(chosen) < n_cogs:
            chosen += list(rng.permutation(keys))
        chosen = chosen[:n_cogs]
        specs = [("cog", str(k)) for k in chosen] + [
            ("toon", str(rng.choice(TOON_ANIMALS))) for _ in range(n_toons)
        ]
        self._spans: tuple[tuple[float, float], ...] = ()  # (wrap span, margin) per walker, set by _place
        self._walkers = self._place(specs, rng)
        order = sorted(range(len(self._walkers)), key=lambda i: self._walkers[i].foot_y)
        self._order = tuple(order)

    # ---- layout of lanes
    def _heights(self, kind: str, key: str, rng: np.random.Generator) -> float:
        if kind == "cog":
            return self.atlas.cogs[key].world_height
        return float(rng.uniform(*TOON_WORLD_HEIGHTS))

    def _place(self, specs: list[tuple[str, str]], rng: np.random.Generator) -> tuple[_Walker, ...]:
        if not specs:
            self._spans = ()
            return ()
        rows = self._foot_rows(specs, rng)
        actors = [self._actor(kind, key, height, foot_y, rng) for kind, key, height, foot_y in rows]
        walkers: list[_Walker] = []
        spans: list[tuple[float, float]] = []
        for _, (walker, span) in sorted(self._set_walking(actors, rng).items()):
            walkers.append(walker)
            spans.append(span)
        self._spans = tuple(spans)
        return tuple(walkers)

    def _tag_band(self, y: float, height: float, n_lines: int) -> tuple[float, float]:
        """The (top, bottom) rows of the nametag of an avatar ``height`` units tall standing at row ``y``."""
        ppu = self.layout.px_per_unit(y)
        em = nametag_em_px(ppu, self.size_wh[1])
        bottom = y - height * ppu - TAG_GAP_EM * em
        return bottom - em * (TAG_PAD_TOP_EM + 0.7 + (n_lines - 1) + TAG_PAD_BOTTOM_EM), bottom

    def _foot_rows(
        self, specs: list[tuple[str, str]], rng: np.random.Generator
    ) -> list[tuple[str, str, float, float]]:
        """(kind, key, world height, foot row) of each avatar: more far than near, as on a real street,
        preferring rows whose tag band is free so fewer avatars have to walk in step."""
        h = self.size_wh[1]
        lay = self.layout
        y_far, y_near, top_margin = lay.back_y + 0.04 * h, h - 0.015 * h, 0.02 * h
        rows = []
        taken: list[tuple[float, float]] = []  # tag bands (top, bottom) of the avatars placed so far
        for kind, key in specs:
            height = self._heights(kind, key, rng)
            n_lines = 3 if kind == "cog" else 1
            # the nearest foot row at which head, gap and tag still fit below the top margin
            hi = y_far
            for y in np.linspace(y_near, y_far, 60):
                if self._tag_band(y, height, n_lines)[0] >= top_margin and height * lay.px_per_unit(y) <= 0.6 * h:
                    hi = y
                    break
            best, best_clash = y_far, None
            for _ in range(24):
                y = float(y_far + (max(hi, y_far + 1) - y_far) * rng.beta(1.4, 1.8))
                top, bottom = self._tag_band(y, height, n_lines)
                clash = sum(top < b + 4 and t < bottom + 4 for t, b in taken)
                if best_clash is None or clash < best_clash:
                    best, best_clash = y, clash
                if clash == 0:
                    break
            taken.append(self._tag_band(best, height, n_lines))
            rows.append((kind, key, height, best))
        return rows

    def _cog_frames(self, key: str, ppu: float, clip_names: tuple[str, ...]) -> tuple[ScaledSprite, ...]:
        """The first of ``clip_names`` the Cog has (else any clip), scaled for a foot row of ``ppu``."""
        clips = self.atlas.cogs[key].clips
        clip = next((clips[n] for n in clip_names if clips.get(n)), None) or next(iter(clips.values()))
        return tuple(scale_sprite(s, _depth_buckets(self.atlas.px_per_unit, ppu)) for s in clip)

    def _actor(self, kind: str, key: str, height: float, foot_y: float, rng: np.random.Generator) -> _Actor:
        """The sprites and nametag of one avatar at ``foot_y``, facing a random way."""
        ppu = self.layout.px_per_unit(foot_y)
        em = nametag_em_px(ppu, self.size_wh[1])
        direction = 1 if rng.random() < 0.5 else -1
        level = None
        if kind == "cog":
            cog = COG_BY_KEY[key]
            level = int(rng.integers(cog.levels[0], cog.levels[1] + 1))
            tag = render_nametag(
                cog_tag_lines(cog.name, SUIT_BY_CODE[cog.suit].name, level),
                (COG_TAG_TEXT_RGB,) * 3,
                round(em * 4) / 4,
            )
            label = cog.label
            frames = self._cog_frames(key, ppu, ("walk_right" if direction > 0 else "walk_left", "neutral_front"))
        else:
            fur = TOON_FUR[int(rng.integers(len(TOON_FUR)))]
            shirt = TOON_CLOTHES[int(rng.integers(len(TOON_CLOTHES)))]
            shorts = TOON_CLOTHES[int(rng.integers(len(TOON_CLOTHES)))]
            sprites = [make_toon_sprite(key, fur, shirt, shorts, p / 6, direction) for p in range(6)]
            factor = height * ppu / sprites[0].rgba.shape[0]
            frames = tuple(scale_sprite(s, factor) for s in sprites)
            text_rgb = TOON_TAG_TEXT_RGBS[int(rng.integers(len(TOON_TAG_TEXT_RGBS)))]
            tag = render_nametag((toon_name(rng),), (text_rgb,), round(em * 4) / 4)
            label = f"toon_{key}"
        head_px = float(np.median([f.foot_xy[1] for f in frames]))  # foot row minus head top row
        return _Actor(label, kind == "cog", frames, tag, foot_y, -head_px - TAG_GAP_EM * em, direction, ppu, level)

    @staticmethod
    def _lane_groups(actors: list[_Actor]) -> list[list[int]]:
        """Avatars whose tag bands overlap, grouped (union-find), in order of first member."""
        bands = [(a.foot_y + a.tag_dy - a.tag.size_wh[1], a.foot_y + a.tag_dy) for a in actors]
        parent = list(range(len(actors)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i in range(len(actors)):
            for j in range(i + 1, len(actors)):
                if bands[i][0] < bands[j][1] + 4 and bands[j][0] < bands[i][1] + 4:
                    parent[find(i)] = find(j)
        groups: dict[int, list[int]] = {}
        for i in range(len(actors)):
            groups.setdefault(find(i), []).append(i)
        return list(groups.values())

    def _set_walking(
        self, actors: list[_Actor], rng: np.random.Generator
    ) -> dict[int, tuple[_Walker, tuple[float, float]]]:
        """Each avatar's walker and (wrap span, margin).  Lanes whose tag bands overlap move together (same
        direction and pixel speed, spread along the wrap span) so their tags never pass over each other."""
        w = self.size_wh[0]
        max_sprite_w = max(max(f.premul_rgb.shape[1] for f in a.frames) for a in actors)
        max_tag_w = max(a.tag.size_wh[0] for a in actors)
        margin = max(max_sprite_w, max_tag_w) / 2 + 8
        out: dict[int, tuple[_Walker, tuple[float, float]]] = {}
        for members in self._lane_groups(actors):
            k = len(members)
            span = max(w + 2 * margin, k * (max_tag_w + 16.0))
            direction = actors[members[0]].direction
            mean_ppu = float(np.mean([actors[i].ppu for i in members]))
            standing = k == 1 and rng.random() < 0.2
            speed = 0.0 if standing else direction * self.WALK_SPEED_UNITS * rng.uniform(0.8, 1.15) * mean_ppu
            base = rng.uniform(0, span)
            for slot, i in enumerate(members):
                a = actors[i]
                frames = a.frames
                if direction != a.direction and a.is_cog:
                    # walk the group's way: re-pick the clip of this Cog for that direction
                    walk = "walk_right" if direction > 0 else "walk_left"
                    frames = self._cog_frames(a.label.split("_", 2)[2], a.ppu, (walk, "neutral_front"))
                elif direction != a.direction:
                    frames = tuple(mirrored(f) for f in frames)
                if standing and a.is_cog and self.atlas.cogs[a.label.split("_", 2)[2]].clips.get("neutral_front"):
                    frames = self._cog_frames(a.label.split("_", 2)[2], a.ppu, ("neutral_front",))
                x0 = rng.uniform(0.1 * w, 0.9 * w) if standing else (base + slot * span / k) % span - margin
                anim_fps = len(frames) * rng.uniform(0.9, 1.1) / (WALK_CYCLE_S if a.is_cog else 0.8)
                walker = _Walker(a.label, a.is_cog, frames, a.tag, shadow_sprite(a.ppu), a.foot_y, a.tag_dy,
                                 float(x0), float(speed), float(anim_fps), float(rng.uniform(0, 100)), a.level)
                out[i] = (walker, (span, margin))
        return out

    # ---- per frame
    def walker_state(self, i: int, t: float) -> tuple[float, ScaledSprite]:
        wk = self._walkers[i]
        span, margin = self._spans[i]
        x = wk.x0 if wk.speed_px == 0 else (wk.x0 + margin + wk.speed_px * t) % span - margin
        idx = int(math.floor(wk.anim_phase + t * wk.anim_fps)) % len(wk.frames)
        return x, wk.frames[idx]

    def frame(self, t: float) -> SceneFrame:
        """The frame at ``t`` seconds: RGB uint8 (H, W, 3) and ground truth."""
        rgb = self.background.copy()
        fw, fh = self.size_wh
        placed: dict[int, tuple[float, XYXY | None, XYXY]] = {}
        xs = {i: self.walker_state(i, t) for i in self._order}
        for i in self._order:
            sh = self._walkers[i].shadow
            blend_premultiplied(
                rgb,
                sh.premul_rgb,
                sh.inv_alpha,
                int(round(xs[i][0] - sh.foot_xy[0])),
                int(round(self._walkers[i].foot_y - sh.foot_xy[1])),
            )
        for i in self._order:
            wk = self._walkers[i]
            x, spr = xs[i]
            left = int(round(x - spr.foot_xy[0]))
            top = int(round(wk.foot_y - spr.foot_xy[1]))
            h, w = spr.premul_rgb.shape[:2]
            box = blend_premultiplied(rgb, spr.premul_rgb, spr.inv_alpha, left, top)
            placed[i] = (x, box, (left, top, left + w, top + h))
        tags: dict[int, XYXY | None] = {}
        for i in self._order:
            wk = self._walkers[i]
            tags[i] = blend_tag(rgb, wk.tag, placed[i][0], wk.foot_y + wk.tag_bottom_dy)
        objects, tag_boxes = [], []
        for rank, i in enumerate(self._order):
            box = placed[i][1]
            if box is None:
                continue
            full = placed[i][2]
            truncated = box != full
            nearer = [b for j in self._order[rank + 1 :] if (b := placed[j][1]) is not None]
            objects.append(VocObject(self._walkers[i].label, box, truncated, union_covered_fraction(box, nearer) > 0.5,
                                     self._walkers[i].level))
            tag_boxes.append(tags[i])
        return SceneFrame(rgb, tuple(objects), tuple(tag_boxes))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(w.label for w in self._walkers)
