"""The paired comparison of two readers (training.reader.paired): counts per target and half (pure)."""

from __future__ import annotations

import numpy as np
import pytest

from training.reader.paired import paired


def test_paired_counts_tags_only_one_reader_reads_right_per_target_and_half() -> None:
    em = np.array([4.5, 6.0, 7.0, 9.0, 20.0, 6.5, 10.0, 30.0])
    whole = np.array([True, True, True, True, True, True, True, False])
    a = {"exact": np.array([1, 1, 0, 1, 1, 1, 0, 1], bool), "level": np.array([1, 1, 0, 1, 1, 1, 1, 1], bool)}
    b = {"exact": np.array([0, 1, 1, 1, 0, 0, 1, 0], bool), "level": np.array([0, 1, 1, 1, 1, 0, 1, 0], bool)}
    out = paired(a, b, em, whole)
    # >= 8 px, whole: tags 3, 4, 6 (7 is cut): A 2 of 3, B 2 of 3; only A tag 4, only B tag 6
    assert out["all/ge8"] == {"n": 3, "A": round(2 / 3, 5), "B": round(2 / 3, 5), "only_A_right": 1,
                              "only_B_right": 1}
    # 5-8 px: tags 1, 2, 5
    assert out["all/5_8"]["n"] == 3 and out["all/5_8"]["only_A_right"] == 1 and out["all/5_8"]["only_B_right"] == 1
    # level >= 6 px: tags 1-6; A misses tag 2, B misses tag 5
    assert out["all/lvl_ge6"] == {"n": 6, "A": round(5 / 6, 5), "B": round(5 / 6, 5), "only_A_right": 1,
                                  "only_B_right": 1}
    assert out["all/all_whole"]["n"] == 7
    # halves: tags 0-3 and 4-7
    assert out["first_half/ge8"]["n"] == 1 and out["second_half/ge8"]["n"] == 2
    assert out["second_half/5_8"] == {"n": 1, "A": 1.0, "B": 0.0, "only_A_right": 1, "only_B_right": 0}
    s = out["all/sum_of_targets"]
    assert abs(s["A"] - (out["all/ge8"]["A"] + out["all/5_8"]["A"] + out["all/lvl_ge6"]["A"])) < 1e-4


def test_fresh_indices_are_checked() -> None:
    import argparse

    from training.reader.paired import _indices

    assert _indices("1,2") == [1, 2]
    for bad in ("0,1", "x", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="indices of at least 1"):
            _indices(bad)


def test_the_default_reads_are_the_shipped_reads() -> None:
    from toonvision_live.classify.reader import READS
    from training.reader.paired import shipped_reads
    from training.reader.tta import CANDIDATES

    assert tuple(CANDIDATES[name] for name in shipped_reads().split(",")) == READS
