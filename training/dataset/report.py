"""``toonvision dataset report``: how balanced the dataset is (the ToonVision balance charts).

Counts crops per suit, per Cog (all 32, zeros included), per Toon animal, per
street (br, dd, ddl, dg, mml, ttc, or "unknown") and, when data/ exists, per
split.  Prints them as tables and writes ``report.json`` plus PNG bar charts
(``suits.png``, ``cogs.png`` coloured by suit, ``streets.png``, ``splits.png``
when split, ``toons.png`` when there are Toons) into the output folder (default
``DATASET/report/``); earlier report files there are replaced atomically.

A crop's street comes from extract's ledger (the screenshot it was cut from) or
from a ``street`` key in its renderer manifest line.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from toonvision_live.errors import DataError
from toonvision_live.fileio import atomic_write_bytes, ensure_dir
from toonvision_live.ledger import Ledger
from toonvision_live.taxonomy import COG_BY_KEY, COGS, STREETS, SUIT_BY_CODE, SUITS
from training.dataset.layout import (
    KINDS,
    SPLITS,
    DatasetPaths,
    crop_label,
    dataset_paths,
    list_labelled_crops,
)

UNKNOWN_STREET = "unknown"
CHART_NAMES = ("suits.png", "cogs.png", "streets.png", "splits.png", "toons.png")


@dataclass(frozen=True, slots=True)
class DatasetCounts:
    """Crop counts of one dataset; ``splits`` is empty when there is no data/ folder."""

    unsorted: dict[str, int]  # label name -> crops in unsorted/
    splits: dict[str, dict[str, int]]  # split -> label name -> crops
    streets: dict[str, int]  # street code or "unknown" -> Cog crops in unsorted/
    skipped: tuple[Path, ...]  # PNGs whose names are not crop names

    def per_suit(self, counts: dict[str, int]) -> dict[str, int]:
        out = {s.code: 0 for s in SUITS}
        for label, n in counts.items():
            if label.startswith("cog_"):
                out[label.split("_")[1]] += n
        return out

    def per_cog(self, counts: dict[str, int]) -> dict[str, int]:
        return {c.label: counts.get(c.label, 0) for c in COGS}

    def per_toon(self, counts: dict[str, int]) -> dict[str, int]:
        return {label: n for label, n in sorted(counts.items()) if label.startswith("toon_")}

    def toon_labels(self) -> list[str]:
        labels = set(self.per_toon(self.unsorted))
        for counts in self.splits.values():
            labels |= set(self.per_toon(counts))
        return sorted(labels)


def _street_of_crops(paths: DatasetPaths) -> dict[str, str]:
    """``crop file name -> street`` from the dataset ledger and the renderer's manifest."""
    streets: dict[str, str] = {}
    for entry in Ledger.load(paths.root).screenshots.values():
        if entry.get("street") in STREETS:
            for obj in entry.get("objects", []):
                if obj.get("crop"):
                    streets[Path(obj["crop"]).name] = entry["street"]
    if paths.manifest.is_file():
        with paths.manifest.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError:
                    raise DataError(f"{paths.manifest} line {number} is not JSON: fix or remove that "
                                    "line.") from None
                if isinstance(row, dict) and row.get("street") in STREETS and "file" in row:
                    streets[Path(str(row["file"])).name] = row["street"]
    return streets


