"""The detector's box coding: training targets (training/detector/train.py) decoded by the runtime
(toonvision_live/find/detector.py) give back the boxes they were made from; NMS and thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from toonvision_live.find.detector import decode, to_working, work_long, working_size
from training.detector.train import encode_targets, make_batch

OBJECTS = [
    {"body": [40.0, 60.0, 70.0, 150.0], "tag": [30.0, 30.0, 82.0, 52.0]},
    {"body": [200.5, 20.25, 211.0, 52.0], "tag": [196.0, 8.0, 216.0, 16.0]},
    {"body": [300.0, 100.0, 420.0, 380.0], "tag": None},
]


def _peaks(heat: np.ndarray) -> np.ndarray:
    return np.where(heat >= 0.999, 0.9, 0.0).astype(np.float32)


@pytest.mark.parametrize("scale", [1.0, 0.4, 2.5])
def test_encoded_targets_decode_to_the_same_boxes(scale: float) -> None:
    heat, box, mask = encode_targets(OBJECTS, (128, 128))
    assert heat.shape == (128, 128, 1) and box.shape == (128, 128, 8)
    assert mask[..., 0].sum() == 3 and mask[..., 1].sum() == 2
    frame_wh = (int(512 / scale), int(512 / scale))
    dets = decode(_peaks(heat), box, scale, frame_wh, threshold=0.5)
    assert len(dets) == 3
    got = sorted(dets, key=lambda d: d.body_xyxy[0])
    for det, obj in zip(got, OBJECTS, strict=True):
        np.testing.assert_allclose(np.array(det.body_xyxy) * scale, obj["body"], atol=1e-3)
        if obj["tag"] is not None:
            np.testing.assert_allclose(np.array(det.tag_xyxy) * scale, obj["tag"], atol=1e-3)
        assert det.score == pytest.approx(0.9)


def test_threshold_nms_and_clipping() -> None:
    heat, box, _ = encode_targets(OBJECTS[:1], (128, 128))
    peaks = _peaks(heat)
    assert decode(peaks, box, 1.0, (512, 512), threshold=0.95) == []
    # a second, weaker peak next to the first with the same box is a duplicate: NMSBoxes drops it
    iy, ix = np.argwhere(peaks[..., 0] > 0)[0]
    peaks[iy, ix + 1, 0] = 0.6
    box[iy, ix + 1] = box[iy, ix]
    box[iy, ix + 1, 0] -= 1.0
    dets = decode(peaks, box, 1.0, (512, 512), threshold=0.5)
    assert len(dets) == 1 and dets[0].score == pytest.approx(0.9)
    # a frame smaller than the box: the body is clipped to it
    dets = decode(peaks, box, 1.0, (60, 100), threshold=0.5)
    assert dets[0].body_xyxy[2] == 60 and dets[0].body_xyxy[3] == 100


def test_working_size_and_padding() -> None:
    assert working_size((1280, 720)) == (512, 288, 512, 288, 0.4)
    # frames over 1536 px: a third of the long side (multiples of 32), at most 640
    assert [work_long(s) for s in ((640, 480), (1366, 768), (1600, 900), (1920, 1080), (2560, 1440))] == [
        512, 512, 544, 640, 640]
    w, h, pw, ph, s = working_size((3840, 1600))
    assert (w, pw, ph % 32, s) == (640, 640, 0, 640 / 3840) and ph >= h
    assert working_size((3840, 1600), 512)[0] == 512
    frame = np.full((720, 1280, 3), 200, np.uint8)
    work, scale = to_working(frame)
    assert work.shape == (288, 512, 3) and scale == 0.4 and work.min() == 200
    work, _ = to_working(np.full((480, 700, 3), 9, np.uint8))
    assert work.shape == (352, 512, 3) and work[-1].max() == 0  # padded rows are black


def test_batches_from_several_datasets_are_those_of_their_concatenation() -> None:
    """Training reads each dataset's memmap in place; the batches are the ones the concatenated copy gave."""
    rng = np.random.default_rng(3)
    parts = [rng.integers(0, 256, (n, 96, 128, 3), dtype=np.uint8) for n in (3, 1, 4)]
    frames = [{"size": [128, 96], "scale": 1.0, "objects": [{"body": [10.0 + i, 20.0, 40.0 + i, 80.0], "tag": None}]}
              for i in range(8)]
    one = make_batch(np.concatenate(parts), frames, np.random.default_rng(5), 6, 64)
    several = make_batch(parts, frames, np.random.default_rng(5), 6, 64)
    for a, b in zip(one, several, strict=True):
        np.testing.assert_array_equal(a, b)
    assert one[0].any() and one[1].max() == pytest.approx(1.0)
