"""Auxiliary losses: terms computed from a method's ``forward_train`` outputs besides the logits.

A method that needs a regulariser or a contrastive term returns the tensors it needs from ``forward_train``
(models never compute losses); an ``AuxiliaryLoss`` subclass turns them into a scalar, and the training task
adds ``weight * term`` to the classification loss and logs it under ``train/<name>``.
"""

from __future__ import annotations

import torch
import torch.nn as nn


class AuxiliaryLoss(nn.Module):
    """Base class. Subclasses implement ``term(outputs, targets) -> scalar``.

    Args:
        weight: multiplier of the term in the total loss.
        name: the name under which it is logged.
    """

    def __init__(self, weight: float = 1.0, name: str | None = None) -> None:
        super().__init__()
        self.weight = weight
        self.name = name or type(self).__name__

    def term(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        return self.weight * self.term(outputs, targets)
