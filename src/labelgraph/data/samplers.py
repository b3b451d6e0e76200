"""Evaluation sampler for DDP that never repeats a sample."""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import Dataset, DistributedSampler


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
