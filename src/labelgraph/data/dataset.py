"""``MultiLabelDataset``: (image, target) pairs from a :class:`LabelTable`."""

from __future__ import annotations

import random
import warnings
from collections.abc import Callable

import torch
from torch.utils.data import Dataset, default_collate, get_worker_info

from labelgraph.data.image_io import ImageLoadError, read_image
from labelgraph.data.label_table import LabelTable
from labelgraph.data.transforms import decode_size, eval_transform


class MultiLabelDataset(Dataset):
    """Images and int8 targets of one split.

    Args:
        table: the split.
        transform: uint8 (3, H, W) -> uint8 (3, S, S) (a preset of ``labelgraph.data.transforms``).
        skip_bad_images: if False (default) an unreadable image raises :class:`ImageLoadError` naming the file.
            If True it is warned about, recorded in ``skipped`` (in the process that read it) and in ``skip_log``
            (a file every loader worker appends the path to, so the main process can count them) and returned as
            ``None``, which :func:`collate_skipping_bad` drops from the batch.
        decode_size: JPEGs of at least twice this on both sides are decoded at a reduced scale that keeps both
            sides >= it (``labelgraph.data.transforms.decode_size`` gives it per preset); None: full size.

    Returns per item:
        image (3, H, W) uint8, dense in channels-last memory; target (C,) int8 in {1, 0, -1}; and, when
        ``return_index`` is set (a loss that keeps per-sample state asks for it), the row number in the split.
    """

    return_index = False

    def __init__(
        self,
        table: LabelTable,
        transform: Callable | None = None,
        skip_bad_images: bool = False,
        decode_size: int | None = None,
        skip_log: str | None = None,
    ) -> None:
        self.table = table
        self.transform = transform
        self.skip_bad_images = skip_bad_images
        self.min_size = (decode_size, decode_size) if decode_size else None
        self.skipped: list[str] = []
        self.skip_log = skip_log

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor] | None:
        """``item`` is an index, or ``(index, seed)`` from ``SeededEpochSampler``: the augmentation's random draws
        (Python's ``random`` and torch's) then come from ``seed``. A loader worker's global random state serves no one
        else, so it is simply reseeded; in the main process it is saved and restored around the sample."""
        if isinstance(item, (tuple, list)):
            index, seed = item
            if get_worker_info() is not None:
                seed_augmentations(seed)
                return self._load(int(index))
            state = random.getstate()
            try:
                with torch.random.fork_rng(devices=[]):
                    seed_augmentations(seed)
                    return self._load(int(index))
            finally:
                random.setstate(state)
        return self._load(int(item))

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        path = self.table.path(index)
        try:
            image = read_image(path, self.min_size)
        except ImageLoadError as err:
            if not self.skip_bad_images:
                raise
            if str(path) not in self.skipped:
                self.skipped.append(str(path))
                warnings.warn(f"skipping unreadable image: {err}", stacklevel=2)
                if self.skip_log:
                    with open(self.skip_log, "a", encoding="utf-8", errors="surrogateescape") as log:
                        log.write(f"{path}\n")  # one short append: whole lines, whichever worker writes
            return None
        if self.transform is not None:
            image = self.transform(image)
        target = torch.from_numpy(self.table.targets[index])
        return (image, target, index) if self.return_index else (image, target)


def seed_augmentations(seed: int) -> None:
    """Seed what the transforms draw from: Python's ``random`` and torch's CPU generator (``torch.manual_seed``
    would also seed every accelerator, 170 us a call)."""
    random.seed(seed)
    torch.default_generator.manual_seed(seed)


def eval_dataset(
    table: LabelTable,
    image_size: int,
    preset: str = "resize",
    skip_bad_images: bool = False,
    skip_log: str | None = None,
) -> MultiLabelDataset:
    """The evaluation view of ``table``: the eval ``preset`` at ``image_size``, decoded no larger than it needs."""
    transform = eval_transform(image_size, preset)
    return MultiLabelDataset(table, transform, skip_bad_images, decode_size(preset, image_size), skip_log)


def collate_images(batch: list) -> tuple[torch.Tensor, ...]:
    """``default_collate`` of (image, target[, index]) items that keeps the images' channels-last memory.

    Images (3, H, W) stored HWC (the pipelines' output) are stacked as (B, H, W, 3) -- one memcpy per image, into
    shared memory in a loader worker -- and returned as a (B, 3, H, W) channels-last view. (``default_collate``
    would stack them into NCHW with a transposing copy, 0.9 ms per 448 px image.) Other items collate as usual.
    """
    images, *rest = zip(*batch, strict=True)  # rest: the targets (and the row numbers, when asked for)
    if isinstance(images[0], torch.Tensor) and images[0].dim() == 3:
        stacked = default_collate([image.permute(1, 2, 0) for image in images])  # (B, H, W, 3)
        return stacked.permute(0, 3, 1, 2), *(default_collate(list(column)) for column in rest)
    return default_collate(batch)


def stack_images(images: list[torch.Tensor]) -> torch.Tensor:
    """(3, H, W) images -> a (B, 3, H, W) batch in channels-last memory (a plain memcpy for the pipelines' output)."""
    return torch.stack([image.permute(1, 2, 0) for image in images]).permute(0, 3, 1, 2)


def collate_skipping_bad(batch: list) -> tuple[torch.Tensor, torch.Tensor] | None:
    """:func:`collate_images` without the ``None`` items of skipped images (None if the whole batch was bad)."""
    batch = [item for item in batch if item is not None]
    return collate_images(batch) if batch else None
