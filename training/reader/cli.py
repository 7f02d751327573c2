"""``toonvision render-tags | train-reader | evaluate-reader``: the nametag reader's toolkit.

TensorFlow is imported inside the handlers only (``train-reader``), so ``toonvision --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from toonvision_live.errors import ConfigError
from training.reader.seeds import SEED_BASES

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = PROJECT_ROOT / "models" / "reader.onnx"


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "render-tags", help="render sample nametags for the reader as a contact sheet (PNG)",
        description="Render N Cog nametags the way the reader is trained (all variants and degradations) "
        "and write them, as the reader sees them, into one sheet PNG with their text.")
    p.add_argument("--out", type=Path, required=True, help="sheet PNG to write")
    p.add_argument("-n", type=int, default=48, help="how many tags (default 48)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(handler=_render_tags)

    p = subparsers.add_parser(
        "train-reader", help="render tags, train the nametag reader, export models/reader.onnx + card",
        description="Render the reader's shards into DATA (missing ones only), train the Keras reader "
        "within --max-minutes, check ONNX parity and write the model and its card.")
    p.add_argument("--data", type=Path, required=True, help="folder for the rendered shards (npz)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"ONNX file to write (default {DEFAULT_OUT})")
    p.add_argument("--train-shards", type=int, default=6, help="shards of 10,000 tags to train on (default 6)")
    p.add_argument("--focus-shards", type=int, default=0,
                   help="also train on this many shards of small text and two-line tags (default 0)")
    p.add_argument("--small-shards", type=int, default=0,
                   help="also train on this many shards of mostly 4.5-10 px text, levels mostly uniform (default 0)")
    p.add_argument("--hard-shards", type=int, default=0,
                   help="also train on this many shards of 4.5-16 px text rescaled and JPEG-compressed more often "
                   "(default 0)")
    p.add_argument("--level-weight", type=float, default=1.0,
                   help="weight of the level digits' losses against name, department and v2.0 (default 1)")
    for split in ("train", "focus", "small", "hard"):
        seed = SEED_BASES[split]
        p.add_argument(f"--{split}-from", type=int, default=0, metavar="I",
                       help=f"index of the first {split} shard (seed {seed}+I; default 0)")
    p.add_argument("--blocks", type=_blocks, default=None, metavar="A,B,C,D",
                   help="residual blocks after each of the four conv stages, each the identity when added, "
                   "so a grown reader warm-starts from a smaller one (default: those of --init, else 0,1,1,1, "
                   "the shipped stage-12 reader's; 0,0,1,0: stages 9-10; 0,0,0,0: stages 1-8)")
    p.add_argument("--block-convs", type=int, default=None,
                   help="3x3 convolutions per residual block (default: those of --init, else 1)")
    p.add_argument("--epochs", type=int, default=14)
    p.add_argument("--max-minutes", type=float, default=25.0, help="stop after the epoch that passes this")
    p.add_argument("--learning-rate", type=float, default=2e-3)
    p.add_argument("--init", type=Path, default=None,
                   help="warm start from this exported reader (.onnx, e.g. the shipped one) or .keras model")
    p.add_argument("--schedule", choices=("epochs", "wall"), default="epochs",
                   help="cosine learning rate over --epochs, or over the --max-minutes wall-clock budget")
    p.add_argument("--render-only", action="store_true", help="render the shards and stop")
    p.set_defaults(handler=_train_reader)

    p = subparsers.add_parser(
        "evaluate-reader", help="the reader's exact-read accuracy per line height and its CPU time per tag",
        description="Read the rendered test shard (seed 9000) with an ONNX reader, once per tag and as "
        "TagReader reads (the mean of its READS reads, from the tags re-rendered), and print accuracy "
        "per line-height bucket (the final height: the headline; then per effective height, the final "
        "height times the window-rescale factor, and per degradation) and milliseconds of CPU per tag "
        "(batch of 16, one thread).")
    p.add_argument("--data", type=Path, required=True, help="folder with (or for) the rendered shards")
    p.add_argument("--model", type=Path, default=DEFAULT_OUT)
    p.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    p.add_argument("--cpu-only", action="store_true",
                   help="only the CPU figures (256 rendered tags of seed 424242, no shards needed), with the "
                   "preparing of the inputs apart")
    p.set_defaults(handler=_evaluate_reader)


def _architecture(args: argparse.Namespace) -> tuple[tuple[int, ...], int]:
    """(blocks, block_convs) of a train-reader run: as given, else those of the model it warm-starts from,
    else the shipped reader's (0,1,1,1 with one convolution)."""
    blocks, convs = ((0, 1, 1, 1), 1)
    if args.init and str(args.init).endswith(".onnx") and Path(args.init).is_file():
        from training.reader.model import _onnx_weights, architecture

        try:
            blocks, convs = architecture(_onnx_weights(str(args.init)))
        except Exception as exc:  # onnx raises its protobuf's own errors for a file that is no model
            raise ConfigError(f"The model to warm-start from, {args.init}, is not a readable ONNX model "
                              f"({type(exc).__name__}).") from None
    return (args.blocks if args.blocks is not None else blocks,
            args.block_convs if args.block_convs is not None else convs)