def count_dataset(root: Path | str) -> DatasetCounts:
    """Count the crops of the dataset at ``root``; DataError when there is nothing to count."""
    paths = dataset_paths(root)
    if not paths.root.is_dir():
        raise DataError(f"Dataset folder {paths.root} does not exist: check the path.")
    skipped: list[Path] = []

    def count(folder: Path) -> Counter[str]:
        found: Counter[str] = Counter()
        if not folder.is_dir():
            return found
        for path in sorted(folder.glob("*.png")):
            try:
                found[crop_label(path).name] += 1
            except DataError:
                skipped.append(path)
        return found

    unsorted: Counter[str] = Counter()
    for kind in KINDS:
        unsorted += count(paths.unsorted_dir(kind))
    splits: dict[str, dict[str, int]] = {}
    if paths.data.is_dir():
        for split in SPLITS:
            split_counts: Counter[str] = Counter()
            for kind in KINDS:
                split_counts += count(paths.split_kind_dir(split, kind))
            splits[split] = dict(split_counts)
    if not unsorted and not any(splits.values()):
        raise DataError(f"{paths.root} has no crops in unsorted/ or data/: run 'toonvision dataset extract' "
                        "or 'toonvision render crops' first.")
    street_of = _street_of_crops(paths)
    streets = {s: 0 for s in (*STREETS, UNKNOWN_STREET)}
    if paths.unsorted_cog.is_dir():
        for path, _ in list_labelled_crops(paths.unsorted_cog, strict=False):
            streets[street_of.get(path.name, UNKNOWN_STREET)] += 1
    return DatasetCounts(dict(unsorted), splits, streets, tuple(skipped))


def report_json(counts: DatasetCounts, root: Path) -> dict:
    """The report as plain JSON data."""
    columns = {"unsorted": counts.unsorted, **counts.splits}

    def table(per) -> dict[str, dict[str, int]]:
        rows = {name: per(c) for name, c in columns.items()}
        keys = next(iter(rows.values())).keys() if rows else []
        return {key: {name: rows[name].get(key, 0) for name in rows} for key in keys}

    return {
        "dataset": str(root),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "totals": {name: sum(c.values()) for name, c in columns.items()},
        "per_suit": table(counts.per_suit),
        "per_cog": table(counts.per_cog),
        "per_toon": {label: {name: c.get(label, 0) for name, c in columns.items()}
                     for label in counts.toon_labels()},
        "per_street": counts.streets,
        "skipped_files": [str(p) for p in counts.skipped],
    }


def print_tables(counts: DatasetCounts, console) -> None:
    """Print the per-suit, per-Cog, per-Toon and per-street tables with rich."""
    from rich.table import Table

    columns = {"unsorted": counts.unsorted, **counts.splits}

    def add_columns(table: Table) -> None:
        for name in columns:
            table.add_column(name, justify="right")

    suits = Table(title="Cog crops per suit")
    suits.add_column("suit")
    add_columns(suits)
    per_suit = {name: counts.per_suit(c) for name, c in columns.items()}
    for suit in SUITS:
        suits.add_row(f"{suit.code} {suit.name}", *(str(per_suit[n][suit.code]) for n in columns))
    suits.add_row("total", *(str(sum(per_suit[n].values())) for n in columns), style="bold")
    console.print(suits)

    cogs = Table(title="Crops per Cog")
    cogs.add_column("Cog")
    cogs.add_column("suit")
    add_columns(cogs)
    for cog in COGS:
        cogs.add_row(cog.name, cog.suit, *(str(c.get(cog.label, 0)) for c in columns.values()))
    console.print(cogs)

    toon_labels = counts.toon_labels()
    if toon_labels:
        toons = Table(title="Crops per Toon animal", min_width=44)
        toons.add_column("animal")
        add_columns(toons)
        for label in toon_labels:
            toons.add_row(label.split("_", 1)[1], *(str(c.get(label, 0)) for c in columns.values()))
        console.print(toons)

    streets = Table(title="Cog crops per street", caption="unsorted crops; street from the screenshot",
                    min_width=44)
    streets.add_column("street")
    streets.add_column("crops", justify="right")
    for street, n in counts.streets.items():
        streets.add_row(street, str(n))
    console.print(streets)


def _save_figure(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=True)


def _bar_chart(plt, labels, values, colors, title, xlabel):
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(max(5.0, 0.7 * len(labels) + 2), 4))
    bars = ax.bar(labels, values, color=colors)
    ax.bar_label(bars, [str(v) for v in values])
    if values:
        ax.axhline(sum(values) / len(values), color="red", alpha=0.5, ls="dotted", label="mean")
        ax.legend(loc="upper right", frameon=False)
        ax.set_ylim(0, max(1, max(values)) * 1.15)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("crops")
    return fig


