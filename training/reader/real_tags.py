"""What the reader reads on the real reference frames (../shared/data/real; never trained on).

    python -m training.reader.real_tags [--reader models/reader.onnx]

Tags are found by the crop stage (:func:`toonvision_live.find.nametags.find_nametags`); on the
original-client frames where it finds none, the tag boxes a person marked by eye (``BY_EYE``) are
read instead.  Prints one line per tag: frame, scale, box, line height, the reading and its
confidence.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2

from toonvision_live.classify.reader import TagReader, TagReading
from toonvision_live.fileio import read_image_rgb
from toonvision_live.find.nametags import find_nametags
from toonvision_live.taxonomy import COG_BY_KEY, SUIT_BY_CODE

REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "real"
SCALES = (0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
#: tag boxes marked by eye on frames where the crop stage finds none (xyxy, full-frame pixels)
BY_EYE: dict[str, list[tuple[int, int, int, int]]] = {
    "beta_street_defeat.png": [(40, 308, 118, 334), (224, 98, 286, 121), (345, 150, 402, 171),
                               (322, 205, 380, 227)],
}


def describe(r: TagReading) -> str:
    name = COG_BY_KEY[r.name].name if r.name in COG_BY_KEY else r.name.capitalize()
    dept = SUIT_BY_CODE[r.dept].name if r.dept in SUIT_BY_CODE else r.dept
    return f"{name} / {dept} / Level {r.level}{' v2.0' if r.v2 else ''}  (p={r.confidence:.2f})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reader", type=Path, default=None)
    args = p.parse_args()
    reader = TagReader(args.reader, ["CPUExecutionProvider"])
    frame0 = read_image_rgb(REAL / "sample_img0.png")
    for scale in SCALES:
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        frame = cv2.resize(frame0, None, fx=scale, fy=scale, interpolation=interp)
        tags = sorted(find_nametags(frame), key=lambda t: t.tag_xyxy[0])
        for t, r in zip(tags, reader.read(frame, [t.tag_xyxy for t in tags]), strict=True):
            print(f"sample_img0 {scale:g}x {t.tag_xyxy} line {t.line_height:.1f}px: {describe(r)}")
    for path in sorted((REAL / "tto").glob("*.png")):
        frame = read_image_rgb(path)
        found = [(t.tag_xyxy, f"{t.line_height:.1f}px") for t in find_nametags(frame)]
        boxes = found or [(b, "by eye") for b in BY_EYE.get(path.name, [])]
        if not boxes:
            print(f"tto/{path.name}: no tag found")
        for (box, how), r in zip(boxes, reader.read(frame, [b for b, _ in boxes]), strict=True):
            print(f"tto/{path.name} {box} {how}: {describe(r)}")


if __name__ == "__main__":
    main()