def _blocks(text: str) -> tuple[int, ...]:
    """``--blocks``: four counts, at least 0, separated by commas."""
    try:
        counts = tuple(int(v) for v in text.split(","))
    except ValueError:
        counts = ()
    if len(counts) != 4 or min(counts) < 0:
        raise argparse.ArgumentTypeError(f"expected four counts like 0,0,1,0, not {text!r}")
    return counts


def tag_sheet(images: list[np.ndarray], captions: list[list[str]], cols: int = 4) -> np.ndarray:
    """A grey contact sheet (uint8) of reader inputs ([INPUT_H, INPUT_W] standardised) at 2x, each with
    its caption lines under it."""
    import cv2

    tiles = []
    for image, lines in zip(images, captions, strict=True):
        grey = np.clip(np.asarray(image, np.float32) * 40 + 128, 0, 255).astype(np.uint8)
        tile = cv2.resize(grey, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        tile = np.vstack([tile, np.full((6 + 14 * len(lines), tile.shape[1]), 255, np.uint8)])
        for k, line in enumerate(lines):
            cv2.putText(tile, line, (2, 2 * image.shape[0] + 14 * (k + 1)), cv2.FONT_HERSHEY_PLAIN, 0.75, 0, 1,
                        cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % cols:
        tiles.append(np.full_like(tiles[0], 255))
    return np.vstack([np.hstack(tiles[i : i + cols]) for i in range(0, len(tiles), cols)])


def _render_tags(args: argparse.Namespace) -> int:
    from toonvision_live.classify.reader import tag_input
    from toonvision_live.fileio import write_png
    from training.reader.tags import TagRenderer

    if args.n < 1:
        raise ConfigError("-n must be at least 1.")
    renderer, rng = TagRenderer(), np.random.default_rng([args.seed, 0x5EE7])
    images, captions = [], []
    for _ in range(args.n):
        patch, box, label = renderer.sample(rng)
        images.append(tag_input(patch, box))
        captions.append([f"{label.em:.0f}px " + " / ".join(label.lines)])
    sheet = tag_sheet(images, captions)
    write_png(args.out, np.repeat(sheet[:, :, None], 3, axis=2), overwrite=True)
    print(f"wrote {args.out} ({args.n} tags)")
    return 0


def _train_reader(args: argparse.Namespace) -> int:
    from training.reader.train import Recipe, ensure_shards, export_reader, shard_plan, train_reader

    if not args.render_only and not args.out.parent.is_dir():
        raise ConfigError(f"The folder for {args.out} does not exist: create it or choose another --out.")
    if args.init is not None and not args.init.is_file():
        raise ConfigError(f"The model to warm-start from, {args.init}, does not exist.")
    if (args.train_shards < 1 or args.epochs < 1 or args.max_minutes <= 0 or args.focus_shards < 0
            or args.small_shards < 0 or args.hard_shards < 0 or args.level_weight <= 0
            or (args.block_convs is not None and args.block_convs < 1)
            or min(args.train_from, args.focus_from, args.small_from, args.hard_from) < 0):
        raise ConfigError("--train-shards, --epochs and --block-convs must be at least 1, --focus-shards, "
                          "--small-shards, --hard-shards and the --*-from indices at least 0, --max-minutes and "
                          "--level-weight above 0.")
    blocks, block_convs = _architecture(args)
    recipe = Recipe(train_shards=args.train_shards, epochs=args.epochs, max_minutes=args.max_minutes,
                    learning_rate=args.learning_rate, init=str(args.init) if args.init else None,
                    schedule=args.schedule, focus_shards=args.focus_shards,
                    small_shards=args.small_shards, level_weight=args.level_weight, train_from=args.train_from,
                    focus_from=args.focus_from, small_from=args.small_from, hard_shards=args.hard_shards,
                    hard_from=args.hard_from, blocks=blocks,
                    block_convs=block_convs)
    for split, count, first in [("test", 1, 0), ("val", 1, 0), *shard_plan(recipe)]:
        ensure_shards(args.data, split, count, start=first)
    if args.render_only:
        return 0
    t0 = time.monotonic()
    model = train_reader(args.data, recipe)
    card = export_reader(model, args.out, args.data, recipe, (time.monotonic() - t0) / 60)
    m = card["metrics_test_onnx"]
    print(f"wrote {args.out}: exact read {m['exact']:.4f} on {m['n']} held-out tags; "
          f">= 8 px {m['em_ge_8']['exact']:.4f}, 5-8 px {m['em_5_8']['exact']:.4f}, "
          f"level >= 6 px {m['em_ge_6']['level']:.4f}")
    return 0


def measure_cpu_ms_per_tag(model: Path, batch: int = 16, repeats: int = 50) -> float:
    """Process CPU milliseconds per tag of the reader on one thread, prepared batches of ``batch``."""
    import onnxruntime as ort

    from toonvision_live.classify.reader import INPUT_H, INPUT_NAME, INPUT_W

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(batch, INPUT_H, INPUT_W, 1)).astype(np.float32)
    session.run(None, {INPUT_NAME: x})
    t0 = time.process_time()
    for _ in range(repeats):
        session.run(None, {INPUT_NAME: x})
    return (time.process_time() - t0) * 1000 / (repeats * batch)


def _print_buckets(title: str, m: dict[str, Any]) -> None:
    from training.reader.train import EM_BUCKETS

    print(title)
    print(f"{'line height':>12} {'n':>6} {'exact':>7} {'name':>7} {'dept':>7} {'level':>7} {'v2':>7}")
    keys = [f"em_{lo:g}_{hi:g}" for lo, hi in EM_BUCKETS] + ["em_5_8", "em_ge_6", "em_ge_8"]
    for key in keys:
        b = m[key]
        fields = " ".join(f"{b[f]:>7.4f}" for f in ("exact", "name", "dept", "level", "v2"))
        print(f"{key[3:]:>12} {b['n']:>6} {fields}")
    print(f"{'all':>12} {m['n']:>6} " + " ".join(f"{m[f]:>7.4f}" for f in ("exact", "name", "dept", "level", "v2")))


def read_as_live(model: Path, data: Path, keep: int = 256
                 ) -> tuple[dict[str, np.ndarray], list[tuple[Any, Any]], list[dict[str, float]]]:
    """The test shard's tags read as :class:`TagReader` reads them (each box's READS averaged),
    from the frames patches re-rendered from the shard's seed (the shard keeps only one prepared input);
    the first ``keep`` (patch, box) pairs, for timing; and what degraded each tag (the renderer's
    record, which the shard does not keep)."""
    from toonvision_live.classify.reader import TagReader
    from training.reader.seeds import shard_seed
    from training.reader.tags import TagRenderer, iter_tag_samples, load_tag_set
    from training.reader.train import SHARD_SIZE, ensure_shards

    test = load_tag_set(ensure_shards(data, "test", 1)[0])
    reader = TagReader(model, ["CPUExecutionProvider"])
    renderer = TagRenderer()
    parts, kept, degradations = [], [], []
    for i, (patch, box, label) in enumerate(iter_tag_samples(SHARD_SIZE, shard_seed("test", 0), renderer)):
        if " / ".join(label.lines) != test.texts[i]:
            raise ConfigError(f"The test shard in {data} was rendered by another version of the tag renderer: "
                              "delete test_00.npz there and evaluate again.")
        parts.append(reader.probabilities(patch, [box]))
        degradations.append(dict(renderer.last_degradations))
        if len(kept) < keep:
            kept.append((patch, box))
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}, kept, degradations


