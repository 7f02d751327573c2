"""The one copy of the box maths (toonvision_live.geometry): clipping, areas, IoU, matching, cover."""

from __future__ import annotations

import numpy as np
import pytest

from toonvision_live.geometry import (
    ScreenRect,
    clip_box,
    clip_xyxy,
    covered_fraction,
    greedy_matches,
    grow,
    intersection,
    iou_matrix,
    match_boxes,
    max_iou,
    overlap,
    union_covered_fraction,
)


@pytest.mark.parametrize(("boxes", "wh", "expected"), [
    ([], (100, 50), np.zeros((0, 4))),
    ([(10, 5, 20, 15)], (100, 50), [(10, 5, 20, 15)]),
    ([(-10, -5, 20, 60)], (100, 50), [(0, 0, 20, 50)]),
    ([(90, 40, 130, 70)], (100, 50), [(90, 40, 100, 50)]),
    ([(150, 60, 170, 80)], (100, 50), [(100, 50, 100, 50)]),  # wholly outside: empty
    ([(-30, -30, -10, -10), (0, 0, 100, 50)], (100, 50), [(0, 0, 0, 0), (0, 0, 100, 50)]),
])
def test_clip_xyxy(boxes, wh, expected):
    np.testing.assert_array_equal(clip_xyxy(boxes, wh), np.asarray(expected, float).reshape(-1, 4))


@pytest.mark.parametrize(("a", "b", "expected"), [
    ([(0, 0, 10, 10)], [(0, 0, 10, 10)], [[1.0]]),
    ([(0, 0, 10, 10)], [(10, 0, 20, 10)], [[0.0]]),
    ([(0, 0, 10, 10)], [(5, 0, 15, 10)], [[50 / 150]]),
    ([(0, 0, 10, 10)], [(2, 2, 4, 4)], [[4 / 100]]),
    ([(0, 0, 10, 10)], [(5, 5, 5, 5)], [[0.0]]),  # empty box
    ([], [(0, 0, 1, 1)], np.zeros((0, 1))),
    ([(0, 0, 1, 1), (0, 0, 2, 2)], [], np.zeros((2, 0))),
])
def test_iou_matrix(a, b, expected):
    np.testing.assert_allclose(iou_matrix(a, b), np.asarray(expected, float))


@pytest.mark.parametrize(("pred", "truth", "iou", "expected"), [
    ([], [], 0.5, (0, 0, 0)),
    ([(0, 0, 10, 10)], [], 0.5, (0, 1, 0)),
    ([], [(0, 0, 10, 10)], 0.5, (0, 0, 1)),
    ([(0, 0, 10, 10)], [(1, 1, 10, 10)], 0.5, (1, 0, 0)),
    ([(0, 0, 10, 10)], [(5, 0, 15, 10)], 0.5, (0, 1, 1)),
    ([(0, 0, 10, 10)], [(5, 0, 15, 10)], 0.3, (1, 0, 0)),
    # two predictions on one truth: only one may match
    ([(0, 0, 10, 10), (0, 0, 10, 11)], [(0, 0, 10, 10)], 0.5, (1, 1, 0)),
    ([(0, 0, 10, 10), (100, 0, 110, 10)], [(100, 0, 110, 10), (0, 0, 10, 10)], 0.5, (2, 0, 0)),
])
def test_match_boxes(pred, truth, iou, expected):
    assert match_boxes(pred, truth, iou) == expected


def test_greedy_matches_prefer_the_best_overlap():
    iou = np.array([[0.6, 0.9], [0.0, 0.8]])
    assert sorted(greedy_matches(iou, 0.5)) == [(0, 1)]
    assert greedy_matches(np.zeros((0, 3)), 0.5) == []


def test_bad_box_arrays_are_refused():
    with pytest.raises(ValueError, match=r"\[N, 4\]"):
        iou_matrix([(0, 0, 1)], [(0, 0, 1, 1)])


@pytest.mark.parametrize(("box", "wh", "expected"), [
    ((10, 5, 20, 15), (100, 50), (10, 5, 20, 15)),
    ((-10, -5, 20, 60), (100, 50), (0, 0, 20, 50)),
    ((10.9, 5.2, 20.7, 15.1), (100, 50), (10, 5, 20, 15)),  # whole pixels, rounded down
    ((150, 60, 170, 80), (100, 50), None),  # wholly outside
    ((10, 10, 10, 20), (100, 50), None),  # empty
])
def test_clip_box(box, wh, expected):
    assert clip_box(box, wh) == expected


def test_one_box_helpers_agree_with_the_matrices():
    rng = np.random.default_rng(3)
    boxes = [tuple(int(v) for v in (x, y, x + w, y + h))
             for x, y, w, h in rng.integers(0, 60, (40, 4)) if w > 0 and h > 0]
    for a in boxes[:10]:
        for b in boxes[10:]:
            inter = intersection(a, b)
            assert overlap(a, b) == (0 if inter is None else (inter[2] - inter[0]) * (inter[3] - inter[1]))
        assert max_iou(a, boxes[10:]) == pytest.approx(iou_matrix([a], boxes[10:]).max())


def test_covered_fractions_of_one_and_of_all():
    box = (0, 0, 10, 10)
    halves = [(0, 0, 5, 10), (5, 0, 10, 10)]
    assert covered_fraction(box, halves) == 0.5
    assert union_covered_fraction(box, halves) == 1.0
    assert union_covered_fraction(box, [(0, 0, 5, 10), (0, 0, 5, 10)]) == 0.5  # counted once
    assert union_covered_fraction(box, [(20, 20, 30, 30)]) == 0.0
    assert covered_fraction(box, []) == union_covered_fraction(box, []) == 0.0
    assert grow(box, 2) == (-2, -2, 12, 12)


def test_screen_rect_round_trips_xyxy():
    rect = ScreenRect(-1920, 10, 1920, 1080)
    assert ScreenRect.from_xyxy(*rect.xyxy) == rect
    assert rect.as_mss() == {"left": -1920, "top": 10, "width": 1920, "height": 1080}
    assert ScreenRect(0, 0, 0, 5).is_empty
