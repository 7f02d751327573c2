"""Dataset checks and augmentation of the training toolkit (no model training here)."""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from training_factory import draw_cog_crop, make_crop_dataset

from toonvision_live.errors import DataError
from toonvision_live.taxonomy import COG_KEYS, COG_SUIT_INDEX
from training.data import Augment, augment_crop, check_splits, crop_entity_index, load_images, one_hot_targets


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("cog_sb_coldcaller_0.png", "coldcaller"),
        ("cog_lb_bloodsucker_12.png", "bloodsucker"),
        ("cog_bb_thebigcheese_3.png", "thebigcheese"),
        ("cog_cb_robberbaron_7.png", "robberbaron"),
    ],
)
def test_crop_label_comes_from_the_file_name(name: str, key: str) -> None:
    assert crop_entity_index(Path(name)) == COG_KEYS.index(key)


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("cog_sb_notacog_0.png", "bad label"),
        ("cog_lb_coldcaller_0.png", "Sellbot"),  # right Cog, wrong suit
        ("cog_sb_coldcaller.png", "not named"),
        ("toon_dog_0.png", "Toon"),
        ("coldcaller_x.png", "not named"),
    ],
)
def test_bad_crop_names_are_data_errors_naming_the_file(name: str, words: str) -> None:
    with pytest.raises(DataError, match=words) as info:
        crop_entity_index(Path(name))
    assert name in str(info.value)


def test_splits_are_listed_with_their_labels(tmp_path: Path) -> None:
    make_crop_dataset(tmp_path, counts=(2, 1, 1))
    found = check_splits(tmp_path)
    assert {s: len(f.paths) for s, f in found.items()} == {"train": 64, "validate": 32, "test": 32}
    train = found["train"]
    assert all(n == 2 for n in train.counts.values())
    assert list(train.suit) == [COG_SUIT_INDEX[e] for e in train.entity]
    images = load_images(found["test"].paths[:3])
    assert images.shape == (3, 600, 200, 3) and images.dtype == np.uint8


def test_missing_empty_and_incomplete_splits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        check_splits(tmp_path / "nothing")
    make_crop_dataset(tmp_path, counts=(1, 1, 1))
    for f in (tmp_path / "data" / "test" / "cog").iterdir():
        f.unlink()
    with pytest.raises(DataError, match="holds no .png crops"):
        check_splits(tmp_path)
    with pytest.raises(DataError, match="no crops of coldcaller"):
        (tmp_path / "data" / "train" / "cog" / "cog_sb_coldcaller_0.png").unlink()
        check_splits(tmp_path, ("train",))


def test_unknown_label_in_a_split_is_refused_before_training(tmp_path: Path) -> None:
    make_crop_dataset(tmp_path, counts=(1, 1, 1))
    src = tmp_path / "data" / "train" / "cog" / "cog_sb_coldcaller_0.png"
    shutil.copy(src, src.with_name("cog_sb_coldcaler_1.png"))
    with pytest.raises(DataError, match="cog_sb_coldcaler_1.png"):
        check_splits(tmp_path)


def test_unbalanced_split_is_reported_with_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_crop_dataset(tmp_path, counts=(1, 1, 1))
    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "train" / "cog"
    import cv2

    for k in range(1, 4):
        cv2.imwrite(
            str(folder / f"cog_sb_coldcaller_{k}.png"), draw_cog_crop(COG_KEYS.index("coldcaller"), rng)
        )
    with caplog.at_level(logging.WARNING, logger="training.data"):
        check_splits(tmp_path)
    text = " ".join(r.getMessage() for r in caplog.records)
    assert "unbalanced" in text and "4 coldcaller" in text


def test_one_hot_targets_put_each_cog_under_its_suit() -> None:
    targets = one_hot_targets(np.arange(32))
    assert targets["entity"].shape == (32, 32) and targets["suit"].shape == (32, 4)
    assert np.array_equal(targets["suit"].argmax(1), np.asarray(COG_SUIT_INDEX))
    assert np.allclose(targets["entity"].sum(1), 1) and np.allclose(targets["suit"].sum(1), 1)


def test_augmentation_is_seeded_and_keeps_the_crop_format() -> None:
    crop = draw_cog_crop(5, np.random.default_rng(0))
    a = augment_crop(crop, Augment(), np.random.default_rng(7))
    b = augment_crop(crop, Augment(), np.random.default_rng(7))
    c = augment_crop(crop, Augment(), np.random.default_rng(8))
    assert a.shape == crop.shape and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)
    assert not np.array_equal(a, crop)


def _identity(**changes: object) -> Augment:
    none = Augment(
        box_scale_h=(1.0, 1.0),
        box_scale_w=(1.0, 1.0),
        box_shift=(0.0, 0.0),
        flip=False,
        brightness=0.0,
        contrast=(1.0, 1.0),
        saturation=(1.0, 1.0),
        hue_deg=0.0,
        low_res_prob=0.0,
        blur_prob=0.0,
        jpeg_prob=0.0,
        noise_std=0.0,
        occlude_prob=0.0,
    )
    return dataclasses.replace(none, **changes)


def test_augmentation_geometry_identity_flip_and_zoom() -> None:
    crop = draw_cog_crop(3, np.random.default_rng(1))
    same = augment_crop(crop, _identity(), np.random.default_rng(0))
    assert np.abs(same.astype(int) - crop).max() <= 1
    flips = [augment_crop(crop, _identity(flip=True), np.random.default_rng(s)) for s in range(8)]
    mirrored = [f for f in flips if np.abs(f.astype(int) - crop[:, ::-1]).max() <= 1]
    assert mirrored and len(mirrored) < len(flips)  # some flipped, some not
    # a box twice as wide as the body shows the body in the middle half, squeezed
    wide = augment_crop(crop, _identity(box_scale_w=(2.0, 2.0)), np.random.default_rng(0))
    body = crop[300:, 40:160].mean(axis=(0, 1))
    assert np.abs(wide[300:, 80:120].mean(axis=(0, 1)) - body).max() < 20
