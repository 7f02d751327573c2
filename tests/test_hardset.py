"""The hard-set scorer (toonvision_live.tools.hardset): matching, line buckets, difficult Cogs, false boxes."""

from __future__ import annotations

import json

import pytest

from toonvision_live.tools.hardset import (
    HardFrame,
    TrueCog,
    line_bucket,
    recall_from,
    score,
    score_frame,
    summary,
    table,
    to_json,
)


def test_line_buckets_cover_the_issue_ranges() -> None:
    assert line_bucket(2.9) is None
    assert [line_bucket(v) for v in (3, 3.99, 4, 5.9, 6, 8, 11.9, 12, 23.9, 24, 60)] == [
        "3-4", "3-4", "4-6", "4-6", "6-8", "8-12", "8-12", "12-24", "12-24", "24+", "24+"]


def test_score_frame_matches_one_to_one_and_ignores_difficult_cogs() -> None:
    truths = (TrueCog((0, 0, 10, 40), 5.0), TrueCog((100, 0, 110, 40), 9.0), TrueCog((200, 0, 210, 40), 9.0, 0.8))
    preds = ((0, 0, 10, 38), (1, 1, 10, 40), (200, 0, 210, 40), (300, 300, 310, 340))
    scored, false_boxes = score_frame(HardFrame(("g",), truths, preds))
    assert len(scored) == 2  # the covered one is not scored
    assert scored[0][1] == pytest.approx(0.95)
    assert scored[1][1] is None  # missed
    # a duplicate of the first Cog and a box on nothing are false; the one on the difficult Cog is not
    assert false_boxes == 2


def test_score_groups_buckets_and_table() -> None:
    frames = [
        HardFrame(("degradation:none", "kind:cogs"), (TrueCog((0, 0, 10, 40), 5.0), TrueCog((50, 0, 60, 40), 30.0)),
                  ((0, 0, 10, 40),)),
        HardFrame(("degradation:jpeg", "kind:cogs"), (TrueCog((0, 0, 10, 40), 7.0),),
                  ((0, 0, 10, 40), (90, 90, 99, 99))),
        HardFrame(("kind:empty",), (), ((5, 5, 9, 9),)),
        HardFrame(("kind:empty",), (), ()),
    ]
    result = score(frames)
    g = result["groups"]
    assert g["all"]["found"] == 2 and g["all"]["missed"] == 1
    assert g["line:4-6"]["recall"] == 1.0 and g["line:24+"]["recall"] == 0.0
    assert g["degradation:none|line:24+"]["missed"] == 1
    assert g["degradation:jpeg"]["false_per_frame"] == 1.0
    assert g["kind:empty"]["false_per_frame"] == 0.5 and g["kind:empty"]["recall"] is None
    assert g["all"]["median_body_iou"] == 1.0
    text = table(result)
    assert "degradation:jpeg" in text and "kind:empty" in text and "24+" in text
    assert json.loads(to_json(result))["overall"]["found"] == 2
    assert recall_from(result, 6) == (1, 2) and recall_from(result, 4, 6) == (1, 1)
    assert recall_from(result, 6, group="degradation:jpeg") == (1, 1)
    line = summary(result)
    assert ">= 6 px 50.0 % (1 of 2), worst none 0.0 %" in line and "4-6 px 100.0 % (1 of 1)" in line
    assert "negatives 0.500 / -" in line


def test_cogs_mostly_outside_the_frame_are_difficult() -> None:
    truths = (TrueCog((0, 0, 10, 40), 9.0, 0.0, 0.4), TrueCog((50, 0, 60, 40), 9.0, 0.0, 0.6))
    scored, false_boxes = score_frame(HardFrame(("g",), truths, ((0, 0, 10, 40),)))
    assert [s[1] for s in scored] == [None] and false_boxes == 0
