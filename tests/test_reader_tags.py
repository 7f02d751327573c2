"""Rendered nametags for the reader: every variant, reproducible, labels consistent with the text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toonvision_live.classify.reader import DEPT_CLASSES, INPUT_H, INPUT_W, NAME_CLASSES
from toonvision_live.taxonomy import COG_BY_KEY, SUIT_BY_CODE
from training.reader.seeds import shard_seed
from training.reader.tags import (
    CLASH_NAMES,
    DEFAULT_MIX,
    FOCUS_MIX,
    HARD_MIX,
    SMALL_MIX,
    TagRenderer,
    TagSet,
    load_tag_set,
    render_tag_set,
    sample_em,
    sample_label,
    save_tag_set,
)


def test_labels_match_their_text_and_cover_every_variant() -> None:
    rng = np.random.default_rng(11)
    seen = set()
    for _ in range(3000):
        lb = sample_label(rng)
        name, dept = NAME_CLASSES[lb.name], DEPT_CLASSES[lb.dept]
        assert 1 <= lb.level <= 50
        assert lb.lines[-1] == f"Level {lb.level}" + (" v2.0" if lb.v2 else "")
        if name in COG_BY_KEY:
            assert lb.lines[0] == COG_BY_KEY[name].name
        elif name == "skelecog":
            assert lb.lines[0] == "Skelecog"
        else:
            assert lb.lines[0] not in {c.name for c in COG_BY_KEY.values()} | {"Skelecog"}
        if dept == "none":
            assert len(lb.lines) == 2
        else:
            assert len(lb.lines) == 3
            if dept in SUIT_BY_CODE:
                assert lb.lines[1] == SUIT_BY_CODE[dept].name
            elif dept == "boardbot":
                assert lb.lines[1] == "Boardbot"
            # the department line "Boardbot" is the boardbot class, never "other" (drawn among the
            # other departments' texts too)
            assert (lb.lines[1] == "Boardbot") == (dept == "boardbot")
        kind = name if name in ("skelecog", "other") else "cog"
        seen.add((kind, dept if dept in ("boardbot", "other", "none") else "suit", lb.v2))
        seen.add(lb.lines[0] in CLASH_NAMES)
    for variant in [("cog", "suit", False), ("cog", "suit", True), ("skelecog", "suit", False),
                    ("other", "boardbot", False), ("cog", "none", False), ("cog", "other", False), True]:
        assert variant in seen
    ems = [sample_em(rng) for _ in range(2000)]
    assert 4 <= min(ems) < 4.5 and 50 < max(ems) <= 60


def test_tag_sets_are_reproducible_and_round_trip(tmp_path: Path) -> None:
    renderer = TagRenderer()
    a = render_tag_set(12, 5, renderer)
    b = render_tag_set(12, 5, renderer)
    assert a.images.shape == (12, INPUT_H, INPUT_W) and np.isfinite(a.images.astype(np.float32)).all()
    assert np.array_equal(a.images, b.images) and a.texts == b.texts
    assert not np.array_equal(a.images, render_tag_set(12, 6, renderer).images)
    save_tag_set(tmp_path / "s.npz", a)
    c = load_tag_set(tmp_path / "s.npz")
    assert np.array_equal(c.images, a.images) and c.texts == a.texts and np.array_equal(c.level, a.level)
    assert c.hidden is not None and np.array_equal(c.hidden, a.hidden)


def test_sample_box_frames_the_tag() -> None:
    renderer, rng = TagRenderer(), np.random.default_rng(3)
    for _ in range(20):
        patch, box, label = renderer.sample(rng, em=12.0)
        x0, y0, x1, y1 = box
        assert patch.dtype == np.uint8 and patch.ndim == 3
        assert 0 <= x0 < x1 <= patch.shape[1] + 5 and 0 <= y0 < y1 <= patch.shape[0] + 5
        # a tag of n lines at 12 px per line is about 3.4 (3 lines) or 2.4 (2 lines) em high
        assert 0.6 * len(label.lines) * 12 < y1 - y0 < 1.6 * len(label.lines) * 12 + 10


def test_focus_mix_draws_more_small_and_two_line_tags() -> None:
    def shares(mix_two_line: float, mixture: tuple[tuple[float, float, float], ...]) -> tuple[float, float]:
        rng = np.random.default_rng(4)
        two = np.mean([len(sample_label(rng, mix_two_line).lines) == 2 for _ in range(4000)])
        small = np.mean([5 <= sample_em(rng, mixture) < 12 for _ in range(4000)])
        return float(two), float(small)

    two_default, small_default = shares(DEFAULT_MIX.two_line, DEFAULT_MIX.em_mixture)
    two_focus, small_focus = shares(FOCUS_MIX.two_line, FOCUS_MIX.em_mixture)
    assert 0.05 < two_default < 0.09 and 0.17 < two_focus < 0.23
    assert small_focus > small_default + 0.1


def test_small_mix_draws_small_text_and_uniform_levels() -> None:
    rng = np.random.default_rng(5)
    small = np.mean([4.5 <= sample_em(rng, SMALL_MIX.em_mixture) < 10 for _ in range(4000)])
    levels = np.array([sample_label(rng, SMALL_MIX.two_line, SMALL_MIX.uniform_level).level for _ in range(4000)])
    default = np.array([sample_label(rng).level for _ in range(4000)])
    assert 0.70 < small < 0.80
    # uniform levels 1..50: four in five have two digits; the default mix (half in the Cog's range) fewer
    assert np.mean(levels >= 10) > np.mean(default >= 10) + 0.1 and 0.7 < np.mean(levels >= 10) < 0.82


def test_hard_mix_rescales_and_compresses_more_and_the_default_mix_keeps_its_tags() -> None:
    renderer = TagRenderer()

    def degradations(mix: object, seed: int) -> tuple[list[dict[str, float]], list[np.ndarray]]:
        rng = np.random.default_rng(seed)
        recs, patches = [], []
        for _ in range(300):
            patch, _box, _label = renderer.sample(rng, mix=mix)  # type: ignore[arg-type]
            recs.append(dict(renderer.last_degradations))
            patches.append(patch)
        return recs, patches

    hard, _ = degradations(HARD_MIX, 8)
    default, patches = degradations(DEFAULT_MIX, 8)
    rescaled = [np.mean(["rescale" in r for r in recs]) for recs in (hard, default)]
    low_jpeg = [np.mean([r.get("jpeg", 100) < 50 for r in recs]) for recs in (hard, default)]
    assert rescaled[0] > rescaled[1] + 0.15 and 0.25 < rescaled[1] < 0.45
    assert low_jpeg[0] > low_jpeg[1] + 0.15
    assert all(25 <= r["jpeg"] < 70 for r in hard if "jpeg" in r)
    # the mix's probabilities replace constants without changing the random draws: the default mix renders the
    # very tags it rendered before (the stored shards and the test shard's re-renders depend on it)
    _, again = degradations(DEFAULT_MIX, 8)
    assert all(np.array_equal(a, b) for a, b in zip(patches, again, strict=True))
    # the held-out test shard's first labels as rendered before mixes set the degradations: each tag's label is
    # drawn after the previous tag's degradations, so a changed number of draws would change them
    test = render_tag_set(24, shard_seed("test", 0))
    assert test.level.tolist() == [9, 11, 8, 49, 16, 7, 2, 25, 8, 8, 36, 9, 44, 49, 4, 15, 32, 43, 10, 7, 4, 16, 36, 8]
    assert test.name.tolist() == [28, 15, 5, 25, 31, 32, 22, 15, 4, 8, 32, 28, 29, 32, 27, 20, 25, 14, 14, 6, 32, 23,
                                  4, 21]


def test_loading_relabels_boardbot_departments_of_old_shards(tmp_path: Path) -> None:
    tags = render_tag_set(3, 5)
    texts = ("Bloodsucker / Boardbot / Level 6", "Con Artist / Boardbot / Level 2", "Skelecog / Level 4")
    other = DEPT_CLASSES.index("other")
    old = TagSet(tags.images, tags.name, np.array([other, other, DEPT_CLASSES.index("none")], np.int32), tags.level,
                 tags.v2, tags.em, texts, tags.hidden)
    save_tag_set(tmp_path / "old.npz", old)
    loaded = load_tag_set(tmp_path / "old.npz")
    assert [DEPT_CLASSES[d] for d in loaded.dept] == ["boardbot", "boardbot", "none"]
