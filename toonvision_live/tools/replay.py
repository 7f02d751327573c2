"""``toonvision replay``: the live pipeline replayed on rendered demo streets, scored against their truth.

The demo street (:class:`~toonvision_live.demo.scene.StreetScene`, the shipped sprite atlas) is rendered
frame by frame straight into the pipeline's worker (crop stage, onnxruntime, tracking and label
smoothing: :meth:`InferenceWorker.process`, with the live settings' defaults) at a fixed frame rate of
scene time, with no screen, window or overlay in between.  So it is deterministic, needs no display,
and can cover many street seeds; ``tests/test_e2e.py`` scores the live run on the X screen the same
way (:class:`Score`, :func:`score_result`).

A Cog counts as on screen when it is fully in view, not mostly hidden and its nametag is inside
the frame; it is found when a tracked Cog's body or nametag box matches its own at IoU >= 0.5, and
named right when that Cog's label is its Cog (``named right``: the tracks are matched among the
counted Cogs only).

Issue 15's fusion figure, ``tag visible``, counts a Cog where its nametag can be read: a Cog counted
above whose tag card no nearer avatar's tag covers (tags are drawn over every body; on the 8 demo
streets none is ever covered, so it counts the same Cogs).  There each track is matched among ALL
Cogs with a tag in view, mostly hidden or cut ones too (``strict``), so a track that rightly names a
mostly hidden Cog by its tag is that Cog's, not a naming miss of the visible Cog in front whose body
its body box overlaps.  ``tag in view, any body`` counts, with the same matching, every Cog whose tag
card is wholly in the frame and uncovered, however much of its body nearer ones hide or the frame cuts.
The level on the card is scored twice: for the tag-visible Cogs named right with a level shown, and for
every Cog with a tag in view (cut by the frame edge or covered too) named right with a level shown.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from toonvision_live.errors import ConfigError
from toonvision_live.settings import CROP_STAGE_SEARCHES, Settings, parse_size_wh

if TYPE_CHECKING:
    from toonvision_live.classify.classifier import CogClassifier
    from toonvision_live.classify.reader import TagReader
    from toonvision_live.demo.window import ShownFrame
    from toonvision_live.geometry import XYXY
    from toonvision_live.pipeline import FrameResult, Proposer, Tuning
    from toonvision_live.track import TrackedCog
    from toonvision_live.voc import VocObject

DEFAULT_SEEDS = (0, 1, 2, 3, 4, 5, 6, 7)


@dataclass
class Score:
    """Cogs on screen (fully in view, not mostly hidden, nametag in view) and how the pipeline did."""

    frames: int = 0
    cogs_on_screen: int = 0
    found: int = 0  # matched by a box at IoU >= 0.5
    right: int = 0  # ... and labelled with the right Cog
    boxes: int = 0
    boxes_on_cogs: int = 0  # pipeline boxes matching any avatar box at IoU >= 0.5 (body precision)
    tags: int = 0
    tags_on_tags: int = 0  # pipeline nametag boxes matching a nametag of the scene (tag precision)
    switches: int = 0  # a Cog found under another track id than on the frame before (identity swaps)
    appearances: int = 0  # times a Cog came on screen (a walker wrapping round comes again)
    never_named: int = 0  # appearances that ended (or the replay did) before the Cog was named right
    tag_visible: int = 0  # counted Cogs whose tag no nearer tag covers (issue 15's fusion figure) ...
    visible_found: int = 0  # ... found, each track matched among all Cogs with a tag in view (strict)
    visible_right: int = 0  # ... and named right
    visible_level_shown: int = 0  # ... named right with a level on the card (its tag read)
    visible_level_right: int = 0  # ... and that level is the tag's
    tag_in_view: int = 0  # Cogs whose tag is wholly in view and uncovered, however hidden or cut their body ...
    in_view_found: int = 0
    in_view_right: int = 0
    any_level_shown: int = 0  # Cogs with a tag in view (cut, covered or not) named right with a level shown ...
    any_level_right: int = 0  # ... and that level is the tag's
    misses: list[str] = field(default_factory=list)
    visible_misses: list[str] = field(default_factory=list)  # the tag-visible Cogs not found or named wrong
    visible_miss_frames: list[tuple[float, str]] = field(default_factory=list)  # ... with their scene time
    first_label_s: list[float] = field(default_factory=list)  # appearance -> first right label, scene s
    _ids: dict[str, int] = field(default_factory=dict, repr=False)  # Cog -> its track id last frame
    _since: dict[str, float | None] = field(default_factory=dict, repr=False)  # Cog on screen -> since when

    @property
    def accuracy(self) -> float:
        return self.right / max(1, self.cogs_on_screen)

    @property
    def visible_accuracy(self) -> float:
        """Issue 15's fusion figure: the tag-visible Cogs named right (strict matching)."""
        return self.visible_right / max(1, self.tag_visible)

    @property
    def visible_level_accuracy(self) -> float:
        """Of the tag-visible Cogs named right with a level shown, those whose level is the tag's."""
        return self.visible_level_right / max(1, self.visible_level_shown)

    @property
    def recall(self) -> float:
        return self.found / max(1, self.cogs_on_screen)

    @property
    def precision(self) -> float:
        return self.boxes_on_cogs / max(1, self.boxes)

    @property
    def tag_precision(self) -> float:
        return self.tags_on_tags / max(1, self.tags)

    def most_missed(self, n: int = 5) -> list[tuple[str, int]]:
        return Counter(self.misses).most_common(n)

    def first_label_ms(self) -> dict[str, float | int]:
        """Scene milliseconds from a Cog coming on screen to its first right label: p50, p95, max, n."""
        arr = np.asarray(self.first_label_s, np.float64) * 1000.0
        if arr.size == 0:
            return {"n": 0, "p50": 0.0, "p95": 0.0, "max": 0.0}
        return {"n": int(arr.size), "p50": round(float(np.percentile(arr, 50)), 1),
                "p95": round(float(np.percentile(arr, 95)), 1), "max": round(float(arr.max()), 1)}

    def end(self) -> None:
        """The replay is over: Cogs still on screen and not yet named count as never named."""
        self.never_named += sum(1 for since in self._since.values() if since is not None)
        self._since.clear()
        self._ids.clear()

    def add(self, other: Score) -> None:
        for f in fields(self):
            mine = getattr(self, f.name)
            if isinstance(mine, int):
                setattr(self, f.name, mine + getattr(other, f.name))
        for f in fields(self):
            mine = getattr(self, f.name)
            if isinstance(mine, list):
                mine.extend(getattr(other, f.name))

    def as_dict(self) -> dict:
        return {
            "frames": self.frames, "cogs_on_screen": self.cogs_on_screen, "found": self.found, "right": self.right,
            "accuracy": round(self.accuracy, 4), "recall": round(self.recall, 4),
            "body_precision": round(self.precision, 4), "tag_precision": round(self.tag_precision, 4),
            "identity_switches": self.switches, "appearances": self.appearances,
            "never_named": self.never_named, "first_label_ms": self.first_label_ms(),
            "most_missed": self.most_missed(10),
            "tag_visible": {"cogs": self.tag_visible, "found": self.visible_found, "right": self.visible_right,
                            "accuracy": round(self.visible_accuracy, 4),
                            "level_shown": self.visible_level_shown, "level_right": self.visible_level_right,
                            "level_accuracy": round(self.visible_level_accuracy, 4),
                            "most_missed": Counter(self.visible_misses).most_common(10)},
            "tag_in_view_any_body": {"cogs": self.tag_in_view, "found": self.in_view_found,
                                     "right": self.in_view_right,
                                     "accuracy": round(self.in_view_right / max(1, self.tag_in_view), 4)},
            "level_any_tag": {"shown": self.any_level_shown, "right": self.any_level_right},
        }


