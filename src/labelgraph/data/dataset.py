"""``MultiLabelDataset``: (image, target) pairs from a :class:`LabelTable`."""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable

import torch
from torch.utils.data import Dataset, default_collate

from labelgraph.data.image_io import ImageLoadError, load_image
from labelgraph.data.label_table import LabelTable


class MultiLabelDataset(Dataset):
    """Images and int8 targets of one split.

    Args:
        table: the split.
        transform: PIL image -> tensor.
        skip_bad_images: if False (default) an unreadable image raises :class:`ImageLoadError` naming the file.
            If True it is warned about, recorded in ``skipped`` (in the process that read it) and returned as
            ``None``, which :func:`collate_skipping_bad` drops from the batch.

    Returns per item:
        image (3, H, W) float in [0, 1], target (C,) int8 in {1, 0, -1}.
    """

    def __init__(self, table: LabelTable, transform: Callable | None = None, skip_bad_images: bool = False) -> None:
        self.table = table
        self.transform = transform
        self.skip_bad_images = skip_bad_images
        self.skipped: list[str] = []

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``item`` is an index, or ``(index, seed)`` from ``SeededEpochSampler``: the augmentation's random draws
        (Python's ``random`` and torch's) then come from ``seed``, leaving the process's own random state as it was."""
        if isinstance(item, (tuple, list)):
            index, seed = item
            state = random.getstate()
            try:
                with torch.random.fork_rng(devices=[]):
                    random.seed(seed)
                    torch.manual_seed(seed)
                    return self._load(int(index))
            finally:
                random.setstate(state)
        return self._load(int(item))

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        path = self.table.path(index)
        try:
            image = load_image(path)
        except ImageLoadError as err:
            if not self.skip_bad_images:
                raise
            if str(path) not in self.skipped:
                self.skipped.append(str(path))
                warnings.warn(f"skipping unreadable image: {err}", stacklevel=2)
            return None
        if self.transform is not None:
            image = self.transform(image)
        return image, torch.from_numpy(self.table.targets[index])


def collate_skipping_bad(batch: list) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``default_collate`` without the ``None`` items of skipped images (None if the whole batch was bad)."""
    batch = [item for item in batch if item is not None]
    return default_collate(batch) if batch else None
