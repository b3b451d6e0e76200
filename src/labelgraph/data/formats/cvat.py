"""CVAT's "CVAT for images 1.1" XML export with image tags: ``<annotations><version>1.1</version><meta>...<labels>
<label><name>cat</name>...</label></labels>...</meta><image id="0" name="dir/a.jpg" width=".." height=".."><tag
label="cat" source="manual"/></image>...</annotations>``.

Rules: an image's labels are its ``<tag>`` elements' ``label`` attributes, the other classes absent (shapes --
boxes, polygons -- are not tags and are ignored); every ``<image>`` is kept, a tagless one with no class. The
classes are the ``<label>`` names the export's ``<meta>`` declares (a task's, a job's or a project's), in that order,
unless ``class_names`` is given. ``name`` is the image's path as uploaded, resolved against ``root`` (default: the
export's folder). An image without a name, a tag outside the classes and an image listed twice are errors naming the
image. The file is parsed incrementally (``iterparse``), each ``<image>`` freed once read, so a 100,000-image export
is never held as a tree.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from labelgraph.data.formats.csv_format import AnnotationError
from labelgraph.data.formats.tagged_images import tagged_table
from labelgraph.data.label_table import LabelTable


def read_cvat(root: str | Path | None, split: str, class_names: list[str] | None = None) -> LabelTable:
    """``split``: the XML file (as given: ``root`` is only where the images are)."""
    path = Path(split)
    if not path.is_file():
        raise FileNotFoundError(f"CVAT export {str(path)!r} does not exist")
    image_root = (Path(root) if root is not None else path.parent).absolute()
    declared, images, tags = parse_export(path)
    names = list(class_names) if class_names is not None else declared or sorted({t for ts in tags for t in ts})
    entries = [(f"<image> {i + 1}", name, str(image_root / name), tags[i]) for i, name in enumerate(images)]
    return tagged_table(entries, names, path, image_root)


def parse_export(path: Path) -> tuple[list[str], list[str], list[list[str]]]:
    """``(declared label names, image names, each image's tag labels)``, in file order."""
    declared: list[str] = []
    images: list[str] = []
    tags: list[list[str]] = []
    depth = []
    try:
        for event, element in ET.iterparse(path, events=("start", "end")):
            if event == "start":
                depth.append(element.tag)
                continue
            depth.pop()
            if element.tag == "label" and "meta" in depth and "labels" in depth[-1:]:
                name = (element.findtext("name") or "").strip()
                if name and name not in declared:
                    declared.append(name)
            elif element.tag == "image" and depth == ["annotations"]:
                name = element.get("name")
                if not name:
                    raise AnnotationError(f"{path}: image id={element.get('id')!r} has no name")
                images.append(name)
                tags.append([t.get("label", "") for t in element.iter("tag")])
                element.clear()
    except ET.ParseError as err:
        raise AnnotationError(f"{path}: not a CVAT XML export ({err})") from err
    if not depth and not images and not declared:
        raise AnnotationError(f"{path}: no <image> or <label> elements: not a CVAT for images 1.1 export")
    return declared, images, tags