def measure_read_cpu_ms(model: Path, samples: list[tuple[Any, Any]], repeats: int = 5) -> float:
    """Process CPU milliseconds per tag of :meth:`TagReader.read` (one thread), one tag per call: the
    crop, its READS inputs, the network and the decoding."""
    from toonvision_live.classify.reader import TagReader

    reader = TagReader(model, ["CPUExecutionProvider"])
    reader.read(samples[0][0], [samples[0][1]])
    t0 = time.process_time()
    for _ in range(repeats):
        for patch, box in samples:
            reader.read(patch, [box])
    return (time.process_time() - t0) * 1000 / (repeats * len(samples))


def measure_prep_cpu_ms(samples: list[tuple[Any, Any]], repeats: int = 5) -> float:
    """Process CPU milliseconds per tag of preparing its READS inputs (:func:`tag_inputs`), no network."""
    from toonvision_live.classify.reader import INPUT_H, INPUT_W, READS, tag_inputs

    out = np.empty((len(READS), INPUT_H, INPUT_W), np.float32)
    t0 = time.process_time()
    for _ in range(repeats):
        for patch, box in samples:
            tag_inputs(patch, box, out=out)
    return (time.process_time() - t0) * 1000 / (repeats * len(samples))


def _reader_cpu(model: Path) -> int:
    from toonvision_live.classify.reader import READS
    from training.reader.tags import iter_tag_samples

    samples = [(patch, box) for patch, box, _ in iter_tag_samples(256, 424242)]
    per_read = measure_cpu_ms_per_tag(model)
    call = measure_read_cpu_ms(model, samples)
    prep = measure_prep_cpu_ms(samples)
    print(f"CPU per read (batch 16, one thread): {per_read:.3f} ms; per tag ({len(READS)} reads): "
          f"{per_read * len(READS):.3f} ms; preparing a tag's {len(READS)} inputs: {prep:.3f} ms (network + "
          f"preparing: {per_read * len(READS) + prep:.3f} ms); TagReader.read, one tag a call, crop to decoding: "
          f"{call:.3f} ms")
    return 0


