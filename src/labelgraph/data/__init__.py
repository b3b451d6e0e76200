"""Data: label tables, formats, robust image loading, transforms, datasets and the Lightning data module.

Each name imports its module when first used: reading a CSV does not load Lightning."""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelgraph.lazy_exports import lazy_exports

EXPORTS = {
    "AnnotationError": "labelgraph.data.formats",
    "ImageLoadError": "labelgraph.data.image_io",
    "LabelTable": "labelgraph.data.label_table",
    "MultiLabelDataModule": "labelgraph.data.datamodule",
    "MultiLabelDataset": "labelgraph.data.dataset",
    "UnpaddedDistributedSampler": "labelgraph.data.samplers",
    "collate_skipping_bad": "labelgraph.data.dataset",
    "load_image": "labelgraph.data.image_io",
    "load_table": "labelgraph.data.formats",
    "read_csv": "labelgraph.data.formats",
    "read_image": "labelgraph.data.image_io",
    "write_csv": "labelgraph.data.formats",
}
__all__ = [
    "AnnotationError",
    "ImageLoadError",
    "LabelTable",
    "MultiLabelDataModule",
    "MultiLabelDataset",
    "UnpaddedDistributedSampler",
    "collate_skipping_bad",
    "load_image",
    "load_table",
    "read_csv",
    "read_image",
    "write_csv",
]
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

if TYPE_CHECKING:
    from labelgraph.data.datamodule import MultiLabelDataModule
    from labelgraph.data.dataset import MultiLabelDataset, collate_skipping_bad
    from labelgraph.data.formats import AnnotationError, load_table, read_csv, write_csv
    from labelgraph.data.image_io import ImageLoadError, load_image, read_image
    from labelgraph.data.label_table import LabelTable
    from labelgraph.data.samplers import UnpaddedDistributedSampler
