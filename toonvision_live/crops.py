"""The one 600x200 stretch: how a Cog's body box becomes the model's input, everywhere.

The runtime (``CropBatcher``), the hotkey saver, ``toonvision dataset extract``, the evaluation's real
screenshot check and the training data (rendered crops, crops read back at another size) all stretch
through :func:`stretch_to_crop`, so the crops saved or rendered for training are resampled exactly
like the crops the runtime classifies.

The policy (measured, see the commit that made this module): ``INTER_AREA`` when the box shrinks on
both sides (it averages every source pixel, no aliasing), ``INTER_LINEAR`` otherwise (almost always:
a Cog on screen is smaller than 600 px high; ``INTER_AREA`` would there be close to nearest-neighbour).
The aspect is not kept, as ToonVision crops are.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np

from toonvision_live.geometry import XYXY, clip_box
from toonvision_live.model_card import CROP_HEIGHT, CROP_WIDTH


class HasBody(Protocol):
    """Anything with a body box (a proposal, a tracked Cog)."""

    @property
    def body_xyxy(self) -> XYXY: ...


def stretch_interpolation(src_wh: tuple[int, int]) -> int:
    """The OpenCV interpolation for stretching a ``src_wh`` region to 600x200."""
    width, height = src_wh
    return cv2.INTER_AREA if width > CROP_WIDTH and height > CROP_HEIGHT else cv2.INTER_LINEAR


def stretch_to_crop(region: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``region`` (HxWx3, any size) stretched to 600 high x 200 wide, same dtype; into ``out`` if given."""
    height, width = region.shape[:2]
    if height < 1 or width < 1:
        raise ValueError(f"cannot stretch an empty {width}x{height} region")
    interpolation = stretch_interpolation((width, height))
    if out is None:
        return cv2.resize(region, (CROP_WIDTH, CROP_HEIGHT), interpolation=interpolation)
    resized = cv2.resize(region, (CROP_WIDTH, CROP_HEIGHT), dst=out, interpolation=interpolation)
    if not np.shares_memory(resized, out):  # OpenCV made a new array after all
        out[...] = resized
    return out


def check_frame(frame_rgb: np.ndarray) -> None:
    """ValueError unless ``frame_rgb`` is an HxWx3 uint8 array."""
    if not isinstance(frame_rgb, np.ndarray) or frame_rgb.ndim != 3 or frame_rgb.shape[2] != 3 \
            or frame_rgb.dtype != np.uint8:
        shape = getattr(frame_rgb, "shape", None)
        raise ValueError(f"frame_rgb must be an HxWx3 uint8 array, got {type(frame_rgb).__name__} {shape}")


def _clipped(frame_rgb: np.ndarray, box: Sequence[float]) -> XYXY:
    fh, fw = frame_rgb.shape[:2]
    clipped = clip_box(box, (fw, fh))
    if clipped is None:
        raise ValueError(f"box {tuple(box)} is empty inside a {fw}x{fh} frame")
    return clipped


def crop_box(frame_rgb: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """The part of ``frame_rgb`` under ``box`` (clipped to the frame) as a 600x200 uint8 crop.
    ValueError when nothing of the box is inside the frame."""
    x0, y0, x1, y1 = _clipped(frame_rgb, box)
    return stretch_to_crop(frame_rgb[y0:y1, x0:x1])


class CropBatcher:
    """Stretches body boxes to 600x200 into one preallocated float32 [max_batch, 600, 200, 3] array.

    ``crop`` returns a view of that array, overwritten by the next call: classify it first.
    """

    def __init__(self, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.max_batch = max_batch
        self._batch = np.zeros((max_batch, CROP_HEIGHT, CROP_WIDTH, 3), np.float32)

    def crop(self, frame_rgb: np.ndarray, boxes: Sequence[HasBody | XYXY]) -> np.ndarray:
        """The crops of ``boxes`` (objects with a ``body_xyxy``, or xyxy tuples), float32 [N, 600, 200, 3]."""
        check_frame(frame_rgb)
        if len(boxes) > self.max_batch:
            raise ValueError(f"{len(boxes)} proposals exceed the batch of {self.max_batch}; split them")
        for i, item in enumerate(boxes):
            x0, y0, x1, y1 = _clipped(frame_rgb, item if isinstance(item, tuple) else item.body_xyxy)
            # resizing the (small) region as float32 straight into the batch skips a full-size cast
            stretch_to_crop(frame_rgb[y0:y1, x0:x1].astype(np.float32), out=self._batch[i])
        return self._batch[: len(boxes)]
