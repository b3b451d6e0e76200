"""Dataset formats: each parser turns a dataset's annotation files into a :class:`LabelTable`.

``load_table(format, source, class_names, image_root)`` dispatches on the format name.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from labelgraph.data.formats.csv_format import AnnotationError, read_class_list, read_csv, write_csv
from labelgraph.data.label_table import LabelTable

FORMATS: dict[str, Callable[..., LabelTable]] = {"csv": read_csv}


def load_table(
    format: str, source: str | Path, class_names: list[str] | None = None, image_root: str | Path | None = None
) -> LabelTable:
    if format not in FORMATS:
        raise ValueError(f"unknown dataset format {format!r}; available: {', '.join(sorted(FORMATS))}")
    return FORMATS[format](source, class_names=class_names, image_root=image_root)


__all__ = ["FORMATS", "AnnotationError", "load_table", "read_class_list", "read_csv", "write_csv"]
