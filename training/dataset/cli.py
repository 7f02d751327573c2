"""``toonvision dataset extract | check | split | report``: the ToonVision dataset tools.

Only argparse at import time; each handler imports its module when it runs.
"""

from __future__ import annotations

import argparse

_LAYOUT = """\
dataset layout (ToonVision):
  DATASET/raw/screenshots/NAME.png + NAME.xml   screenshots + Pascal VOC (labelImg) boxes
  DATASET/unsorted/{cog,toon}/                  600x200 crops, e.g. cog_sb_coldcaller_0.png
  DATASET/data/{train,validate,test}/{cog,toon}/  the split
"""

_EXTRACT_HELP = """\
Cut every labelled box of DATASET/raw/screenshots/*.png|jpg (with NAME.xml beside
each) into a 600 high x 200 wide crop (stretched) and save it as
DATASET/unsorted/{cog,toon}/<label>_<N>.png, N being the next free number.
Existing files are never overwritten, and boxes extracted by an earlier run are
not cut again (the ledger DATASET/ledger.json, shared with the save hotkey).  A bad file or box (malformed
XML, unreadable image, unknown label, box outside the image) is reported in one
line and skipped; the rest is extracted and the exit status is 1.

Street codes (br dd ddl dg mml ttc) for the report are taken from a street
sub-folder (raw/screenshots/dd/NAME.png) or the first '_' token of the file
name (dd_0042.png).

example:
  toonvision dataset extract ~/toonvision-data
"""

_SPLIT_HELP = """\
Split the crops in DATASET/unsorted/ per Cog (and per Toon animal) into
DATASET/data/{train,validate,test}/, 60/20/20 by default.  Every Cog with at
least 3 crops lands in every split; Cogs with fewer go to train with a warning.
The same seed always gives the same split.  Files are hard-linked when possible
(else copied) and never overwritten.  Running it again with the same seed only
puts back missing files.  When data/ holds a different split (another seed or
ratios, or crops were added since) the command stops unless --force, which
moves the old data/ aside to data.replaced-<time>/ and splits again.

examples:
  toonvision dataset split ~/toonvision-data
  toonvision dataset split ~/toonvision-data --seed 7 --ratios 0.7 0.15 0.15
"""

_CHECK_HELP = """\
One pass over the dataset: unreadable screenshots or crops, XML that is missing,
does not match its image's size or names no known Cog, crops with no source
(no ledger entry, no renderer manifest line), crops the ledger names that are
gone, identical crops, and groups of near-identical crops placed in more than
one split (a leak).  Prints a table; the exit status is 1 when anything is
wrong.  --fix moves the offenders to DATASET/quarantine/ (never deletes; the
first of identical crops stays) and rewrites the ledger, so a second check is
clean.

examples:
  toonvision dataset check ~/toonvision-data
  toonvision dataset check ~/toonvision-data --fix
"""

