"""Pascal VOC XML (labelImg-compatible) annotations: read and write.

Parsing goes through defusedxml (no entity expansion or external entities);
writing builds the same element layout labelImg writes, so files open in
labelImg and in ToonVision's own scripts.  Boxes are pixel ``xyxy`` tuples,
inclusive of xmin/ymin, as labelImg writes them.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from toonvision_live.errors import DataError
from toonvision_live.fileio import atomic_write_bytes
from toonvision_live.geometry import XYXY


@dataclass(frozen=True, slots=True)
class VocObject:
    name: str  # e.g. "cog_sb_coldcaller" or "toon_dog"
    xyxy: XYXY  # xmin, ymin, xmax, ymax in pixels
    truncated: bool = False
    difficult: bool = False
    level: int | None = None  # read from the Cog's nametag; written as <level> (labelImg ignores it)
    v2: bool | None = None  # "Level N v2.0" on the tag; written as <v2> 0/1 with the level


@dataclass(frozen=True, slots=True)
class VocAnnotation:
    filename: str
    width: int
    height: int
    objects: tuple[VocObject, ...] = field(default_factory=tuple)
    folder: str = "raw"
    path: str = ""
    depth: int = 3

    def outside_boxes(self) -> list[VocObject]:
        """Objects whose box is empty or not inside the image."""
        return [
            o for o in self.objects
            if not (0 <= o.xyxy[0] < o.xyxy[2] <= self.width and 0 <= o.xyxy[1] < o.xyxy[3] <= self.height)
        ]


def _text(node: ET.Element, tag: str, source: Path) -> str:
    child = node.find(tag)
    if child is None or child.text is None or not child.text.strip():
        raise DataError(f"{source}: missing <{tag}> in the VOC annotation; fix or re-save it in labelImg.")
    return child.text.strip()


def _int(node: ET.Element, tag: str, source: Path) -> int:
    raw = _text(node, tag, source)
    try:
        return int(round(float(raw)))
    except ValueError:
        raise DataError(f"{source}: <{tag}> is '{raw}', not a number; fix the annotation.") from None


def parse_voc(data: bytes, source: Path | str = "<memory>") -> VocAnnotation:
    """Parse VOC XML bytes; DataError names ``source`` and the problem."""
    source = Path(source)
    try:
        root = SafeET.fromstring(data)
    except (ET.ParseError, DefusedXmlException) as exc:
        raise DataError(f"{source}: malformed or truncated XML ({exc}); re-save it in labelImg.") from None
    if root.tag != "annotation":
        raise DataError(f"{source}: not a Pascal VOC file (root is <{root.tag}>, not <annotation>); "
                        "give the labelImg XML saved with the image.")
    size = root.find("size")
    if size is None:
        raise DataError(f"{source}: missing <size> in the VOC annotation; fix or re-save it in labelImg.")
    objects = []
    for obj in root.findall("object"):
        box = obj.find("bndbox")
        if box is None:
            raise DataError(f"{source}: an <object> has no <bndbox>; fix the annotation.")
        objects.append(VocObject(
            name=_text(obj, "name", source),
            xyxy=(_int(box, "xmin", source), _int(box, "ymin", source),
                  _int(box, "xmax", source), _int(box, "ymax", source)),
            truncated=(obj.findtext("truncated", "0").strip() == "1"),
            difficult=(obj.findtext("difficult", "0").strip() == "1"),
            level=_int(obj, "level", source) if obj.find("level") is not None else None,
            v2=(obj.findtext("v2", "0").strip() == "1") if obj.find("v2") is not None else None,
        ))
    return VocAnnotation(
        filename=_text(root, "filename", source),
        width=_int(size, "width", source),
        height=_int(size, "height", source),
        depth=int(size.findtext("depth", "3") or 3),
        folder=(root.findtext("folder") or "").strip(),
        path=(root.findtext("path") or "").strip(),
        objects=tuple(objects),
    )


def read_voc(path: Path) -> VocAnnotation:
    """Read a VOC XML file; DataError names the file when it is missing or malformed."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"Cannot read annotation {path}: {exc.strerror}; check the file exists.") from None
    return parse_voc(data, path)


def voc_to_xml(annotation: VocAnnotation) -> bytes:
    """Serialise as labelImg does (tab-indented, one <object> per box)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = annotation.folder
    ET.SubElement(root, "filename").text = annotation.filename
    ET.SubElement(root, "path").text = annotation.path or annotation.filename
    ET.SubElement(ET.SubElement(root, "source"), "database").text = "Unknown"
    size = ET.SubElement(root, "size")
    dims = (("width", annotation.width), ("height", annotation.height), ("depth", annotation.depth))
    for tag, value in dims:
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for obj in annotation.objects:
        node = ET.SubElement(root, "object")
        ET.SubElement(node, "name").text = obj.name
        ET.SubElement(node, "pose").text = "Unspecified"
        ET.SubElement(node, "truncated").text = "1" if obj.truncated else "0"
        ET.SubElement(node, "difficult").text = "1" if obj.difficult else "0"
        box = ET.SubElement(node, "bndbox")
        for tag, value in zip(("xmin", "ymin", "xmax", "ymax"), obj.xyxy, strict=True):
            ET.SubElement(box, tag).text = str(int(value))
        if obj.level is not None:
            ET.SubElement(node, "level").text = str(int(obj.level))
            ET.SubElement(node, "v2").text = "1" if obj.v2 else "0"
    ET.indent(root, space="\t")
    return ET.tostring(root, encoding="utf-8") + b"\n"


def write_voc(path: Path, annotation: VocAnnotation, *, overwrite: bool = False) -> Path:
    """Atomically write ``annotation`` to ``path`` (never overwrites unless asked)."""
    return atomic_write_bytes(Path(path), voc_to_xml(annotation), overwrite=overwrite)
