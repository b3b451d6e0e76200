"""Data: label tables, formats, robust image loading, transforms, datasets and the Lightning data module."""

from labelgraph.data.datamodule import MultiLabelDataModule
from labelgraph.data.dataset import MultiLabelDataset, collate_skipping_bad
from labelgraph.data.formats import AnnotationError, load_table, read_csv, write_csv
from labelgraph.data.image_io import ImageLoadError, load_image, read_image
from labelgraph.data.label_table import LabelTable
from labelgraph.data.samplers import UnpaddedDistributedSampler

__all__ = [
    "AnnotationError",
    "ImageLoadError",
    "LabelTable",
    "MultiLabelDataModule",
    "MultiLabelDataset",
    "UnpaddedDistributedSampler",
    "collate_skipping_bad",
    "load_image",
    "read_image",
    "load_table",
    "read_csv",
    "write_csv",
]
