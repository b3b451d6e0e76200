"""ROLE: regularised online label estimation (Cole et al., CVPR 2021, https://arxiv.org/abs/2106.09708).

Besides the classifier's probabilities ``f`` (B, C), ROLE learns a label estimate ``g`` in [0, 1] for every entry of
the train split (a (N, C) table of logits trained with the network). Each is fitted to the other and to the observed
positives, both under the expected-positive regulariser (``loss_role`` of the official code):

    L = 1/(B C) Σ [ ½ (BCE(f, y⁺) + BCE(g, y⁺)) + ½ (BCE(f, sg(g)) + BCE(g, sg(f))) ] + ½ (R(f) + R(g)),

with y⁺ the observed positives, sg the stop-gradient and R Cole et al.'s EPR penalty. As in the official code the
estimates start at logit(0.995) for observed positives, logit(0.005) for observed negatives and uniformly within
±logit(0.6) elsewhere, and learn at 10x the learning rate (``lr_mult``; their ``lr_mult``), without weight decay.

Departures: BCE is computed from logits (the official code takes -log(p + 1e-5)); known negatives add their BCE to
the observed term of both f and g (the official code has none); evaluated without the batch's row numbers (validation
loss) the loss is EPR's, since no estimate is read.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn

from labelgraph.losses.incomplete_labels import (
    IncompleteLabelLoss,
    bce,
    expected_positive_penalty,
    expected_positives_of,
    known_and_positive,
)


def logit(p: float) -> float:
    return math.log(p / (1.0 - p))


class RoleLoss(IncompleteLabelLoss):
    """ROLE (see the module docstring).

    Args:
        expected_positives: the regulariser's expected positives per image; None: estimated by ``prepare``.
        lr_mult: learning-rate factor of the label estimates (10, the official value).
    """

    needs_sample_index = True

    def __init__(self, expected_positives: float | None = None, lr_mult: float = 10.0, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.expected_positives = expected_positives
        self.lr_mult = lr_mult
        self.estimate_logits: nn.Parameter | None = None  # (N, C), created by prepare()

    def prepare(self, train_targets: np.ndarray, val_targets: np.ndarray | None = None) -> None:
        if self.expected_positives is None:
            self.expected_positives = expected_positives_of(train_targets, val_targets)
        targets = torch.as_tensor(np.asarray(train_targets))
        bound = logit(0.6)
        init = bound * (2 * torch.rand(targets.shape) - 1)
        init[targets == 1] = logit(0.995)
        init[targets == 0] = logit(0.005)
        self.estimate_logits = nn.Parameter(init)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        pos, neg, _ = known_and_positive(targets)
        x = logits.float()
        f = torch.sigmoid(x)
        expected = float(self.expected_positives or 0.0)
        observed_f = pos * bce(x, True) + neg * bce(x, False)
        if index is None or self.estimate_logits is None:  # no estimates to read: EPR
            return self.scale * (observed_f.mean() + expected_positive_penalty(f, expected))
        z = self.estimate_logits[index.to(self.estimate_logits.device)].to(x.dtype)  # (B, C)
        g = torch.sigmoid(z)
        observed_g = pos * bce(z, True) + neg * bce(z, False)
        g_fixed, f_fixed = g.detach(), f.detach()
        cross_f = g_fixed * bce(x, True) + (1 - g_fixed) * bce(x, False)
        cross_g = f_fixed * bce(z, True) + (1 - f_fixed) * bce(z, False)
        entries = 0.5 * (observed_f + observed_g) + 0.5 * (cross_f + cross_g)
        penalty = 0.5 * (expected_positive_penalty(f, expected) + expected_positive_penalty(g, expected))
        return self.scale * (entries.mean() + penalty)

    def estimated_labels(self) -> torch.Tensor:
        """(N, C) the current label estimates in [0, 1]."""
        if self.estimate_logits is None:
            raise RuntimeError("ROLE has no estimates before prepare()")
        return torch.sigmoid(self.estimate_logits.detach())
