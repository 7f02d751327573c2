"""Toontown-like street scenes: rendered Cog sprites walking with in-game nametags, plus ground truth.

Runtime code (numpy + cv2 only).  Used by ``toonvision demo`` (the window the real pipeline watches)
and by ``toonvision render scenes`` (labelled full frames for the crop stage's tests).

Nametags copy the real Toontown Rewritten frame in ../shared/data/real/sample_img0.png, measured there:

* a rounded card, RGB (204, 204, 204) at 50 % opacity, with three centred lines in the game's suit font
  (vtRemingtonPortable, from the glyph atlas assets/suit_font_glyphs.*): name, department, "Level N",
  near-black text (25, 25, 25), one line per em (the game's lineHeight 1.0), spaces 0.25 em;
* card: 0.25 em padding left/right of the widest line, 0.36 em above the first cap line, 0.33 em below
  the last baseline, so a three-line card is about 3.4 em high;
* the card's bottom edge sits ``TAG_GAP_EM`` (1.1 em) above the top of the head;
* the em grows slower than the Cog with nearness: 10 px for a Cog drawn at 31 px per world unit in
  a 600 px high frame, ``em ~ px_per_unit ** 0.6`` (the two Cogs of the real frame: 10 and 14 px).

Toon nametags use the same card with ONE line of coloured text (the Toon's name).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.errors import DataError
from toonvision_live.geometry import XYXY, union_covered_fraction
from toonvision_live.taxonomy import COG_BY_KEY, SUIT_BY_CODE
from toonvision_live.voc import VocObject

# ---------------------------------------------------------------- nametag parameters (see module docstring)
TAG_CARD_RGB = (204, 204, 204)
TAG_CARD_ALPHA = 0.5
COG_TAG_TEXT_RGB = (25, 25, 25)
TAG_PAD_X_EM = 0.25
TAG_PAD_TOP_EM = 0.36
TAG_PAD_BOTTOM_EM = 0.33
TAG_CORNER_EM = 0.3
TAG_GAP_EM = 1.1
#: em of a Cog drawn at REF_PX_PER_UNIT in a REF_FRAME_HEIGHT frame, and the growth exponent
REF_EM_PX, REF_PX_PER_UNIT, REF_FRAME_HEIGHT, EM_EXPONENT = 10.0, 31.1, 600.0, 0.6
#: saturated colours of Toon name text (a Toon tag is never dark grey)
TOON_TAG_TEXT_RGBS = (
    (40, 70, 200),
    (220, 110, 0),
    (0, 140, 40),
    (170, 40, 170),
    (200, 30, 30),
    (0, 130, 170),
)

#: seconds per walk cycle (the game's 24-frame walk at 24 fps); the atlas samples the cycle evenly
WALK_CYCLE_S = 1.0

ALPHA_BOX_THRESHOLD = 32  # as the renderer crops its sprites: alpha > 32 counts as body


def nametag_em_px(px_per_unit: float, frame_height: int) -> float:
    """Nametag em (line height) in pixels for an avatar drawn at ``px_per_unit`` in a frame this high."""
    k = frame_height / REF_FRAME_HEIGHT
    return k * REF_EM_PX * (max(px_per_unit, 1e-3) / k / REF_PX_PER_UNIT) ** EM_EXPONENT


# ---------------------------------------------------------------- glyphs and text
@dataclass(frozen=True, slots=True)
class _Glyph:
    mask: np.ndarray  # (h, w) float32 0..1
    ox: int
    oy: int
    advance: float


@dataclass(frozen=True, slots=True)
class GlyphFont:
    """The suit font as alpha masks (assets/suit_font_glyphs.png/.json) at ``size_px`` per em."""

    size_px: int
    cap_height_px: int
    space_advance_px: float
    glyphs: dict[str, _Glyph]

    @classmethod
    def load(cls, folder: Path | None = None) -> GlyphFont:
        png, meta_path = _asset_paths(folder, "suit_font_glyphs")
        sheet = cv2.imread(str(png), cv2.IMREAD_GRAYSCALE)
        try:
            if sheet is None:
                raise OSError(f"cannot read {png}")
            meta = json.loads(meta_path.read_text("utf-8"))
            glyphs = {
                ch: _Glyph(
                    sheet[g["y"] : g["y"] + g["h"], g["x"] : g["x"] + g["w"]].astype(np.float32) / 255.0,
                    int(g["ox"]),
                    int(g["oy"]),
                    float(g["advance"]),
                )
                for ch, g in meta["glyphs"].items()
            }
            return cls(
                int(meta["size_px"]), int(meta["cap_height_px"]), float(meta["space_advance_px"]), glyphs
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"The glyph atlas {meta_path} is unreadable ({exc}); regenerate it with "
                "'toonvision render glyphs'."
            ) from None
        except Exception as exc:  # noqa: BLE001 - a missing sheet gives None[...] -> TypeError above
            raise DataError(f"The glyph atlas {png} is unreadable ({exc}).") from None

    def advance(self, ch: str) -> float:
        if ch == " ":
            return self.space_advance_px
        return self.glyphs.get(ch, self.glyphs["?"]).advance

    def line_width(self, text: str) -> float:
        return sum(self.advance(ch) for ch in text)

    def draw_line(self, canvas: np.ndarray, text: str, x: float, baseline_y: int) -> None:
        """Add ``text`` into the float mask ``canvas`` (max blend), pen from ``x`` on ``baseline_y``."""
        pen = x
        for ch in text:
            if ch != " ":
                g = self.glyphs.get(ch, self.glyphs["?"])
                gx, gy = int(round(pen)) + g.ox, baseline_y + g.oy
                h, w = g.mask.shape
                sub = canvas[gy : gy + h, gx : gx + w]
                np.maximum(sub, g.mask[: sub.shape[0], : sub.shape[1]], out=sub)
            pen += self.advance(ch)


def _asset_paths(folder: Path | None, stem: str) -> tuple[Path, Path]:
    base = Path(folder) if folder is not None else Path(str(resources.files("toonvision_assets")))
    png, meta = base / f"{stem}.png", base / f"{stem}.json"
    for path in (png, meta):
        if not path.is_file():
            raise DataError(
                f"{path} is missing: reinstall ToonVision Live or regenerate it "
                f"('toonvision render {'glyphs' if stem.startswith('suit') else 'atlas'}')."
            )
    return png, meta


@lru_cache(maxsize=2)
def suit_font(folder: str | None = None) -> GlyphFont:
    """The shipped suit font glyphs, loaded once."""
    return GlyphFont.load(Path(folder) if folder else None)


# ---------------------------------------------------------------- nametag images
@dataclass(frozen=True, slots=True)
class TagImage:
    """A nametag ready to blend: premultiplied RGB, inverse alpha, and the card size."""

    premul_rgb: np.ndarray  # (h, w, 3) uint8, rgb * alpha
    inv_alpha: np.ndarray  # (h, w, 3) uint8, 255 - alpha (repeated per channel for cv2)
    rgba: np.ndarray  # (h, w, 4) uint8, straight alpha

    @property
    def size_wh(self) -> tuple[int, int]:
        return self.rgba.shape[1], self.rgba.shape[0]


def _premultiply(rgba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = rgba[:, :, 3:4].astype(np.uint16)
    premul = ((rgba[:, :, :3].astype(np.uint16) * a + 127) // 255).astype(np.uint8)
    return premul, np.repeat((255 - a).astype(np.uint8), 3, axis=2)


@lru_cache(maxsize=512)
def render_nametag(
    lines: tuple[str, ...], text_rgbs: tuple[tuple[int, int, int], ...], em_px: float
) -> TagImage:
    """A nametag card with ``lines`` of text (one colour per line), ``em_px`` pixels per line."""
    font = suit_font()
    s = font.size_px
    widths = [font.line_width(t) for t in lines]
    card_w = max(widths) + 2 * TAG_PAD_X_EM * s
    first_base = TAG_PAD_TOP_EM * s + font.cap_height_px
    card_h = first_base + (len(lines) - 1) * s + TAG_PAD_BOTTOM_EM * s
    cw, ch = int(math.ceil(card_w)), int(math.ceil(card_h))
    margin = s  # glyph ink may poke out of the advance box a little
    text: np.ndarray = np.zeros((ch + 2 * margin, cw + 2 * margin), np.float32)
    colour: np.ndarray = np.zeros((ch + 2 * margin, cw + 2 * margin, 3), np.float32)
    colour[:] = text_rgbs[0]
    for i, (line, width, line_rgb) in enumerate(zip(lines, widths, text_rgbs, strict=True)):
        base = int(round(first_base + i * s)) + margin
        font.draw_line(text, line, margin + (cw - width) / 2, base)
        colour[max(0, base - s) : base + s // 2] = line_rgb
    text = text[margin : margin + ch, margin : margin + cw]
    colour = colour[margin : margin + ch, margin : margin + cw]
    card = np.zeros((ch, cw), np.uint8)
    r = int(TAG_CORNER_EM * s)
    cv2.rectangle(card, (r, 0), (cw - 1 - r, ch - 1), 255, -1)
    cv2.rectangle(card, (0, r), (cw - 1, ch - 1 - r), 255, -1)
    for cx, cy in ((r, r), (cw - 1 - r, r), (r, ch - 1 - r), (cw - 1 - r, ch - 1 - r)):
        cv2.circle(card, (cx, cy), r, 255, -1, cv2.LINE_AA)
    # scale the whole card down to the wanted em
    k = em_px / s
    out_wh = (max(4, int(round(cw * k))), max(3, int(round(ch * k))))
    interp = cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR
    # a little bolder at small sizes, like the game's mipmapped text
    text = np.clip(cv2.resize(text, out_wh, interpolation=interp), 0, 1)[:, :, None] ** 0.8
    card_a = cv2.resize(card.astype(np.float32) / 255.0, out_wh, interpolation=interp)[:, :, None]
    colour = cv2.resize(colour, out_wh, interpolation=cv2.INTER_NEAREST)
    card_rgb = np.array(TAG_CARD_RGB, np.float32)
    # text over the card: the card is 50 % transparent, the text opaque
    a_card = card_a * TAG_CARD_ALPHA
    alpha = text + a_card * (1 - text)
    rgb = (colour * text + card_rgb * a_card * (1 - text)) / np.maximum(alpha, 1e-6)
    rgba = np.dstack([np.clip(rgb + 0.5, 0, 255), np.clip(alpha * 255 + 0.5, 0, 255)]).astype(np.uint8)
    premul, inv = _premultiply(rgba)
    return TagImage(premul, inv, rgba)


def cog_tag_lines(name: str, dept_name: str, level: int) -> tuple[str, str, str]:
    return (name, dept_name, f"Level {int(level)}")


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


def _blend_tag(rgb: np.ndarray, tag: TagImage, center_x: float, bottom_y: float) -> XYXY | None:
    w, h = tag.size_wh
    return blend_premultiplied(
        rgb, tag.premul_rgb, tag.inv_alpha, int(round(center_x - w / 2)), int(round(bottom_y)) - h
    )


def draw_cog_nametag(
    rgb: np.ndarray, center_x: float, bottom_y: float, name: str, dept_name: str, level: int, scale: float
) -> XYXY | None:
    """Draw a Cog nametag (3 lines) in place; ``scale`` is the em (line height) in pixels, ``bottom_y``
    the card's bottom edge (TAG_GAP_EM em above the head).  Returns the card's box clipped to the frame
    (exclusive ends), or None when it is entirely outside."""
    tag = render_nametag(cog_tag_lines(name, dept_name, level), (COG_TAG_TEXT_RGB,) * 3, round(scale * 4) / 4)
    return _blend_tag(rgb, tag, center_x, bottom_y)


def draw_toon_nametag(
    rgb: np.ndarray, center_x: float, bottom_y: float, name: str, text_rgb: tuple[int, int, int], scale: float
) -> XYXY | None:
    """Draw a Toon nametag (one coloured line) in place; arguments as :func:`draw_cog_nametag`."""
    tag = render_nametag((name,), (tuple(int(c) for c in text_rgb),), round(scale * 4) / 4)
    return _blend_tag(rgb, tag, center_x, bottom_y)


# ---------------------------------------------------------------- sprites and the atlas
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
        base = Path(folder) if folder is not None else Path(str(resources.files("toonvision_assets")))
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
_TOON_FUR = (
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
_TOON_CLOTHES = (
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
    W, H = 260, 340
    img = np.zeros((H, W, 4), np.uint8)
    fur = (*fur_rgb, 255)
    dark_fur = (*(int(c * 0.7) for c in fur_rgb), 255)
    shirt, shorts = (*shirt_rgb, 255), (*shorts_rgb, 255)
    white, black = (250, 250, 250, 255), (20, 20, 20, 255)
    aa = cv2.LINE_AA
    cx = W // 2
    swing = math.sin(2 * math.pi * phase)
    ground = 325
    # legs and shoes
    for side in (-1, 1):
        foot_x = cx + side * 14 + int(22 * swing * side)
        hip = (cx + side * 14, 232)
        cv2.line(img, hip, (foot_x, ground - 12), fur, 16, aa)
        cv2.ellipse(img, (foot_x + 8 * facing, ground - 8), (20, 10), 0, 0, 360, (90, 50, 30, 255), -1, aa)
    # shorts
    cv2.fillConvexPoly(
        img, np.array([[cx - 34, 196], [cx + 34, 196], [cx + 40, 242], [cx - 40, 242]]), shorts, aa
    )
    # arms (behind the shirt's edge), gloves
    for side in (-1, 1):
        hand = (cx + side * 52 - int(16 * swing * side), 222)
        cv2.line(img, (cx + side * 28, 150), hand, shirt, 14, aa)
        cv2.circle(img, hand, 13, white, -1, aa)
    # shirt with a stripe
    cv2.ellipse(img, (cx, 176), (36, 42), 0, 0, 360, shirt, -1, aa)
    cv2.rectangle(img, (cx - 34, 172), (cx + 34, 180), white, -1)
    cv2.ellipse(img, (cx, 176), (36, 42), 0, 0, 360, shirt, 3, aa)
    # head
    hy, hr = 92, 50
    ears_behind = animal in ("mouse", "bear", "monkey", "cat", "pig", "rabbit", "horse")
    if ears_behind:
        if animal == "mouse":
            for side in (-1, 1):
                cv2.circle(img, (cx + side * 46, hy - 46), 30, dark_fur, -1, aa)
        elif animal == "bear":
            for side in (-1, 1):
                cv2.circle(img, (cx + side * 38, hy - 40), 16, dark_fur, -1, aa)
        elif animal == "monkey":
            for side in (-1, 1):
                cv2.circle(img, (cx + side * 54, hy - 4), 16, dark_fur, -1, aa)
        elif animal in ("cat", "pig", "horse"):
            tall = 40 if animal == "cat" else 26
            for side in (-1, 1):
                pts = np.array(
                    [[cx + side * 18, hy - 40], [cx + side * 46, hy - 26], [cx + side * 40, hy - 40 - tall]]
                )
                cv2.fillConvexPoly(img, pts, dark_fur, aa)
        elif animal == "rabbit":
            for side in (-1, 1):
                cv2.ellipse(img, (cx + side * 20, hy - 80), (13, 48), side * 8, 0, 360, fur, -1, aa)
                cv2.ellipse(
                    img, (cx + side * 20, hy - 80), (6, 36), side * 8, 0, 360, (255, 170, 190, 255), -1, aa
                )
    axes = (hr - 6, hr + 14) if animal == "horse" else (hr, hr - 4)
    cv2.ellipse(img, (cx, hy), axes, 0, 0, 360, fur, -1, aa)
    if animal == "dog":
        for side in (-1, 1):
            cv2.ellipse(img, (cx + side * 50, hy + 4), (14, 34), side * 20, 0, 360, dark_fur, -1, aa)
    # face: eyes, muzzle / bill
    for side in (-1, 1):
        ex = cx + side * 16 + 6 * facing
        cv2.ellipse(img, (ex, hy - 12), (11, 16), 0, 0, 360, white, -1, aa)
        cv2.circle(img, (ex + 3 * facing, hy - 8), 6, black, -1, aa)
    if animal == "duck":
        cv2.ellipse(img, (cx + 10 * facing, hy + 22), (30, 12), 0, 0, 360, (250, 160, 30, 255), -1, aa)
    else:
        muzzle = (
            (255, 225, 200, 255)
            if animal in ("monkey", "bear")
            else (*np.minimum(255, np.array(fur_rgb) + 40), 255)
        )
        cv2.ellipse(
            img, (cx + 8 * facing, hy + 20), (24, 16), 0, 0, 360, tuple(int(c) for c in muzzle), -1, aa
        )
        nose = (255, 150, 170, 255) if animal in ("pig", "rabbit", "mouse") else black
        cv2.ellipse(img, (cx + 10 * facing, hy + 12), (9, 6), 0, 0, 360, nose, -1, aa)
        cv2.ellipse(img, (cx + 8 * facing, hy + 28), (10, 4), 0, 0, 180, black, 2, aa)
    alpha = img[:, :, 3]
    rows, cols = np.flatnonzero((alpha > 0).any(1)), np.flatnonzero((alpha > 0).any(0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return Sprite(img[y0:y1, x0:x1].copy(), (float(cx - x0), float(ground - y0)))


# ---------------------------------------------------------------- the street background
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


@lru_cache(maxsize=4)
def _cached_background(size_wh: tuple[int, int], seed: int) -> tuple[np.ndarray, StreetLayout]:
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
    # back row of buildings at the distance of back_y
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
    # ground: cobbled street, paved strip in front of the buildings, by inverse perspective
    z_back = focal * cam_h / (back_y - horizon)
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
    # side buildings in perspective (planes at x = +-side)
    for side in (-1, 1):
        if rng.random() < 0.25:
            continue
        xs_world = side * rng.uniform(30, 45)
        side_h = rng.uniform(16, 28)
        depth = z_back - walk_depth - 1.0
        tex_w, tex_h = int(depth * 12), int(side_h * 12)
        fac = _facade(tex_w, tex_h, rng, 12.0)
        z_near = max(2.0, focal * abs(xs_world) / (w * 1.5))

        def project(wx_: float, wy_: float, wz_: float) -> tuple[float, float]:
            return w / 2 + focal * wx_ / wz_, horizon + focal * (cam_h - wy_) / wz_

        # texture column 0 is the far end when side == 1 looks along +x... keep windows upright
        src = np.array([[0, 0], [tex_w, 0], [tex_w, tex_h], [0, tex_h]], np.float32)
        far, near = (depth, z_near) if side > 0 else (z_near, depth)
        dst = np.array(
            [
                project(xs_world, side_h, far),
                project(xs_world, side_h, near),
                project(xs_world, 0, near),
                project(xs_world, 0, far),
            ],
            np.float32,
        )
        m = cv2.getPerspectiveTransform(src, dst)
        warped = cv2.warpPerspective(fac, m, (w, h), flags=cv2.INTER_LINEAR)
        cover = cv2.warpPerspective(np.ones((tex_h, tex_w), np.float32), m, (w, h), flags=cv2.INTER_LINEAR)[
            :, :, None
        ]
        img = img * (1 - cover) + warped * cover * 0.92
    # props along the paved strip
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
    out = np.clip(img + rng.normal(0, 2.0, img.shape).astype(np.float32), 0, 255)
    out = cv2.GaussianBlur(out, (0, 0), 0.6)
    return out.astype(np.uint8), layout


# ---------------------------------------------------------------- the scene
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
        self.background, self.layout = _cached_background(self.size_wh, int(seed))
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
            fur = _TOON_FUR[int(rng.integers(len(_TOON_FUR)))]
            shirt = _TOON_CLOTHES[int(rng.integers(len(_TOON_CLOTHES)))]
            shorts = _TOON_CLOTHES[int(rng.integers(len(_TOON_CLOTHES)))]
            sprites = [make_toon_sprite(key, fur, shirt, shorts, p / 6, direction) for p in range(6)]
            factor = height * ppu / sprites[0].rgba.shape[0]
            frames = tuple(scale_sprite(s, factor) for s in sprites)
            text_rgb = TOON_TAG_TEXT_RGBS[int(rng.integers(len(TOON_TAG_TEXT_RGBS)))]
            tag = render_nametag((toon_name(rng),), (text_rgb,), round(em * 4) / 4)
            label = f"toon_{key}"
        head_px = float(np.median([f.foot_xy[1] for f in frames]))  # foot row minus head top row
        return _Actor(label, kind == "cog", frames, tag, foot_y, -head_px - TAG_GAP_EM * em, direction, ppu)

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
                    frames = tuple(_mirror(f) for f in frames)
                if standing and a.is_cog and self.atlas.cogs[a.label.split("_", 2)[2]].clips.get("neutral_front"):
                    frames = self._cog_frames(a.label.split("_", 2)[2], a.ppu, ("neutral_front",))
                x0 = rng.uniform(0.1 * w, 0.9 * w) if standing else (base + slot * span / k) % span - margin
                anim_fps = len(frames) * rng.uniform(0.9, 1.1) / (WALK_CYCLE_S if a.is_cog else 0.8)
                walker = _Walker(a.label, a.is_cog, frames, a.tag, _shadow(a.ppu), a.foot_y, a.tag_dy,
                                 float(x0), float(speed), float(anim_fps), float(rng.uniform(0, 100)))
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
            tags[i] = _blend_tag(rgb, wk.tag, placed[i][0], wk.foot_y + wk.tag_bottom_dy)
        objects, tag_boxes = [], []
        for rank, i in enumerate(self._order):
            box = placed[i][1]
            if box is None:
                continue
            full = placed[i][2]
            truncated = box != full
            nearer = [b for j in self._order[rank + 1 :] if (b := placed[j][1]) is not None]
            objects.append(VocObject(self._walkers[i].label, box, truncated, union_covered_fraction(box, nearer) > 0.5))
            tag_boxes.append(tags[i])
        return SceneFrame(rgb, tuple(objects), tuple(tag_boxes))

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(w.label for w in self._walkers)


def _shadow(px_per_unit: float) -> ScaledSprite:
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


def _mirror(s: ScaledSprite) -> ScaledSprite:
    w = s.premul_rgb.shape[1]
    return ScaledSprite(
        s.premul_rgb[:, ::-1].copy(), s.inv_alpha[:, ::-1].copy(), (w - s.foot_xy[0], s.foot_xy[1])
    )
