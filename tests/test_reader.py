"""The nametag reader: its input preparation, decoding, and the shipped model on rendered and real tags."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from toonvision_live.classify.reader import (
    DEPT_CLASSES,
    INPUT_H,
    INPUT_W,
    NAME_CLASSES,
    READ_BOXES,
    READS,
    TagReader,
    default_reader_path,
    level_probs,
    readings_from_outputs,
    tag_input,
    tag_inputs,
)
from toonvision_live.errors import ModelError
from toonvision_live.fileio import read_image_rgb
from toonvision_live.find.nametags import find_nametags

#: exact reads of whole rendered tags at 9-30 px per line (seed 424242); the shipped reader: see the card
READ_AT_9_30_PX = 0.90
REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


@pytest.fixture(scope="module")
def reader() -> TagReader:
    return TagReader(providers=["CPUExecutionProvider"])


def test_tag_input_keeps_aspect_centres_and_standardises() -> None:
    frame = np.full((100, 300, 3), 200, np.uint8)
    frame[40:60, 100:140] = 20  # a dark block: 20 rows x 40 columns inside a 40 x 80 box
    x = tag_input(frame, (80, 30, 160, 70))
    assert x.shape == (INPUT_H, INPUT_W) and x.dtype == np.float32
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    dark = np.argwhere(x < -1)
    # 2x scale: the block is 40 rows x 80 columns, centred in the 128-wide input
    assert dark[:, 0].min() == 10 and dark[:, 0].max() == 29
    assert abs((dark[:, 1].min() + dark[:, 1].max()) / 2 - INPUT_W / 2) <= 2


def test_tag_input_squeezes_wide_boxes_and_clips() -> None:
    frame = np.random.default_rng(0).integers(0, 255, (50, 400, 3), np.uint8)
    x = tag_input(frame, (-20, -5, 420, 20))  # clipped to (0, 0, 400, 20): wider than 128/40
    assert x.shape == (INPUT_H, INPUT_W) and np.isfinite(x).all()
    assert not np.allclose(x[:, :3], x[:, :3].mean())  # the squeezed text reaches the edges
    assert np.all(tag_input(frame, (500, 0, 600, 10)) == 0)  # nothing of it inside the frame
    out = np.ones((INPUT_H, INPUT_W), np.float32)
    assert tag_input(frame, (0, 0, 40, 12), out=out) is out


def test_tag_input_subpixel_samples_fractional_boxes() -> None:
    frame = np.full((100, 300, 3), 200, np.uint8)
    frame[40:50, 100:140] = 20  # a dark block, 10 rows x 40 columns, in a 20-row box (scaled up 2x)
    box = (80, 35, 160, 55)
    whole, sub = tag_input(frame, box), tag_input(frame, box, subpixel=True)
    # a box on whole pixels: the same input but at its last column (the rounded crop repeats its edge)
    assert np.abs(whole - sub)[:-1, :-1].max() < 0.05

    def centre(x: np.ndarray) -> np.ndarray:
        return np.argwhere(x < -1).mean(axis=0)

    # half a pixel further right and down: the block one input pixel (2 x 0.5) further up and left
    moved = tag_input(frame, (80.5, 35.5, 160.5, 55.5), subpixel=True)
    assert np.allclose(centre(sub) - centre(moved), (1.0, 1.0), atol=0.3)
    assert np.array_equal(tag_input(frame, (80.5, 35.5, 160.5, 55.5)), tag_input(frame, (80, 36, 160, 56)))
    big = (60, 20, 200, 80)  # 60 rows: scaled down, sampled from the rounded box either way
    assert np.array_equal(tag_input(frame, big, subpixel=True), tag_input(frame, big))


def test_tag_inputs_read_the_box_through_each_read() -> None:
    frame = np.random.default_rng(1).integers(0, 255, (100, 300, 3), np.uint8)
    box = (80, 30, 160, 55)  # 25 rows: 4 % of the height is one pixel
    xs = tag_inputs(frame, box)
    assert xs.shape == (len(READS), INPUT_H, INPUT_W) == (3, INPUT_H, INPUT_W)
    assert tuple(change for change, _ in READS) == READ_BOXES
    want = [(80, 30, 160, 55),  # the box as found
            (81, 31, 159, 54),  # 4 % of 25 rows tighter on every side
            (79, 29, 161, 56)]  # 4 % looser
    for x, b in zip(xs, want, strict=True):
        assert np.array_equal(x, tag_input(frame, b))
    assert not np.array_equal(xs[0], xs[1]) and not np.array_equal(xs[0], xs[2])
    edge = tag_inputs(frame, (-5, 80, 40, 110))  # reads clipped to the frame like one tag_input
    assert np.array_equal(edge[2], tag_input(frame, (-6.2, 78.8, 41.2, 111.2)))
    assert np.array_equal(edge[1], tag_input(frame, (0, 81.2, 38.8, 108.8)))


def test_read_averages_the_reads_of_each_box(reader: TagReader) -> None:
    frame = read_image_rgb(REAL / "sample_img0.png")
    boxes = [t.tag_xyxy for t in find_nametags(frame)]
    got = reader.probabilities(frame, boxes)
    for i, box in enumerate(boxes):
        one = reader.run(tag_inputs(frame, box)[..., None])
        for name, probs in one.items():
            assert np.allclose(got[name][i], probs.mean(axis=0), atol=1e-6)
    readings = reader.read(frame, boxes)
    assert [r.name_conf for r in readings] == [float(got["name"][i].max()) for i in range(len(boxes))]


def test_level_probs_combine_digits() -> None:
    tens = np.eye(6)[[1, 0]]
    units = np.eye(10)[[2, 7]]
    p = level_probs(tens, units)
    assert p.shape == (2, 50) and np.allclose(p.sum(1), 1)
    assert list(p.argmax(1) + 1) == [12, 7]


def test_readings_from_outputs() -> None:
    out = {"name": np.eye(34)[[NAME_CLASSES.index("skelecog")]], "dept": np.eye(7)[[3]],
           "tens": np.eye(6)[[2]], "units": np.eye(10)[[0]], "v2": np.array([[0.1, 0.9]])}
    (r,) = readings_from_outputs(out)
    assert (r.name, r.dept, r.level, r.v2) == ("skelecog", "sb", 20, True)
    assert r.confidence == pytest.approx(0.9)


def test_missing_or_mismatched_model_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing"):
        TagReader(tmp_path / "nope.onnx")
    shutil.copy(default_reader_path(), tmp_path / "r.onnx")
    with pytest.raises(ModelError, match="card"):
        TagReader(tmp_path / "r.onnx")
    card = json.loads(default_reader_path().with_suffix(".json").read_text())
    card["names"] = card["names"][:-1]
    (tmp_path / "r.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="names"):
        TagReader(tmp_path / "r.onnx")
    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    shutil.copy(default_reader_path().with_suffix(".json"), tmp_path / "bad.json")
    with pytest.raises(ModelError, match="cannot be loaded"):
        TagReader(tmp_path / "bad.onnx")


def test_reads_rendered_held_out_tags(reader: TagReader) -> None:
    from training.reader.tags import TagRenderer

    renderer, rng = TagRenderer(), np.random.default_rng(424242)
    right = n = 0
    for _ in range(200):
        patch, box, label = renderer.sample(rng, em=float(rng.uniform(9, 30)))
        if label.hidden:  # covered by another tag or cut: the text is not all there
            continue
        (r,) = reader.read(patch, [box])
        n += 1
        right += (NAME_CLASSES.index(r.name), DEPT_CLASSES.index(r.dept), r.level, r.v2) == (
            label.name, label.dept, label.level, label.v2)
    assert n > 150 and right / n >= READ_AT_9_30_PX


def test_session_keeps_to_one_quiet_thread(reader: TagReader) -> None:
    """Beside the live pipeline the reader must not bring a spinning thread pool of its own."""
    opts = reader.session.get_session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (1, 1)
    assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    from toonvision_live.classify.classifier import cuda_driver_present

    if not cuda_driver_present():  # no NVIDIA driver: CUDA is not even tried (no warning printed)
        assert reader.session.get_providers() == ["CPUExecutionProvider"]


def test_empty_box_list(reader: TagReader) -> None:
    assert reader.read(np.zeros((10, 10, 3), np.uint8), []) == []


@pytest.mark.parametrize("scale", [0.5, 0.75, 1.0, 1.5, 2.0, 3.0])
def test_reads_both_real_tags_of_sample_img0(reader: TagReader, scale: float) -> None:
    frame = read_image_rgb(REAL / "sample_img0.png")
    frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    tags = sorted(find_nametags(frame), key=lambda t: t.tag_xyxy[0])
    assert len(tags) == 2
    got = [(r.name, r.dept, r.level, r.v2) for r in reader.read(frame, [t.tag_xyxy for t in tags])]
    assert got == [("coldcaller", "sb", 1, False), ("bloodsucker", "lb", 3, False)]
