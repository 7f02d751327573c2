"""Sprites of the demo street: the rendered Cog atlas, drawn Toon figures, scaling, shadows, mirroring
and premultiplied-alpha blending."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.errors import DataError
from toonvision_live.geometry import XYXY
from toonvision_live.taxonomy import COG_BY_KEY

ALPHA_BOX_THRESHOLD = 32  # as the renderer crops its sprites: alpha > 32 counts as body


def premultiply(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = rgba[:, :, 3:4].astype(np.uint16)
    premul = ((rgba[:, :, :3].astype(np.uint16) * a + 127) // 255).astype(np.uint8)
    return premul, np.repeat((255 - a).astype(np.uint8), 3, axis=2)


def blend_premultiplied(
    rgb: np.ndarray, premul: np.ndarray, inv_alpha: np.ndarray, x: int, y: int
) -> XYXY | None:
    """Blend a premultiplied image into ``rgb`` (in place) with its top-left at (x, y).

    Returns the drawn part's box (exclusive ends) clipped to the frame, or None when nothing is inside.
    """
    fh, fw = rgb.shape[:2]
    h, w = premul.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x0 >= x1 or y0 >= y1:
        return None
    dst = rgb[y0:y1, x0:x1]
    # dst = premul + dst * (255 - a) / 255, saturated, in place on the frame's view
    kept = cv2.multiply(dst, inv_alpha[y0 - y : y1 - y, x0 - x : x1 - x], scale=1 / 255.0)
    cv2.add(kept, premul[y0 - y : y1 - y, x0 - x : x1 - x], dst=dst)
    return x0, y0, x1, y1


@dataclass(frozen=True, slots=True)
class Sprite:
    """One RGBA image tight to the body and the ground point under the avatar (sprite pixels)."""

    rgba: np.ndarray
    foot_xy: tuple[float, float]


@dataclass(frozen=True, slots=True)
class CogSprites:
    key: str
    world_height: float  # head top above the ground, world units
    clips: dict[str, tuple[Sprite, ...]]  # walk_right, walk_left, neutral_front


@dataclass(frozen=True, slots=True)
class SpriteAtlas:
    """The demo sprite atlas (assets/demo_atlas.json + the sheet its "image" names, default demo_atlas.png)."""

    px_per_unit: float
    cogs: dict[str, CogSprites]
    source: str = ""

    @classmethod
    def load(cls, folder: Path | None = None) -> SpriteAtlas:
        """The atlas in ``folder``; the shipped one (``folder`` None) is read once per process and shared
        (decoding its sheet takes a second or more: every demo street, replay and bench scene uses it).
        Sprite pixels are read-only."""
        if folder is None:
            return _shipped_atlas()
        return cls._read(Path(folder))

    @classmethod
    def _read(cls, base: Path) -> SpriteAtlas:
        meta_path = base / "demo_atlas.json"
        try:
            meta = json.loads(meta_path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(
                f"The sprite atlas {meta_path} is missing or unreadable ({exc}); regenerate it with "
                "'toonvision render atlas'."
            ) from None
        # "image" (the sheet's file name beside the JSON: lossless PNG or WebP) is optional; default PNG
        image_name = Path(str(meta.get("image", "demo_atlas.png"))).name if isinstance(meta, dict) else ""
        png = base / (image_name or "demo_atlas.png")
        sheet = cv2.imread(str(png), cv2.IMREAD_UNCHANGED) if png.is_file() else None
        if sheet is None or sheet.ndim != 3 or sheet.shape[2] != 4:
            raise DataError(
                f"The sprite atlas {png} is missing or not an RGBA image; regenerate it with "
                "'toonvision render atlas'."
            )
        sheet = cv2.cvtColor(sheet, cv2.COLOR_BGRA2RGBA)
        sheet.setflags(write=False)  # sprites are views of the sheet; a shared atlas must not change
        try:
            sprites = []
            for s in meta["sprites"]:
                x, y, w, h = int(s["x"]), int(s["y"]), int(s["w"]), int(s["h"])
                if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > sheet.shape[1] or y + h > sheet.shape[0]:
                    raise ValueError(f"sprite rect {x},{y},{w},{h} outside the sheet")
                sprites.append(
                    Sprite(sheet[y : y + h, x : x + w], (float(s["foot"][0]), float(s["foot"][1])))
                )
            cogs = {}
            for key, c in meta["cogs"].items():
                if key not in COG_BY_KEY:
                    raise ValueError(f"unknown Cog key '{key}'")
                clips = {name: tuple(sprites[int(i)] for i in ids) for name, ids in c["clips"].items() if ids}
                cogs[key] = CogSprites(key, float(c["world_height"]), clips)
            return cls(float(meta["px_per_unit"]), cogs, str(meta.get("source", "")))
        except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
            raise DataError(
                f"The sprite atlas {meta_path} is malformed ({exc}); regenerate it with "
                "'toonvision render atlas'."
            ) from None


@lru_cache(maxsize=1)
def _shipped_atlas() -> SpriteAtlas:
    return SpriteAtlas._read(Path(str(resources.files("toonvision_assets"))))


@dataclass(frozen=True, slots=True)
class ScaledSprite:
    """A sprite scaled for one depth, cropped tight (alpha > 32), premultiplied for blending."""

    premul_rgb: np.ndarray  # (h, w, 3) uint8
    inv_alpha: np.ndarray  # (h, w, 3) uint8, 255 - alpha
    foot_xy: tuple[float, float]


def scale_sprite(sprite: Sprite, factor: float) -> ScaledSprite:
    """Resize by ``factor`` (premultiplied, so edges do not darken) and crop tight to alpha > 32."""
    rgba = sprite.rgba
    h, w = rgba.shape[:2]
    out_wh = (max(1, int(round(w * factor))), max(1, int(round(h * factor))))
    a = rgba[:, :, 3:4].astype(np.float32) / 255.0
    pm = np.dstack([rgba[:, :, :3].astype(np.float32) * a, a[:, :, 0] * 255.0])
    interp = cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
    pm = cv2.resize(pm, out_wh, interpolation=interp)
    alpha = np.clip(pm[:, :, 3], 0, 255)
    mask = alpha > ALPHA_BOX_THRESHOLD
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    if rows.size == 0:
        rows, cols = np.array([0, out_wh[1] - 1]), np.array([0, out_wh[0] - 1])
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    premul = np.clip(pm[y0:y1, x0:x1, :3] + 0.5, 0, 255).astype(np.uint8)
    a8 = np.clip(alpha[y0:y1, x0:x1] + 0.5, 0, 255).astype(np.uint8)[:, :, None]
    premul = np.minimum(premul, a8)  # premultiplied rgb <= alpha
    inv = np.repeat(255 - a8, 3, axis=2)
    fx, fy = sprite.foot_xy
    return ScaledSprite(
        np.ascontiguousarray(premul), np.ascontiguousarray(inv), (fx * factor - x0, fy * factor - y0)
    )


# ---------------------------------------------------------------- Toon-like distractors
TOON_ANIMALS = ("bear", "cat", "dog", "duck", "horse", "monkey", "mouse", "pig", "rabbit")
TOON_FUR = (
    (255, 255, 255),
    (255, 214, 180),
    (238, 92, 72),
    (181, 81, 58),
    (140, 96, 60),
    (210, 170, 120),
    (255, 140, 90),
    (250, 210, 80),
    (255, 240, 170),
    (170, 220, 90),
    (80, 190, 120),
    (120, 200, 240),
    (80, 160, 230),
    (140, 140, 240),
    (170, 110, 220),
    (255, 160, 200),
    (230, 120, 160),
)
TOON_CLOTHES = (
    (220, 40, 40),
    (40, 90, 220),
    (250, 200, 40),
    (60, 170, 60),
    (240, 120, 30),
    (150, 60, 190),
    (30, 170, 190),
    (240, 240, 240),
    (240, 100, 160),
)
_TOON_FIRST = (
    "Flippy",
    "Lucky",
    "Captain",
    "Princess",
    "Doctor",
    "Sir",
    "Little",
    "Daffy",
    "Skippy",
    "Buster",
    "Cuddles",
    "Sunny",
    "Pickles",
    "Bonbon",
    "Zippy",
    "Nutty",
    "Rosie",
    "Chester",
    "Mittens",
    "Goofball",
)
_TOON_LAST = (
    "Dizzysocks",
    "Fuzzyfeet",
    "McDoodle",
    "Wigglebee",
    "Bumblebottom",
    "Flapjack",
    "Sparkletoes",
    "Fiddlefoot",
    "Noodlenose",
    "Jellyroll",
    "Huckleberry",
    "Scooter",
    "Paddlewhip",
    "Snickerbocker",
)
TOON_WORLD_HEIGHTS = (3.2, 4.3)


def toon_name(rng: np.random.Generator) -> str:
    first = str(rng.choice(_TOON_FIRST))
    return first if rng.random() < 0.25 else f"{first} {rng.choice(_TOON_LAST)}"


def make_toon_sprite(
    animal: str,
    fur_rgb: tuple[int, int, int],
    shirt_rgb: tuple[int, int, int],
    shorts_rgb: tuple[int, int, int],
    phase: float,
    facing: int = 1,
) -> Sprite:
    """A cartoon Toon (big head with the animal's ears, shirt, shorts, gloves, shoes), 300 px high
    at the reference scale; ``phase`` (0..1) swings arms and legs, ``facing`` +1 right / -1 left."""
    if animal not in TOON_ANIMALS:
        raise DataError(f"Unknown Toon animal '{animal}': use one of {', '.join(TOON_ANIMALS)}.")
    img = np.zeros((_TOON_H, _TOON_W, 4), np.uint8)
    _draw_toon_body(img, (*fur_rgb, 255), (*shirt_rgb, 255), (*shorts_rgb, 255), math.sin(2 * math.pi * phase),
                    facing)
    _draw_toon_ears(img, animal, fur_rgb)
    _draw_toon_face(img, animal, fur_rgb, facing)
    alpha = img[:, :, 3]
    rows, cols = np.flatnonzero((alpha > 0).any(1)), np.flatnonzero((alpha > 0).any(0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return Sprite(img[y0:y1, x0:x1].copy(), (float(_TOON_CX - x0), float(_TOON_GROUND - y0)))


#: the Toon canvas: size, body axis, foot row, head centre row and radius
_TOON_W, _TOON_H, _TOON_CX, _TOON_GROUND, _TOON_HEAD_Y, _TOON_HEAD_R = 260, 340, 130, 325, 92, 50
_WHITE, _BLACK = (250, 250, 250, 255), (20, 20, 20, 255)
Colour = tuple[int, int, int, int]


def _draw_toon_body(img: np.ndarray, fur: Colour, shirt: Colour, shorts: Colour, swing: float, facing: int) -> None:
    """Legs and shoes, shorts, arms and gloves, the striped shirt; ``swing`` -1..1 of the walk."""
    cx, ground, aa = _TOON_CX, _TOON_GROUND, cv2.LINE_AA
    for side in (-1, 1):
        foot_x = cx + side * 14 + int(22 * swing * side)
        hip = (cx + side * 14, 232)
        cv2.line(img, hip, (foot_x, ground - 12), fur, 16, aa)
        cv2.ellipse(img, (foot_x + 8 * facing, ground - 8), (20, 10), 0, 0, 360, (90, 50, 30, 255), -1, aa)
    cv2.fillConvexPoly(
        img, np.array([[cx - 34, 196], [cx + 34, 196], [cx + 40, 242], [cx - 40, 242]]), shorts, aa
    )
    for side in (-1, 1):  # arms (behind the shirt's edge), gloves
        hand = (cx + side * 52 - int(16 * swing * side), 222)
        cv2.line(img, (cx + side * 28, 150), hand, shirt, 14, aa)
        cv2.circle(img, hand, 13, _WHITE, -1, aa)
    cv2.ellipse(img, (cx, 176), (36, 42), 0, 0, 360, shirt, -1, aa)
    cv2.rectangle(img, (cx - 34, 172), (cx + 34, 180), _WHITE, -1)
    cv2.ellipse(img, (cx, 176), (36, 42), 0, 0, 360, shirt, 3, aa)


def _draw_toon_ears(img: np.ndarray, animal: str, fur_rgb: tuple[int, int, int]) -> None:
    """The ears behind the head, the head itself, and a dog's floppy ears in front of it."""
    cx, hy, hr, aa = _TOON_CX, _TOON_HEAD_Y, _TOON_HEAD_R, cv2.LINE_AA
    fur = (*fur_rgb, 255)
    dark_fur = (*(int(c * 0.7) for c in fur_rgb), 255)
    for side in (-1, 1):
        if animal == "mouse":
            cv2.circle(img, (cx + side * 46, hy - 46), 30, dark_fur, -1, aa)
        elif animal == "bear":
            cv2.circle(img, (cx + side * 38, hy - 40), 16, dark_fur, -1, aa)
        elif animal == "monkey":
            cv2.circle(img, (cx + side * 54, hy - 4), 16, dark_fur, -1, aa)
        elif animal in ("cat", "pig", "horse"):
            tall = 40 if animal == "cat" else 26
            pts = np.array([[cx + side * 18, hy - 40], [cx + side * 46, hy - 26], [cx + side * 40, hy - 40 - tall]])
            cv2.fillConvexPoly(img, pts, dark_fur, aa)
        elif animal == "rabbit":
            cv2.ellipse(img, (cx + side * 20, hy - 80), (13, 48), side * 8, 0, 360, fur, -1, aa)
            cv2.ellipse(img, (cx + side * 20, hy - 80), (6, 36), side * 8, 0, 360, (255, 170, 190, 255), -1, aa)
    axes = (hr - 6, hr + 14) if animal == "horse" else (hr, hr - 4)
    cv2.ellipse(img, (cx, hy), axes, 0, 0, 360, fur, -1, aa)
    if animal == "dog":
        for side in (-1, 1):
            cv2.ellipse(img, (cx + side * 50, hy + 4), (14, 34), side * 20, 0, 360, dark_fur, -1, aa)


def _draw_toon_face(img: np.ndarray, animal: str, fur_rgb: tuple[int, int, int], facing: int) -> None:
    """Eyes looking the way the Toon faces, and a muzzle with nose and mouth (a duck: a bill)."""
    cx, hy, aa = _TOON_CX, _TOON_HEAD_Y, cv2.LINE_AA
    for side in (-1, 1):
        ex = cx + side * 16 + 6 * facing
        cv2.ellipse(img, (ex, hy - 12), (11, 16), 0, 0, 360, _WHITE, -1, aa)
        cv2.circle(img, (ex + 3 * facing, hy - 8), 6, _BLACK, -1, aa)
    if animal == "duck":
        cv2.ellipse(img, (cx + 10 * facing, hy + 22), (30, 12), 0, 0, 360, (250, 160, 30, 255), -1, aa)
        return
    muzzle = (255, 225, 200) if animal in ("monkey", "bear") else tuple(min(255, c + 40) for c in fur_rgb)
    cv2.ellipse(img, (cx + 8 * facing, hy + 20), (24, 16), 0, 0, 360, (*muzzle, 255), -1, aa)
    nose = (255, 150, 170, 255) if animal in ("pig", "rabbit", "mouse") else _BLACK
    cv2.ellipse(img, (cx + 10 * facing, hy + 12), (9, 6), 0, 0, 360, nose, -1, aa)
    cv2.ellipse(img, (cx + 8 * facing, hy + 28), (10, 4), 0, 0, 180, _BLACK, 2, aa)



def shadow_sprite(px_per_unit: float) -> ScaledSprite:
    """A soft dark ellipse (black at up to 50 % opacity), centred on the foot point."""
    rx, ry = max(2.0, 1.0 * px_per_unit), max(1.0, 0.3 * px_per_unit)
    sigma = max(0.8, 0.1 * px_per_unit)
    w, h = int(2 * rx + 8 * sigma), int(2 * ry + 8 * sigma)
    a: np.ndarray = np.zeros((h, w), np.float32)
    cv2.ellipse(a, (w // 2, h // 2), (int(rx), int(ry)), 0, 0, 360, 0.45, -1, cv2.LINE_AA)
    a = cv2.GaussianBlur(a, (0, 0), sigma)
    alpha = np.clip(a * 255 + 0.5, 0, 255).astype(np.uint8)
    return ScaledSprite(
        np.zeros((h, w, 3), np.uint8), np.repeat(255 - alpha[:, :, None], 3, axis=2), (w / 2, h / 2)
    )


def mirrored(s: ScaledSprite) -> ScaledSprite:
    w = s.premul_rgb.shape[1]
    return ScaledSprite(
        s.premul_rgb[:, ::-1].copy(), s.inv_alpha[:, ::-1].copy(), (w - s.foot_xy[0], s.foot_xy[1])
    )
