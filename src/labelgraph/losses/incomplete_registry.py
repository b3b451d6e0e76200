"""The incomplete-label losses by name: what ``MultiLabelTask(loss=...)``, ``labelgraph compare --losses`` and
``labelgraph train --loss`` accept, and the loss ``labelgraph train`` picks for an incomplete split."""

from __future__ import annotations

from typing import Any

from labelgraph.losses.hill_splc import HillLoss, SPLCLoss
from labelgraph.losses.incomplete_labels import (
    AssumeNegativeLoss,
    ExpectedPositiveLoss,
    IgnoreUnknownLoss,
    IncompleteLabelLoss,
    PartialBCELoss,
)
from labelgraph.losses.large_loss import LargeLossLoss
from labelgraph.losses.role import RoleLoss

#: name -> (class, its arguments) -- one line each in docs/incomplete_labels.md
INCOMPLETE_LABEL_LOSSES: dict[str, tuple[type[IncompleteLabelLoss], dict[str, Any]]] = {
    "ignore": (IgnoreUnknownLoss, {}),
    "an": (AssumeNegativeLoss, {}),
    "wan": (AssumeNegativeLoss, {"unknown_weight": "1/(C-1)"}),
    "partial_bce": (PartialBCELoss, {}),
    "epr": (ExpectedPositiveLoss, {}),
    "role": (RoleLoss, {}),
    "ll_r": (LargeLossLoss, {"scheme": "reject"}),
    "ll_ct": (LargeLossLoss, {"scheme": "correct_temporary"}),
    "ll_cp": (LargeLossLoss, {"scheme": "correct_permanent"}),
    "hill": (HillLoss, {}),
    "splc": (SPLCLoss, {}),
}


#: the loss ``labelgraph train`` uses for a split with unknown entries, by setting: the best mean test mAP of baseline,
#: ML-GCN and Query2Label in the study of docs/incomplete_labels.md (single positive: SPLC 54.26, LL-R 54.03, ROLE
#: 53.96, AN 53.87; partial, the mean of 50 % and 10 % known: ignore 55.82, partial-BCE 55.76, ROLE 55.14)
RECOMMENDED_LOSSES = {"single-positive": "splc", "partial": "ignore"}


def recommended_loss(label_setting: str) -> str | None:
    """The recommended loss for a split whose :func:`~labelgraph.data.hide_labels.label_setting_of` is
    ``label_setting`` (``full``, ``single-positive``, ``partial:F``); None for full labels."""
    if label_setting == "full":
        return None
    return RECOMMENDED_LOSSES["single-positive" if label_setting == "single-positive" else "partial"]


def incomplete_label_loss(name: str, scale: float = 1.0, **overrides: Any) -> IncompleteLabelLoss:
    """The loss registered as ``name`` with its defaults (``overrides`` win), times ``scale``."""
    if name not in INCOMPLETE_LABEL_LOSSES:
        raise ValueError(f"unknown incomplete-label loss {name!r}; available: {', '.join(INCOMPLETE_LABEL_LOSSES)}")
    cls, kwargs = INCOMPLETE_LABEL_LOSSES[name]
    return cls(**{**kwargs, **overrides}, scale=scale)