def _evaluate_reader(args: argparse.Namespace) -> int:
    import onnxruntime as ort

    from toonvision_live.classify.reader import READS
    from training.reader.effective import effective_report, print_effective
    from training.reader.tags import load_tag_set
    from training.reader.train import bucket_metrics, ensure_shards, exact_reads, onnx_outputs

    if not args.model.is_file():
        raise ConfigError(f"The reader model {args.model} does not exist.")
    if args.cpu_only:
        return _reader_cpu(args.model)
    test = load_tag_set(ensure_shards(args.data, "test", 1)[0])
    session = ort.InferenceSession(str(args.model), providers=["CPUExecutionProvider"])
    one = bucket_metrics(onnx_outputs(session, test.images), test)
    live, kept, degradations = read_as_live(args.model, args.data)
    m = {**bucket_metrics(live, test), "one_read": one}
    whole = ~test.hidden if test.hidden is not None else np.ones(len(test.name), bool)
    m["effective"] = effective_report(exact_reads(live, test), test.em, degradations, whole)
    per_read = measure_cpu_ms_per_tag(args.model)
    m["cpu_ms_per_read_batch16_1thread"] = round(per_read, 3)
    m["cpu_ms_per_tag_batch16_1thread"] = round(per_read * len(READS), 3)
    m["cpu_ms_per_tag_read_call"] = round(measure_read_cpu_ms(args.model, kept), 3)
    _print_buckets("one read of each tag (the shard's prepared inputs):", one)
    _print_buckets(f"as TagReader reads (the mean of {len(READS)} reads through READS), per final line height "
                   "(the headline):", m)
    print_effective(m["effective"])
    print(f"CPU per read (batch 16, one thread): {per_read:.3f} ms; per tag ({len(READS)} reads): "
          f"{m['cpu_ms_per_tag_batch16_1thread']:.3f} ms; TagReader.read, one tag a call, crop to decoding: "
          f"{m['cpu_ms_per_tag_read_call']:.3f} ms")
    if args.json:
        from toonvision_live.fileio import atomic_write_bytes

        atomic_write_bytes(args.json, (json.dumps(m, indent=1) + "\n").encode(), overwrite=True)
    return 0