def write_charts(counts: DatasetCounts, out: Path) -> list[Path]:
    """Write the balance charts as PNGs into ``out``; the paths written."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    written: list[Path] = []
    suit_colors = [s.color for s in SUITS]
    try:
        per_suit = counts.per_suit(counts.unsorted)
        suit_names = [f"{SUIT_BY_CODE[code].name} ({code})" for code in per_suit]
        fig = _bar_chart(plt, suit_names, list(per_suit.values()), suit_colors,
                         "Cog crops per suit (unsorted)", "suit")
        written.append(_save_figure(fig, out / "suits.png"))

        per_cog = counts.per_cog(counts.unsorted)
        fig, ax = plt.subplots(figsize=(7, 9))
        values = list(per_cog.values())
        bars = ax.barh([COG_BY_KEY[label.split("_")[2]].name for label in per_cog], values,
                       color=[SUIT_BY_CODE[label.split("_")[1]].color for label in per_cog])
        ax.bar_label(bars, [str(v) for v in values], padding=2)
        ax.invert_yaxis()
        ax.axvline(sum(values) / len(values), color="red", alpha=0.5, ls="dotted")
        ax.legend(handles=[Patch(color=s.color, label=s.name) for s in SUITS], loc="upper center",
                  bbox_to_anchor=(0.5, -0.06), ncol=len(SUITS), frameon=False)
        ax.set_xlim(0, max(1, max(values)) * 1.12)
        ax.set_title("Crops per Cog (unsorted), coloured by suit")
        ax.set_xlabel("crops")
        written.append(_save_figure(fig, out / "cogs.png"))

        street_colors = ["#4C72B0"] * len(STREETS) + ["#999999"]
        fig = _bar_chart(plt, list(counts.streets), list(counts.streets.values()), street_colors,
                         "Cog crops per street (unsorted)", "street")
        written.append(_save_figure(fig, out / "streets.png"))

        if counts.splits:
            fig, ax = plt.subplots(figsize=(7, 9))
            names = [c.name for c in COGS]
            left = [0] * len(COGS)
            for split, color in zip(SPLITS, ("#4C72B0", "#DD8452", "#55A868"), strict=True):
                values = [counts.splits[split].get(c.label, 0) for c in COGS]
                ax.barh(names, values, left=left, color=color, label=split)
                left = [a + b for a, b in zip(left, values, strict=True)]
            ax.invert_yaxis()
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.06), ncol=len(SPLITS), frameon=False)
            ax.set_title("Crops per Cog in each split")
            ax.set_xlabel("crops")
            written.append(_save_figure(fig, out / "splits.png"))

        per_toon = counts.per_toon(counts.unsorted)
        if per_toon:
            fig = _bar_chart(plt, [k.split("_", 1)[1] for k in per_toon], list(per_toon.values()),
                             ["#8172B3"] * len(per_toon), "Toon crops per animal (unsorted)", "animal")
            written.append(_save_figure(fig, out / "toons.png"))
    finally:
        plt.close("all")
    return written


def write_report(
    root: Path | str, out: Path | str | None = None, *, console=None
) -> tuple[DatasetCounts, list[Path]]:
    """Count, print the tables (when ``console`` is given) and write report.json and the charts."""
    paths = dataset_paths(root)
    counts = count_dataset(paths.root)
    out_dir = ensure_dir(Path(out).expanduser().absolute() if out else paths.report)
    if console is not None:
        print_tables(counts, console)
    written = write_charts(counts, out_dir)
    data = report_json(counts, paths.root)
    data["charts"] = [p.name for p in written]
    report_bytes = json.dumps(data, indent=1).encode("utf-8") + b"\n"
    written.append(atomic_write_bytes(out_dir / "report.json", report_bytes, overwrite=True))
    return counts, written