def on_screen_cogs(shown: ShownFrame, size_wh: tuple[int, int]) -> list[VocObject]:
    """The Cogs of a shown frame that count: fully in view, not mostly hidden, nametag inside the frame."""
    width, height = size_wh
    kept = []
    for obj, tag in zip(shown.objects, shown.tags_xyxy, strict=True):
        if not obj.name.startswith("cog_") or obj.truncated or obj.difficult or tag is None:
            continue
        if tag[0] <= 0 or tag[1] <= 0 or tag[2] >= width or tag[3] >= height:
            continue
        kept.append(obj)
    return kept


def score_result(score: Score, result: FrameResult, shown: ShownFrame) -> None:
    """Add one processed frame (``FrameResult``) against the frame the scene showed (``ShownFrame``)."""
    from toonvision_live.geometry import greedy_matches, iou_matrix

    score.frames += 1
    counted = on_screen_cogs(shown, result.frame.size_wh)
    truth = [(o, t) for o, t in zip(shown.objects, shown.tags_xyxy, strict=True) if o in counted]
    cogs = result.cogs
    score.cogs_on_screen += len(truth)
    score.boxes += len(cogs)
    if cogs and shown.objects:
        everything = iou_matrix([c.body_xyxy for c in cogs], [o.xyxy for o in shown.objects])
        score.boxes_on_cogs += len(greedy_matches(everything, 0.5))
        tags = [t for t in shown.tags_xyxy if t is not None]
        with_tags = [c.tag_xyxy for c in cogs if c.tag_xyxy is not None]
        score.tags += len(with_tags)
        if tags and with_tags:
            score.tags_on_tags += len(greedy_matches(iou_matrix(with_tags, tags), 0.5))
    matched = set()
    t = result.frame.grab_time
    _follow_appearances(score, [o.name for o, _ in truth], t)
    if truth and cogs:
        body = iou_matrix([o.xyxy for o, _ in truth], [c.body_xyxy for c in cogs])
        tag = iou_matrix([g for _, g in truth if g is not None], [c.tag_xyxy or (0, 0, 0, 0) for c in cogs])
        for r, c in greedy_matches(np.maximum(body, tag), 0.5):
            matched.add(r)
            score.found += 1
            cog, name = cogs[c], truth[r][0].name
            if score._ids.get(name, cog.track_id) != cog.track_id:
                score.switches += 1
            score._ids[name] = cog.track_id
            if f"cog_{cog.suit}_{cog.cog}" == name:
                score.right += 1
                since = score._since.get(name)
                if since is not None:
                    score.first_label_s.append(t - since)
                    score._since[name] = None
            else:
                score.misses.append(f"{name} as cog_{cog.suit}_{cog.cog}")
    score.misses.extend(f"{o.name} not found" for i, (o, _) in enumerate(truth) if i not in matched)
    _score_tag_visible(score, cogs, shown, counted, result.frame.size_wh, t)


