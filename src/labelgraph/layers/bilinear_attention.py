"""Low-rank bilinear attention (Kim et al., "Hadamard Product for Low-rank Bilinear Pooling", ICLR 2017,
https://arxiv.org/abs/1610.04325), as SALGL uses it: each label attends over the
image positions with a score from the Hadamard product of the two projected features."""

from __future__ import annotations

import torch
import torch.nn as nn


class LowRankBilinearAttention(nn.Module):
    """score(l, p) = ``target(hidden(tanh(U x_p * V e_l)))`` (two linear layers, no activation between), softmax over
    positions p; each label's feature is the attention-weighted mean of the image features.

    Args:
        image_dim: d of the image features x.
        label_dim: e of the label embeddings.
        att_dim: the low-rank projection width.

    Shapes:
        x (B, P, d), labels (B, C, e) -> features (B, C, d), attention (B, C, P).
    """

    def __init__(self, image_dim: int, label_dim: int, att_dim: int) -> None:
        super().__init__()
        self.image_proj = nn.Linear(image_dim, att_dim, bias=False)
        self.label_proj = nn.Linear(label_dim, att_dim, bias=False)
        self.hidden = nn.Linear(att_dim, att_dim)
        self.target = nn.Linear(att_dim, 1)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        joint = torch.tanh(self.image_proj(x)[:, None] * self.label_proj(labels)[:, :, None])  # (B, C, P, a)
        attention = torch.softmax(self.target(self.hidden(joint)).squeeze(-1), dim=-1)  # (B, C, P)
        return attention @ x, attention
