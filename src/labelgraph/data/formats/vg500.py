"""Visual Genome 500 (SSGRL's split): ``ROOT/{train,test}_list_500.txt`` (one image file name per line),
``ROOT/vg_category_500_labels_index.json`` (image file name -> list of label indices 0..499), images in
``ROOT/VG_100K/``. Class names come from ``ROOT/vg_category_500.txt`` (one per line) when present, else ``class_<i>``
(the released files carry indices only)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from labelgraph.data.formats.csv_format import AnnotationError
from labelgraph.data.label_table import LabelTable

NUM_CLASSES = 500


def read_vg500(root: str | Path, split: str, class_names: list[str] | None = None) -> LabelTable:
    root = Path(root)
    list_file = root / f"{split}_list_500.txt"
    if not list_file.is_file():
        raise ValueError(f"{list_file}: VG-500 split {split!r} does not exist (train or test)")
    label_file = root / "vg_category_500_labels_index.json"
    try:
        labels = json.loads(label_file.read_text())
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{label_file}: VG-500 label index not found") from err
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{label_file}: malformed JSON ({err})") from err
    if class_names is None:
        names_file = root / "vg_category_500.txt"
        class_names = (
            [ln.strip() for ln in names_file.read_text().splitlines() if ln.strip()]
            if names_file.is_file()
            else [f"class_{i}" for i in range(NUM_CLASSES)]
        )
    images = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    targets = np.zeros((len(images), len(class_names)), dtype=np.int8)
    for r, name in enumerate(images):
        if name not in labels:
            raise AnnotationError(f"{label_file}: no labels for image {name!r} (listed in {list_file})")
        for idx in labels[name]:
            if not 0 <= int(idx) < len(class_names):
                raise AnnotationError(
                    f"{label_file}: image {name!r} has label index {idx} outside 0..{len(class_names) - 1}"
                )
            targets[r, int(idx)] = 1
    return LabelTable([f"VG_100K/{n}" for n in images], list(class_names), targets, root=root, source=str(list_file))
