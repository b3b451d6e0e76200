"""MS-COCO 2014: ``ROOT/annotations/instances_{train,val}2014.json``, images in ``ROOT/{train,val}2014/``.

Options (each paper's loader differs: ``docs/datasets.md`` says which option reproduces which paper):
    class_order: ``coco_id`` (category-id order: SSGRL, Query2Label, SADCL, ASL) or ``alphabetical`` (by name:
        the order of ML-GCN / ADD-GCN / LGLM's GloVe and adjacency files).
    include_unlabeled: True keeps every image of the json (val 40,504: SSGRL / Query2Label count these), False
        only images with at least one annotation (val 40,137: ML-GCN, ASL).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np

from labelgraph.data.formats.csv_format import AnnotationError
from labelgraph.data.label_table import LabelTable

SPLITS = {"train": "train", "train2014": "train", "val": "val", "val2014": "val"}


def read_coco(
    root: str | Path,
    split: str,
    class_names: list[str] | None = None,
    class_order: Literal["coco_id", "alphabetical"] = "coco_id",
    include_unlabeled: bool = True,
    year: int = 2014,
) -> LabelTable:
    root = Path(root)
    if split not in SPLITS:
        raise ValueError(f"COCO split {split!r} does not exist; use one of {sorted(SPLITS)}")
    name = SPLITS[split]
    path = root / "annotations" / f"instances_{name}{year}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: COCO annotation file not found (expected ROOT/annotations/)")
    try:
        data = json.loads(path.read_text())
        categories = {int(c["id"]): str(c["name"]) for c in data["categories"]}
        images = [(int(im["id"]), str(im["file_name"])) for im in data["images"]]
        annotations = [(int(a["image_id"]), int(a["category_id"]), a.get("id")) for a in data["annotations"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
        raise AnnotationError(f"{path}: malformed COCO annotations ({type(err).__name__}: {err})") from err
    if class_order not in ("coco_id", "alphabetical"):
        raise ValueError(f"class_order={class_order!r}; use 'coco_id' or 'alphabetical'")
    ids = sorted(categories) if class_order == "coco_id" else sorted(categories, key=lambda i: categories[i])
    names = [categories[i] for i in ids]
    if class_names is not None and list(class_names) != names:
        from labelgraph.data.classes import check_same_classes

        check_same_classes(names, list(class_names), f"{path} ({class_order})", "requested class list")
    column = {cid: k for k, cid in enumerate(ids)}
    row = {}
    for image_id, _ in images:
        if image_id in row:
            raise AnnotationError(f"{path}: image id {image_id} is listed twice")
        row[image_id] = len(row)
    targets = np.zeros((len(images), len(ids)), dtype=np.int8)
    for image_id, category_id, ann_id in annotations:
        if category_id not in column:
            raise AnnotationError(f"{path}: annotation {ann_id} has unknown category id {category_id}")
        if image_id not in row:
            raise AnnotationError(f"{path}: annotation {ann_id} refers to image id {image_id}, not in 'images'")
        targets[row[image_id], column[category_id]] = 1
    files = [f"{name}{year}/{file_name}" for _, file_name in images]
    if not include_unlabeled:
        keep = targets.any(axis=1)
        files, targets = [f for f, k in zip(files, keep, strict=True) if k], targets[keep]
    return LabelTable(files, names, targets, root=root, source=str(path))
