"""The losses each method is defined with, in one place: the task, the demo and the sweeps all read them here.

A method's *criterion* is the classification loss its paper trains with (masked BCE unless the method says otherwise:
Query2Label, SADCL and ML-Decoder train with ASL); its *auxiliary terms* are the extra losses of its paper
(A-GCN/LGLM's graph sparsity, SADCL's two contrastive terms). Auxiliary weights can be tied to the scale of the
criterion they were tuned with: SADCL's 100 and 50 are relative to ASL's mean x 1000 (Query2Label's scaling), against
which the contrastive terms are a fraction of the total; against a plain BCE (~0.7) they are ~600x the classification
loss and the label features collapse. :func:`check_loss_scale` warns about such a pairing.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import torch.nn as nn

from labelgraph.losses.asl import AsymmetricLoss
from labelgraph.losses.auxiliary import AuxiliaryLoss
from labelgraph.losses.bce import MaskedBCEWithLogitsLoss
from labelgraph.losses.contrastive import PrototypeToSampleContrastiveLoss, SampleToSampleContrastiveLoss
from labelgraph.losses.graph_sparsity import GraphSparsityLoss

METHOD_CRITERIA: dict[str, Callable[[], nn.Module]] = {
    "query2label": lambda: AsymmetricLoss.from_preset("query2label"),
    "sadcl": lambda: AsymmetricLoss.from_preset("sadcl"),
    "ml_decoder": lambda: AsymmetricLoss.from_preset("asl"),  # ML-Decoder's train.py: γ- 4, γ+ 0, clip 0.05, sum
}

METHOD_AUX_LOSSES: dict[str, Callable[[], list[AuxiliaryLoss]]] = {
    "a_gcn": lambda: [GraphSparsityLoss(weight=1.0, norm="l1")],
    "lglm": lambda: [GraphSparsityLoss(weight=1.0, norm="l1")],
    "sadcl": lambda: [SampleToSampleContrastiveLoss(weight=100.0), PrototypeToSampleContrastiveLoss(weight=50.0)],
}

# methods whose auxiliary weights are relative to one criterion scale: method -> (scale, how to get it)
AUX_WEIGHT_SCALE: dict[str, tuple[str, str]] = {
    "sadcl": ("asl_mean_x1000", "ASL with reduction 'mean' and scale 1000 (labelgraph.losses.AsymmetricLoss)"),
}


def default_criterion(method: str) -> nn.Module:
    """The classification loss ``method`` is defined with (masked BCE for most methods)."""
    factory = METHOD_CRITERIA.get(method)
    return factory() if factory is not None else MaskedBCEWithLogitsLoss()


def default_aux_losses(method: str) -> list[AuxiliaryLoss]:
    """The paper's auxiliary terms of ``method`` (none for most methods)."""
    factory = METHOD_AUX_LOSSES.get(method)
    return factory() if factory is not None else []


def criterion_scale(criterion: nn.Module) -> str:
    """A name for the scale of a classification loss: ``asl_mean_x1000`` (Query2Label's), or its class name."""
    if isinstance(criterion, AsymmetricLoss) and criterion.reduction == "mean" and criterion.scale == 1000.0:
        return "asl_mean_x1000"
    return type(criterion).__name__


def check_loss_scale(method: str, criterion: nn.Module, aux_losses: list[AuxiliaryLoss]) -> None:
    """Warn when ``method``'s paper auxiliary terms are paired with a criterion of another scale than theirs."""
    if method not in AUX_WEIGHT_SCALE or not aux_losses:
        return
    scale, remedy = AUX_WEIGHT_SCALE[method]
    if criterion_scale(criterion) != scale:
        weights = ", ".join(f"{type(a).__name__} x {a.weight:g}" for a in aux_losses)
        warnings.warn(
            f"{method}: the auxiliary weights ({weights}) are calibrated against {remedy}; with "
            f"{type(criterion).__name__} the auxiliary terms can dominate the classification loss and the label "
            f"features collapse. Use the method's criterion (leave criterion unset) or rescale the weights.",
            stacklevel=2,
        )
