"""Samplers: a training sampler whose order and augmentations depend only on (seed, epoch), so a resumed run
replays an epoch exactly; an evaluation sampler for DDP that never repeats a sample."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler


class SeededEpochSampler(Sampler):
    """A random permutation per epoch, drawn from ``(seed, epoch)`` alone, yielding ``(index, sample_seed)``.

    ``MultiLabelDataset`` seeds the random draws of its augmentations with ``sample_seed``, so an image's crop, flip
    or cutout in a given epoch is the same whichever process, worker or run reads it; the shared ``RandomSampler``
    draws its order from the global random state, which a restarted run cannot reproduce.

    The epoch is ``epoch_source()`` when given (the data module passes the trainer's epoch counter), else the last
    ``set_epoch`` value. The callable matters after a resume: Lightning creates the first iterator -- and loader
    workers prefetch from it -- before it calls ``set_epoch``, which would replay epoch 0's order.
    """

    def __init__(self, dataset: Dataset, seed: int = 0, epoch_source: Callable[[], int] | None = None) -> None:
        self.size, self.seed, self.epoch, self.epoch_source = len(dataset), int(seed), 0, epoch_source

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = int(self.epoch_source()) if self.epoch_source is not None else self.epoch
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(self.size, generator=g).tolist()
        seeds = torch.randint(0, 2**62, (self.size,), generator=g).tolist()
        return iter(zip(order, seeds, strict=True))

    def __len__(self) -> int:
        return self.size


class UnpaddedDistributedSampler(DistributedSampler):
    """Rank r takes samples r, r + W, r + 2W, ... with no padding, so ranks may get one sample fewer.

    The default ``DistributedSampler`` repeats samples to give every rank the same count, which counts a few
    images twice in a gathered evaluation (the Query2Label/SADCL evaluation has this bias). Lightning keeps a
    ``DistributedSampler`` that a data loader already has, so this one survives into the run.
    """

    def __init__(self, dataset: Dataset, num_replicas: int | None = None, rank: int | None = None) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.num_samples = len(range(self.rank, len(dataset), self.num_replicas))
        self.total_size = len(dataset)

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))

    def __len__(self) -> int:
        return self.num_samples
