"""The ``toonvision`` command: one entry point, one subcommand per mode.

Each subcommand lives in its own module, which exposes ``register(subparsers)``
that adds its parser (cheap: argparse only, no heavy imports) and sets
``handler`` to a function ``(args) -> int``.  Heavy imports (TensorFlow,
panda3d, Qt) happen inside the handlers, so ``toonvision --help`` stays fast and
the runtime never imports TensorFlow.

User errors (:class:`ToonVisionError`) are printed as one sentence without a
traceback and give a non-zero exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from toonvision_live import __version__
from toonvision_live.errors import ToonVisionError

#: modules that register subcommands, in the order they appear in --help
SUBCOMMAND_MODULES: tuple[str, ...] = (
    "toonvision_live.commands",  # run, demo
    "toonvision_live.tools.bench",  # bench
    "toonvision_live.tools.replay",  # replay
    "toonvision_live.tools.label",  # label
    "training.dataset.cli",  # dataset extract | split | report
    "training.render.cli",  # render crops | scenes | atlas | sheet
    "training.cli",  # train, tune, evaluate, export
    "toonvision_live.tools.predict",  # predict
    "training.detector.cli",  # detscenes, train-detector, hardset
    "training.reader.cli",  # render-tags, train-reader, evaluate-reader
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toonvision",
        description=(
            "ToonVision Live: name every Cog on your Toontown screen in real time, "
            "and the toolkit that renders data, trains and exports its model."
        ),
        epilog="Run 'toonvision COMMAND --help' for the options of each command.",
    )
    parser.add_argument("--version", action="version", version=f"toonvision {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more detail")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in SUBCOMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    try:
        return int(args.handler(args) or 0)
    except ToonVisionError as exc:
        print(f"toonvision: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("toonvision: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
