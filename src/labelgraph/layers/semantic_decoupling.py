"""SSGRL's semantic decoupling: label-embedding-guided spatial attention, one attention map per class."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn as nn
from torch.utils.checkpoint import checkpoint

Formulation = Literal["chunked", "dense"]


class SemanticDecoupling(nn.Module):
    r"""Attention of class :math:`c` at position :math:`p`, and the attended class feature:

    .. math::
        f_{c,p} = \tanh(W_1 x_p \odot W_2 e_c), \quad s_{c,p} = w_a^\top W_3 f_{c,p}, \quad
        a_{c,p} = \mathrm{softmax}_p(s_{c,p}), \quad h_c = \sum_p a_{c,p} x_p

    (:math:`W_1`: d -> 1024, :math:`W_2`: embedding -> 1024, :math:`W_3`: 1024 -> 1024, :math:`w_a`: 1024 -> 1.)

    The official code materialises :math:`f`, :math:`W_3 f` (both B x HW x C x 1024) and the broadcast product
    :math:`a_{c,p} x_p` (B x HW x C x d). ``formulation="chunked"`` (default) computes the same function without
    them: since no non-linearity separates :math:`W_3` and :math:`w_a`, :math:`s_{c,p} = v^\top f_{c,p}` with
    :math:`v = W_3^\top w_a`; the tanh products are built a chunk of classes at a time under activation
    checkpointing (recomputed in the backward pass), and :math:`h = a X` is one batched matrix product. Peak memory
    is then B x HW x ``class_chunk`` x 1024 instead of several B x HW x C x 1024 tensors. ``"dense"`` is the
    official formulation, kept to measure the difference and to test that both agree.

    The biases of :math:`W_3` and :math:`w_a` add the same constant to every position's score and cancel in the
    softmax (in the official code they receive exactly zero gradient), so they are omitted.

    Args:
        in_channels: d.
        embed_dim: label embedding size (300 for GloVe).
        hidden: the intermediate size (1024).
        class_chunk: classes per chunk in the chunked formulation.
        formulation: ``chunked`` or ``dense``.

    Shapes:
        x (B, d, H, W), embed (C, embed_dim) -> attention (B, C, HW) summing to 1 over HW, features (B, C, d).
    """

    def __init__(
        self,
        in_channels: int,
        embed_dim: int,
        hidden: int = 1024,
        class_chunk: int = 16,
        formulation: Formulation = "chunked",
    ) -> None:
        super().__init__()
        if formulation not in ("chunked", "dense"):
            raise ValueError(f"unknown formulation {formulation!r}; use chunked or dense")
        self.image_proj = nn.Linear(in_channels, hidden, bias=False)  # W1
        self.label_proj = nn.Linear(embed_dim, hidden, bias=False)  # W2
        self.fc = nn.Linear(hidden, hidden, bias=False)  # W3
        self.score = nn.Linear(hidden, 1, bias=False)  # w_a
        self.class_chunk, self.formulation = class_chunk, formulation

    def scores(self, u: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
        """Attention logits s (B, C, HW) from u = W1 x (B, HW, k) and q = W2 e (C, k)."""
        if self.formulation == "dense":
            f = torch.tanh(u[:, None, :, :] * q[None, :, None, :])  # (B, C, HW, k)
            return self.score(self.fc(f)).squeeze(-1)
        v = self.fc.weight.T @ self.score.weight.squeeze(0)  # (k,) = W3^T w_a
        chunks = []
        for start in range(0, q.shape[0], self.class_chunk):
            q_chunk = q[start : start + self.class_chunk]
            if torch.is_grad_enabled():
                chunks.append(checkpoint(_tanh_scores, u, q_chunk, v, use_reentrant=False))
            else:
                chunks.append(_tanh_scores(u, q_chunk, v))
        return torch.cat(chunks, dim=1)

    def forward(self, x: torch.Tensor, embed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pixels = x.flatten(2).transpose(1, 2)  # (B, HW, d)
        attention = torch.softmax(self.scores(self.image_proj(pixels), self.label_proj(embed)), dim=-1)  # (B, C, HW)
        if self.formulation == "dense":
            features = (attention[..., None] * pixels[:, None]).sum(2)  # (B, C, HW, d) -> (B, C, d)
        else:
            features = attention @ pixels  # (B, C, d)
        return attention, features


def _tanh_scores(u: torch.Tensor, q: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return torch.tanh(u[:, None, :, :] * q[None, :, None, :]) @ v  # (B, c, HW, k) @ (k,) -> (B, c, HW)
