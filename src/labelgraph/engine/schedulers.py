"""Learning-rate schedules: those that need what only the trainer knows (the number of optimisation steps), and the
per-stage cosine of graphMLC's two-stage protocol (:class:`TwoStageCosineLR`, driven by ``StagedFineTuning``).

``OneCycleLR`` is torch's one-cycle policy stepped every batch, with two conveniences for configs:
``total_steps`` defaults to the trainer's estimate (``MultiLabelTask`` provides it through ``planned_steps``), and
the peak learning rate of each parameter group is that group's configured rate -- so backbone/head multipliers
survive (torch's ``max_lr`` would overwrite every group with one value).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from contextvars import ContextVar

import torch

_PLANNED_STEPS: ContextVar[Callable[[], int] | None] = ContextVar("planned_steps", default=None)


@contextlib.contextmanager
def planned_steps(steps: int | Callable[[], int]) -> Iterator[None]:
    """Within this block, step-interval schedulers built without ``total_steps`` plan for ``steps`` steps (a number,
    or a callable asked only when such a scheduler is built)."""
    token = _PLANNED_STEPS.set(steps if callable(steps) else (lambda: int(steps)))
    try:
        yield
    finally:
        _PLANNED_STEPS.reset(token)


class OneCycleLR(torch.optim.lr_scheduler.OneCycleLR):
    """One-cycle schedule (Query2Label / SADCL: ``pct_start`` 0.2, cosine, ``div_factor`` 25, ``final_div_factor``
    1e4, β1 cycled 0.85-0.95), stepped per batch; peaks at each group's configured learning rate.

    Args:
        optimizer: the optimizer (its groups' ``lr`` are the peaks).
        total_steps: number of optimisation steps; default: the trainer's estimate.
        pct_start, anneal_strategy, cycle_momentum, base_momentum, max_momentum, div_factor, final_div_factor:
            as ``torch.optim.lr_scheduler.OneCycleLR``.
    """

    interval = "step"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        total_steps: int | None = None,
        pct_start: float = 0.2,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
    ) -> None:
        planner = _PLANNED_STEPS.get()
        total_steps = total_steps or (planner() if planner is not None else None)
        if not total_steps:
            raise ValueError(
                "OneCycleLR needs total_steps: give it, or build it through MultiLabelTask (which plans the steps)"
            )
        super().__init__(
            optimizer,
            max_lr=[group["lr"] for group in optimizer.param_groups],
            total_steps=int(total_steps),
            pct_start=pct_start,
            anneal_strategy=anneal_strategy,
            cycle_momentum=cycle_momentum,
            base_momentum=base_momentum,
            max_momentum=max_momentum,
            div_factor=div_factor,
            final_div_factor=final_div_factor,
        )


class TwoStageCosineLR(torch.optim.lr_scheduler.LRScheduler):
    """Per-epoch cosine decay from ``peaks[s]`` to ``floors[s]`` within each stage ``s``, times each group's
    ``lr_mult``. Stage 1 lasts ``epochs[0]`` epochs; later epochs are stage 2.

    Shapes: none (epoch -> one learning rate per parameter group).
    """

    interval = "epoch"

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        epochs: tuple[int, int],
        peaks: tuple[float, float] = (1e-3, 1e-4),
        floors: tuple[float, float] = (1e-4, 1e-6),
        last_epoch: int = -1,
    ) -> None:
        self.epochs, self.peaks, self.floors = tuple(epochs), tuple(peaks), tuple(floors)
        super().__init__(optimizer, last_epoch)

    def stage_lr(self, epoch: int) -> float:
        stage, e = (0, epoch) if epoch < self.epochs[0] else (1, epoch - self.epochs[0])
        n = self.epochs[stage]
        t = min(e, n - 1) / (n - 1) if n > 1 else 0.0
        return self.floors[stage] + (self.peaks[stage] - self.floors[stage]) * (1 + math.cos(math.pi * t)) / 2

    def get_lr(self) -> list[float]:
        lr = self.stage_lr(max(self.last_epoch, 0))
        return [lr * group.get("lr_mult", 1.0) for group in self.optimizer.param_groups]
