"""NUS-WIDE (81 concepts).

``variant="official"``: the official archives' layout::

    ROOT/Concepts81.txt                                   one concept per line (the class order)
    ROOT/ImageList/{TrainImagelist,TestImagelist}.txt     image paths (Windows separators) under ROOT/Flickr/
    ROOT/Groundtruth/TrainTestLabels/Labels_<concept>_{Train,Test}.txt   one 0/1 per image, same order

``variant="asl_csv"``: the CSV that ASL distributes (``ROOT/nus_wid_data.csv``, columns ``filepath,label,split``
with ``label`` a list such as ``['sky', 'clouds']`` and ``split`` train/val; images under ``ROOT/images/``); the
class order is the sorted set of names, as ASL's loader builds it.

``drop_empty``: drop images without any positive label (SADCL does; about 10 % of NUS-WIDE).
"""

from __future__ import annotations

import ast
import csv
from pathlib import Path
from typing import Literal

import numpy as np

from labelgraph.data.formats.csv_format import AnnotationError
from labelgraph.data.label_table import LabelTable

SPLITS = {"train": "Train", "test": "Test", "val": "Test"}


def read_nuswide(
    root: str | Path,
    split: str,
    class_names: list[str] | None = None,
    variant: Literal["official", "asl_csv"] = "official",
    drop_empty: bool = False,
    csv_file: str = "nus_wid_data.csv",
) -> LabelTable:
    root = Path(root)
    if variant == "official":
        table = _read_official(root, split, class_names)
    elif variant == "asl_csv":
        table = _read_asl_csv(root / csv_file, split, class_names)
    else:
        raise ValueError(f"variant={variant!r}; use 'official' or 'asl_csv'")
    if drop_empty:
        table = table.subset(np.flatnonzero((table.targets == 1).any(axis=1)))
    return table


def _read_official(root: Path, split: str, class_names: list[str] | None) -> LabelTable:
    if split not in SPLITS:
        raise ValueError(f"NUS-WIDE split {split!r} does not exist; use train or test")
    part = SPLITS[split]
    concepts_file = root / "Concepts81.txt"
    if class_names is None:
        if not concepts_file.is_file():
            raise FileNotFoundError(f"{concepts_file}: the NUS-WIDE concept list was not found")
        class_names = [line.strip() for line in concepts_file.read_text().splitlines() if line.strip()]
    list_file = root / "ImageList" / f"{part}Imagelist.txt"
    if not list_file.is_file():
        raise FileNotFoundError(f"{list_file}: NUS-WIDE image list not found")
    images = [line.strip().replace("\\", "/") for line in list_file.read_text().splitlines() if line.strip()]
    targets = np.zeros((len(images), len(class_names)), dtype=np.int8)
    for c, concept in enumerate(class_names):
        label_file = root / "Groundtruth" / "TrainTestLabels" / f"Labels_{concept}_{part}.txt"
        if not label_file.is_file():
            raise FileNotFoundError(f"{label_file}: labels of concept {concept!r} not found")
        values = [line.strip() for line in label_file.read_text().splitlines() if line.strip()]
        if len(values) != len(images):
            raise AnnotationError(f"{label_file}: {len(values)} labels for the {len(images)} images of {list_file}")
        bad = sorted({v for v in values if v not in ("0", "1")})
        if bad:
            raise AnnotationError(f"{label_file}: labels must be 0 or 1, found {bad[:5]}")
        targets[:, c] = np.array(values) == "1"
    return LabelTable([f"Flickr/{p}" for p in images], list(class_names), targets, root=root, source=str(list_file))


def _read_asl_csv(path: Path, split: str, class_names: list[str] | None) -> LabelTable:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ASL's NUS-WIDE csv not found")
    split = {"test": "val"}.get(split, split)
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        for line_no, row in enumerate(csv.DictReader(f), start=2):
            try:
                labels = ast.literal_eval(row["label"])
            except (KeyError, ValueError, SyntaxError) as err:
                raise AnnotationError(f"{path}: line {line_no}: cannot read the label list ({err})") from err
            rows.append((row["filepath"], [str(x) for x in labels], row["split"], line_no))
    splits = sorted({r[2] for r in rows})
    if split not in splits:
        raise ValueError(f"{path}: split {split!r} does not exist; available: {splits}")
    names = list(class_names) if class_names is not None else sorted({n for r in rows for n in r[1]})
    index = {n: i for i, n in enumerate(names)}
    chosen = [r for r in rows if r[2] == split]
    targets = np.zeros((len(chosen), len(names)), dtype=np.int8)
    for k, (_, labels, _, line_no) in enumerate(chosen):
        for name in labels:
            if name not in index:
                raise AnnotationError(f"{path}: line {line_no}: unknown class {name!r}")
            targets[k, index[name]] = 1
    return LabelTable([f"images/{r[0]}" for r in chosen], names, targets, root=path.parent, source=str(path))
