"""ADD-GCN's semantic attention module (SAM): class activation maps -> content-aware class features."""

from __future__ import annotations

import torch
import torch.nn as nn


class SemanticAttention(nn.Module):
    r"""Class activation maps and the class features they select.

    A 1x1 convolution without bias gives the class activation maps :math:`M` (one per class); a second 1x1
    convolution (with bias) projects the feature map to ``dim`` channels, :math:`X'`; the content-aware feature of
    class :math:`c` is the :math:`\sigma(M_c)`-weighted spatial *sum* of :math:`X'` (ADD-GCN's code sums, it does
    not average):

    .. math:: V_{:, c} = \sum_p \sigma(M_{c,p}) \, X'_{:, p}

    Args:
        in_channels: feature map channels d.
        num_classes: C.
        dim: class feature size (1024).

    Shapes:
        x (B, d, H, W) -> maps (B, C, H, W), class features (B, dim, C).
    """

    def __init__(self, in_channels: int, num_classes: int, dim: int = 1024) -> None:
        super().__init__()
        self.cam = nn.Conv2d(in_channels, num_classes, 1, bias=False)
        self.transform = nn.Conv2d(in_channels, dim, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        maps = self.cam(x)  # (B, C, H, W)
        weights = torch.sigmoid(maps).flatten(2)  # (B, C, HW)
        projected = self.transform(x).flatten(2)  # (B, dim, HW)
        return maps, projected @ weights.transpose(1, 2)  # (B, dim, C)
