"""A training DataLoader that Lightning can stop and resume in the middle of an epoch, exactly.

Lightning saves the ``state_dict`` of every training loader that has one in each checkpoint and hands it back on
resume. A checkpoint written mid-epoch -- SLURM's pre-emption signal, ``ModelCheckpoint(every_n_train_steps=...)``
-- records how many batches of the epoch were trained on; the resumed run draws the same epoch's order
(:class:`~labelgraph.data.samplers.SeededEpochSampler`) and skips those batches' indices without reading their
images, so it trains on exactly the batches the uninterrupted run would have.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from torch.utils.data import DataLoader


class SkipFirstBatches:
    """The batches of ``batches`` (a batch sampler: lists of indices) after the first ``skip``."""

    def __init__(self, batches: Iterable[Any], skip: int) -> None:
        self.batches, self.skip = batches, skip

    def __iter__(self) -> Iterator[Any]:
        return itertools.islice(iter(self.batches), self.skip, None)

    def __len__(self) -> int:
        return len(self.batches) - self.skip


class ResumableDataLoader(DataLoader):
    """A ``DataLoader`` with ``state_dict`` / ``load_state_dict`` (Lightning's stateful-loader interface).

    Args:
        batches_done: returns how many batches of the current epoch have been trained on (the data module reads the
            trainer's progress; a loader cannot count them itself, its workers read ahead).
        *args, **kwargs: ``DataLoader``'s. Lightning re-creates the loader with these (to add a distributed
            sampler), so everything the class needs is an argument.
    """

    def __init__(self, *args: Any, batches_done: Callable[[], int] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.batches_done = batches_done
        self.skip_batches = 0

    def state_dict(self) -> dict[str, int]:
        done = int(self.batches_done()) if self.batches_done is not None else 0
        return {"batches_done": done if 0 < done < len(self) else 0}  # at an epoch's end the next starts afresh

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.skip_batches = int(state.get("batches_done", 0))

    @property
    def _index_sampler(self) -> Any:  # DataLoader's hook: what its iterator draws batches of indices from
        skipping = getattr(self, "skipping", None)
        return skipping if skipping is not None else super()._index_sampler

    def __iter__(self) -> Iterator[Any]:
        if not self.skip_batches:
            return super().__iter__()
        self.skipping = SkipFirstBatches(super()._index_sampler, self.skip_batches)
        iterator = super().__iter__()  # the iterator keeps self.skipping: it draws from it again on every reset
        self.skipping.skip = 0  # so later passes (the next epochs, with persistent workers) are whole
        self.skipping, self.skip_batches = None, 0
        return iterator
