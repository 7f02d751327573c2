"""Contact sheet: every Cog from a front three-quarter view at one common scale, one row per suit."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from toonvision_live.fileio import ensure_dir, write_png
from toonvision_live.taxonomy import COGS, SUIT_BY_CODE, SUITS
from training.render.cogs import CogRenderer

CELL_WH = (200, 330)
LABEL_H = 46
TALLEST_PX = 260.0
YAW_DEG = 30.0


def _hex_rgb(colour: str) -> np.ndarray:
    return np.array([int(colour[i : i + 2], 16) for i in (1, 3, 5)], np.float32)


def compose_cell(
    sprite: np.ndarray, foot_xy: tuple[float, float], suit_rgb: np.ndarray, name: str, caption: str
) -> np.ndarray:
    """One labelled RGB cell: light suit-tinted backdrop, the Cog standing on a common ground line."""
    w, h = CELL_WH
    cell = np.empty((h, w, 3), np.float32)
    cell[:] = 0.22 * suit_rgb + 0.78 * np.array([236, 236, 232], np.float32)
    ground_y = h - LABEL_H - 8
    x0 = int(round(w / 2 - foot_xy[0]))
    y0 = int(round(ground_y - foot_xy[1]))
    sh, sw = sprite.shape[:2]
    cx0, cy0 = max(0, x0), max(0, y0)
    cx1, cy1 = min(w, x0 + sw), min(h, y0 + sh)
    part = sprite[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0].astype(np.float32)
    alpha = part[:, :, 3:4] / 255
    cell[cy0:cy1, cx0:cx1] = part[:, :, :3] * alpha + cell[cy0:cy1, cx0:cx1] * (1 - alpha)
    cell[h - LABEL_H :] = 255
    cell[h - LABEL_H : h - LABEL_H + 4] = suit_rgb
    out = cell.astype(np.uint8)
    cv2.putText(out, name, (6, h - LABEL_H + 22), cv2.FONT_HERSHEY_SIMPLEX, 0.52, (20, 20, 20), 1, cv2.LINE_AA)
    cv2.putText(out, caption, (6, h - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (90, 90, 90), 1, cv2.LINE_AA)
    return out


def render_contact_sheet(renderer: CogRenderer) -> np.ndarray:
    """RGB sheet: one row per suit (taxonomy order), Cogs by tier, true relative heights."""
    px_per_unit = TALLEST_PX / renderer.resources.max_height
    rows = []
    for suit in SUITS:
        cells = []
        for cog in sorted((c for c in COGS if c.suit == suit.code), key=lambda c: c.tier):
            spec = renderer.resources.spec(cog.key)
            sprite, foot = renderer.render_sprite(
                cog.key, YAW_DEG, "neutral", 0, px_per_unit * spec.height, elevation_deg=8.0
            )
            caption = f"{cog.suit} {cog.code}  body {cog.body}  {cog.key}"
            cells.append(compose_cell(sprite, foot, _hex_rgb(SUIT_BY_CODE[cog.suit].color), cog.name, caption))
        rows.append(np.hstack(cells))
    return np.vstack(rows)


def build_contact_sheet(resources_root: Path, out_png: Path) -> Path:
    """Render the contact sheet of all 32 Cogs and write it to ``out_png`` (replacing an older sheet)."""
    renderer = CogRenderer(resources_root, (360, 360))
    try:
        sheet = render_contact_sheet(renderer)
    finally:
        renderer.close()
    ensure_dir(Path(out_png).parent)
    return write_png(Path(out_png), sheet, overwrite=True)
