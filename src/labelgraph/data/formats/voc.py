"""PASCAL VOC 2007 / 2012: ``Annotations/*.xml``, ``ImageSets/Main/<split>.txt``, ``JPEGImages/``.

``ROOT`` may be ``VOCdevkit/`` or the ``VOC2007/`` (``VOC2012/``) folder inside it.

The ``difficult`` option decides the label of a class whose only instances in an image are marked difficult:
    ``unknown`` (default, -1): ignored by the losses and by AP -- what ML-GCN's AP meter does at evaluation;
    ``negative`` (0): SSGRL / Query2Label / SADCL drop difficult objects when building labels;
    ``positive`` (1): graphMLC keeps them, and ML-GCN trains on them as positives.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Literal

import numpy as np

from labelgraph.data.formats.csv_format import AnnotationError
from labelgraph.data.label_table import LabelTable

VOC_CLASSES = [
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
]
DIFFICULT_VALUE = {"unknown": -1, "negative": 0, "positive": 1}


def voc_year_folder(root: Path, year: int) -> Path:
    for candidate in (root, root / f"VOC{year}", root / "VOCdevkit" / f"VOC{year}"):
        if (candidate / "ImageSets" / "Main").is_dir():
            return candidate
    raise FileNotFoundError(f"{root}: no VOC{year} folder with ImageSets/Main (give VOCdevkit/ or VOC{year}/)")


def read_voc(
    root: str | Path,
    split: str,
    class_names: list[str] | None = None,
    year: int = 2007,
    difficult: Literal["unknown", "negative", "positive"] = "unknown",
) -> LabelTable:
    folder = voc_year_folder(Path(root), year)
    if difficult not in DIFFICULT_VALUE:
        raise ValueError(f"difficult={difficult!r}; use unknown, negative or positive")
    names = list(class_names) if class_names is not None else VOC_CLASSES
    index = {n: i for i, n in enumerate(names)}
    list_file = folder / "ImageSets" / "Main" / f"{split}.txt"
    if not list_file.is_file():
        available = sorted(p.stem for p in (folder / "ImageSets" / "Main").glob("*.txt") if "_" not in p.stem)
        raise ValueError(f"{list_file}: VOC{year} split {split!r} does not exist; available: {available}")
    ids = [line.split()[0] for line in list_file.read_text().splitlines() if line.strip()]
    if len(set(ids)) != len(ids):
        dupes = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise AnnotationError(f"{list_file}: duplicate image ids {dupes}")
    targets = np.zeros((len(ids), len(names)), dtype=np.int8)
    for r, image_id in enumerate(ids):
        xml_path = folder / "Annotations" / f"{image_id}.xml"
        if not xml_path.is_file():
            raise FileNotFoundError(f"{xml_path}: annotation of image {image_id} (listed in {list_file}) not found")
        try:
            objects = ET.parse(xml_path).getroot().findall("object")
        except ET.ParseError as err:
            raise AnnotationError(f"{xml_path}: malformed XML ({err})") from err
        easy, hard = set(), set()
        for obj in objects:
            name = (obj.findtext("name") or "").strip()
            if name not in index:
                raise AnnotationError(f"{xml_path}: unknown class {name!r}")
            (hard if (obj.findtext("difficult") or "0").strip() == "1" else easy).add(index[name])
        for c in hard - easy:
            targets[r, c] = DIFFICULT_VALUE[difficult]
        for c in easy:
            targets[r, c] = 1
    return LabelTable([f"JPEGImages/{i}.jpg" for i in ids], names, targets, root=folder, source=str(list_file))
