"""Losses for incomplete labels: the common interface and the losses that treat unknown entries by a fixed rule.

Targets are (B, C) in {1 present, 0 known absent, -1 unknown}. Every loss here is a drop-in classification criterion
for any method (``MultiLabelTask(loss=NAME)`` replaces the method's own criterion with it, at the scale of the method's
criterion: ``scale``). Unless a docstring says otherwise a loss is averaged over all B x C entries, the normalisation
of Cole et al.'s and Kim et al.'s code, so that each is on the scale of a mean BCE.

A loss may need more than one batch: ``prepare(train_targets, val_targets)`` gives it the train split's targets (and
the validation split's) before training, ``set_epoch(epoch)`` the epoch for its schedule, and a loss whose
``needs_sample_index`` is true is called with ``index`` (B,), the batch's row numbers in the train split.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def known_and_positive(targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Float masks (B, C): known positive, known negative, unknown."""
    return (targets == 1).float(), (targets == 0).float(), (targets < 0).float()


def bce(logits: torch.Tensor, positive: bool) -> torch.Tensor:
    """Per-entry BCE of ``logits`` against an all-positive or all-negative target: -log p or -log(1 - p)."""
    return -F.logsigmoid(logits if positive else -logits)


def expected_positives_of(train_targets: np.ndarray, val_targets: np.ndarray | None) -> float:
    """The expected number of positives per image for Cole et al.'s regulariser: the mean over the validation split
    when it is fully labelled (their protocol: a clean validation set), else the sum over classes of each class's
    positive rate among its known train entries."""
    if val_targets is not None and len(val_targets) and not (val_targets < 0).any():
        return float((val_targets == 1).sum(1).mean())
    known = (train_targets >= 0).sum(0)
    if not (train_targets == 0).any():
        raise ValueError(
            "the expected number of positives per image cannot be estimated from positives alone (single-positive "
            "labels): give a fully labelled validation split or set expected_positives"
        )
    return float(((train_targets == 1).sum(0) / np.maximum(known, 1)).sum())


class IncompleteLabelLoss(nn.Module):
    """Base class: the hooks a training task calls. Subclasses implement ``forward(logits, targets, index=None)``.

    Args:
        scale: a constant factor (the task sets it to the method's own criterion's, e.g. Query2Label's x 1000).
    """

    needs_sample_index = False
    lr_mult = 1.0  # learning-rate factor of the loss's own parameters (ROLE's label estimates)

    def __init__(self, scale: float = 1.0) -> None:
        super().__init__()
        self.scale = scale
        self.epoch = 0

    def prepare(self, train_targets: np.ndarray, val_targets: np.ndarray | None = None) -> None:
        """Called once before training with the train split's (N, C) targets and the validation split's."""

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch


class IgnoreUnknownLoss(IncompleteLabelLoss):
    """BCE over the known entries only, averaged over them: unknown entries contribute nothing (the rule every
    criterion of labelgraph applies to -1 by default)."""

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        pos, neg, _ = known_and_positive(targets)
        x = logits.float()
        loss = pos * bce(x, True) + neg * bce(x, False)
        return self.scale * loss.sum() / (pos + neg).sum().clamp_min(1.0)


class AssumeNegativeLoss(IncompleteLabelLoss):
    """AN and WAN (Cole et al., CVPR 2021, https://arxiv.org/abs/2106.09708): unknown entries read as absent, with
    weight ``unknown_weight`` -- 1 for AN, ``"1/(C-1)"`` for WAN (Cole et al.'s γ) --, averaged over B x C.

    Departure: Cole et al. have no known negatives (single positive), so their WAN down-weights every negative; here
    a known negative keeps weight 1 and only the assumed ones are down-weighted.
    """

    def __init__(self, unknown_weight: float | str = 1.0, scale: float = 1.0) -> None:
        super().__init__(scale)
        if unknown_weight != "1/(C-1)" and not isinstance(unknown_weight, (int, float)):
            raise ValueError(f"unknown_weight={unknown_weight!r}: a number or '1/(C-1)'")
        self.unknown_weight = unknown_weight

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        pos, neg, unknown = known_and_positive(targets)
        c = logits.shape[1]
        weight = 1.0 / max(c - 1, 1) if self.unknown_weight == "1/(C-1)" else float(self.unknown_weight)
        x = logits.float()
        loss = pos * bce(x, True) + (neg + weight * unknown) * bce(x, False)
        return self.scale * loss.mean()


class PartialBCELoss(IncompleteLabelLoss):
    """Partial-BCE (Durand et al., CVPR 2019, https://arxiv.org/abs/1902.09720, Eq. 3): per image,

        l(x, y) = g(p_y) / C * sum_{c known} BCE(x_c, y_c),   g(p) = alpha p^gamma + beta,

    with ``p_y`` the image's fraction of known labels, averaged over the batch. The defaults (alpha -4.45, beta 5.45,
    gamma 1) make g(1) = 1 and g(0.1) = 5, the paper's choice; an image with fewer known labels gets a larger weight
    per label, so that every image weighs about the same. (Durand et al. released no PyTorch code; these values are
    those of the paper and of the reimplementations that cite it.)
    """

    def __init__(self, alpha: float = -4.45, beta: float = 5.45, gamma: float = 1.0, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.alpha, self.beta, self.gamma = alpha, beta, gamma

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        pos, neg, _ = known_and_positive(targets)
        x = logits.float()
        per_image = (pos * bce(x, True) + neg * bce(x, False)).sum(1)  # (B,)
        known = (pos + neg).mean(1)  # (B,) p_y
        g = torch.where(known > 0, self.alpha * known.clamp_min(1e-6).pow(self.gamma) + self.beta, 0.0)
        return self.scale * (g * per_image / logits.shape[1]).mean()


def expected_positive_penalty(probabilities: torch.Tensor, expected: float) -> torch.Tensor:
    """Cole et al.'s EPR: (mean over the batch of the predicted positives per image - expected)^2 / C^2."""
    return (probabilities.sum(1).mean() - expected) ** 2 / probabilities.shape[1] ** 2


class ExpectedPositiveLoss(IncompleteLabelLoss):
    """EPR (Cole et al., CVPR 2021, https://arxiv.org/abs/2106.09708; ``loss_epr`` of their code): BCE on the known
    entries, averaged over B x C, plus the expected-positive regulariser (Σ_c p_c averaged over the batch minus the
    expected number of positives per image k, squared, divided by C²). Unknown entries get no direct loss.

    Args:
        expected_positives: k; None: estimated by ``prepare`` (:func:`expected_positives_of`; Cole et al. take the
            dataset's true mean, e.g. 2.9 for COCO).

    Departure: their code has no known negatives; here known negatives add their BCE like the positives.
    """

    def __init__(self, expected_positives: float | None = None, scale: float = 1.0) -> None:
        super().__init__(scale)
        self.expected_positives = expected_positives

    def prepare(self, train_targets: np.ndarray, val_targets: np.ndarray | None = None) -> None:
        if self.expected_positives is None:
            self.expected_positives = expected_positives_of(train_targets, val_targets)

    def expected(self) -> float:
        if self.expected_positives is None:
            raise RuntimeError("EPR's expected number of positives is unset: call prepare() or give it")
        return float(self.expected_positives)

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        pos, neg, _ = known_and_positive(targets)
        x = logits.float()
        observed = (pos * bce(x, True) + neg * bce(x, False)).mean()
        return self.scale * (observed + expected_positive_penalty(torch.sigmoid(x), self.expected()))
