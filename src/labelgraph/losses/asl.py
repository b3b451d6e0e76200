"""Asymmetric loss (ASL), Ben-Baruch, Ridnik et al., ICCV 2021: https://arxiv.org/abs/2009.14119

L = -sum_{b,c} [ y (1 - p)^{γ+} log p  +  (1 - y) p_m^{γ-} log(1 - p_m) ],   p = σ(logit),  p_m = max(p - m, 0)

with the probability margin ("clip") m shifting easy negatives to zero loss. As in the official code the focal
weights are computed without gradient by default (``disable_grad_focal``), and probabilities are clamped at
``eps`` inside the logs. Unknown (-1) targets contribute nothing.

Presets (``AsymmetricLoss.from_preset``):
    ``asl``: γ- = 4, γ+ = 0, m = 0.05, sum reduction, eps 1e-8 (ASL's train.py; its class default γ+ = 1 is not what
    it trains);
    ``query2label``: γ- = 2, γ+ = 0, m = 0, eps 1e-5, and Query2Label's scaling -sum / (B C) * 1000 (mean reduction
    x 1000);
    ``sadcl``: Query2Label's loss with γ- = 4 (SADCL's scripts/sadcl/coco.sh, both stages).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn

from labelgraph.losses.bce import known_mask

ASL_PRESETS: dict[str, dict] = {
    "asl": {"gamma_neg": 4.0, "gamma_pos": 0.0, "clip": 0.05, "eps": 1e-8, "reduction": "sum", "scale": 1.0},
    "query2label": {"gamma_neg": 2.0, "gamma_pos": 0.0, "clip": 0.0, "eps": 1e-5, "reduction": "mean", "scale": 1000.0},
    "sadcl": {"gamma_neg": 4.0, "gamma_pos": 0.0, "clip": 0.0, "eps": 1e-5, "reduction": "mean", "scale": 1000.0},
}


class AsymmetricLoss(nn.Module):
    """ASL for multi-label classification.

    Args:
        gamma_neg: focusing exponent γ- of negatives.
        gamma_pos: focusing exponent γ+ of positives.
        clip: probability margin m for negatives (0 disables it).
        eps: clamp of the probabilities inside the logarithms.
        reduction: ``"sum"`` (the paper and official code) or ``"mean"`` over known entries.
        scale: a constant factor (Query2Label multiplies its mean loss by 1000).
        disable_grad_focal: compute the focusing weights without gradient (official default).

    Shapes:
        logits (B, C), targets (B, C) in {1, 0, -1} -> scalar.
    """

    def __init__(
        self,
        gamma_neg: float = 4.0,
        gamma_pos: float = 0.0,
        clip: float = 0.05,
        eps: float = 1e-8,
        reduction: Literal["sum", "mean"] = "sum",
        scale: float = 1.0,
        disable_grad_focal: bool = True,
    ) -> None:
        super().__init__()
        if reduction not in ("sum", "mean"):
            raise ValueError(f"reduction={reduction!r}; use 'sum' or 'mean'")
        self.gamma_neg, self.gamma_pos, self.clip, self.eps = gamma_neg, gamma_pos, clip, eps
        self.reduction, self.scale, self.disable_grad_focal = reduction, scale, disable_grad_focal

    @classmethod
    def from_preset(cls, name: Literal["asl", "query2label", "sadcl"]) -> AsymmetricLoss:
        if name not in ASL_PRESETS:
            raise ValueError(f"unknown ASL preset {name!r}; available: {', '.join(ASL_PRESETS)}")
        return cls(**ASL_PRESETS[name])

    def forward(self, logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        y = (targets == 1).float()
        weight = known_mask(targets)
        p = torch.sigmoid(logits.float())
        p_neg = (p - self.clip).clamp(min=0) if self.clip > 0 else p  # shifted probability of negatives
        loss = y * torch.log(p.clamp(min=self.eps)) + (1 - y) * torch.log((1 - p_neg).clamp(min=self.eps))
        if self.gamma_neg > 0 or self.gamma_pos > 0:
            with torch.set_grad_enabled(not self.disable_grad_focal and torch.is_grad_enabled()):
                base = y * (1 - p) + (1 - y) * p_neg  # 1 - p_t
                focal = base.pow(self.gamma_pos * y + self.gamma_neg * (1 - y))
            loss = loss * focal
        loss = -(loss * weight)
        total = loss.sum() if self.reduction == "sum" else loss.sum() / weight.sum().clamp_min(1.0)
        return self.scale * total
