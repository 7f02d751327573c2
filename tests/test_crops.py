"""The one 600x200 stretch (toonvision_live.crops): its interpolation policy, the runtime's crop batches,
and every other user (saver, evaluation, training data) producing the same crop from the same box."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from toonvision_live.crops import CropBatcher, crop_box, stretch_interpolation, stretch_to_crop
from toonvision_live.fileio import read_image_rgb
from toonvision_live.find.nametags import Proposal
from toonvision_live.model_card import CROP_HEIGHT, CROP_WIDTH
from toonvision_live.voc import read_voc


@pytest.fixture(scope="module")
def real_frame(real_data):
    rgb = read_image_rgb(real_data / "sample_img0.png")
    truth = [o.xyxy for o in read_voc(real_data / "sample_img0.xml").objects if o.name.startswith("cog_")]
    return rgb, truth


@pytest.mark.parametrize(("src_wh", "expected"), [
    ((60, 180), cv2.INTER_LINEAR),  # a Cog on screen: enlarged both ways
    ((300, 400), cv2.INTER_LINEAR),  # wider than the crop but shorter: mixed
    ((150, 900), cv2.INTER_LINEAR),  # taller but narrower: mixed
    ((201, 601), cv2.INTER_AREA),  # shrunk both ways
    ((200, 600), cv2.INTER_LINEAR),  # already the size
])
def test_area_only_when_the_box_shrinks_both_ways(src_wh, expected):
    assert stretch_interpolation(src_wh) == expected


def test_the_saved_crop_is_the_runtime_crop_rounded(real_frame, tmp_path):
    """The hotkey saver, the evaluation and dataset extract write what the runtime classified (to 1 grey
    level, the rounding to uint8); before, the saver used INTER_AREA for every box and differed."""
    from toonvision_live.saver import save_labelled_frame
    from toonvision_live.track import TrackedCog

    rgb, truth = real_frame
    runtime = CropBatcher(4).crop(rgb, truth)
    cogs = [TrackedCog(i, box, "s", "coldcaller", 0.9, True) for i, box in enumerate(truth)]
    saved = save_labelled_frame(rgb, cogs, tmp_path)
    assert len(saved.crops) == len(truth) == 2
    for i, path in enumerate(saved.crops):
        written = read_image_rgb(path)
        np.testing.assert_allclose(written.astype(np.float32), runtime[i], atol=1.0)
        np.testing.assert_array_equal(written, crop_box(rgb, truth[i]))
        area = cv2.resize(rgb[truth[i][1]:truth[i][3], truth[i][0]:truth[i][2]], (CROP_WIDTH, CROP_HEIGHT),
                          interpolation=cv2.INTER_AREA)
        assert np.abs(area.astype(int) - written).max() > 8  # the old saver's crops were not these


def test_stretch_into_a_given_array_and_refuse_empty_regions():
    region = np.arange(30 * 10 * 3, dtype=np.float32).reshape(30, 10, 3)
    out = np.zeros((CROP_HEIGHT, CROP_WIDTH, 3), np.float32)
    assert stretch_to_crop(region, out=out) is out
    np.testing.assert_array_equal(out, stretch_to_crop(region))
    with pytest.raises(ValueError, match="empty"):
        stretch_to_crop(np.zeros((0, 5, 3), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        crop_box(np.zeros((50, 50, 3), np.uint8), (60, 60, 80, 80))


def test_crop_batcher_stretches_each_box_into_one_reused_array(real_frame):
    rgb, truth = real_frame
    batcher = CropBatcher(4)
    first = batcher.crop(rgb, truth)
    assert first.shape == (2, CROP_HEIGHT, CROP_WIDTH, 3) and first.dtype == np.float32
    x0, y0, x1, y1 = truth[1]
    expected = cv2.resize(rgb[y0:y1, x0:x1], (CROP_WIDTH, CROP_HEIGHT), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(first[1], expected.astype(np.float32), atol=1.0)  # float resize, unrounded
    proposals = [Proposal(body_xyxy=truth[0], tag_xyxy=(0, 0, 1, 1), score=1.0)]
    second = batcher.crop(rgb, proposals)
    assert second.shape[0] == 1
    assert np.shares_memory(first, second)  # the same preallocated buffer
    x0, y0, x1, y1 = truth[0]
    expected = cv2.resize(rgb[y0:y1, x0:x1], (CROP_WIDTH, CROP_HEIGHT), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(second[0], expected.astype(np.float32), atol=1.0)


def test_crop_batcher_shrinks_large_boxes_and_handles_empty_lists():
    rgb = np.zeros((1400, 800, 3), np.uint8)
    rgb[:, :400] = 200
    batcher = CropBatcher(2)
    assert batcher.crop(rgb, []).shape == (0, CROP_HEIGHT, CROP_WIDTH, 3)
    out = batcher.crop(rgb, [(0, 0, 800, 1400)])
    assert out[0, :, :90].min() == 200 and out[0, :, 110:].max() == 0


def test_crop_batcher_clips_boxes_and_refuses_empty_or_too_many(real_frame):
    rgb, _ = real_frame
    batcher = CropBatcher(1)
    out = batcher.crop(rgb, [(-50, -50, 100, 200)])  # clipped to (0, 0, 100, 200)
    expected = cv2.resize(rgb[0:200, 0:100], (CROP_WIDTH, CROP_HEIGHT), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(out[0], expected.astype(np.float32), atol=1.0)
    with pytest.raises(ValueError, match="empty"):
        batcher.crop(rgb, [(900, 10, 950, 60)])
    with pytest.raises(ValueError, match="exceed"):
        batcher.crop(rgb, [(0, 0, 10, 10), (0, 0, 10, 10)])
    with pytest.raises(ValueError):
        CropBatcher(0)
