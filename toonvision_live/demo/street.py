"""The demo street's background: sky, facades in perspective, shop signs, cobbles, trees and lamps,
and the camera geometry that maps a ground row to pixels per world unit."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class StreetLayout:
    """Camera and ground geometry of a background: ground rows map to px per world unit."""

    size_wh: tuple[int, int]
    horizon_y: float  # screen row of the horizon
    back_y: int  # row where the ground meets the back row of buildings
    cam_height: float  # camera height above the ground, world units
    focal_px: float

    def px_per_unit(self, foot_y: float) -> float:
        return max(foot_y - self.horizon_y, 1e-3) / self.cam_height


_FACADE_RGBS = (
    (240, 160, 70),
    (250, 205, 90),
    (240, 130, 110),
    (190, 160, 225),
    (160, 215, 130),
    (245, 225, 170),
    (130, 195, 235),
    (235, 120, 80),
    (250, 180, 140),
    (210, 140, 190),
)
_TRIM_RGBS = ((40, 140, 80), (40, 110, 160), (150, 60, 40), (90, 70, 150), (200, 90, 40), (30, 120, 120))


def _sky(w: int, h: int, rng: np.random.Generator) -> np.ndarray:
    top, bottom = np.array([30, 95, 215], np.float32), np.array([150, 200, 245], np.float32)
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    sky = np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).copy()
    clouds: np.ndarray = np.zeros((h, w), np.float32)
    belly: np.ndarray = np.zeros((h, w), np.float32)
    for _ in range(int(rng.integers(3, 8))):
        cx, cy = rng.uniform(0, w), rng.uniform(0.04, 0.35) * h
        size = rng.uniform(0.04, 0.1) * w
        for _ in range(int(rng.integers(5, 10))):
            ox, oy = rng.normal(0, size * 0.55), -abs(rng.normal(0, size * 0.15))
            r = int(rng.uniform(0.12, 0.24) * size)
            cv2.circle(clouds, (int(cx + ox), int(cy + oy)), r, 1.0, -1, cv2.LINE_AA)
            cv2.circle(belly, (int(cx + ox), int(cy + oy + 0.45 * r)), r, 1.0, -1, cv2.LINE_AA)
        cv2.ellipse(
            clouds, (int(cx), int(cy)), (int(size * 0.6), int(size * 0.12)), 0, 0, 360, 1.0, -1, cv2.LINE_AA
        )
    clouds = cv2.GaussianBlur(clouds, (0, 0), 1.5)[:, :, None]
    belly = cv2.GaussianBlur(belly * clouds[:, :, 0], (0, 0), 6.0)[:, :, None]
    cloud_rgb = (
        np.array([255, 255, 255], np.float32) * (1 - 0.18 * belly) + np.array([190, 205, 235]) * 0.18 * belly
    )
    return sky * (1 - clouds) + cloud_rgb * clouds


def _window(
    img: np.ndarray, x: int, y: int, w: int, h: int,
    frame_rgb: Sequence[float], glass_rgb: Sequence[float], arched: bool,
) -> None:
    t = max(2, w // 6)
    if arched:
        r = w // 2
        cv2.ellipse(img, (x + r, y + r), (r, r), 0, 180, 360, frame_rgb, -1, cv2.LINE_AA)
        cv2.rectangle(img, (x, y + r), (x + w, y + h), frame_rgb, -1)
        ri = max(1, r - t)
        cv2.ellipse(img, (x + r, y + r), (ri, ri), 0, 180, 360, glass_rgb, -1, cv2.LINE_AA)
        cv2.rectangle(img, (x + t, y + r), (x + w - t, y + h - t), glass_rgb, -1)
    else:
        cv2.rectangle(img, (x, y), (x + w, y + h), frame_rgb, -1)
        cv2.rectangle(img, (x + t, y + t), (x + w - t, y + h - t), glass_rgb, -1)
    cv2.line(img, (x + w // 2, y + t), (x + w // 2, y + h - t), frame_rgb, max(1, t // 2))
    cv2.line(img, (x + t, y + h // 2 + t), (x + w - t, y + h // 2 + t), frame_rgb, max(1, t // 2))


def _facade(w: int, h: int, rng: np.random.Generator, px_per_unit: float) -> np.ndarray:
    """One flat building front (RGB float32): wall, top trim, windows, maybe a door and bricks."""
    wall = np.array(_FACADE_RGBS[int(rng.integers(len(_FACADE_RGBS)))], np.float32)
    trim = tuple(int(c) for c in _TRIM_RGBS[int(rng.integers(len(_TRIM_RGBS)))])
    img = np.empty((h, w, 3), np.float32)
    img[:] = wall
    img *= np.linspace(1.04, 0.9, h, dtype=np.float32)[:, None, None]  # a little darker near the ground
    u = px_per_unit
    for _ in range(int(rng.integers(0, 8))):  # darker bricks
        bx, by = int(rng.uniform(0, w)), int(rng.uniform(0.3, 1) * h)
        cv2.rectangle(
            img, (bx, by), (bx + int(1.6 * u), by + int(0.6 * u)), tuple(float(c) * 0.8 for c in wall), -1
        )
    dark = tuple(float(c) * 0.7 for c in wall)
    light = tuple(min(255.0, float(c) * 1.12) for c in wall)
    cv2.rectangle(img, (0, 0), (w, max(2, int(0.9 * u))), dark, -1)  # cornice
    cv2.rectangle(img, (0, max(2, int(0.9 * u))), (w, max(3, int(1.2 * u))), light, -1)
    cv2.rectangle(img, (0, h - max(2, int(0.5 * u))), (w, h), tuple(float(c) * 0.75 for c in wall), -1)
    pil = max(2, int(0.8 * u))
    for px in (0, w - pil):  # corner pilasters
        cv2.rectangle(img, (px, 0), (px + pil, h), tuple(float(c) * 0.88 for c in wall), -1)
        cv2.line(img, (px + pil // 2, int(1.2 * u)), (px + pil // 2, h), light, max(1, pil // 4))
    cv2.line(img, (0, 0), (0, h), tuple(float(c) * 0.5 for c in wall), max(1, int(0.12 * u)))
    glass = tuple(float(c) for c in rng.choice([(40, 70, 60), (60, 80, 120), (235, 225, 150)]))
    arched = bool(rng.random() < 0.6)
    ww, wh = int(rng.uniform(1.6, 2.4) * u), int(rng.uniform(2.4, 3.4) * u)
    n = max(1, int(w / (ww * 2.6)))
    rows = max(1, int((h - 6 * u) / (wh * 1.8)))
    door_i = int(rng.integers(n)) if rng.random() < 0.7 else -1
    for row in range(rows):
        wy = int(1.6 * u + row * wh * 1.8)
        for i in range(n):
            wx = int((i + 0.5) * w / n - ww / 2)
            if row == rows - 1 and i == door_i:
                continue
            _window(img, wx, wy, ww, wh, trim, glass, arched)
    if door_i >= 0:
        dw, dh = int(2.6 * u), int(4.2 * u)
        dx = int((door_i + 0.5) * w / n - dw / 2)
        door_rgb = tuple(
            float(c) for c in rng.choice([(60, 150, 70), (170, 80, 60), (80, 90, 170), (220, 120, 60)])
        )
        _window(img, dx, h - dh - int(0.5 * u), dw, dh, trim, door_rgb, True)
        if rng.random() < 0.6:
            _shop_sign(img, (door_i + 0.5) * w / n, h - dh - int(1.4 * u), u, rng)
    return img


_SHOP_NAMES = (
    "Gag Shop",
    "Toon HQ",
    "Clothing",
    "Pet Shop",
    "Fish Bingo",
    "Silly Store",
    "Library",
    "Bank",
    "Jokes 4 U",
    "Toontown Hall",
    "Pie Shop",
    "Joke Books",
)


def _shop_sign(img: np.ndarray, center_x: float, bottom_y: int, u: float, rng: np.random.Generator) -> None:
    """A painted plank with one line of bright text over a door (a distractor for the tag finder)."""
    text = str(rng.choice(_SHOP_NAMES))
    font = cv2.FONT_HERSHEY_DUPLEX
    scale = max(0.25, 0.9 * u / 22)
    (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
    pad = max(2, int(0.35 * u))
    x0, y0 = int(center_x - tw / 2 - pad), int(bottom_y - th - 2 * pad)
    plank = tuple(float(c) for c in rng.choice([(150, 40, 40), (40, 80, 160), (40, 120, 60), (120, 80, 40)]))
    ink = tuple(float(c) for c in rng.choice([(255, 255, 255), (255, 220, 60), (250, 250, 200)]))
    cv2.rectangle(img, (x0, y0), (x0 + tw + 2 * pad, bottom_y), plank, -1, cv2.LINE_AA)
    cv2.rectangle(
        img, (x0, y0), (x0 + tw + 2 * pad, bottom_y), tuple(c * 0.6 for c in plank), max(1, pad // 3)
    )
    mask = np.zeros(img.shape[:2], np.uint8)  # putText draws on 8-bit images only
    cv2.putText(mask, text, (x0 + pad, bottom_y - pad), font, scale, 255, 1, cv2.LINE_AA)
    a = mask.astype(np.float32)[:, :, None] / 255.0
    img[:] = img * (1 - a) + np.array(ink, np.float32) * a


def _wrap_blur(tex: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a tileable texture that stays tileable."""
    pad = int(3 * sigma) + 1
    big = np.pad(tex, ((pad, pad), (pad, pad), (0, 0)), mode="wrap")
    return cv2.GaussianBlur(big, (0, 0), sigma)[pad:-pad, pad:-pad]


