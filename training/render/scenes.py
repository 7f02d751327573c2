"""``toonvision render scenes`` (labelled street frames) and ``toonvision render glyphs`` (nametag font).

Scenes are composed by :class:`toonvision_live.demo.scene.StreetScene` from the demo sprite atlas, or with
``--fresh`` from Cogs freshly rendered by :class:`training.render.cogs.CogRenderer` (random yaw, walk
frames and lighting per scene) for more variety.  Each frame goes to ``DATASET/raw/screenshots/scene_<i>.png``
with a Pascal VOC ``scene_<i>.xml`` beside it (next free index, never overwriting).

Only argparse at import time: numpy, cv2 and panda3d are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass
from pathlib import Path

from toonvision_live.settings import parse_size_wh

log = logging.getLogger(__name__)

#: frames taken from one scene (its background and Cogs) before a new scene is built
FRAMES_PER_SCENE = 4
#: seconds between the frames taken from one scene (the Cogs walk on in between)
FRAME_STEP_S = 2.3
FRESH_PX_PER_UNIT = 40.0
FRESH_WALK_FRAMES = 8


@dataclass(frozen=True, slots=True)
class SceneOptions:
    size_wh: tuple[int, int] = (1280, 720)
    n_cogs: int = 8
    n_toons: int = 2
    seed: int = 0
    jpeg_quality: int = 0  # 0: exact frames; otherwise a JPEG round trip, as the game saves screenshots




def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def fresh_atlas(renderer, keys: list[str], rng, px_per_unit: float = FRESH_PX_PER_UNIT):
    """A SpriteAtlas of ``keys`` rendered now: random yaw, walk-cycle start and lighting per Cog."""
    from toonvision_live.demo.sprites import CogSprites, Sprite, SpriteAtlas
    from training.render.cogs import Light

    cogs = {}
    for key in keys:
        height = renderer.resources.spec(key).height
        if rng.random() < 0.3:
            light = None
        else:
            amb = float(rng.uniform(0.6, 0.9))
            sun = float(rng.uniform(0.15, 0.4))
            light = Light(
                (amb, amb, amb), (sun, sun, sun), (float(rng.uniform(0, 360)), float(rng.uniform(-70, -20)))
            )
        n_walk = renderer.num_frames(key, "walk")
        start = int(rng.integers(n_walk))
        clips: dict[str, tuple] = {}
        for clip, sign in (("walk_right", 1.0), ("walk_left", -1.0)):
            yaw = sign * float(rng.uniform(25.0, 80.0))
            elevation = float(rng.uniform(4.0, 16.0))
            sprites = []
            for j in range(FRESH_WALK_FRAMES):
                frame = (start + j * n_walk // FRESH_WALK_FRAMES) % n_walk
                rgba, foot = renderer.render_sprite(
                    key, yaw, "walk", frame, px_per_unit * height, elevation_deg=elevation, light=light
                )
                sprites.append(Sprite(rgba, foot))
            clips[clip] = tuple(sprites)
        n_neutral = renderer.num_frames(key, "neutral")
        yaw = float(rng.uniform(-30.0, 30.0))
        clips["neutral_front"] = tuple(
            Sprite(*renderer.render_sprite(key, yaw, "neutral", int(f), px_per_unit * height, light=light))
            for f in rng.choice(n_neutral, size=3, replace=False)
        )
        cogs[key] = CogSprites(key, float(height), clips)
    return SpriteAtlas(px_per_unit, cogs, "rendered fresh by training.render.scenes")


def render_scenes(
    out: Path,
    count: int,
    options: SceneOptions = SceneOptions(),
    *,
    fresh: bool = False,
    resources: Path | None = None,
    atlas_folder: Path | None = None,
    progress=None,
) -> list[Path]:
    """Write ``count`` labelled street frames into ``out``/raw/screenshots; returns the PNG paths."""
    import cv2
    import numpy as np

    from toonvision_live.demo.scene import StreetScene
    from toonvision_live.demo.sprites import SpriteAtlas
    from toonvision_live.fileio import ensure_dir, write_indexed_png
    from toonvision_live.taxonomy import COG_KEYS
    from toonvision_live.voc import VocAnnotation, write_voc

    screenshots = ensure_dir(Path(out) / "raw" / "screenshots")
    rng = np.random.default_rng([options.seed, 0x5CE7E])
    renderer = None
    atlas = None
    if fresh:
        from training.render.cogs import CogRenderer
        from training.render.resources import resolve_resources_path

        renderer = CogRenderer(resolve_resources_path(resources), size_wh=(520, 640))
    else:
        atlas = SpriteAtlas.load(atlas_folder)
    written: list[Path] = []
    try:
        scene = None
        for i in range(count):
            slot = i % FRAMES_PER_SCENE
            if slot == 0:
                scene_seed = int(rng.integers(2**31))
                if renderer is not None:
                    keys = [
                        str(k)
                        for k in rng.choice(COG_KEYS, size=min(options.n_cogs, len(COG_KEYS)), replace=False)
                    ]
                    atlas = fresh_atlas(renderer, keys, rng)
                scene = StreetScene(atlas, options.size_wh, options.n_cogs, options.n_toons, scene_seed)
            frame = scene.frame(slot * FRAME_STEP_S + float(rng.uniform(0, 0.5)))
            rgb = frame.rgb
            if options.jpeg_quality:
                ok, buf = cv2.imencode(
                    ".jpg",
                    cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, int(options.jpeg_quality)],
                )
                rgb = cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            png = write_indexed_png(screenshots, "scene", rgb)
            h, w = rgb.shape[:2]
            write_voc(
                png.with_suffix(".xml"),
                VocAnnotation(
                    filename=png.name,
                    width=w,
                    height=h,
                    objects=frame.objects,
                    folder="screenshots",
                    path=str(png),
                ),
            )
            written.append(png)
            if progress is not None:
                progress(i + 1, count)
    finally:
        if renderer is not None:
            renderer.close()
    return written


def _scenes(args: argparse.Namespace) -> int:
    import time

    options = SceneOptions(args.size, args.cogs, args.toons, args.seed, args.jpeg)
    start = time.perf_counter()
    paths = render_scenes(
        Path(args.out),
        args.count,
        options,
        fresh=args.fresh,
        resources=Path(args.resources) if args.resources else None,
        atlas_folder=Path(args.atlas) if args.atlas else None,
    )
    took = time.perf_counter() - start
    where = paths[0].parent if paths else Path(args.out) / "raw" / "screenshots"
    print(
        f"Wrote {len(paths)} labelled street frames (PNG + VOC XML) to {where} "
        f"in {took:.1f} s ({len(paths) / max(took, 1e-9):.1f} frames/s)."
    )
    return 0


def _glyphs(args: argparse.Namespace) -> int:
    from training.render.glyphs import write_glyph_atlas
    from training.render.resources import resolve_resources_path

    files = write_glyph_atlas(resolve_resources_path(args.resources), Path(args.out))
    print(f"Wrote {files.png} and {files.json}.")
    return 0


def register_scenes(render_subparsers: argparse._SubParsersAction) -> None:
    """Add ``scenes`` and ``glyphs`` to the ``toonvision render`` subcommands."""
    resources_help = (
        "game resource folder holding cogs.json and the phase_X files "
        "(default: ../shared/game-resources beside the project)"
    )
    scenes = render_subparsers.add_parser(
        "scenes",
        help="labelled street frames: Cogs with nametags walking among Toons, with VOC XML",
        description=(
            "Compose Toontown-like street frames with Cogs at several depths (each with its in-game "
            "nametag) and Toon-like distractors, and write DATASET/raw/screenshots/scene_<i>.png with "
            "Pascal VOC boxes tight around every body (nametag and shadow excluded)."
        ),
    )
    scenes.add_argument("--count", type=_non_negative, required=True, metavar="N", help="number of frames")
    scenes.add_argument("--out", required=True, metavar="DATASET", help="dataset folder (created if needed)")
    scenes.add_argument("--seed", type=int, default=0, help="random seed (default 0); same seed, same frames")
    scenes.add_argument(
        "--size", type=parse_size_wh, default=(1280, 720), metavar="WxH", help="frame size (1280x720)"
    )
    scenes.add_argument("--cogs", type=_non_negative, default=8, metavar="N", help="Cogs per scene (8)")
    scenes.add_argument("--toons", type=_non_negative, default=2, metavar="N", help="Toons per scene (2)")
    scenes.add_argument(
        "--jpeg",
        type=int,
        default=0,
        choices=range(0, 101),
        metavar="Q",
        help="JPEG quality to round-trip each frame through, as the game's screenshots (0: off)",
    )
    scenes.add_argument(
        "--fresh",
        action="store_true",
        help="render the Cogs now from the game's models (random yaw, frames, lighting) instead "
        "of using the demo sprite atlas",
    )
    scenes.add_argument(
        "--atlas", metavar="FOLDER", help="folder holding the demo atlas (demo_atlas.json + its sheet; default: assets)"
    )
    scenes.add_argument("--resources", metavar="PATH", help=resources_help + "; used with --fresh")
    scenes.set_defaults(handler=_scenes)

    glyphs = render_subparsers.add_parser(
        "glyphs",
        help="the nametag glyph atlas from the game's suit font",
        description="Render the game's suit font (vtRemingtonPortable.ttf) to suit_font_glyphs.png/.json.",
    )
    default_assets = Path(__file__).resolve().parents[2] / "assets"
    glyphs.add_argument(
        "--out",
        default=str(default_assets),
        metavar="FOLDER",
        help=f"output folder (default: {default_assets})",
    )
    glyphs.add_argument("--resources", metavar="PATH", help=resources_help)
    glyphs.set_defaults(handler=_glyphs)
