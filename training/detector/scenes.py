"""Labelled detection scenes: several Cogs near to far with game-like nametags, Toons and chat bubbles as
negatives, varied backgrounds and degradations; exact boxes from the composition.

Cogs are sprites rendered from the game's 3D models (:mod:`training.detector.sprites`), scaled by a
perspective ground (the foot row gives pixels per world unit) and drawn far to near (nearer bodies
occlude farther ones); nametags are drawn after every body, as the game draws them on top, with the
demo's game-like card (grey translucent card, the game's suit font, ``Name / Dept / Level N``, the
``Level N v2.0`` variant and the two-line tag of old clients).  One :class:`DetScene` holds the frame at
its window size, every Cog's body box (tight, alpha > 32, clipped), nametag box (clipped, or None when out
of view), its nametag line height in frame pixels, and the share of its body covered by nearer avatars.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from toonvision_live.demo.nametag import (
    COG_TAG_TEXT_RGB,
    TAG_GAP_EM,
    TOON_TAG_TEXT_RGBS,
    nametag_em_px,
    render_nametag,
)
from toonvision_live.demo.sprites import TOON_ANIMALS, blend_premultiplied, make_toon_sprite, toon_name
from toonvision_live.demo.street import _FACADE_RGBS, make_street_background
from toonvision_live.taxonomy import COG_BY_KEY, SUIT_BY_CODE
from training.detector.sprites import SPRITE_PX, CogSprite

XYXYF = tuple[float, float, float, float]

WINDOW_SIZES = ((640, 480), (800, 600), (1024, 768), (1280, 720), (1366, 768), (1600, 900), (1920, 1080))
BACKGROUNDS = ("street", "wall", "night", "snow", "hq", "battle")
DEGRADATIONS = ("none", "jpeg", "blur", "rescale", "colour", "noise")
KINDS = ("cogs", "toons_only", "empty")


@dataclass(frozen=True, slots=True)
class DetObject:
    key: str
    body_xyxy: XYXYF  # tight around the body, clipped to the frame
    tag_xyxy: XYXYF | None  # nametag card clipped to the frame, None when out of view
    line_px: float  # nametag line height (em) in frame pixels
    covered: float  # share of the body box under nearer avatars' boxes
    truncated: bool
    visible: float = 1.0  # share of the whole body box inside the frame


@dataclass(slots=True)
class DetScene:
    rgb: np.ndarray
    objects: list[DetObject]
    background: str
    degradation: str
    kind: str
    toon_boxes: list[XYXYF] = field(default_factory=list)


# ---------------------------------------------------------------- backgrounds
def _tint(img: np.ndarray, mul: tuple[float, float, float], add: float = 0.0) -> np.ndarray:
    return np.clip(img.astype(np.float32) * np.array(mul, np.float32) + add, 0, 255).astype(np.uint8)


def _wall(rng: np.random.Generator, w: int, h: int, horizon: float, grey: bool) -> np.ndarray:
    if grey:
        top = np.array([rng.uniform(70, 140)] * 3, np.float32) + rng.uniform(-8, 8, 3)
        floor = np.array([rng.uniform(60, 120)] * 3, np.float32) + rng.uniform(-8, 8, 3)
    else:
        top = np.array(_FACADE_RGBS[int(rng.integers(len(_FACADE_RGBS)))], np.float32) * rng.uniform(0.6, 1.1)
        floor = rng.uniform(60, 200, 3).astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    hy = int(np.clip(horizon, 0, h))
    img[:hy] = top
    img[hy:] = floor
    if rng.random() < 0.7:  # panels / windows / tiles
        step = int(rng.uniform(0.05, 0.2) * w)
        for x in range(int(rng.uniform(0, step)), w, max(8, step)):
            c = tuple(float(v) for v in (top * rng.uniform(0.6, 1.3)))
            y0 = int(rng.uniform(0.05, 0.5) * max(hy, 1))
            cv2.rectangle(img, (x, y0), (x + int(step * rng.uniform(0.3, 0.8)), max(y0 + 2, hy - 4)), c, -1)
    if rng.random() < 0.6:  # floor tiles by perspective lines
        for k in range(-12, 13):
            line_rgb = tuple(float(v) for v in floor * 0.8)
            cv2.line(img, (int(w / 2 + k * w * 0.02), hy), (int(w / 2 + k * w * 0.25), h), line_rgb, 2)
    noise = cv2.resize(rng.normal(0, 1, (max(2, h // 24), max(2, w // 24))).astype(np.float32), (w, h))
    img *= 1 + 0.08 * noise[:, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


class BackgroundPool:
    """Street backgrounds are slow to draw (0.2-1 s): each worker keeps a few and reuses them."""

    def __init__(self, rng: np.random.Generator, size: int = 6) -> None:
        self.rng, self.size = rng, size
        self.streets: list[tuple[np.ndarray, float, float]] = []  # rgb 1280x720, horizon frac, cam_h

    def street(self) -> tuple[np.ndarray, float, float]:
        if len(self.streets) < self.size or self.rng.random() < 0.03:
            rgb, lay = make_street_background((1280, 720), int(self.rng.integers(2**31)))
            item = (rgb, lay.horizon_y / 720.0, lay.cam_height)
            if len(self.streets) >= self.size:
                self.streets.pop(int(self.rng.integers(len(self.streets))))
            self.streets.append(item)
            return item
        return self.streets[int(self.rng.integers(len(self.streets)))]


def make_background(rng: np.random.Generator, pool: BackgroundPool, kind: str, w: int, h: int
                    ) -> tuple[np.ndarray, float, float]:
    """Background RGB (h, w), its horizon row and camera height (world units) for the ground's perspective."""
    if kind in ("street", "night", "snow", "battle"):
        rgb, hfrac, cam_h = pool.street()
        rgb = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA if w < 1280 else cv2.INTER_LINEAR)
        if rng.random() < 0.5:
            rgb = np.ascontiguousarray(rgb[:, ::-1])
        horizon = hfrac * h
        if kind == "night":
            rgb = _tint(rgb, (rng.uniform(0.25, 0.45), rng.uniform(0.25, 0.45), rng.uniform(0.45, 0.7)))
        elif kind == "snow":
            t = rng.uniform(0.4, 0.7)
            low = rgb[int(horizon):].astype(np.float32)
            rgb = rgb.copy()
            rgb[int(horizon):] = np.clip(low * (1 - t) + np.array([235, 240, 250]) * t, 0, 255).astype(np.uint8)
            rgb = _tint(rgb, (0.95, 0.98, 1.05))
        return rgb, horizon, cam_h
    horizon = rng.uniform(0.35, 0.6) * h
    return _wall(rng, w, h, horizon, grey=kind == "hq"), horizon, float(rng.uniform(3.0, 4.5))


