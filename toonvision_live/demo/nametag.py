"""In-game nametags drawn like Toontown Rewritten's: the demo street's and the renderer's.

They copy the real Toontown Rewritten frame in ../shared/data/real/sample_img0.png, measured there:

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
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.demo.sprites import blend_premultiplied, premultiply
from toonvision_live.errors import DataError
from toonvision_live.geometry import XYXY

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


def rounded_card(size_wh: tuple[int, int], radius: int, dtype: type[np.generic], fill: float) -> np.ndarray:
    """A nametag card's mask: a ``size_wh`` rectangle with corners rounded by ``radius`` (anti-aliased),
    ``fill`` inside and 0 outside (the demo's tags and the reader's training tags)."""
    cw, ch = size_wh
    card = np.zeros((ch, cw), dtype)
    r = radius
    cv2.rectangle(card, (r, 0), (cw - 1 - r, ch - 1), fill, -1)
    cv2.rectangle(card, (0, r), (cw - 1, ch - 1 - r), fill, -1)
    for cx, cy in ((r, r), (cw - 1 - r, r), (r, ch - 1 - r), (cw - 1 - r, ch - 1 - r)):
        cv2.circle(card, (cx, cy), r, fill, -1, cv2.LINE_AA)
    return card


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
    card = rounded_card((cw, ch), int(TAG_CORNER_EM * s), np.uint8, 255)
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
    premul, inv = premultiply(rgba)
    return TagImage(premul, inv, rgba)


def cog_tag_lines(name: str, dept_name: str, level: int) -> tuple[str, str, str]:
    return (name, dept_name, f"Level {int(level)}")


def blend_tag(rgb: np.ndarray, tag: TagImage, center_x: float, bottom_y: float) -> XYXY | None:
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
    return blend_tag(rgb, tag, center_x, bottom_y)


def draw_toon_nametag(
    rgb: np.ndarray, center_x: float, bottom_y: float, name: str, text_rgb: tuple[int, int, int], scale: float
) -> XYXY | None:
    """Draw a Toon nametag (one coloured line) in place; arguments as :func:`draw_cog_nametag`."""
    tag = render_nametag((name,), (tuple(int(c) for c in text_rgb),), round(scale * 4) / 4)
    return blend_tag(rgb, tag, center_x, bottom_y)


# ---------------------------------------------------------------- sprites and the atlas
