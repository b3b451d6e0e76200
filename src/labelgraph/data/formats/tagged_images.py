"""What the labelling tools' readers share: images with the labels a person tagged them with -> a :class:`LabelTable`
(every other class absent), with one error per problem naming the task or image."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from labelgraph.data.formats.csv_format import AnnotationError
from labelgraph.data.label_table import LabelTable
from labelgraph.graph.label_graph import check_class_count


def tagged_table(
    entries: list[tuple[str, str, str, list[str]]], class_names: list[str], path: Path, root: Path
) -> LabelTable:
    """``entries``: ``(who, reference, image path, labels)`` -- who names the entry in errors (``task 3``), the
    reference is the image as the export wrote it; an image listed twice and a label outside ``class_names`` are
    errors naming ``path`` and the entry."""
    check_class_count(len(class_names), path)
    index = {name: i for i, name in enumerate(class_names)}
    targets = np.zeros((len(entries), len(class_names)), dtype=np.int8)
    first: dict[str, str] = {}
    for row, (who, reference, image, labels) in enumerate(entries):
        if image in first:
            raise AnnotationError(f"{path}: {who}: image {reference!r} is listed twice (also {first[image]})")
        first[image] = who
        for name in labels:
            if name not in index:
                raise AnnotationError(f"{path}: {who}: label {name!r} is not a class ({len(index)} classes)")
            targets[row, index[name]] = 1
    images = [image for _, _, image, _ in entries]
    return LabelTable(images, list(class_names), targets, root=root, source=str(path))