# ---------------------------------------------------------------- drawing helpers
def _premul(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = rgba[:, :, 3:4].astype(np.uint16)
    premul = ((rgba[:, :, :3].astype(np.uint16) * a + 127) // 255).astype(np.uint8)
    return premul, np.repeat((255 - a).astype(np.uint8), 3, axis=2)


def _scaled(rgba: np.ndarray, factor: float) -> np.ndarray:
    h, w = rgba.shape[:2]
    out_wh = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
    a = rgba[:, :, 3:4].astype(np.float32) / 255.0
    pm = np.dstack([rgba[:, :, :3].astype(np.float32) * a, a[:, :, 0] * 255.0])
    pm = cv2.resize(pm, out_wh, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
    if pm.ndim == 2:
        pm = pm[:, :, None]
    alpha = np.clip(pm[:, :, 3:4], 1e-3, 255)
    rgb = np.clip(pm[:, :, :3] / alpha * 255.0, 0, 255)
    return np.dstack([rgb, np.clip(pm[:, :, 3:4], 0, 255)]).astype(np.uint8)


def _alpha_box(alpha: np.ndarray) -> tuple[int, int, int, int] | None:
    mask = alpha > 32
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _shadow(rgb: np.ndarray, cx: float, cy: float, ppu: float) -> None:
    rx, ry = max(2.0, ppu), max(1.0, 0.3 * ppu)
    x0, y0 = int(cx - 2 * rx), int(cy - 3 * ry)
    w, h = int(4 * rx) + 1, int(6 * ry) + 1
    a = np.zeros((h, w), np.float32)
    cv2.ellipse(a, (w // 2, h // 2), (int(rx), int(ry)), 0, 0, 360, 0.4, -1, cv2.LINE_AA)
    a = cv2.GaussianBlur(a, (0, 0), max(0.8, 0.1 * ppu))
    inv = np.repeat((255 - np.clip(a * 255, 0, 255)).astype(np.uint8)[:, :, None], 3, axis=2)
    blend_premultiplied(rgb, np.zeros((h, w, 3), np.uint8), inv, x0, y0)


def _chat_bubble(rgb: np.ndarray, rng: np.random.Generator, cx: float, bottom: float, em: float) -> None:
    words = ("Hi!", "Need help?", "Toontastic!", "Lets go", "Gags!", "SOS", "Yes", "Follow me", "Cogs!", "lol")
    text = " ".join(rng.choice(words, size=int(rng.integers(1, 4))))
    fs = max(0.25, em / 22.0)
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, fs, max(1, int(fs * 2)))
    pad = max(2, int(em * 0.5))
    x0, y1 = int(cx - tw / 2 - pad), int(bottom)
    x1, y0 = int(cx + tw / 2 + pad), int(bottom - th - 2 * pad)
    cv2.rectangle(rgb, (x0, y0), (x1, y1), (255, 255, 255), -1)
    cv2.rectangle(rgb, (x0, y0), (x1, y1), (30, 30, 30), 1)
    tail = np.array([[cx - pad, y1], [cx + pad, y1], [cx, y1 + 2 * pad]], np.int32)
    cv2.fillConvexPoly(rgb, tail, (255, 255, 255))
    cv2.putText(rgb, text, (x0 + pad, y1 - pad), cv2.FONT_HERSHEY_SIMPLEX, fs, (0, 0, 0), max(1, int(fs * 2)),
                cv2.LINE_AA)


def _cog_lines(rng: np.random.Generator, key: str) -> tuple[str, ...]:
    cog = COG_BY_KEY[key]
    dept = SUIT_BY_CODE[cog.suit].name
    level = int(rng.integers(cog.levels[0], cog.levels[1] + 1))
    r = rng.random()
    if r < 0.12:
        return (cog.name, dept, f"Level {level} v2.0")
    if r < 0.24:
        return (cog.name, f"Level {level}")
    return (cog.name, dept, f"Level {level}")


# ---------------------------------------------------------------- degradations
def degrade(rgb: np.ndarray, name: str, rng: np.random.Generator, jpeg_low: int = 30) -> np.ndarray:
    """One degradation of the frame (same size out): jpeg ``jpeg_low``-95, blur, rescale 0.3-3x and back,
    gamma + colour cast, noise; "none" returns the frame."""
    if name == "jpeg":
        q = int(rng.integers(jpeg_low, 96))
        ok, buf = cv2.imencode(".jpg", rgb, [cv2.IMWRITE_JPEG_QUALITY, q])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if name == "blur":
        return cv2.GaussianBlur(rgb, (0, 0), float(rng.uniform(0.5, 1.8)))
    if name == "rescale":
        h, w = rgb.shape[:2]
        s = float(np.exp(rng.uniform(math.log(0.3), math.log(3.0))))
        small = cv2.resize(rgb, (max(8, int(w * s)), max(8, int(h * s))),
                           interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR if s < 1 else cv2.INTER_AREA)
    if name == "colour":
        gamma = float(np.exp(rng.uniform(-0.5, 0.5)))
        cast = rng.uniform(0.8, 1.2, 3).astype(np.float32)
        lut = (np.linspace(0, 1, 256) ** gamma * 255).astype(np.float32)
        out = lut[rgb] * cast
        return np.clip(out, 0, 255).astype(np.uint8)
    if name == "noise":
        sigma = float(rng.uniform(3, 12))
        noise = np.empty(rgb.shape, np.int16)
        cv2.setRNGSeed(int(rng.integers(2**31)))
        cv2.randn(noise, 0, sigma)
        return cv2.add(rgb, noise, dtype=cv2.CV_8U)
    return rgb


# ---------------------------------------------------------------- the scene
def _pair_in_front(rng: np.random.Generator, sprites: list[CogSprite], plans: list[dict], horizon: float,
                   cam_h: float) -> None:
    """Turn the last plan into a short Cog walking just in front of a tall one (the first plan, made tall):
    the case where a small Cog gets no peak of its own."""
    by_height = sorted(sprites, key=lambda s: s.world_height)
    third = max(1, len(by_height) // 3)
    big, small = plans[0], plans[-1]
    ppu = big["ppu"] * big["sprite"].world_height
    big["sprite"] = by_height[-1 - int(rng.integers(third))]
    big["ppu"] = ppu / big["sprite"].world_height
    small["sprite"] = by_height[int(rng.integers(third))]
    small["ppu"] = big["ppu"] * float(rng.uniform(1.0, 1.15))
    bx, by = big["foot"]
    small["foot"] = (bx + float(rng.uniform(-0.35, 0.35)) * big["ppu"] * 2.5,
                     by + (small["ppu"] - big["ppu"]) * cam_h + float(rng.uniform(0.02, 0.2)) * big["ppu"])


def _place_cogs(rgb: np.ndarray, rng: np.random.Generator, sprites: list[CogSprite], n: int, horizon: float,
                cam_h: float, battle: bool, hard: bool = False) -> list[dict]:
    """Foot points and scales: the body height is drawn log-uniform (2.5-70 % of the frame, mostly far),
    the foot row follows from the perspective ground (clamped a little below the frame for near Cogs).
    ``hard``: more far Cogs, more Cogs at the side edges, and often a short Cog just in front of a tall one."""
    h, w = rgb.shape[:2]
    plans = []
    battle_frac = float(np.exp(rng.uniform(math.log(0.08), math.log(0.4))))
    for i in range(n):
        s = sprites[int(rng.integers(len(sprites)))]
        if battle:
            frac = battle_frac * float(np.exp(rng.normal(0, 0.05)))
            foot_x = w * (0.15 + 0.7 * (i + rng.uniform(0.3, 0.7)) / max(n, 1))
        else:
            frac = float(np.exp(rng.uniform(math.log(0.025), math.log(0.7)) * 1.0))
            if rng.random() < (0.6 if hard else 0.4):  # more far Cogs
                frac = float(np.exp(rng.uniform(math.log(0.02 if hard else 0.025), math.log(0.15))))
            foot_x = rng.uniform(-0.05, 1.05) * w
            if hard and rng.random() < 0.25:  # at a side edge, tag cut or nearly
                foot_x = (rng.uniform(-0.04, 0.06) if rng.random() < 0.5 else rng.uniform(0.94, 1.04)) * w
        ppu = frac * h / s.world_height
        foot_y = min(horizon + ppu * cam_h * float(np.exp(rng.normal(0, 0.1))), h * (1 + rng.uniform(0, 0.15)))
        plans.append(dict(sprite=s, foot=(foot_x, foot_y), ppu=ppu))
    if hard and not battle and n >= 2 and rng.random() < 0.6:
        _pair_in_front(rng, sprites, plans, horizon, cam_h)
    return plans


def compose(rng: np.random.Generator, sprites: list[CogSprite], pool: BackgroundPool,
            size_wh: tuple[int, int], background: str, kind: str, hard: bool = False) -> DetScene:
    """One frame of ``kind`` (cogs / toons_only / empty) on ``background``, without degradation."""
    w, h = size_wh
    rgb, horizon, cam_h = make_background(rng, pool, background, w, h)
    rgb = np.ascontiguousarray(rgb)
    counts, weights = [1, 2, 3, 4, 5, 6, 8, 10], [.12, .16, .16, .16, .14, .12, .08, .06]
    n_cogs = 0 if kind != "cogs" else int(rng.choice(counts, p=weights))
    n_toons = int(rng.integers(0, 4)) if kind != "empty" else 0
    if kind == "toons_only":
        n_toons = int(rng.integers(1, 6))
    battle = background == "battle"
    avatars = [dict(p, cog=True) for p in _place_cogs(rgb, rng, sprites, n_cogs, horizon, cam_h, battle, hard)]
    for _ in range(n_toons):
        ppu = float(np.exp(rng.uniform(math.log(0.025), math.log(0.5)))) * h / 3.6
        foot_y = min(horizon + ppu * cam_h, h * 1.1)
        avatars.append(dict(cog=False, foot=(rng.uniform(0, 1) * w, foot_y), ppu=ppu))
    avatars.sort(key=lambda a: a["foot"][1])
    night = background == "night"
    boxes: list[tuple[int, int, int, int] | None] = []
    for a in avatars:  # bodies, far to near
        fx, fy = a["foot"]
        if a["cog"]:
            s: CogSprite = a["sprite"]
            factor = a["ppu"] * s.world_height / SPRITE_PX
            if factor * s.rgba.shape[0] > 3 * h or factor * s.rgba.shape[0] < 6:
                boxes.append(None)
                a["skip"] = True
                continue
            flip = rng.random() < 0.5
            rgba = _scaled(s.rgba[:, ::-1] if flip else s.rgba, factor)
            foot_x = (s.rgba.shape[1] - s.foot_xy[0]) if flip else s.foot_xy[0]
            ox, oy = fx - foot_x * factor, fy - s.foot_xy[1] * factor
            a["height"] = s.world_height
        else:
            toon = make_toon_sprite(str(rng.choice(TOON_ANIMALS)), tuple(int(v) for v in rng.integers(60, 255, 3)),
                                    tuple(int(v) for v in rng.integers(30, 255, 3)),
                                    tuple(int(v) for v in rng.integers(30, 255, 3)), float(rng.random()),
                                    int(rng.choice([-1, 1])))
            a["height"] = float(rng.uniform(3.0, 4.3))
            factor = a["ppu"] * a["height"] / toon.rgba.shape[0]
            if factor * toon.rgba.shape[0] < 6 or factor * toon.rgba.shape[0] > 3 * h:
                boxes.append(None)
                a["skip"] = True
                continue
            rgba = _scaled(toon.rgba, factor)
            ox, oy = fx - toon.foot_xy[0] * factor, fy - toon.foot_xy[1] * factor
        if night:
            rgba = rgba.copy()
            rgba[:, :, :3] = _tint(rgba[:, :, :3], (0.45, 0.45, 0.7))
        _shadow(rgb, fx, fy, a["ppu"])
        pm, inv = _premul(rgba)
        x0, y0 = int(round(ox)), int(round(oy))
        blend_premultiplied(rgb, pm, inv, x0, y0)
        box = _alpha_box(rgba[:, :, 3])
        boxes.append(None if box is None else (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0))
    objects: list[DetObject] = []
    toon_boxes: list[XYXYF] = []
    for i, a in enumerate(avatars):  # nametags on top of every body, far to near
        box = boxes[i]
        if box is None:
            continue
        em = nametag_em_px(a["ppu"], h) * float(np.exp(rng.normal(0, 0.12)))
        em = float(np.clip(em, 2.5, 80))
        cx = (box[0] + box[2]) / 2 + rng.normal(0, 0.03) * (box[2] - box[0])
        bottom = box[1] - TAG_GAP_EM * em * rng.uniform(0.7, 1.4)
        tag_box = None
        if a["cog"]:
            lines = _cog_lines(rng, a["sprite"].key)
            tag = render_nametag(lines, (COG_TAG_TEXT_RGB,) * len(lines), round(em * 4) / 4)
            tw, th = tag.size_wh
            tx, ty = int(round(cx - tw / 2)), int(round(bottom)) - th
            tag_box = blend_premultiplied(rgb, tag.premul_rgb, tag.inv_alpha, tx, ty)
        elif rng.random() < 0.3:
            _chat_bubble(rgb, rng, cx, bottom, em)
        else:
            name = toon_name(rng)
            colour = TOON_TAG_TEXT_RGBS[int(rng.integers(len(TOON_TAG_TEXT_RGBS)))]
            tag = render_nametag((name,), (colour,), round(em * 4) / 4)
            tw, th = tag.size_wh
            blend_premultiplied(rgb, tag.premul_rgb, tag.inv_alpha, int(round(cx - tw / 2)), int(round(bottom)) - th)
        clipped = (max(box[0], 0), max(box[1], 0), min(box[2], w), min(box[3], h))
        if clipped[2] - clipped[0] < 2 or clipped[3] - clipped[1] < 2:
            continue
        if not a["cog"]:
            toon_boxes.append(tuple(float(v) for v in clipped))  # type: ignore[arg-type]
            continue
        nearer = [b for b in boxes[i + 1:] if b is not None]
        objects.append(DetObject(
            a["sprite"].key, tuple(float(v) for v in clipped),  # type: ignore[arg-type]
            None if tag_box is None else tuple(float(v) for v in tag_box),  # type: ignore[arg-type]
            em, _covered(clipped, nearer), clipped != box, _area(clipped) / max(_area(box), 1)))
    return DetScene(rgb, objects, background, "none", kind, toon_boxes)


def _area(b: tuple[int, int, int, int]) -> float:
    return float(max(0, b[2] - b[0]) * max(0, b[3] - b[1]))


def _covered(box: tuple[int, int, int, int], others: list[tuple[int, int, int, int]]) -> float:
    if not others:
        return 0.0
    x0, y0, x1, y1 = box
    mask = np.zeros((y1 - y0, x1 - x0), bool)
    for o in others:
        mask[max(o[1] - y0, 0):max(o[3] - y0, 0), max(o[0] - x0, 0):max(o[2] - x0, 0)] = True
    return float(mask.mean())


def random_scene(rng: np.random.Generator, sprites: list[CogSprite], pool: BackgroundPool,
                 size_wh: tuple[int, int] | None = None, background: str | None = None,
                 degradation: str | None = None, kind: str | None = None, hard: bool = False) -> DetScene:
    """A scene with every unset choice drawn from ``rng`` (training mix: mostly Cogs, some negatives);
    ``hard``: the hard-case mix (see _place_cogs; JPEG down to quality 15, and in half the frames)."""
    size = size_wh or WINDOW_SIZES[int(rng.integers(len(WINDOW_SIZES)))]
    bg = background or str(rng.choice(BACKGROUNDS, p=[0.4, 0.12, 0.12, 0.12, 0.12, 0.12]))
    k = kind or str(rng.choice(KINDS, p=[0.84, 0.1, 0.06]))
    scene = compose(rng, sprites, pool, size, bg, k, hard)
    if degradation is None:
        names = [str(d) for d in rng.choice(DEGRADATIONS[1:], size=int(rng.integers(0, 3)), replace=False)]
        if hard and "jpeg" not in names and rng.random() < 0.4:
            names.append("jpeg")
        for d in names:
            scene.rgb = degrade(scene.rgb, d, rng, 15 if hard else 30)
        scene.degradation = "+".join(names) or "none"
    else:
        scene.rgb = degrade(scene.rgb, degradation, rng)
        scene.degradation = degradation
    return scene
