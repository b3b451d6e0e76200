"""ADD-GCN's D-GCN building blocks: a static graph convolution and a per-image (dynamic) graph convolution.

Class features are laid out channels-first, ``(B, dim, C)``, as in the official code's 1-D convolutions: a
``Conv1d(dim, dim, 1)`` is a linear map applied to every node.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class StaticGraphConv(nn.Module):
    r""":math:`H_s = \phi(W_s \, \phi(V A_s^\top))` with one C x C graph shared by all images (:math:`\phi` =
    LeakyReLU).

    ``prior=None`` learns :math:`A_s` (ADD-GCN: a bias-free ``Conv1d(C, C, 1)`` over the nodes, default
    initialisation); otherwise :math:`A_s` is the given fixed matrix, stored as a buffer (DB-DGCN's co-occurrence
    prior).

    Shapes:
        v (B, dim, C) -> (B, dim, C).
    """

    def __init__(
        self, dim: int, num_classes: int, prior: torch.Tensor | None = None, negative_slope: float = 0.2
    ) -> None:
        super().__init__()
        if prior is None:
            bound = 1.0 / math.sqrt(num_classes)  # Conv1d's default init for fan_in = C
            self.adj = nn.Parameter(torch.empty(num_classes, num_classes).uniform_(-bound, bound))
        else:
            if prior.shape != (num_classes, num_classes):
                raise ValueError(
                    f"static prior has shape {tuple(prior.shape)}, expected ({num_classes}, {num_classes})"
                )
            self.register_buffer("adj", prior.detach().float().clone())
        self.weight = nn.Conv1d(dim, dim, 1)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, v: torch.Tensor) -> torch.Tensor:
        return self.act(self.weight(self.act(v @ self.adj.T)))  # node i gathers sum_j A[i, j] v_j


class DynamicAdjacency(nn.Module):
    r"""A per-image graph from the node features: a global context vector :math:`g` (mean over nodes ->
    ``Conv1d`` -> BatchNorm -> LeakyReLU) is concatenated to every node and a ``Conv1d(2 dim, C, 1)`` + sigmoid gives
    :math:`A_d[b, i, j]`, the weight of node :math:`i` in the update of node :math:`j`.

    Shapes:
        h (B, dim, C) -> A_d (B, C, C), entries in (0, 1).
    """

    def __init__(self, dim: int, num_classes: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.context = nn.Sequential(nn.Conv1d(dim, dim, 1), nn.BatchNorm1d(dim), nn.LeakyReLU(negative_slope))
        self.create = nn.Conv1d(2 * dim, num_classes, 1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        g = self.context(h.mean(dim=2, keepdim=True)).expand_as(h)  # (B, dim, C)
        return torch.sigmoid(self.create(torch.cat([g, h], dim=1)))  # (B, C, C)


class DynamicGraphConv(nn.Module):
    r""":math:`Z = \phi(W_d \, \phi(H A_d))` with a graph per image.

    Shapes:
        h (B, dim, C), adj (B, C, C) -> (B, dim, C).
    """

    def __init__(self, dim: int, negative_slope: float = 0.2) -> None:
        super().__init__()
        self.weight = nn.Conv1d(dim, dim, 1)
        self.act = nn.LeakyReLU(negative_slope)

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return self.act(self.weight(self.act(h @ adj)))
