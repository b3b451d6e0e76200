"""A-GCN / LGLM's graph regulariser: the distance of the normalised learned graph to the identity."""

from __future__ import annotations

from typing import Literal

import torch

from labelgraph.losses.auxiliary import AuxiliaryLoss


class GraphSparsityLoss(AuxiliaryLoss):
    """L_A = ||Â - I||, read from ``outputs["adjacency"]`` (C, C).

    ``norm="l1"`` (default): the sum of absolute entries, as the paper's text and the official code compute it;
    ``norm="l2"``: the Frobenius norm, as the paper's formula writes it. Weight λ = 1 in the paper.
    """

    def __init__(self, weight: float = 1.0, norm: Literal["l1", "l2"] = "l1") -> None:
        super().__init__(weight, name="graph_sparsity")
        if norm not in ("l1", "l2"):
            raise ValueError(f"norm={norm!r}; use 'l1' or 'l2'")
        self.norm = norm

    def term(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> torch.Tensor:
        if "adjacency" not in outputs:
            raise KeyError(
                "GraphSparsityLoss needs forward_train outputs with an 'adjacency' entry: a head that learns its label "
                "graph and returns it (the recipes that list this loss)"
            )
        adj = outputs["adjacency"]
        diff = adj - torch.eye(adj.shape[-1], device=adj.device, dtype=adj.dtype)
        return diff.abs().sum() if self.norm == "l1" else diff.pow(2).sum().sqrt()
