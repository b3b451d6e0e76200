"""Graph convolution on dense adjacency matrices."""

from __future__ import annotations

import math

import torch
import torch.nn as nn


class GraphConvolution(nn.Module):
    r"""One graph convolution, :math:`H' = \hat A \, H \, W \; (+ b)` (Kipf & Welling; ML-GCN's layer).

    ML-GCN's layer has no bias and initialises ``W`` (and ``b``) uniformly in ``±1/sqrt(out_features)``.

    Args:
        in_features: node feature size.
        out_features: output size.
        bias: add a bias (ML-GCN: no).

    Shapes:
        x (N, in) or (B, N, in), adj (N, N) or (B, N, N) -> (N, out) or (B, N, out).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = False) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(in_features, out_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.reset_parameters()

    def reset_parameters(self) -> None:
        bound = 1.0 / math.sqrt(self.weight.shape[1])
        nn.init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        out = adj @ (x @ self.weight)
        return out + self.bias if self.bias is not None else out
