"""Hill and SPLC (Zhang et al., "Simple and Robust Loss Design for Multi-Label Learning with Missing Labels", 2021,
https://arxiv.org/abs/2112.07368; official code xinyu1205/robust-loss-mlml, ``src/loss_functions/losses.py``).

Both read unknown entries as negatives and make that assumption cheap when it is wrong:

- **Hill** bounds the loss of a negative with a hill-shaped curve, ``(λ - p) p²`` (small both for confident negatives
  and for confident "negatives" that are likely missing positives), and trains positives with a focal margin loss,
  ``-(1 - p_m)^γ log p_m`` with ``p_m = σ(x - m)``.
- **SPLC** (self-paced loss correction) trains with the focal margin loss and, from ``change_epoch`` on, relabels an
  unknown entry as positive while the model gives it a probability above ``tau``.

Defaults are the official ones: λ 1.5, margin 1, γ 2; τ 0.6 and ``change_epoch`` 1 (epochs count from 0). As in the
official code the focal weights keep their gradient, SPLC tests τ on the un-shifted logit and a corrected entry gets no
margin.

Departures: the official losses are summed over the batch; here they are averaged over B x C like the other
incomplete-label losses (a constant factor; the method's optimiser settings then hold). The official code has no known
negatives: here a known negative is never corrected (SPLC) and gets the plain BCE of a certain negative (Hill), the
robust terms being for the assumed negatives.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from labelgraph.losses.incomplete_labels import IncompleteLabelLoss, bce, known_and_positive


class HillLoss(IncompleteLabelLoss):
    """Hill: focal margin loss on positives, ``(λ - p) p²`` on unknown (assumed negative) entries."""

    def __init__(self, lamb: float = 1.5, margin: float = 1.0, gamma: float = 2.0, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.lamb, self.margin, self.gamma = lamb, margin, gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        pos, neg, unknown = known_and_positive(targets)
        x = logits.float()
        p_margin, p = torch.sigmoid(x - self.margin), torch.sigmoid(x)
        positive = (1 - p_margin).pow(self.gamma) * bce(x - self.margin, True)
        hill = (self.lamb - p) * p.pow(2)
        loss = pos * positive + unknown * hill + neg * bce(x, False)
        return self.scale * loss.mean()


class SPLCLoss(IncompleteLabelLoss):
    """SPLC with the focal margin loss (the combination the paper and its code release)."""

    def __init__(
        self, tau: float = 0.6, change_epoch: int = 1, margin: float = 1.0, gamma: float = 2.0, scale: float = 1.0
    ) -> None:
        super().__init__(scale)
        self.tau, self.change_epoch, self.margin, self.gamma = tau, change_epoch, margin, gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        pos, _, unknown = known_and_positive(targets)
        x = logits.float()
        shifted = torch.where(pos > 0, x - self.margin, x)
        y = pos
        if self.epoch >= self.change_epoch:
            y = torch.where((unknown > 0) & (torch.sigmoid(shifted) > self.tau), torch.ones_like(y), y)
        p = torch.sigmoid(shifted)
        focal = (y * (1 - p) + (1 - y) * p).pow(self.gamma)
        loss = focal * -(y * F.logsigmoid(shifted) + (1 - y) * F.logsigmoid(-shifted))
        return self.scale * loss.mean()