def tag_cover(tags_xyxy: Sequence[XYXY | None]) -> list[float]:
    """For each tag (objects far to near, as the scene draws them), the fraction of it nearer tags
    cover (1 for a tag out of view)."""
    from toonvision_live.geometry import union_covered_fraction

    out = []
    for k, tag in enumerate(tags_xyxy):
        nearer = [g for g in tags_xyxy[k + 1 :] if g is not None]
        out.append(1.0 if tag is None else union_covered_fraction(tag, nearer))
    return out


def _score_tag_visible(score: Score, cogs: Sequence[TrackedCog], shown: ShownFrame, counted: Sequence[VocObject],
                       size_wh: tuple[int, int], t: float) -> None:
    """Add one frame to the tag-visible and tag-in-view figures: each track matched to the Cog whose
    tag or body it covers among ALL Cogs with a tag in view (so a track on a mostly hidden Cog's tag is
    that Cog's), only the Cogs whose whole tag is in view and uncovered tallied (see the module's text)."""
    from toonvision_live.geometry import greedy_matches, iou_matrix

    width, height = size_wh
    cover = tag_cover(shown.tags_xyxy)
    truth, visible, in_view = [], [], []
    for obj, tag, covered in zip(shown.objects, shown.tags_xyxy, cover, strict=True):
        if not obj.name.startswith("cog_") or tag is None:
            continue
        whole = covered == 0.0 and tag[0] > 0 and tag[1] > 0 and tag[2] < width and tag[3] < height
        truth.append((obj, tag))
        in_view.append(whole)
        visible.append(whole and obj in counted)
    score.tag_visible += sum(visible)
    score.tag_in_view += sum(in_view)
    matched: dict[int, TrackedCog] = {}
    if truth and cogs:
        body = iou_matrix([o.xyxy for o, _ in truth], [c.body_xyxy for c in cogs])
        tags = iou_matrix([g for _, g in truth], [c.tag_xyxy or (0, 0, 0, 0) for c in cogs])
        matched = {r: cogs[c] for r, c in greedy_matches(np.maximum(body, tags), 0.5)}
    for r, (obj, _) in enumerate(truth):
        cog = matched.get(r)
        right = cog is not None and f"cog_{cog.suit}_{cog.cog}" == obj.name
        level = cog.fused.level if right and cog is not None and cog.fused is not None else None
        if level is not None:
            score.any_level_shown += 1
            score.any_level_right += level == obj.level
        if in_view[r]:
            score.in_view_found += cog is not None
            score.in_view_right += right
        if not visible[r]:
            continue
        score.visible_found += cog is not None
        score.visible_right += right
        if level is not None:
            score.visible_level_shown += 1
            score.visible_level_right += level == obj.level
        if not right:
            miss = f"{obj.name} not found" if cog is None else f"{obj.name} as cog_{cog.suit}_{cog.cog}"
            score.visible_misses.append(miss)
            score.visible_miss_frames.append((round(t, 3), miss))


