"""Training crops: one rendered Cog per 600x200 image, framed like ToonVision's labelImg boxes.

Each crop is a pure function of (seed, Cog, number): the Cog posed (neutral or walk, any frame) from a
random yaw (front, three-quarter, side, back) under mild random light and a random perspective camera,
over a street-like background with other Cogs or Toon-like blobs partly in view at the edges; the box is
tight around the rendered silhouette (no shadow, no nametag) with a few percent of hand-drawn jitter,
stretched to 600x200 without keeping the aspect, then colour, gamma, saturation, blur, noise and JPEG.

``render_crops`` spreads the work over processes (spawn), each building its own renderer and each Cog
once; files are ``DATASET/unsorted/cog/cog_<suit>_<key>_<N>.png`` (N the next free number, never an
overwrite) and one JSON line per crop in ``DATASET/manifest.jsonl``.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import cv2
import numpy as np

from toonvision_live.crops import stretch_to_crop
from toonvision_live.errors import ResourceError, SaveError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir, next_free_index
from toonvision_live.model_card import CROP_HEIGHT, CROP_WIDTH
from toonvision_live.taxonomy import COG_KEYS
from toonvision_live.taxonomy import cog as taxonomy_cog
from training.render.augment import (
    Photometric,
    apply_photometric,
    draw_nametag_edge,
    draw_shadow,
    draw_toon_blob,
    make_background,
    make_noise_bank,
    paste_rgba,
)
from training.render.cogs import CogRenderer, Light, View, alpha_box_xyxy
from training.render.resources import GameResources, load_resources

log = logging.getLogger(__name__)

RENDER_SIZE_WH = (400, 560)
BACKGROUNDS = 40
DISTRACTOR_SPRITES = 16
MIN_COG_PIXELS = 0.01  # share of the render buffer a Cog must cover
UNLIT_SHARE = 0.5  # crops rendered without light, as the game draws Cogs
PROPOSAL_BOX_SHARE = 0.5  # crops framed like the live crop stage's boxes (see sample_params)
STREET_BACKGROUNDS = 14  # of BACKGROUNDS, windows of toonvision_live.demo.street's generator
YAW_CLASSES: tuple[tuple[str, float, float, float], ...] = (
    # name, centre, spread (uniform +-), weight; the sign of 3/4 and side views is random
    ("front", 0.0, 20.0, 0.28),
    ("three_quarter", 45.0, 15.0, 0.34),
    ("side", 90.0, 15.0, 0.2),
    ("back", 180.0, 25.0, 0.18),
)


@dataclass(frozen=True, slots=True)
class CropParams:
    """Everything random about one crop (written to the manifest)."""

    yaw_class: str
    view: View
    jitter_ltrb: tuple[float, float, float, float]  # outward share of box width/height per side
    sim_height_px: int  # the box is first resized to this height (the Cog's size on screen), then to 600
    photometric: Photometric
    toon_blob: str | None  # "left"/"right" or None
    other_cog: tuple[str, int, float] | None  # side, sprite number, overlap share
    shadow: float  # darkness of the drop shadow under the feet (0: none); the box never includes it
    nametag: bool  # the bottom of a nametag card shows in a loose box's top margin


class StreetWindows:
    """Windows of demo-like streets (toonvision_live.demo.street's generator, seeds far from the demo's),
    each one's bottom on the ground, resized to ``size_hw``: backgrounds like the demo street's.

    Where each window lies is drawn from ``rng`` up front, so the generator moves on exactly as if all were
    made; a street (~0.4 s) is only rendered when a crop first uses its window (a worker that makes a few
    crops starts in a second, not in ``count`` street renders)."""

    def __init__(self, rng: np.random.Generator, size_hw: tuple[int, int], count: int) -> None:
        self.size_hw = size_hw
        h, w = size_hw
        self.places: list[tuple[int, int, int, int, int]] = []  # street seed, y0, y1, x0, width
        for _ in range(count):
            street_seed = int(rng.integers(100_000, 1_000_000))
            win_h = int(rng.uniform(220, 520))
            win_w = min(1280, int(win_h * w / h))
            y1 = int(rng.uniform(0.62, 1.0) * 720)
            x0 = int(rng.integers(0, 1280 - win_w + 1))
            self.places.append((street_seed, max(0, y1 - win_h), y1, x0, win_w))
        self._made: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.places)

    def __getitem__(self, index: int) -> np.ndarray:
        if index not in self._made:
            from toonvision_live.demo.street import make_street_background

            street_seed, y0, y1, x0, win_w = self.places[index]
            street, _ = make_street_background((1280, 720), street_seed)
            window = np.ascontiguousarray(street[y0:y1, x0 : x0 + win_w])
            h, w = self.size_hw
            self._made[index] = cv2.resize(window, (w, h), interpolation=cv2.INTER_LINEAR)
        return self._made[index]


def crop_rng(seed: int, key: str, number: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), COG_KEYS.index(key), int(number)])


def sample_params(rng: np.random.Generator, num_frames: dict[str, int]) -> CropParams:
    weights = np.array([c[3] for c in YAW_CLASSES])
    name, centre, spread, _ = YAW_CLASSES[int(rng.choice(len(YAW_CLASSES), p=weights / weights.sum()))]
    sign = 1.0 if rng.random() < 0.5 else -1.0
    yaw = sign * centre + rng.uniform(-spread, spread)
    anim = "walk" if rng.random() < 0.55 else "neutral"
    frame = int(rng.integers(num_frames[anim]))
    light = None
    if rng.random() >= UNLIT_SHARE:  # lit; the game (and the demo street) draw Cogs unlit
        warm = rng.uniform(-1, 1)
        amb = rng.uniform(0.7, 0.95)  # the unlit textures already match real frames: stay near 1
        sun = rng.uniform(0.1, 0.35)
        tint = (1 + 0.06 * warm, 1.0, 1 - 0.06 * warm)
        light = Light(
            ambient_rgb=tuple(round(float(amb * t), 4) for t in tint),
            directional_rgb=tuple(round(float(sun * t), 4) for t in tint),
            direction_hp=(round(float(rng.uniform(-180, 180)), 2), round(float(rng.uniform(-70, -20)), 2)),
        )
    view = View(
        yaw_deg=round(float(yaw), 3),
        anim=anim,
        frame=frame,
        fov_deg=round(float(rng.uniform(20, 50)), 3),
        fill=round(float(rng.uniform(0.62, 0.8)), 4),
        elevation_deg=round(float(rng.uniform(-5, 25)), 3),
        light=light,
    )
    u = rng.random()
    if u < PROPOSAL_BOX_SHARE:  # like the live crop stage's nametag-anchored boxes (measured on demo scenes)
        side = rng.normal(0.01, 0.14, 2).clip(-0.3, 0.35)
        top = float(np.clip(rng.normal(0.0, 0.025), -0.05, 0.1))
        bottom = float(np.clip(rng.normal(-0.035, 0.09), -0.2, 0.25))
        jitter = tuple(round(float(v), 4) for v in (side[0], top, side[1], bottom))
    elif u < PROPOSAL_BOX_SHARE + 0.1:  # loose
        jitter = tuple(round(float(rng.uniform(0.0, 0.15)), 4) for _ in range(4))
    else:  # hand-drawn labelImg box: a few % loose or tight
        jitter = tuple(round(float(np.clip(rng.normal(0.008, 0.022), -0.04, 0.07)), 4) for _ in range(4))
    nametag = jitter[1] > 0.06 and rng.random() < 0.5
    toon_blob = None if rng.random() > 0.2 else ("left" if rng.random() < 0.5 else "right")
    other = None
    if rng.random() < 0.25:
        other = (
            "left" if rng.random() < 0.5 else "right",
            int(rng.integers(DISTRACTOR_SPRITES)),
            round(float(rng.uniform(0.05, 0.3)), 3),
        )
    shadow = round(float(rng.uniform(0.25, 0.55)), 3) if rng.random() < 0.7 else 0.0
    return CropParams(
        yaw_class=name,
        view=view,
        jitter_ltrb=jitter,
        sim_height_px=int(rng.integers(90, 600)),
        photometric=Photometric.sample(rng),
        toon_blob=toon_blob,
        other_cog=other,
        shadow=shadow,
        nametag=nametag,
    )


class CropMaker:
    """Renders crops in one process: one renderer, a background bank and distractor sprites (seeded)."""

    def __init__(self, resources: CogRenderer | GameResources | str | Path, seed: int) -> None:
        self.renderer = resources if isinstance(resources, CogRenderer) else CogRenderer(resources, RENDER_SIZE_WH)
        self.seed = int(seed)
        bank_rng = np.random.default_rng([self.seed, 10_007])
        w, h = self.renderer.size_wh
        self.backgrounds = [make_background(bank_rng, (h, w)) for _ in range(BACKGROUNDS - STREET_BACKGROUNDS)]
        self.street_windows = StreetWindows(bank_rng, (h, w), STREET_BACKGROUNDS)  # after them, as numbered
        self.noise_bank = make_noise_bank(bank_rng, (CROP_HEIGHT + 64, CROP_WIDTH + 64))
        self.sprites: list[np.ndarray] = []
        for _ in range(DISTRACTOR_SPRITES):
            key = COG_KEYS[int(bank_rng.integers(len(COG_KEYS)))]
            params = sample_params(bank_rng, self.renderer.cog(key).num_frames)
            rgba = self.renderer.render(key, params.view)
            box = alpha_box_xyxy(rgba[:, :, 3])
            if box is not None:
                self.sprites.append(rgba[box[1] : box[3], box[0] : box[2]].copy())

    def make(self, key: str, number: int) -> tuple[np.ndarray, dict]:
        """The 600x200 RGB crop number ``number`` of Cog ``key`` and its manifest parameters."""
        rng = crop_rng(self.seed, key, number)
        params = sample_params(rng, self.renderer.cog(key).num_frames)
        view = params.view
        width, height = self.renderer.size_wh
        for _ in range(4):
            rgba = self.renderer.render(key, view)
            box = alpha_box_xyxy(rgba[:, :, 3])
            if box is None:
                break
            if box[0] > 0 and box[1] > 0 and box[2] < width and box[3] < height:
                break
            view = replace(view, fill=view.fill * 0.8)
        cog_pixels = int(np.count_nonzero(rgba[:, :, 3] > 32))
        if box is None or cog_pixels < MIN_COG_PIXELS * width * height:
            raise ResourceError(
                f"{self.renderer.resources.spec(key).name} rendered almost empty ({cog_pixels} pixels): "
                f"check its model and texture files in {self.renderer.resources.root}."
            )
        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        jl, jt, jr, jb = params.jitter_ltrb
        cx0 = int(round(max(0, x0 - jl * bw)))
        cy0 = int(round(max(0, y0 - jt * bh)))
        cx1 = int(round(min(width, x1 + jr * bw)))
        cy1 = int(round(min(height, y1 + jb * bh)))
        index = int(rng.integers(BACKGROUNDS))
        plain = len(self.backgrounds)
        background = self.backgrounds[index] if index < plain else self.street_windows[index - plain]
        if rng.random() < 0.5:
            background = background[:, ::-1]
        canvas = np.ascontiguousarray(background[cy0:cy1, cx0:cx1])
        cw, ch = cx1 - cx0, cy1 - cy0
        if params.toon_blob:
            th = ch * rng.uniform(0.5, 0.9)
            overlap = rng.uniform(0.05, 0.3) * cw
            cx = -0.15 * th + overlap if params.toon_blob == "left" else cw + 0.15 * th - overlap
            draw_toon_blob(canvas, rng, cx, ch * rng.uniform(0.9, 1.05), th)
        if params.other_cog and self.sprites:
            side, number_, overlap = params.other_cog
            sprite = self.sprites[number_ % len(self.sprites)]
            scale = ch * rng.uniform(0.7, 1.2) / sprite.shape[0]
            sprite = cv2.resize(sprite, (max(1, int(sprite.shape[1] * scale)), max(1, int(sprite.shape[0] * scale))))
            sx = int(overlap * cw - sprite.shape[1]) if side == "left" else int(cw - overlap * cw)
            paste_rgba(canvas, sprite, sx, int(ch - sprite.shape[0] * rng.uniform(0.9, 1.05)))
        if params.shadow > 0:
            draw_shadow(canvas, ((x0 + x1) / 2 - cx0, y1 - cy0 - 0.012 * bh), 0.17 * bh, params.shadow)
        paste_rgba(canvas, rgba[cy0:cy1, cx0:cx1], 0, 0)
        if params.nametag:
            draw_nametag_edge(canvas, rng, (x0 + x1) / 2 - cx0, y0 - cy0 - 0.03 * bh, bh)
        sim_h = min(params.sim_height_px, ch)
        sim_w = max(8, int(round(cw * sim_h / ch)))
        small = cv2.resize(canvas, (sim_w, sim_h), interpolation=cv2.INTER_AREA) if sim_h < ch else canvas
        crop = stretch_to_crop(small)  # as the runtime stretches a Cog of sim_h pixels
        crop = apply_photometric(crop, params.photometric, self.noise_bank, rng)
        record = {
            "cog": key,
            "suit": taxonomy_cog(key).suit,
            "seed": self.seed,
            "number": int(number),
            "yaw_class": params.yaw_class,
            "view": _view_dict(view),
            "box_xyxy": [int(v) for v in box],
            "crop_xyxy": [cx0, cy0, cx1, cy1],
            "render_size_wh": list(self.renderer.size_wh),
            "cog_pixels": cog_pixels,
            "jitter_ltrb": list(params.jitter_ltrb),
            "sim_height_px": int(sim_h),
            "photometric": asdict(params.photometric),
            "toon_blob": params.toon_blob,
            "other_cog": list(params.other_cog) if params.other_cog else None,
            "shadow": params.shadow,
            "nametag": params.nametag,
        }
        return crop, record

    def close(self) -> None:
        self.renderer.close()


def _view_dict(view: View) -> dict:
    out = {f.name: getattr(view, f.name) for f in fields(view) if f.name != "light"}
    out["light"] = None if view.light is None else asdict(view.light)
    return out


def encode_png_fast(rgb: np.ndarray) -> bytes:
    # zlib level 1, RLE, "up" filter: about 2.5 ms and 125 KB for a 600x200 crop (level 3: 7 ms, 127 KB)
    params = [
        cv2.IMWRITE_PNG_COMPRESSION,
        1,
        cv2.IMWRITE_PNG_STRATEGY,
        cv2.IMWRITE_PNG_STRATEGY_RLE,
        cv2.IMWRITE_PNG_FILTER,
        cv2.IMWRITE_PNG_FILTER_UP,
    ]
    ok, buf = cv2.imencode(".png", rgb[:, :, ::-1], params)
    if not ok:
        raise SaveError("Could not encode a crop as PNG.")
    return buf.tobytes()


# -- multiprocessing ---------------------------------------------------------------------------------------
_worker: CropMaker | None = None
_worker_error: BaseException | None = None


def _init_worker(resources_root: str, seed: int) -> None:
    # an exception here would make the pool restart the worker forever: keep it for the first task
    global _worker, _worker_error
    cv2.setNumThreads(1)
    try:
        _worker = CropMaker(resources_root, seed)
    except Exception as exc:  # re-raised by _run_task, in the parent
        _worker_error = exc


def _run_task(task: tuple[str, int, int, int, str]) -> list[dict]:
    key, first, count, first_index, folder = task
    if _worker_error is not None:
        raise _worker_error
    assert _worker is not None
    records = []
    prefix = taxonomy_cog(key).label
    for offset in range(count):
        crop, record = _worker.make(key, first + offset)
        name = f"{prefix}_{first_index + offset}.png"
        atomic_write_bytes(Path(folder) / name, encode_png_fast(crop))  # never replaces a crop
        record["file"] = f"unsorted/cog/{name}"
        records.append(record)
    return records


@dataclass(frozen=True, slots=True)
class CropRun:
    crops: int
    seconds: float  # wall time including worker start-up
    render_seconds: float  # from the first finished task to the end (steady state)

    @property
    def crops_per_second(self) -> float:
        return self.crops / self.seconds if self.seconds else 0.0


def render_crops(
    dataset: Path,
    resources_root: Path,
    per_cog: int,
    *,
    seed: int = 0,
    workers: int = 2,
    cogs: Sequence[str] | None = None,
    chunk: int = 25,
    progress: Callable[[int, int], None] | None = None,
) -> CropRun:
    """Render ``per_cog`` crops of each Cog into ``dataset`` (layout above); returns counts and timing."""

    resources = load_resources(resources_root)  # fail early, in this process, on a bad root
    keys = list(cogs) if cogs else list(COG_KEYS)
    for key in keys:
        resources.spec(key)
    folder = ensure_dir(Path(dataset) / "unsorted" / "cog")
    tasks = []
    for key in keys:
        first_index = next_free_index(folder, taxonomy_cog(key).label)
        for first in range(0, per_cog, chunk):
            count = min(chunk, per_cog - first)
            tasks.append((key, first, count, first_index + first, str(folder)))
    total = per_cog * len(keys)
    manifest = Path(dataset) / "manifest.jsonl"
    start = time.perf_counter()
    first_done = None
    done = 0
    # always fresh worker processes (even for one): the caller's process keeps no panda3d state, and a
    # seed gives byte-identical crops whatever the number of workers
    ctx = multiprocessing.get_context("spawn")
    pool = ctx.Pool(max(1, workers), initializer=_init_worker, initargs=(str(resources.root), seed))
    ok = False
    try:
        with open(manifest, "a", encoding="utf-8") as out:
            for records in pool.imap(_run_task, tasks):
                if first_done is None:
                    first_done = (time.perf_counter(), len(records))
                for record in records:
                    out.write(json.dumps(record, sort_keys=True) + "\n")
                done += len(records)
                if progress:
                    progress(done, total)
        ok = True
    finally:
        if ok:
            pool.close()
        else:
            pool.terminate()
        pool.join()
    end = time.perf_counter()
    steady = end - first_done[0] if first_done else 0.0
    return CropRun(crops=done, seconds=end - start, render_seconds=steady)
