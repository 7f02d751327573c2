"""Cheap numpy/cv2 image work for rendered crops: street-like backgrounds, distractors, photometric shifts.

Pure functions of their inputs and a ``numpy.random.Generator`` so a seed reproduces every image.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: street-like colours (RGB): cobblestone/sand, pavement, grass, brick, walls, sky, wood
STREET_RGB: tuple[tuple[int, int, int], ...] = (
    (222, 196, 150),
    (205, 178, 130),
    (190, 160, 115),
    (160, 158, 150),
    (120, 118, 112),
    (95, 150, 70),
    (70, 125, 60),
    (175, 95, 60),
    (200, 120, 70),
    (235, 175, 70),
    (240, 210, 110),
    (225, 140, 120),
    (110, 165, 225),
    (150, 195, 240),
    (120, 85, 55),
    (60, 110, 90),
    (200, 200, 190),
    (90, 70, 90),
    (40, 40, 50),
    (230, 220, 200),
)


def _colour(rng: np.random.Generator, jitter: float = 18.0) -> np.ndarray:
    base = np.array(STREET_RGB[rng.integers(len(STREET_RGB))], np.float32)
    return np.clip(base + rng.normal(0, jitter, 3), 0, 255)


def _smooth_noise(rng: np.random.Generator, size_hw: tuple[int, int], cells: int) -> np.ndarray:
    """Low-frequency noise in [-1, 1] (float32, HxW)."""
    h, w = size_hw
    small = rng.uniform(-1, 1, (max(2, h // cells), max(2, w // cells))).astype(np.float32)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _cobbles(rng: np.random.Generator, size_hw: tuple[int, int]) -> np.ndarray:
    """A cobblestone-like shading pattern in [0.75, 1.05] from blurred random cells."""
    h, w = size_hw
    cell = int(rng.integers(14, 40))
    small = rng.uniform(0.8, 1.05, (h // cell + 2, w // cell + 2)).astype(np.float32)
    big = cv2.resize(small, ((w // cell + 2) * cell, (h // cell + 2) * cell), interpolation=cv2.INTER_NEAREST)
    big = big[:h, :w].copy()
    lines = np.ones((h, w), np.float32)
    lines[::cell, :] = 0.78
    lines[:, ::cell] = 0.78
    return cv2.GaussianBlur(big * lines, (0, 0), cell / 6)


def make_background(rng: np.random.Generator, size_hw: tuple[int, int]) -> np.ndarray:
    """One street-like RGB uint8 background: ground, walls/sky with a horizon, gradients or noise."""
    h, w = size_hw
    kind = rng.choice(["ground", "horizon", "gradient", "noise", "flat"], p=[0.3, 0.3, 0.2, 0.12, 0.08])
    img = np.empty((h, w, 3), np.float32)
    if kind == "ground":
        img[:] = _colour(rng)
        img *= _cobbles(rng, size_hw)[:, :, None]
    elif kind == "horizon":
        y = int(rng.uniform(0.3, 0.85) * h)
        upper, lower = _colour(rng), _colour(rng)
        img[:y] = upper
        img[y:] = lower
        if rng.random() < 0.6:  # windows/doors on a wall
            for _ in range(int(rng.integers(1, 5))):
                x0, y0 = int(rng.uniform(0, w)), int(rng.uniform(0, max(1, y - 20)))
                ww, hh = int(rng.uniform(20, 120)), int(rng.uniform(20, 140))
                cv2.rectangle(img, (x0, y0), (x0 + ww, min(y, y0 + hh)), tuple(float(v) for v in _colour(rng)), -1)
        img[y:] *= _cobbles(rng, (h - y, w))[:, :, None]
    elif kind == "gradient":
        a, b = _colour(rng), _colour(rng)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        img[:] = a * (1 - t) + b * t
    elif kind == "noise":
        img[:] = _colour(rng)
        img *= 1 + 0.25 * rng.uniform(-1, 1, (h, w, 1)).astype(np.float32)
    else:
        img[:] = _colour(rng, 30)
    img *= 1 + 0.15 * _smooth_noise(rng, size_hw, int(rng.integers(20, 80)))[:, :, None]
    return np.clip(img, 0, 255).astype(np.uint8)


def draw_toon_blob(
    canvas: np.ndarray, rng: np.random.Generator, center_x: float, bottom_y: float, height: float
) -> None:
    """Draw a Toon-like distractor (bright head with ears, shirt, shorts, gloves) in place on RGB uint8."""

    def col() -> tuple[int, int, int]:
        return tuple(int(v) for v in rng.integers(40, 256, 3))

    h = height
    cx, by = int(center_x), int(bottom_y)
    fur, shirt, shorts = col(), col(), col()
    head_r = int(0.16 * h)
    cv2.rectangle(canvas, (cx - int(0.12 * h), by - int(0.3 * h)), (cx + int(0.12 * h), by), shorts, -1)
    cv2.ellipse(canvas, (cx, by - int(0.45 * h)), (int(0.16 * h), int(0.2 * h)), 0, 0, 360, shirt, -1)
    cv2.circle(canvas, (cx, by - int(0.75 * h)), head_r, fur, -1)
    for side in (-1, 1):
        cv2.ellipse(
            canvas,
            (cx + side * int(0.1 * h), by - int(0.92 * h)),
            (int(0.04 * h), int(0.1 * h)),
            side * 15,
            0,
            360,
            fur,
            -1,
        )
        cv2.circle(canvas, (cx + side * int(0.2 * h), by - int(0.4 * h)), int(0.05 * h), (245, 245, 245), -1)


def draw_nametag_edge(
    canvas: np.ndarray, rng: np.random.Generator, center_x: float, bottom_y: float, body_h: float
) -> None:
    """Draw a Cog nametag card (light grey, three dark text lines) whose bottom edge is at ``bottom_y``.

    Only what falls inside ``canvas`` shows: in a loose crop, the bottom of the tag above the head.
    """
    card_w = body_h * rng.uniform(0.45, 0.75)
    line_h = body_h * rng.uniform(0.045, 0.06)
    top = bottom_y - 3.3 * line_h
    grey = int(rng.integers(190, 235))
    x0, x1 = int(center_x - card_w / 2), int(center_x + card_w / 2)
    cv2.rectangle(canvas, (x0, int(top)), (x1, int(bottom_y)), (grey, grey, grey), -1)
    ink = int(rng.integers(0, 60))
    for i in range(3):
        y = int(top + (i + 0.8) * line_h)
        chars = int(rng.integers(5, 14))
        text = "".join(chr(int(c)) for c in rng.integers(65, 91, chars))
        scale = line_h / 22
        (tw, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_PLAIN, scale, 1)
        cv2.putText(canvas, text, (int(center_x - tw / 2), y), cv2.FONT_HERSHEY_PLAIN, scale, (ink, ink, ink), 1)


def draw_shadow(canvas: np.ndarray, center_xy: tuple[float, float], half_width: float, darkness: float) -> None:
    """Darken a soft ellipse (the game's drop shadow under an avatar) on RGB uint8 ``canvas`` in place."""
    h, w = canvas.shape[:2]
    ax, ay = max(2.0, half_width), max(1.0, half_width * 0.22)
    x0, x1 = max(0, int(center_xy[0] - ax - 3)), min(w, int(center_xy[0] + ax + 4))
    y0, y1 = max(0, int(center_xy[1] - ay - 3)), min(h, int(center_xy[1] + ay + 4))
    if x0 >= x1 or y0 >= y1:
        return
    mask = np.zeros((y1 - y0, x1 - x0), np.float32)
    center = (int(round(center_xy[0] - x0)), int(round(center_xy[1] - y0)))
    cv2.ellipse(mask, center, (int(ax), int(ay)), 0, 0, 360, float(darkness), -1, cv2.LINE_AA)
    mask = cv2.GaussianBlur(mask, (0, 0), max(0.8, ay * 0.3))
    region = canvas[y0:y1, x0:x1]
    region[:] = (region * (1 - mask[:, :, None])).astype(np.uint8)


def paste_rgba(canvas: np.ndarray, sprite: np.ndarray, x0: int, y0: int) -> None:
    """Alpha-blend RGBA ``sprite`` onto RGB ``canvas`` with its top-left at (x0, y0), clipped, in place."""
    h, w = sprite.shape[:2]
    H, W = canvas.shape[:2]
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(W, x0 + w), min(H, y0 + h)
    if cx0 >= cx1 or cy0 >= cy1:
        return
    part = sprite[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0]
    alpha = part[:, :, 3].astype(np.float32) * np.float32(1 / 255)
    region = canvas[cy0:cy1, cx0:cx1]
    region[:] = cv2.blendLinear(np.ascontiguousarray(part[:, :, :3]), np.ascontiguousarray(region), alpha, 1 - alpha)


@dataclass(frozen=True, slots=True)
class Photometric:
    """Colour and degradation applied to a finished crop."""

    gain_rgb: tuple[float, float, float]
    gamma: float
    contrast: float
    saturation: float
    blur_sigma: float  # 0: none
    noise_sigma: float  # 0: none
    jpeg_quality: int  # 0: none

    @staticmethod
    def sample(rng: np.random.Generator) -> Photometric:
        temperature = rng.uniform(-1, 1)
        brightness = rng.uniform(0.8, 1.12)
        gamma = rng.uniform(0.85, 1.2)
        if rng.random() < 0.35:  # close to the plain unlit look of the game and the demo street
            temperature = rng.uniform(-0.2, 0.2)
            brightness = rng.uniform(0.96, 1.04)
            gamma = rng.uniform(0.95, 1.05)
        elif rng.random() < 0.15:  # a darker, browner look (unlit renders already match the real frame)
            gamma = rng.uniform(1.1, 1.35)
            temperature = rng.uniform(0.2, 1.0)
        gain = (brightness * (1 + 0.09 * temperature), brightness, brightness * (1 - 0.09 * temperature))
        return Photometric(
            gain_rgb=tuple(round(float(g), 4) for g in gain),
            gamma=round(float(gamma), 4),
            contrast=round(float(rng.uniform(0.85, 1.15)), 4),
            saturation=round(float(rng.uniform(0.7, 1.25)), 4),
            blur_sigma=round(float(rng.uniform(0.4, 1.6)), 3) if rng.random() < 0.4 else 0.0,
            noise_sigma=round(float(rng.uniform(1.5, 7.0)), 3) if rng.random() < 0.5 else 0.0,
            jpeg_quality=int(rng.integers(35, 96)) if rng.random() < 0.6 else 0,
        )


def apply_photometric(rgb: np.ndarray, p: Photometric, noise_bank: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The crop after colour (per-channel LUT + saturation), blur, noise and JPEG round trip."""
    x = np.arange(256, dtype=np.float32) / 255
    lut = np.empty((256, 1, 3), np.uint8)
    for c in range(3):
        v = ((x**p.gamma) * p.gain_rgb[c] - 0.5) * p.contrast + 0.5
        lut[:, 0, c] = np.clip(v * 255 + 0.5, 0, 255).astype(np.uint8)
    out = cv2.LUT(rgb, lut)
    if abs(p.saturation - 1) > 1e-3:
        grey = cv2.cvtColor(out, cv2.COLOR_RGB2GRAY)
        grey3 = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
        out = cv2.addWeighted(out, p.saturation, grey3, 1 - p.saturation, 0)
    if p.blur_sigma > 0:
        out = cv2.GaussianBlur(out, (0, 0), p.blur_sigma)
    if p.noise_sigma > 0:
        h, w = out.shape[:2]
        y0 = int(rng.integers(0, noise_bank.shape[0] - h + 1))
        x0 = int(rng.integers(0, noise_bank.shape[1] - w + 1))
        noise = noise_bank[y0 : y0 + h, x0 : x0 + w]
        out = cv2.addWeighted(out, 1.0, noise, float(p.noise_sigma), 0.0, dtype=cv2.CV_8U)
    if p.jpeg_quality > 0:
        ok, buf = cv2.imencode(".jpg", out[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, p.jpeg_quality])
        if ok:
            out = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return np.ascontiguousarray(out)


def make_noise_bank(rng: np.random.Generator, size_hw: tuple[int, int]) -> np.ndarray:
    """Unit Gaussian noise (float32, HxWx3) to slice from, so per-crop noise costs no random draws."""
    return rng.standard_normal((size_hw[0], size_hw[1], 3), dtype=np.float32)