def _follow_appearances(score: Score, on_screen: list[str], t: float) -> None:
    """Start an appearance for each Cog new on screen; end those of the Cogs that left it."""
    for name in list(score._since):
        if name not in on_screen:
            if score._since.pop(name) is not None:
                score.never_named += 1
            score._ids.pop(name, None)
    for name in on_screen:
        if name not in score._since:
            score._since[name] = t
            score.appearances += 1


def replay_street(
    classifier: CogClassifier,
    *,
    seed: int,
    size_wh: tuple[int, int] = (1280, 720),
    n_cogs: int = 8,
    seconds: float = 5.0,
    fps: float = 20.0,
    full_search_every: int = 1,
    settings: Settings | None = None,
    tuning: Tuning | None = None,
    propose: Proposer | None = None,
    on_processed: Callable[[FrameResult, float], None] | None = None,
    reader: TagReader | None = None,
) -> Score:
    """Render ``seconds`` of the street of ``seed`` at ``fps`` into a fresh pipeline worker; its score.

    ``tuning``: the worker's :class:`~toonvision_live.pipeline.Tuning` (default: classify tracks, with
    the load governor off: frames carry scene time, not wall-clock time, so the governor would judge
    every frame late and lower the re-check rates by how fast the machine replays, and two runs of
    the same seeds would differ);
    ``on_processed(result, cpu_ms)`` is called for every processed frame."""
    from toonvision_live.demo.window import ShownFrame, load_street_scene
    from toonvision_live.find.proposers import IncrementalProposer
    from toonvision_live.frames import Frame, LatestFrame
    from toonvision_live.geometry import ScreenRect
    from toonvision_live.pipeline import InferenceWorker, Tuning
    from toonvision_live.settings import load_settings

    settings = settings or load_settings()
    scene = load_street_scene(size_wh, n_cogs=n_cogs, seed=seed)
    worker = InferenceWorker(
        LatestFrame(), LatestFrame(), classifier,
        batch_size=settings.batch_size,
        min_proposal_score=settings.min_proposal_score,
        smoothing_s=settings.smoothing_s,
        propose=propose or IncrementalProposer(full_every=full_search_every),
        tuning=tuning or Tuning(adaptive=False),
        reader=reader,
    )
    if on_processed is not None:
        worker.on_processed.append(on_processed)
    rect = ScreenRect(0, 0, *size_wh)
    score = Score()
    for i in range(max(1, round(seconds * fps))):
        t = i / fps
        shown = scene.frame(t)
        result = worker.process(Frame(i, shown.rgb, t, 0.0, rect, "replay", overlay_free=True))
        score_result(score, result, ShownFrame(t, t, shown.objects, shown.tags_xyxy))
    score.end()
    return score


def _seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' or '0-7' (or both, comma-separated) as seeds."""
    seeds: list[int] = []
    try:
        for part in text.split(","):
            first, _, last = part.strip().partition("-")
            seeds.extend(range(int(first), int(last) + 1) if last else [int(first)])
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of seeds like 0,1,2 or 0-7") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"'{text}' holds no seeds >= 0")
    return tuple(dict.fromkeys(seeds))


