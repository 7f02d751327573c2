"""Subcommands of the detector: ``toonvision detscenes`` (rendered detection scenes), ``toonvision
train-detector`` (train, export to ONNX with a parity check and card) and ``toonvision hardset`` (score a
crop stage on held-out rendered scenes).  Only argparse at import time."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)

_REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = _REPO / ".cache" / "detector"
RESOURCES_HELP = "game resource folder (default: ../shared/game-resources beside the project)"


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _detscenes(args: argparse.Namespace) -> int:
    import time

    from training.detector.data import build_dataset
    from training.detector.hardset import sprite_cache

    t0 = time.perf_counter()
    sprite_cache(Path(args.resources) if args.resources else None, Path(args.cache), args.sprite_seed,
                 args.poses)
    sprites = Path(args.cache) / f"sprites_seed{args.sprite_seed}_n{args.poses}.npz"
    took_sprites = time.perf_counter() - t0
    rate = build_dataset(Path(args.out), args.count, sprites, args.seed, workers=args.workers, hard=args.hard)
    print(f"Rendered {args.count} scenes into {args.out} at {rate:.1f} scenes/s with {args.workers} workers "
          f"(sprite cache {took_sprites:.0f} s).")
    return 0


def _train(args: argparse.Namespace) -> int:
    from toonvision_live.errors import DataError
    from training.detector.data import load_dataset
    from training.detector.export import export_detector
    from training.detector.train import TrainConfig, train_detector

    folders = [Path(d) for d in args.data]
    for data in folders:
        if not (data / "images.u8").is_file():
            raise DataError(f"{data} holds no rendered scenes; make them with 'toonvision detscenes --out {data}'.")
    init = Path(args.init) if args.init else None
    if init is not None and not init.is_file():
        raise DataError(f"The starting weights {init} do not exist; train without --init first.")
    keras_path = Path(args.keras)
    config = TrainConfig(steps=args.steps, batch=args.batch, lr=args.lr, max_minutes=args.minutes, seed=args.seed)
    summary = train_detector(folders, keras_path, config, progress=lambda s: print(s, flush=True), init=init)
    print(f"Trained {summary['steps']} steps in {summary['minutes']} min.")
    if args.previous_minutes:
        summary["minutes_with_init_run"] = round(summary["minutes"] + args.previous_minutes, 1)
    images, meta = load_dataset(folders[0])
    parity = images[: min(8, len(images))]
    data = [{"folder": str(f), **{k: v for k, v in load_dataset(f)[1].items() if k in ("seed", "count", "mix")}}
            for f in folders]
    card = export_detector(keras_path, Path(args.out), parity, {"training": {**summary, "data": data,
                                                                           "scenes_per_s": meta.get("scenes_per_s")}})
    print(f"Wrote {args.out} and its card (Keras vs ONNX max diff {card['parity']['max_abs_diff']:.1e}).")
    return 0


def _hardset(args: argparse.Namespace) -> int:
    from toonvision_live.fileio import atomic_write_bytes
    from toonvision_live.tools.hardset import score, summary, table, to_json
    from training.detector.hardset import HARD_SPRITE_SEED, run_hardset, sprite_cache

    sprites = sprite_cache(Path(args.resources) if args.resources else None, Path(args.cache), HARD_SPRITE_SEED)
    results = {}
    for stage_name in args.stage:
        if stage_name in ("detector", "confirmed", "combined"):
            from toonvision_live.find.confirm import CombinedSearch, ConfirmedDetector
            from toonvision_live.find.detector import CogDetector

            detector = CogDetector(Path(args.model) if args.model else None)
            detector.long_side = args.long_side  # None: work_long of each frame
            stages = {"detector": detector, "confirmed": ConfirmedDetector(detector),
                      "combined": CombinedSearch(ConfirmedDetector(detector))}
            stage = stages[stage_name]
        else:
            from toonvision_live.find.nametags import propose_cog_boxes as stage  # type: ignore[assignment]
        frames, timing = run_hardset(stage, sprites, args.per_group, args.seed)
        result = score(frames)
        result["cpu_ms_per_frame"] = timing
        results[stage_name] = result
        print(f"\n{stage_name} (hard set seed {args.seed}, {args.per_group} frames per group):")
        print(table(result))
        print(summary(result))
        print("median CPU ms per frame: " + ", ".join(f"{k} {v['median_cpu_ms']:.1f}" for k, v in timing.items()))
    if args.json:
        atomic_write_bytes(Path(args.json), to_json(results).encode(), overwrite=True)
        print(f"\nWrote {args.json}.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "detscenes", help="rendered detection scenes (Cogs near to far, nametags, negatives) for the detector",
        description="Render Cog sprites from the game's models once (cached), compose labelled scenes in worker "
                    "processes and write them at the detector's working size (images.u8 + labels.json).")
    p.add_argument("--count", type=_positive, required=True, metavar="N")
    p.add_argument("--out", required=True, metavar="FOLDER")
    p.add_argument("--seed", type=int, default=1, help="scene seed (default 1; the hard set uses another)")
    p.add_argument("--sprite-seed", type=int, default=0, help="pose seed of the sprite cache (default 0)")
    p.add_argument("--poses", type=_positive, default=40, help="sprites per Cog (default 40)")
    p.add_argument("--workers", type=_positive, default=2)
    p.add_argument("--hard", action="store_true",
                   help="the hard-case mix: 1080p-4K windows, far Cogs, short Cogs in front of tall ones, Cogs at "
                   "the side edges, heavy JPEG")
    p.add_argument("--cache", default=str(DEFAULT_CACHE), help="sprite cache folder")
    p.add_argument("--resources", metavar="PATH", help=RESOURCES_HELP)
    p.set_defaults(handler=_detscenes)

    t = subparsers.add_parser(
        "train-detector", help="train the Cog detector on rendered scenes and export it to ONNX",
        description="Train (bounded by --minutes), export with tf2onnx after a Keras-vs-ONNX parity check, "
                    "and write the model card.")
    t.add_argument("--data", required=True, nargs="+", metavar="FOLDER",
                   help="folder(s) written by 'toonvision detscenes'")
    t.add_argument("--init", metavar="KERAS", help="start from these weights (a previous run) instead of scratch")
    t.add_argument("--previous-minutes", type=float, default=0.0, metavar="M",
                   help="minutes the --init run took, recorded in the card with this run's")
    t.add_argument("--out", default=str(_REPO / "models" / "detector.onnx"), metavar="ONNX")
    t.add_argument("--keras", default=str(DEFAULT_CACHE / "detector.keras"), metavar="PATH")
    t.add_argument("--steps", type=_positive, default=2400)
    t.add_argument("--batch", type=_positive, default=16)
    t.add_argument("--lr", type=float, default=2e-3)
    t.add_argument("--minutes", type=float, default=55.0, help="stop training after this long (default 55)")
    t.add_argument("--seed", type=int, default=0)
    t.set_defaults(handler=_train)

    h = subparsers.add_parser(
        "hardset", help="score the crop stage on held-out rendered scenes (per line height, degradation, size)",
        description="Recall per nametag line-height bucket, per degradation and per window size, false boxes "
                    "per frame (also on Cog-free and Toon-only frames) and median body IoU.")
    h.add_argument("--stage", nargs="+", choices=("detector", "confirmed", "combined", "nametags"),
                   default=["detector"],
                   help="detector: its own boxes; confirmed: its tags confirmed by the nametag verifier, as the "
                   "live crop stage 'detector' runs it; combined: that plus the nametag search (crop stage "
                   "'combined'); nametags: the nametag search")
    h.add_argument("--per-group", type=_positive, default=30, metavar="N", help="frames per group (30)")
    h.add_argument("--seed", type=int, default=7_000_001)
    h.add_argument("--model", metavar="ONNX", help="detector model (default models/detector.onnx)")
    h.add_argument("--long-side", type=_positive, metavar="PX",
                   help="one working long side for every frame (default: by frame size, find.detector.work_long)")
    h.add_argument("--json", metavar="PATH", help="write the figures as JSON")
    h.add_argument("--cache", default=str(DEFAULT_CACHE), help="sprite cache folder")
    h.add_argument("--resources", metavar="PATH", help=RESOURCES_HELP)
    h.set_defaults(handler=_hardset)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
