"""Render the game's suit font to a small glyph atlas for the runtime nametag drawer.

The Cog nametag font is ``phase_3/models/fonts/vtRemingtonPortable.ttf`` in the
game resources.  The font file itself never enters the repository: this module
reads it from a resource root and writes alpha masks of the printable ASCII
characters (``assets/suit_font_glyphs.png``, one 8-bit grey sheet) plus their
placement (``assets/suit_font_glyphs.json``), which
:mod:`toonvision_live.demo.nametag` uses to draw nametags without the font.

JSON layout (version 1)::

    {"version": 1, "font": "vtRemingtonPortable.ttf", "source": "...",
     "size_px": 48,            # the font's em in pixels (Pillow size); the game's line height is 1 em
     "ascent_px": int, "descent_px": int, "cap_height_px": int,
     "space_advance_px": float,  # the game sets spaceAdvance 0.25 em for the suit font
     "glyphs": {"A": {"x", "y", "w", "h": sheet rect, "ox", "oy": offset of the rect's top-left
                       from the pen position on the baseline, "advance": float}}}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toonvision_live.errors import ResourceError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir

#: the suit font inside a game resource root
SUIT_FONT_RELPATH = Path("phase_3/models/fonts/vtRemingtonPortable.ttf")
#: printable ASCII without the space (the space is an advance only)
GLYPH_CHARS = "".join(chr(c) for c in range(33, 127))
#: the game's spaceAdvance for the suit font (ToontownGlobals.getSuitFont), in em
GAME_SPACE_ADVANCE_EM = 0.25
GLYPHS_STEM = "suit_font_glyphs"


@dataclass(frozen=True, slots=True)
class GlyphAtlasFiles:
    png: Path
    json: Path


def suit_font_path(resources: Path) -> Path:
    """The suit font inside ``resources``; ResourceError names it when it is missing."""
    path = Path(resources) / SUIT_FONT_RELPATH
    if not path.is_file():
        raise ResourceError(
            f"The suit font {path} is missing: point --resources at a game resource folder that has "
            f"{SUIT_FONT_RELPATH}."
        )
    return path


def render_glyph_atlas(font_path: Path, size_px: int = 48, pad: int = 2) -> tuple[np.ndarray, dict]:
    """Render every printable ASCII glyph of ``font_path`` at ``size_px``.

    Returns the grey alpha sheet (H, W) uint8 and the JSON-ready placement dict.
    """
    from PIL import Image, ImageDraw, ImageFont

    try:
        font = ImageFont.truetype(str(font_path), size_px)
    except OSError as exc:
        raise ResourceError(
            f"Cannot read the font {font_path} ({exc}); check the file is a TrueType font."
        ) from None
    ascent, descent = font.getmetrics()
    cap_box = font.getbbox("H", anchor="ls")
    masks: dict[str, tuple[np.ndarray, int, int, float]] = {}
    for ch in GLYPH_CHARS:
        left, top, right, bottom = font.getbbox(ch, anchor="ls")
        w, h = max(1, right - left) + 2 * pad, max(1, bottom - top) + 2 * pad
        img = Image.new("L", (w, h), 0)
        ImageDraw.Draw(img).text((pad - left, pad - top), ch, font=font, fill=255, anchor="ls")
        mask = np.asarray(img, dtype=np.uint8)
        if not mask.any():
            raise ResourceError(
                f"The font {font_path} has no visible glyph for {ch!r}; use the game's suit font."
            )
        masks[ch] = (mask, left - pad, top - pad, float(font.getlength(ch)))
    # shelf packing, 16 glyphs a row
    per_row = 16
    chars = list(masks)
    rows = [chars[i : i + per_row] for i in range(0, len(chars), per_row)]
    sheet_w = max(sum(masks[c][0].shape[1] for c in row) for row in rows)
    sheet_h = sum(max(masks[c][0].shape[0] for c in row) for row in rows)
    sheet = np.zeros((sheet_h, sheet_w), np.uint8)
    glyphs: dict[str, dict] = {}
    y = 0
    for row in rows:
        x = 0
        row_h = max(masks[c][0].shape[0] for c in row)
        for ch in row:
            mask, ox, oy, advance = masks[ch]
            h, w = mask.shape
            sheet[y : y + h, x : x + w] = mask
            glyphs[ch] = {"x": x, "y": y, "w": w, "h": h, "ox": int(ox), "oy": int(oy), "advance": advance}
            x += w
        y += row_h
    meta = {
        "version": 1,
        "font": font_path.name,
        "source": f"rendered with Pillow from the game's suit font {SUIT_FONT_RELPATH} (font not included)",
        "size_px": size_px,
        "ascent_px": int(ascent),
        "descent_px": int(descent),
        "cap_height_px": int(-cap_box[1]),
        "space_advance_px": GAME_SPACE_ADVANCE_EM * size_px,
        "glyphs": glyphs,
    }
    return sheet, meta


def write_glyph_atlas(
    resources: Path, out_dir: Path, size_px: int = 48, *, overwrite: bool = True
) -> GlyphAtlasFiles:
    """Render the suit font found in ``resources`` and write ``suit_font_glyphs.png/.json`` to ``out_dir``."""
    sheet, meta = render_glyph_atlas(suit_font_path(resources), size_px)
    ensure_dir(Path(out_dir))
    png = atomic_write_bytes(Path(out_dir) / f"{GLYPHS_STEM}.png", _grey_png(sheet), overwrite=overwrite)
    js = atomic_write_bytes(
        Path(out_dir) / f"{GLYPHS_STEM}.json",
        (json.dumps(meta, indent=1) + "\n").encode("utf-8"),
        overwrite=overwrite,
    )
    return GlyphAtlasFiles(png=png, json=js)


def _grey_png(sheet: np.ndarray) -> bytes:
    import cv2

    ok, buf = cv2.imencode(".png", sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    if not ok:
        raise ResourceError("Could not encode the glyph sheet as PNG.")
    return buf.tobytes()