def _crop_stage(name: str) -> Callable[[int], Proposer] | None:
    """A maker of fresh crop stages (one per street) for ``--crop-stage`` (None: the nametag search's
    IncrementalProposer, replay_street's default).  ``detector``: the detector with its tags confirmed
    by the nametag verifier, followed between searches like the nametag search (as live);
    ``combined``: that plus the nametag search's Cogs the detector missed; ``detector-raw``: the
    detector's own boxes on every frame, nothing confirmed or followed."""
    if name == "nametags":
        return None
    from toonvision_live.find.confirm import full_search
    from toonvision_live.find.detector import CogDetector
    from toonvision_live.find.proposers import IncrementalProposer

    detector = CogDetector()
    if name == "detector-raw":
        return lambda _every: detector
    return lambda every: IncrementalProposer(full_every=every, full_search=full_search(name, detector))


def replay_command(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from toonvision_live.classify.classifier import CogClassifier, providers_for
    from toonvision_live.model_card import default_model_path
    from toonvision_live.pipeline import Tuning

    if args.seconds <= 0 or args.fps <= 0 or args.full_search_every < 1 or args.cogs < 1:
        raise ConfigError("--seconds and --fps must be positive, --full-search-every and --cogs at least 1.")
    size_wh = args.resolution
    classifier = CogClassifier(Path(args.model or default_model_path()), providers_for(args.provider))
    reader = None
    if not args.no_reader:  # as run and demo: the shipped reader unless told otherwise
        from toonvision_live.classify.reader import TagReader

        reader = TagReader(None if args.reader == "shipped" else Path(args.reader), providers_for(args.provider))
    console = Console(stderr=False)
    table = Table(title=f"replayed streets: {args.seconds:g} s at {args.fps:g} fps, {size_wh[0]}x{size_wh[1]}, "
                        f"{args.cogs} Cogs, full search every {args.full_search_every} frame(s)")
    for column in ("seed", "frames", "Cogs on screen", "found", "named right", "tag visible: named right",
                   "switches", "most missed"):
        table.add_column(column, justify="left" if column == "most missed" else "right")
    total, per_seed = Score(), {}
    started = time.perf_counter()
    propose = _crop_stage(args.crop_stage)
    tuning = Tuning.baseline() if args.baseline else Tuning(adaptive=False)  # deterministic: see replay_street
    crops = [0]
    for seed in args.seeds:
        score = replay_street(classifier, seed=seed, size_wh=size_wh, n_cogs=args.cogs, seconds=args.seconds,
                              fps=args.fps, full_search_every=args.full_search_every, tuning=tuning,
                              on_processed=lambda result, _ms: crops.__setitem__(0, crops[0] + result.classified),
                              reader=reader, propose=propose(args.full_search_every) if propose else None)
        per_seed[seed] = score
        total.add(score)
        table.add_row(str(seed), str(score.frames), str(score.cogs_on_screen), f"{score.recall:.1%}",
                      f"{score.accuracy:.1%}", f"{score.visible_accuracy:.2%}", str(score.switches),
                      ", ".join(f"{m} ({n})" for m, n in score.most_missed(2)))
    table.add_row("all", str(total.frames), str(total.cogs_on_screen), f"{total.recall:.1%}",
                  f"{total.accuracy:.1%}", f"{total.visible_accuracy:.2%}", str(total.switches),
                  ", ".join(f"{m} ({n})" for m, n in total.most_missed(2)), style="bold")
    console.print(table)
    first = total.first_label_ms()
    console.print(f"{'every proposal classified on every frame' if args.baseline else 'tracks classified'}: "
                  f"{crops[0] / max(1, total.frames):.2f} crops per frame; a Cog named right {first['p50']:.0f} ms "
                  f"(p50) / {first['p95']:.0f} ms (p95) of scene time after it came on screen")
    console.print(f"tag visible (issue 15's fusion figure: counted Cogs whose tag no other tag covers, each track "
                  f"matched among all Cogs with a tag in view): {total.visible_right} of {total.tag_visible} named "
                  f"right = {total.visible_accuracy:.2%}, {total.visible_found} found; every Cog whose whole tag is "
                  f"in view, however hidden its body: {total.in_view_right} of {total.tag_in_view} = "
                  f"{total.in_view_right / max(1, total.tag_in_view):.2%}; a level shown on "
                  f"{total.visible_level_shown} of the {total.visible_right} named right (unsure levels are not "
                  f"shown), and right on {total.visible_level_right} = {total.visible_level_accuracy:.2%}; of every "
                  f"Cog with a tag in view (cut or covered too) named right with a level shown: "
                  f"{total.any_level_right} of {total.any_level_shown}")
    console.print(f"{time.perf_counter() - started:.1f} s; model {classifier.model_path}, {classifier.provider}"
                  + (f"; nametag reader {reader.model_path}" if reader else ""))
    if args.json:
        from toonvision_live.fileio import atomic_write_bytes

        report = {
            "model": str(classifier.model_path), "provider": classifier.provider, "resolution": list(size_wh),
            "cogs": args.cogs, "seconds": args.seconds, "fps": args.fps,
            "full_search_every": args.full_search_every, "baseline": args.baseline, "crop_stage": args.crop_stage,
            "reader": str(reader.model_path) if reader else None,
            "crops_per_frame": round(crops[0] / max(1, total.frames), 3),
            "seeds": {str(seed): dict(score.as_dict(), tag_visible_misses=score.visible_miss_frames)
                      for seed, score in per_seed.items()}, "all": total.as_dict(),
        }
        atomic_write_bytes(Path(args.json), (json.dumps(report, indent=2) + "\n").encode(), overwrite=True)
        console.print(f"Wrote {args.json}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replay",
        help="score the pipeline on rendered demo streets (no display needed)",
        description=(
            "Render demo streets frame by frame straight into the live pipeline's worker (crop stage, "
            "onnxruntime, tracking, label smoothing; no screen or overlay) and score each frame against "
            "the street's ground truth: the share of the Cogs on screen found and named right, per seed."
        ),
    )
    p.add_argument("--seeds", type=_seeds, default=DEFAULT_SEEDS, metavar="LIST",
                   help="street seeds, e.g. 0,1,2 or 0-7 (default 0-7)")
    p.add_argument("--seconds", type=float, default=5.0, metavar="S", help="scene seconds per street (default 5)")
    p.add_argument("--fps", type=float, default=20.0, help="frames per scene second (default 20)")
    p.add_argument("--resolution", type=parse_size_wh, default="1280x720", metavar="WxH",
                   help="street size (default 1280x720)")
    p.add_argument("--cogs", type=int, default=8, metavar="N", help="Cogs per street (default 8)")
    p.add_argument("--full-search-every", type=int, default=1, metavar="N",
                   help="search the whole frame every N frames, known tags followed in between (default 1)")
    p.add_argument("--crop-stage", choices=CROP_STAGE_SEARCHES, default=Settings().crop_stage,
                   help=f"crop stage (default {Settings().crop_stage}, as live): the nametag search, the learned "
                   "detector with its tags confirmed "
                   "by the nametag verifier and followed between searches (as live), combined (that plus the "
                   "nametag search's Cogs the detector missed), or the detector's own boxes on every frame "
                   "(detector-raw)")
    p.add_argument("--baseline", action="store_true",
                   help="classify every proposal on every frame (the behaviour before tracks were classified)")
    p.add_argument("--model", type=Path, metavar="FILE", help="ONNX model (default: the shipped one)")
    p.add_argument("--reader", nargs="?", const="shipped", default="shipped", metavar="FILE",
                   help="nametag reader whose reading of each track's tag is fused with the body, as in "
                        "run and demo (default: the shipped one)")
    p.add_argument("--no-reader", action="store_true",
                   help="name Cogs by their body alone (the classifier without the nametag reader)")
    p.add_argument("--provider", choices=("cpu", "cuda", "auto"), default="cpu",
                   help="onnxruntime execution provider (default cpu)")
    p.add_argument("--json", type=Path, metavar="FILE", help="also write the scores as JSON")
    p.set_defaults(handler=replay_command)
