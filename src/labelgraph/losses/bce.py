"""Binary cross-entropy on logits that ignores unknown (-1) targets."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F


def known_mask(targets: torch.Tensor) -> torch.Tensor:
    """1.0 where the target is known (0 or 1), 0.0 where it is unknown (-1)."""
    return (targets >= 0).to(torch.float32)


class MaskedBCEWithLogitsLoss(nn.Module):
    """BCE-with-logits over the known entries.

    With no unknown entries and ``reduction="mean"`` this equals ``nn.BCEWithLogitsLoss()`` and ML-GCN's
    ``MultiLabelSoftMarginLoss`` (mean over batch and classes).

    Args:
        reduction: ``"mean"`` (over known entries) or ``"sum"``.
        unknown: ``"ignore"`` (default) or ``"negative"`` (treat -1 as absent).

    Shapes:
        logits (B, C) float, targets (B, C) in {1, 0, -1} -> scalar.
    """

    def __init__(self, reduction: Literal["mean", "sum"] = "mean", unknown: Literal["ignore", "negative"] = "ignore"):
        super().__init__()
        if reduction not in ("mean", "sum") or unknown not in ("ignore", "negative"):
            raise ValueError(f"reduction={reduction!r} (mean|sum), unknown={unknown!r} (ignore|negative)")
        self.reduction = reduction
        self.unknown = unknown

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        logits = logits.float()
        weight = known_mask(targets) if self.unknown == "ignore" else torch.ones_like(logits)
        loss = F.binary_cross_entropy_with_logits(logits, (targets == 1).float(), reduction="none") * weight
        if self.reduction == "sum":
            return loss.sum()
        return loss.sum() / weight.sum().clamp_min(1.0)
