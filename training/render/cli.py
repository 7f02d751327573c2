"""``toonvision render``: training crops, demo sprite atlas, contact sheet (and scenes, from scenes.py).

Only argparse here; panda3d and the renderer are imported inside the handlers.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

log = logging.getLogger(__name__)

_RESOURCES_HELP = (
    "game resource folder holding cogs.json and the phase_X model files "
    "(default: ../shared/game-resources beside the project)"
)


def _cog_list(text: str) -> list[str]:
    from toonvision_live.taxonomy import cog

    keys = [k.strip() for k in text.split(",") if k.strip()]
    for key in keys:
        cog(key)  # DataError names an unknown key
    return keys


def _crops(args: argparse.Namespace) -> int:
    from training.render.crops import render_crops
    from training.render.resources import resolve_resources_path

    if args.per_cog < 1 or args.workers < 1:
        from toonvision_live.errors import ConfigError

        raise ConfigError("--per-cog and --workers must be at least 1.")
    cogs = _cog_list(args.cogs) if args.cogs else None
    root = resolve_resources_path(args.resources)

    def progress(done: int, total: int) -> None:
        if done == total or done % 500 < 25:
            log.info("rendered %d / %d crops", done, total)

    run = render_crops(
        Path(args.out), root, args.per_cog, seed=args.seed, workers=args.workers, cogs=cogs, progress=progress
    )
    steady = (run.crops / run.render_seconds) if run.render_seconds else 0.0
    print(
        f"Wrote {run.crops} crops to {Path(args.out) / 'unsorted' / 'cog'} in {run.seconds:.1f} s "
        f"({run.crops_per_second:.0f} crops/s with start-up, {steady:.0f} crops/s steady, "
        f"{args.workers} worker(s)); parameters in {Path(args.out) / 'manifest.jsonl'}."
    )
    return 0


def _atlas(args: argparse.Namespace) -> int:
    from training.render.atlas import build_atlas
    from training.render.resources import resolve_resources_path

    png, meta = build_atlas(resolve_resources_path(args.resources), Path(args.out))
    print(f"Wrote {png} ({png.stat().st_size / 1e6:.2f} MB) and {meta}.")
    return 0


def _sheet(args: argparse.Namespace) -> int:
    from training.render.resources import resolve_resources_path
    from training.render.sheet import build_contact_sheet

    path = build_contact_sheet(resolve_resources_path(args.resources), Path(args.out))
    print(f"Wrote the contact sheet of all 32 Cogs to {path}.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from training.render.resources import PROJECT_ROOT

    parser = subparsers.add_parser(
        "render",
        help="render training crops, street scenes, the demo atlas or a contact sheet from the game's models",
        description="Render the 32 Cogs from the game's own 3D models (PyPI panda3d, offscreen, CPU).",
    )
    render_sub = parser.add_subparsers(dest="render_command", metavar="WHAT", required=True)

    crops = render_sub.add_parser(
        "crops",
        help="600x200 training crops, one Cog each, into DATASET/unsorted/cog",
        description="Render labelled 600x200 Cog crops (ToonVision framing) plus DATASET/manifest.jsonl.",
    )
    crops.add_argument("--per-cog", type=int, required=True, metavar="N", help="crops per Cog")
    crops.add_argument("--out", required=True, metavar="DATASET", help="dataset folder")
    crops.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same images")
    crops.add_argument("--workers", type=int, default=2, help="render processes (default 2)")
    crops.add_argument("--resources", metavar="PATH", help=_RESOURCES_HELP)
    crops.add_argument("--cogs", metavar="K1,K2", help="only these Cog keys (default: all 32)")
    crops.set_defaults(handler=_crops)

    atlas = render_sub.add_parser(
        "atlas",
        help="the demo sprite atlas (walk and neutral frames of every Cog)",
        description="Render the demo sprite atlas (assets/demo_atlas.webp + demo_atlas.json) for the demo street.",
    )
    atlas.add_argument(
        "--out",
        default=str(PROJECT_ROOT / "assets"),
        metavar="FOLDER",
        help="output folder (default: the project's assets/)",
    )
    atlas.add_argument("--resources", metavar="PATH", help=_RESOURCES_HELP)
    atlas.set_defaults(handler=_atlas)

    sheet = render_sub.add_parser(
        "sheet",
        help="a contact sheet PNG of all 32 Cogs",
        description="Render every Cog from a front three-quarter view into one labelled PNG.",
    )
    sheet.add_argument(
        "--out",
        default=str(PROJECT_ROOT / "docs" / "contact_sheet.png"),
        metavar="PNG",
        help="output file (default: docs/contact_sheet.png)",
    )
    sheet.add_argument("--resources", metavar="PATH", help=_RESOURCES_HELP)
    sheet.set_defaults(handler=_sheet)

    try:
        from training.render.scenes import register_scenes
    except ModuleNotFoundError as exc:
        if exc.name != "training.render.scenes":
            raise  # scenes.py exists but one of its imports is missing
        # the street-scene renderer is not there yet
    else:
        register_scenes(render_sub)
