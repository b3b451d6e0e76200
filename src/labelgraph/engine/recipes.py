"""From a method's :class:`~labelgraph.models.Recipe` to the objects a run trains with: the criterion, the auxiliary
losses, the optimiser and schedule factories. The recipes themselves are declared beside each method's builder.

Also here: the optimiser some recipes name that torch does not have (:class:`AdamNoDecayOn1d`).
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable
from functools import partial
from typing import Any

import torch
import torch.nn as nn

from labelgraph.errors import InvalidInputError
from labelgraph.losses import AuxiliaryLoss
from labelgraph.models.recipe import Component, Recipe

OptimizerFactory = Callable[[Any], torch.optim.Optimizer]
SchedulerFactory = Callable[[torch.optim.Optimizer], Any]


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


def component_class(component: Component) -> type:
    """The class a component names (imported by its path)."""
    module, _, name = component.class_path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise InvalidInputError(f"{component.class_path}: no such class ({err})") from err


def instantiate(component: Component, *args: Any) -> Any:
    """``class_path(*args, **init_args)``."""
    return component_class(component)(*args, **component.init_args)


def factory(component: Component) -> Callable[..., Any]:
    """``partial(class_path, **init_args)``: an optimiser factory (parameter groups -> optimiser) or a scheduler
    factory (optimiser -> scheduler)."""
    return partial(component_class(component), **component.init_args)


def build_criterion(recipe: Recipe) -> nn.Module:
    return instantiate(recipe.criterion)


def build_aux_losses(recipe: Recipe) -> list[AuxiliaryLoss]:
    return [instantiate(a) for a in recipe.aux_losses]


def optimizer_factory(recipe: Recipe) -> OptimizerFactory:
    return factory(recipe.optimizer)


def scheduler_factory(recipe: Recipe) -> SchedulerFactory | None:
    return factory(recipe.lr_scheduler) if recipe.lr_scheduler is not None else None


def describe_loss(criterion: nn.Module) -> str:
    """A loss in one line: its class and its hyper-parameters (ASL: γ-, γ+, clip, eps, reduction, scale)."""
    fields = (
        *("gamma_neg", "gamma_pos", "clip", "eps", "reduction", "unknown_weight", "alpha", "beta", "gamma"),
        *("expected_positives", "scheme", "delta_rel", "lamb", "margin", "tau", "change_epoch", "scale"),
    )
    args = ", ".join(f"{k} {getattr(criterion, k)}" for k in fields if hasattr(criterion, k))
    return f"{type(criterion).__name__}({args})" if args else type(criterion).__name__


def loss_scale(criterion: nn.Module) -> tuple[str, Any, Any]:
    """What sets a classification loss's magnitude: its class, reduction and constant factor."""
    return type(criterion).__name__, getattr(criterion, "reduction", None), getattr(criterion, "scale", 1.0)


def check_loss_scale(method: str, recipe: Recipe, criterion: nn.Module, aux_losses: list[AuxiliaryLoss]) -> None:
    """Warn when the paper's auxiliary terms of ``method`` are paired with a criterion of another scale than the one
    their weights were tuned against (``recipe.aux_tied_to_criterion``: SADCL's 100 and 50 against ASL's mean x 1000;
    against a plain BCE of ~0.7 they are ~600x the classification loss and the label features collapse)."""
    if not recipe.aux_tied_to_criterion or not aux_losses:
        return
    expected = build_criterion(recipe)
    if loss_scale(criterion) != loss_scale(expected):
        weights = ", ".join(f"{type(a).__name__} x {a.weight:g}" for a in aux_losses)
        warnings.warn(
            f"{method}: the auxiliary weights ({weights}) are calibrated against {recipe.criterion.describe()}; with "
            f"{type(criterion).__name__} the auxiliary terms can dominate the classification loss and the label "
            f"features collapse. Use the method's criterion (leave criterion unset) or rescale the weights.",
            stacklevel=2,
        )