def _cobbles(rng: np.random.Generator, tile: int, cell: int) -> np.ndarray:
    """A tileable top-down texture of irregular sandy flagstones (Voronoi cells), RGB float32."""
    n = max(2, tile // cell)
    gy, gx = np.mgrid[0:n, 0:n].astype(np.float32)
    pts = np.stack(
        [
            (gx + 0.5 + rng.uniform(-0.35, 0.35, gx.shape)) * tile / n,
            (gy + 0.5 + rng.uniform(-0.35, 0.35, gy.shape)) * tile / n,
        ],
        -1,
    ).reshape(-1, 2)
    seeds = np.ones((3 * tile, 3 * tile), np.uint8)
    for ox in range(3):
        for oy in range(3):
            q = (pts + [ox * tile, oy * tile]).astype(int)
            seeds[np.clip(q[:, 1], 0, 3 * tile - 1), np.clip(q[:, 0], 0, 3 * tile - 1)] = 0
    dist, labels = cv2.distanceTransformWithLabels(seeds, cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL)
    labels = labels[tile : 2 * tile, tile : 2 * tile]
    base = np.array([232, 200, 150], np.float32)
    palette = base * rng.uniform(0.92, 1.05, (labels.max() + 1, 1)) + rng.normal(0, 2, (labels.max() + 1, 3))
    tex = palette[labels].astype(np.float32)
    edge = np.zeros(labels.shape, np.float32)
    edge[:, :-1] += labels[:, :-1] != labels[:, 1:]
    edge[:-1] += labels[:-1] != labels[1:]
    edge = np.clip(edge, 0, 1)[:, :, None]
    edge = _wrap_blur(edge, 1.5)
    edge = edge[:, :, None] if edge.ndim == 2 else edge
    tex = tex * (1 - 0.35 * np.clip(edge * 2.5, 0, 1))
    return _wrap_blur(tex, 1.0)


def _paving(rng: np.random.Generator, tile: int, cell: int) -> np.ndarray:
    base = np.array([238, 215, 170], np.float32)
    tex = np.empty((tile, tile, 3), np.float32)
    tex[:] = base
    for k in range(0, tile, cell):
        cv2.line(tex, (k, 0), (k, tile), tuple(float(c) for c in base * 0.85), 2)
        cv2.line(tex, (0, k), (tile, k), tuple(float(c) for c in base * 0.85), 2)
    return tex


def _tree(img: np.ndarray, x: float, foot_y: float, ppu: float, rng: np.random.Generator) -> None:
    trunk_h, crown = 5.0 * ppu, 3.2 * ppu
    tw = max(2, int(0.45 * ppu))
    cv2.rectangle(
        img, (int(x - tw / 2), int(foot_y - trunk_h)), (int(x + tw / 2), int(foot_y)), (110, 75, 40), -1
    )
    cy = foot_y - trunk_h - crown * 0.5
    greens = ((40, 150, 70), (60, 175, 80), (30, 125, 60), (80, 190, 90))
    for k in range(int(rng.integers(7, 12))):
        ox, oy = rng.normal(0, crown * 0.45), rng.normal(0, crown * 0.35)
        r = int(crown * rng.uniform(0.35, 0.6))
        g = greens[k % len(greens)]
        cv2.circle(
            img, (int(x + ox), int(cy + oy)), r + max(1, int(0.08 * ppu)), (25, 90, 45), -1, cv2.LINE_AA
        )
        cv2.circle(img, (int(x + ox), int(cy + oy)), r, g, -1, cv2.LINE_AA)


def _lamp(img: np.ndarray, x: float, foot_y: float, ppu: float) -> None:
    pole = (40, 150, 140)
    h = 7.0 * ppu
    cv2.rectangle(
        img, (int(x - 0.5 * ppu), int(foot_y - 0.6 * ppu)), (int(x + 0.5 * ppu), int(foot_y)), pole, -1
    )
    cv2.line(
        img, (int(x), int(foot_y)), (int(x), int(foot_y - h)), pole, max(2, int(0.22 * ppu)), cv2.LINE_AA
    )
    lw, lh = int(0.45 * ppu), int(0.9 * ppu)
    top = int(foot_y - h)
    cv2.rectangle(img, (int(x) - lw, top - lh), (int(x) + lw, top), (250, 230, 90), -1)
    cv2.rectangle(img, (int(x) - lw, top - lh), (int(x) + lw, top), pole, max(1, int(0.1 * ppu)))


def _hydrant(img: np.ndarray, x: float, foot_y: float, ppu: float) -> None:
    w, h = int(0.5 * ppu), int(1.3 * ppu)
    cv2.rectangle(img, (int(x - w), int(foot_y - h)), (int(x + w), int(foot_y)), (200, 30, 30), -1)
    cv2.circle(img, (int(x), int(foot_y - h)), w, (220, 40, 40), -1, cv2.LINE_AA)
    cv2.rectangle(
        img,
        (int(x - 1.6 * w), int(foot_y - 0.7 * h)),
        (int(x + 1.6 * w), int(foot_y - 0.5 * h)),
        (180, 25, 25),
        -1,
    )


@lru_cache(maxsize=16)  # replays and benches go through streets 0-7 (2.8 MB each at 1280x720)
def cached_background(size_wh: tuple[int, int], seed: int) -> tuple[np.ndarray, StreetLayout]:
    rgb, layout = make_street_background(size_wh, seed)
    rgb.setflags(write=False)  # shared between scenes of the same seed
    return rgb, layout


def make_street_background(
    size_wh: tuple[int, int] = (1280, 720), seed: int = 0
) -> tuple[np.ndarray, StreetLayout]:
    """A Toontown-like street (RGB uint8) and its camera geometry, varied by ``seed``."""
    w, h = size_wh
    rng = np.random.default_rng([seed, 0x57EE7])
    horizon = h * rng.uniform(0.48, 0.53)
    back_y = int(horizon + h * rng.uniform(0.05, 0.07))
    focal = h / (2 * math.tan(math.radians(25)))
    cam_h = rng.uniform(3.4, 4.0)
    layout = StreetLayout((w, h), float(horizon), back_y, float(cam_h), float(focal))
    img = _sky(w, h, rng)
    _back_row(img, layout, rng)
    walk_depth = _ground(img, layout, rng)
    for side in (-1, 1):
        if rng.random() >= 0.25:
            img = _side_building(img, layout, rng, side, walk_depth)
    _props(img, layout, rng, walk_depth)
    out = np.clip(img + rng.normal(0, 2.0, img.shape).astype(np.float32), 0, 255)
    out = cv2.GaussianBlur(out, (0, 0), 0.6)
    return out.astype(np.uint8), layout


def _back_row(img: np.ndarray, layout: StreetLayout, rng: np.random.Generator) -> None:
    """The back row of buildings, at the distance of ``layout.back_y``."""
    w, back_y = layout.size_wh[0], layout.back_y
    ppu_back = layout.px_per_unit(back_y)
    x = -int(rng.uniform(0, 120))
    while x < w:
        bw = int(rng.uniform(14, 34) * ppu_back)
        bh = int(rng.uniform(14, 26) * ppu_back)
        top = max(0, back_y - bh)
        if x + bw <= 0:
            x += bw
            continue
        img[top:back_y, max(0, x) : min(w, x + bw)] = _facade(bw, back_y - top, rng, ppu_back)[
            :, max(0, -x) : min(bw, w - x)
        ]
        x += bw


def _z_back(layout: StreetLayout) -> float:
    """World depth of the back row's foot."""
    return layout.focal_px * layout.cam_height / (layout.back_y - layout.horizon_y)


def _ground(img: np.ndarray, layout: StreetLayout, rng: np.random.Generator) -> float:
    """Cobbled street and the paved strip in front of the buildings, by inverse perspective; the strip's
    depth in world units."""
    (w, h), back_y, horizon = layout.size_wh, layout.back_y, layout.horizon_y
    focal, cam_h, z_back = layout.focal_px, layout.cam_height, _z_back(layout)
    ys, xs = np.mgrid[back_y:h, 0:w].astype(np.float32)
    z = focal * cam_h / (ys - horizon)
    wx = (xs - w / 2) * z / focal
    tex_ppu, cobble_tile = 48.0, 768
    cob = _cobbles(rng, cobble_tile, int(rng.uniform(0.7, 1.0) * tex_ppu))
    pave = _paving(rng, 384, int(1.5 * tex_ppu))
    map_x, map_y = (wx * tex_ppu).astype(np.float32), (z * tex_ppu).astype(np.float32)
    street = cv2.remap(cob, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    walk = cv2.remap(pave, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    walk_depth = rng.uniform(9.0, 16.0)
    on_walk = (z > z_back - walk_depth)[:, :, None]
    ground = np.where(on_walk, walk, street)
    curb = np.abs(z - (z_back - walk_depth)) < 0.12 * z / focal * 40
    ground[curb] *= 0.75
    haze = np.clip((z - 10) / (z_back * 1.3), 0, 0.35)[:, :, None]  # distant ground a little lighter
    img[back_y:h] = ground * (1 - haze) + 235 * haze
    return float(walk_depth)


def _side_building(
    img: np.ndarray, layout: StreetLayout, rng: np.random.Generator, side: int, walk_depth: float
) -> np.ndarray:
    """``img`` with a building in perspective on the plane x = ``side`` * 30..45 world units."""
    (w, h), horizon, focal, cam_h = layout.size_wh, layout.horizon_y, layout.focal_px, layout.cam_height
    xs_world = side * rng.uniform(30, 45)
    side_h = rng.uniform(16, 28)
    depth = _z_back(layout) - walk_depth - 1.0
    tex_w, tex_h = int(depth * 12), int(side_h * 12)
    fac = _facade(tex_w, tex_h, rng, 12.0)
    z_near = max(2.0, focal * abs(xs_world) / (w * 1.5))

    def project(wx_: float, wy_: float, wz_: float) -> tuple[float, float]:
        return w / 2 + focal * wx_ / wz_, horizon + focal * (cam_h - wy_) / wz_

    # texture column 0 is the far end when side == 1 looks along +x... keep windows upright
    src = np.array([[0, 0], [tex_w, 0], [tex_w, tex_h], [0, tex_h]], np.float32)
    far, near = (depth, z_near) if side > 0 else (z_near, depth)
    corners = [(side_h, far), (side_h, near), (0, near), (0, far)]
    dst = np.array([project(xs_world, y, z) for y, z in corners], np.float32)
    m = cv2.getPerspectiveTransform(src, dst)
    warped = cv2.warpPerspective(fac, m, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.ones((tex_h, tex_w), np.float32), m, (w, h), flags=cv2.INTER_LINEAR)[:, :, None]
    return img * (1 - cover) + warped * cover * 0.92


def _props(img: np.ndarray, layout: StreetLayout, rng: np.random.Generator, walk_depth: float) -> None:
    """Trees, lamps and hydrants along the paved strip."""
    w, horizon, focal, cam_h = layout.size_wh[0], layout.horizon_y, layout.focal_px, layout.cam_height
    z_back = _z_back(layout)
    for _ in range(int(rng.integers(3, 7))):
        pz = z_back - rng.uniform(0.5, walk_depth - 0.5)
        fy = horizon + focal * cam_h / pz
        ppu = focal / pz
        px = rng.uniform(0.02, 0.98) * w
        kind = rng.random()
        if kind < 0.45:
            _tree(img, px, fy, ppu, rng)
        elif kind < 0.8:
            _lamp(img, px, fy, ppu)
        else:
            _hydrant(img, px, fy, ppu)
