"""The auxiliary losses each method's paper trains with, applied by default by the training task."""

from __future__ import annotations

from collections.abc import Callable

from labelgraph.losses.auxiliary import AuxiliaryLoss
from labelgraph.losses.contrastive import PrototypeToSampleContrastiveLoss, SampleToSampleContrastiveLoss
from labelgraph.losses.graph_sparsity import GraphSparsityLoss

METHOD_AUX_LOSSES: dict[str, Callable[[], list[AuxiliaryLoss]]] = {
    "a_gcn": lambda: [GraphSparsityLoss(weight=1.0, norm="l1")],
    "lglm": lambda: [GraphSparsityLoss(weight=1.0, norm="l1")],
    "sadcl": lambda: [SampleToSampleContrastiveLoss(weight=100.0), PrototypeToSampleContrastiveLoss(weight=50.0)],
}


def default_aux_losses(method: str) -> list[AuxiliaryLoss]:
    """The paper's auxiliary terms of ``method`` (none for most methods)."""
    factory = METHOD_AUX_LOSSES.get(method)
    return factory() if factory is not None else []
