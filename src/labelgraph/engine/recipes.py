"""The optimiser and schedule each method is defined with, in one place (the task, the demo and sweeps read them).

A method's losses live in :mod:`labelgraph.losses.method_losses`; what it needs beyond them to train as its paper
does is here. A method without an entry trains with ML-GCN's recipe (SGD, lr 0.1, momentum 0.9, weight decay 1e-4,
no schedule), the task's historical default. Whatever a config or caller sets explicitly wins.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch

from labelgraph.engine.schedulers import OneCycleLR

OptimizerFactory = Callable[[Any], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]


def sgd(params: Any, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 1e-4) -> torch.optim.Optimizer:
    """ML-GCN's recipe: SGD, lr 0.1, momentum 0.9, weight decay 1e-4."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def adamw(params: Any, lr: float = 1e-4, weight_decay: float = 1e-2) -> torch.optim.Optimizer:
    """Query2Label's recipe: AdamW (β .9/.999), one learning rate for every parameter, weight decay 1e-2."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


class AdamNoDecayOn1d(torch.optim.Adam):
    """ASL's and ML-Decoder's optimiser: Adam with L2 weight decay on the weight matrices and kernels only -- none on
    biases, norms or other 1-D parameters (their ``add_weight_decay``). Each parameter group is split in two, keeping
    its other entries (name, learning-rate multiplier)."""

    def __init__(self, params: Any, lr: float = 1e-4, weight_decay: float = 1e-4) -> None:
        groups = list(params)
        if groups and isinstance(groups[0], torch.Tensor):
            groups = [{"params": groups}]
        split = []
        for group in groups:
            for keep, decay in ((lambda p: p.ndim > 1, weight_decay), (lambda p: p.ndim <= 1, 0.0)):
                chosen = [p for p in group["params"] if keep(p)]
                if chosen:
                    split.append({**group, "params": chosen, "weight_decay": decay})
        super().__init__(split, lr=lr)


@dataclass(frozen=True)
class OptimizationRecipe:
    """What a method's paper optimises with.

    Args:
        optimizer: parameter groups -> optimizer (each group's ``lr`` is the recipe's lr x the group's multiplier).
        lr_scheduler: optimizer -> scheduler, or None for a constant learning rate.
        source: where the values come from.
    """

    optimizer: OptimizerFactory
    lr_scheduler: SchedulerFactory | None
    source: str


DEFAULT_RECIPE = OptimizationRecipe(sgd, None, "ML-GCN (demo_coco_gcn.sh): SGD 0.1, momentum 0.9, wd 1e-4")

METHOD_RECIPES: dict[str, OptimizationRecipe] = {
    "query2label": OptimizationRecipe(
        partial(adamw, lr=1e-4, weight_decay=1e-2),
        partial(OneCycleLR, pct_start=0.2),
        "Query2Label README: AdamW 1e-4, wd 1e-2, one-cycle (20 % warm-up) stepped per batch",
    ),
    "sadcl": OptimizationRecipe(
        partial(adamw, lr=5e-5, weight_decay=5e-3),
        partial(OneCycleLR, pct_start=0.2),
        "SADCL scripts/sadcl/coco.sh: AdamW 5e-5, wd 5e-3, one-cycle (20 % warm-up) stepped per batch",
    ),
    "ml_decoder": OptimizationRecipe(
        partial(AdamNoDecayOn1d, lr=1e-4, weight_decay=1e-4),
        partial(OneCycleLR, pct_start=0.2),
        "ML-Decoder train.py: Adam 1e-4, L2 1e-4 on weights only, one-cycle (20 % warm-up) stepped per batch",
    ),
}


def method_recipe(method: str) -> OptimizationRecipe:
    """The optimisation recipe of ``method`` (ML-GCN's for the methods that define none)."""
    return METHOD_RECIPES.get(method, DEFAULT_RECIPE)
