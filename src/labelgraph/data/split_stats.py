"""Inspecting a split: label statistics and a check that every image opens (``labelgraph data stats|check``)."""

from __future__ import annotations

from typing import Any

from labelgraph.data.image_io import ImageLoadError, read_image
from labelgraph.data.label_table import LabelTable


def split_statistics(table: LabelTable) -> dict[str, Any]:
    """The figures ``labelgraph data stats --json`` prints.

    Returns:
        ``num_images``, ``num_classes``, ``label_cardinality`` (mean positives per image), ``class_counts``
        (name -> images where the class is present), ``empty_images`` (no positive label), ``unknown_labels``
        (count of -1 entries), ``missing_files``.
    """
    positives = table.targets == 1
    return {
        "num_images": len(table),
        "num_classes": table.num_classes,
        "label_cardinality": float(positives.sum(1).mean()) if len(table) else 0.0,
        "class_counts": {n: int(c) for n, c in zip(table.class_names, positives.sum(0), strict=True)},
        "empty_images": int((~positives.any(axis=1)).sum()),
        "unknown_labels": int((table.targets == -1).sum()),
        "missing_files": len(table.missing_files()),
    }


def check_images(table: LabelTable) -> list[tuple[str, str]]:
    """Open and decode every image; return ``(path, problem)`` for each missing, truncated or unreadable one. JPEGs are
    decoded at 1/8 scale where they are large enough: every byte of the file is still read and checked, in a fraction
    of the time a camera photo takes in full."""
    problems = []
    for i in range(len(table)):
        path = table.path(i)
        try:
            read_image(path, (1, 1))
        except ImageLoadError as err:
            problems.append((str(path), str(err).removeprefix(f"{path}: ")))
    return problems
