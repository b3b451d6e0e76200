"""Dataset formats: each parser turns a dataset's annotation files into a :class:`LabelTable`.

``load_table(format, split, root=..., **options)`` dispatches on the format name:

==============  ================================================  ==========================================
format          ``split``                                         options
==============  ================================================  ==========================================
``csv``         a CSV file (relative to ``root`` if given)        --
``coco2014``    ``train`` / ``val``                               ``class_order``, ``include_unlabeled``
``voc2007``     ``train`` / ``val`` / ``trainval`` / ``test``     ``difficult``
``voc2012``     ``train`` / ``val`` / ``trainval``                ``difficult``
``nuswide``     ``train`` / ``test``                              ``variant``, ``drop_empty``, ``csv_file``
``vg500``       ``train`` / ``test``                              --
``mirflickr``   ``train`` / ``test`` / ``all``                    ``relevant``, ``seed``, ``train_fraction``
``label-studio``  Label Studio's JSON or JSON-MIN export (file)     -- (``root``: the images' folder)
``cvat``        a "CVAT for images 1.1" XML export (file)         -- (``root``: the images' folder)
==============  ================================================  ==========================================
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from labelgraph.data.formats.coco import read_coco
from labelgraph.data.formats.csv_format import AnnotationError, read_class_list, read_csv, write_csv
from labelgraph.data.formats.cvat import read_cvat
from labelgraph.data.formats.label_studio import read_label_studio
from labelgraph.data.formats.mirflickr import read_mirflickr
from labelgraph.data.formats.nuswide import read_nuswide
from labelgraph.data.formats.vg500 import read_vg500
from labelgraph.data.formats.voc import read_voc
from labelgraph.data.label_table import LabelTable


def _csv(root: str | Path | None, split: str, class_names: list[str] | None = None) -> LabelTable:
    path = Path(split) if root is None or Path(split).is_absolute() else Path(root) / split
    return read_csv(path, class_names=class_names)


FORMATS: dict[str, Callable[..., LabelTable]] = {
    "csv": _csv,
    "coco2014": read_coco,
    "voc2007": partial(read_voc, year=2007),
    "voc2012": partial(read_voc, year=2012),
    "nuswide": read_nuswide,
    "vg500": read_vg500,
    "mirflickr": read_mirflickr,
    "label-studio": read_label_studio,
    "cvat": read_cvat,
}
#: formats whose ``split`` is an annotation file, needing no ``root`` (the labelling tools': the file's folder)
FILE_FORMATS = ("csv", "label-studio", "cvat")


def load_table(
    format: str,
    split: str,
    *,
    root: str | Path | None = None,
    class_names: list[str] | None = None,
    image_root: str | Path | None = None,
    **options: Any,
) -> LabelTable:
    """Parse one split of a dataset.

    Args:
        format: a key of :data:`FORMATS`.
        split: the split name (or, for ``csv``, the file).
        root: the folder the dataset's archive unpacks into (required except for ``csv``).
        class_names: the class order to use (checked against the dataset's names where it has them).
        image_root: where the images are, if not where the format expects them.
        **options: the format's options (see the table above).
    """
    if format not in FORMATS:
        raise ValueError(f"unknown dataset format {format!r}; available: {', '.join(sorted(FORMATS))}")
    if format not in FILE_FORMATS and root is None:
        raise ValueError(f"format {format!r} needs `root`: the folder its archive unpacks into")
    try:
        table = FORMATS[format](root, split, class_names=class_names, **options)
    except TypeError as err:
        if "unexpected keyword" in str(err):
            raise TypeError(f"format {format!r}: {err}") from err
        raise
    if image_root is not None:
        table.root = Path(image_root)
    return table


__all__ = ["FORMATS", "AnnotationError", "load_table", "read_class_list", "read_csv", "write_csv"]