_REPORT_HELP = """\
Count the crops per suit, per Cog, per Toon animal, per street and per split,
print them as tables and save report.json plus the balance charts (suits.png,
cogs.png, streets.png, splits.png, toons.png) into --out (default DATASET/report/).

examples:
  toonvision dataset report ~/toonvision-data
  toonvision dataset report ~/toonvision-data --out /tmp/balance
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``dataset`` with its ``extract``, ``check``, ``split`` and ``report`` subcommands."""
    formatter = argparse.RawDescriptionHelpFormatter
    dataset = subparsers.add_parser(
        "dataset",
        help="extract crops from labelled screenshots, check, split them, report the balance",
        description="Tools for a ToonVision dataset folder.\n\n" + _LAYOUT,
        epilog="Run 'toonvision dataset COMMAND --help' for each command's options.",
        formatter_class=formatter,
    )
    commands = dataset.add_subparsers(dest="dataset_command", metavar="COMMAND", required=True)

    extract = commands.add_parser("extract", help="cut labelled boxes into 600x200 crops in unsorted/",
                                  description=_EXTRACT_HELP, formatter_class=formatter)
    extract.add_argument("dataset", metavar="DATASET", help="the dataset folder (holds raw/screenshots/)")
    extract.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    extract.set_defaults(handler=_extract)

    split = commands.add_parser("split", help="split unsorted crops per Cog into train/validate/test",
                                description=_SPLIT_HELP, formatter_class=formatter)
    split.add_argument("dataset", metavar="DATASET", help="the dataset folder (holds unsorted/)")
    split.add_argument("--seed", type=int, default=0, help="random seed, >= 0 (default: 0)")
    split.add_argument("--ratios", type=float, nargs=3, default=[0.6, 0.2, 0.2],
                       metavar=("TRAIN", "VALIDATE", "TEST"),
                       help="fractions per split, summing to 1 (default: 0.6 0.2 0.2)")
    split.add_argument("--force", action="store_true",
                       help="when data/ holds a different split, move it aside and split again")
    split.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    split.set_defaults(handler=_split)

    check = commands.add_parser("check", help="find bad, unsourced, duplicate and leaking files; --fix them",
                                description=_CHECK_HELP, formatter_class=formatter)
    check.add_argument("dataset", metavar="DATASET", help="the dataset folder")
    check.add_argument("--fix", action="store_true", help="move offenders to DATASET/quarantine/, rewrite the ledger")
    check.add_argument("--no-progress", action="store_true", help="do not draw a progress bar")
    check.set_defaults(handler=_check)

    report = commands.add_parser("report", help="tables and balance charts per suit, Cog, street, split",
                                 description=_REPORT_HELP, formatter_class=formatter)
    report.add_argument("dataset", metavar="DATASET", help="the dataset folder")
    report.add_argument("--out", metavar="DIR", default=None,
                        help="where to save report.json and the charts (default: DATASET/report/)")
    report.set_defaults(handler=_report)


def _extract(args: argparse.Namespace) -> int:
    from training.dataset.extract import extract_dataset
    from training.dataset.progress import warn

    result = extract_dataset(args.dataset, progress=not args.no_progress, on_message=warn)
    print(result.summary())
    return 0 if result.ok else 1


def _split(args: argparse.Namespace) -> int:
    from training.dataset.progress import warn
    from training.dataset.split import split_dataset

    result = split_dataset(args.dataset, seed=args.seed, ratios=args.ratios, force=args.force,
                           progress=not args.no_progress, on_message=warn)
    print(result.summary())
    return 0 if result.ok else 1


def _report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from training.dataset.progress import warn
    from training.dataset.report import write_report

    console = Console(highlight=False)
    counts, written = write_report(args.dataset, args.out, console=console)
    for path in counts.skipped:
        warn(f"problem: {path} is not named '<label>_<index>.png' with a known label, so it is not "
             "counted: rename or remove it.")
    folder = written[-1].parent
    print(f"Wrote {', '.join(p.name for p in written)} to {folder}.")
    return 0 if not counts.skipped else 1


def _check(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from training.dataset.check import check_dataset
    from training.dataset.progress import warn

    result = check_dataset(args.dataset, fix=args.fix, progress=not args.no_progress, on_message=warn)
    table = Table(title=f"{args.dataset}: {result.screenshots} screenshots, {result.crops} crops in "
                  f"{result.groups} groups")
    for column in ("finding", "count", "first"):
        table.add_column(column)
    for kind, count, first in result.table_rows():
        table.add_row(kind, str(count), first)
    Console(highlight=False, width=160).print(table)
    if result.ok:
        print("The dataset is consistent.")
    elif args.fix:
        print(f"Fixed {len(result.findings)} problems: moved {len(result.moved)} files into quarantine/ and "
              "rewrote the ledger; run check again to confirm.")
    else:
        print(f"{len(result.findings)} problems: run 'toonvision dataset check {args.dataset} --fix' to move the "
              "offenders to quarantine/.")
    return 0 if result.ok or args.fix else 1
