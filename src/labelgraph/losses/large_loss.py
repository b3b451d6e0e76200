"""Large-loss rejection and correction, LL-R / LL-Ct / LL-Cp (Kim et al., CVPR 2022, https://arxiv.org/abs/2206.03740).

Unknown entries are read as absent (AN), but a model learns the clean labels first and memorises the false negatives
late, so the unknown entries with the largest losses are likely false negatives. Per batch, among the unknown entries,
the ``k`` with the largest AN loss are

- **LL-R**: rejected (their loss is zero), with ``k = ceil(B C · epoch · Δrel)``: the rejection rate grows by Δrel
  each epoch, starting at 0 in the first epoch (the official code's ``clean_rate``, lowered by Δrel after every epoch);
- **LL-Ct**: corrected for this step (their loss is the BCE against "present"), with the same ``k``;
- **LL-Cp**: corrected permanently -- the entries become known positives of the train split for the rest of the run
  -- with a constant ``k = ceil(B C · Δrel)`` from the second epoch on.

The loss is averaged over B x C. ``delta_rel`` is in percent, as the official ``--delta_rel`` (which it divides by
100); 0.2 is one of the values their README lists for every scheme (``{0.1, ..., 0.5}``).

Departures: the official code corrects/rejects entries whose loss ties the k-th (``<`` threshold) but flips only those
above it for LL-Cp (``>``); here exactly the top-k entries are treated, for all three. Only unknown entries are
candidates (the official single-positive data has no known negatives).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch

from labelgraph.losses.incomplete_labels import IncompleteLabelLoss, bce, known_and_positive

LargeLossScheme = Literal["reject", "correct_temporary", "correct_permanent"]


class LargeLossLoss(IncompleteLabelLoss):
    """LL-R (``scheme="reject"``), LL-Ct (``"correct_temporary"``), LL-Cp (``"correct_permanent"``).

    Args:
        delta_rel: Δrel in percent per epoch (LL-R, LL-Ct) or per batch (LL-Cp).
    """

    def __init__(self, scheme: LargeLossScheme = "reject", delta_rel: float = 0.2, scale: float = 1.0) -> None:
        super().__init__(scale)
        if scheme not in ("reject", "correct_temporary", "correct_permanent"):
            raise ValueError(f"scheme={scheme!r}: reject, correct_temporary or correct_permanent")
        self.scheme, self.delta_rel = scheme, delta_rel
        self.needs_sample_index = scheme == "correct_permanent"
        self.register_buffer("corrected", torch.zeros(0, 0, dtype=torch.bool), persistent=True)  # (N, C) LL-Cp

    def prepare(self, train_targets: np.ndarray, val_targets: np.ndarray | None = None) -> None:
        if self.scheme == "correct_permanent":
            self.corrected = torch.zeros(np.asarray(train_targets).shape, dtype=torch.bool)

    def rate(self) -> float:
        """The fraction of the B x C entries treated this epoch."""
        if self.epoch < 1:
            return 0.0
        per = self.delta_rel / 100.0
        return per if self.scheme == "correct_permanent" else per * self.epoch

    def forward(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        if self.corrected.numel() and index is not None:  # LL-Cp: earlier corrections are positives now
            flipped = self.corrected[index.to(self.corrected.device)].to(targets.device)
            targets = torch.where(flipped, torch.ones_like(targets), targets)
        pos, neg, unknown = known_and_positive(targets)
        x = logits.float()
        as_negative, as_positive = bce(x, False), bce(x, True)
        loss = pos * as_positive + (neg + unknown) * as_negative
        k = min(math.ceil(x.numel() * self.rate()), int(unknown.sum().item()))
        if k > 0:
            candidates = torch.where(unknown > 0, as_negative.detach(), torch.full_like(x, -1.0)).flatten()
            top = torch.zeros_like(candidates, dtype=torch.bool)
            top[torch.topk(candidates, k).indices] = True
            top = top.view_as(x)
            replacement = torch.zeros_like(loss) if self.scheme == "reject" else as_positive
            loss = torch.where(top, replacement, loss)
            if self.scheme == "correct_permanent" and self.training and index is not None:
                dev = self.corrected.device
                rows, cols = top.nonzero(as_tuple=True)
                self.corrected[index.to(dev)[rows.to(dev)], cols.to(dev)] = True
        return self.scale * loss.mean()
