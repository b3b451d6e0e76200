"""MIRFLICKR-25K: images ``im1.jpg`` ... ``im25000.jpg`` (in ``ROOT/`` or ``ROOT/mirflickr/``) and one file per
concept, ``ROOT/annotations/<concept>.txt``, listing the numbers of the images that show it. The 24 "potential
labels" are used; the ``<concept>_r1.txt`` files (stricter "relevant" judgements) replace them with
``relevant=True``. There is no official split: a seeded random split (``train_fraction`` 0.5, as LGLM uses)
makes ``train`` and ``test`` disjoint and reproducible.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from labelgraph.data.formats.csv_format import AnnotationError
from labelgraph.data.label_table import LabelTable

CONCEPTS = [
    "animals",
    "baby",
    "bird",
    "car",
    "clouds",
    "dog",
    "female",
    "flower",
    "food",
    "indoor",
    "lake",
    "male",
    "night",
    "people",
    "plant_life",
    "portrait",
    "river",
    "sea",
    "sky",
    "structures",
    "sunset",
    "transport",
    "tree",
    "water",
]


def read_mirflickr(
    root: str | Path,
    split: str,
    class_names: list[str] | None = None,
    relevant: bool = False,
    seed: int = 0,
    train_fraction: float = 0.5,
    num_images: int = 25000,
) -> LabelTable:
    root = Path(root)
    if split not in ("train", "test", "all"):
        raise ValueError(f"MIRFLICKR split {split!r} does not exist; use train, test or all")
    names = list(class_names) if class_names is not None else CONCEPTS
    ann_dir = root / "annotations"
    image_dir = root / "mirflickr" if (root / "mirflickr").is_dir() else root
    targets = np.zeros((num_images, len(names)), dtype=np.int8)
    for c, concept in enumerate(names):
        path = ann_dir / f"{concept}{'_r1' if relevant else ''}.txt"
        if not path.is_file():
            raise FileNotFoundError(f"{path}: annotations of concept {concept!r} not found")
        for line_no, line in enumerate(path.read_text().splitlines(), start=1):
            if not line.strip():
                continue
            if not re.fullmatch(r"\d+", line.strip()) or not 1 <= int(line) <= num_images:
                raise AnnotationError(
                    f"{path}: line {line_no}: {line.strip()!r} is not an image number 1..{num_images}"
                )
            targets[int(line) - 1, c] = 1
    order = np.random.default_rng(seed).permutation(num_images)
    cut = int(round(train_fraction * num_images))
    rows = {"train": np.sort(order[:cut]), "test": np.sort(order[cut:]), "all": np.arange(num_images)}[split]
    rel = image_dir.relative_to(root)
    images = [str(rel / f"im{i + 1}.jpg") for i in rows]
    return LabelTable(images, names, targets[rows], root=root, source=str(ann_dir))
