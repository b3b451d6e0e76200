"""ML-Decoder's building blocks: a decoder layer without self-attention, and group decoding.

With no self-attention the queries never attend to each other, so the cost is linear in their number, and a
query's output depends on that query and the image alone -- which is what lets a query made from a word vector
score a class no training image had (zero-shot).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from labelgraph.layers.label_transformer import FeedForward


class CrossAttentionLayer(nn.Module):
    """Queries -> LayerNorm -> cross-attention to the image tokens -> LayerNorm -> feed-forward (post-norm).

    Where a transformer decoder layer has self-attention, the official layer keeps only ``tgt + dropout(tgt)``
    before the first LayerNorm; kept as it is: at inference it is ``norm(2 tgt) = norm(tgt)``, in training a
    multiplicative noise on the queries. Queries and tokens carry no position encoding.

    Shapes:
        tgt (B, K, d), memory (B, N, d) -> (B, K, d), and with ``need_weights`` the attention (B, K, N) averaged
        over heads.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float) -> None:
        super().__init__()
        self.query_norm = nn.LayerNorm(d_model)
        self.query_dropout = nn.Dropout(dropout)
        self.cross_attn = nn.MultiheadAttention(d_model, nhead, dropout=dropout, batch_first=True)
        self.cross_norm = nn.LayerNorm(d_model)
        self.dropout = nn.Dropout(dropout)
        self.ffn = FeedForward(d_model, dim_feedforward, dropout)

    def forward(
        self, tgt: torch.Tensor, memory: torch.Tensor, need_weights: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        tgt = self.query_norm(tgt + self.query_dropout(tgt))
        attended, weights = self.cross_attn(tgt, memory, memory, need_weights=need_weights)
        return self.ffn(self.cross_norm(tgt + self.dropout(attended))), weights


class GroupFullyConnected(nn.Module):
    """Group decoding: K queries for C classes, query k scoring ``g = ceil(C / K)`` classes through its own
    (d -> g) projection -- classes k g .. k g + g - 1 --, the first C of the K g outputs kept, plus a bias per class.
    Xavier-normal weights and zero biases, as the official code.

    Shapes:
        h (B, K, d) -> logits (B, C).
    """

    def __init__(self, num_groups: int, dim: int, num_classes: int) -> None:
        super().__init__()
        self.num_classes, self.group_size = num_classes, math.ceil(num_classes / num_groups)
        self.weight = nn.Parameter(torch.empty(num_groups, dim, self.group_size))
        self.bias = nn.Parameter(torch.zeros(num_classes))
        nn.init.xavier_normal_(self.weight)

    def group_of(self, classes: torch.Tensor) -> torch.Tensor:
        """The query that scores each class index."""
        return classes // self.group_size

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        scores = torch.einsum("bkd,kdg->bkg", h, self.weight)  # (B, K, g)
        return scores.flatten(1)[:, : self.num_classes] + self.bias
