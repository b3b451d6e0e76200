"""Adjacency matrices from label statistics: functions of counts (no dataset imports).

ML-GCN (Chen et al., CVPR 2019, https://arxiv.org/abs/1904.03582) builds its graph from conditional
probabilities ``P(j | i)``, binarises them at ``tau`` to drop rare (noisy) edges, re-weights so that a node keeps
a fixed share of its own feature (against over-smoothing), and normalises. Its code and its paper differ in
the re-weighting; both are here as ``style``.
"""

from __future__ import annotations

from typing import Literal

import torch

from labelgraph.graph.label_graph import LabelGraph

#: where an ML-GCN-style head takes its graph from: the co-occurrence statistics, none (identity), or learned from them
GraphSource = Literal["cooccurrence", "identity", "learned"]


def conditional_probability(cooccurrence: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """``P[i, j] = P(j | i) = cooc[i, j] / counts[i]``; rows of classes never seen are zero.

    Shapes:
        cooccurrence (C, C), counts (C,) -> (C, C).
    """
    cooc, counts = cooccurrence.double(), counts.double()
    return torch.where(counts[:, None] > 0, cooc / counts.clamp_min(1)[:, None], torch.zeros_like(cooc)).float()


def ml_gcn_adjacency(
    cooccurrence: torch.Tensor,
    counts: torch.Tensor,
    tau: float = 0.4,
    p: float = 0.25,
    style: Literal["official", "paper"] = "official",
) -> torch.Tensor:
    """ML-GCN's re-weighted binary correlation matrix (before normalisation).

    ``B = 1[P >= tau]`` with a zero diagonal, then

    - ``official`` (ML-GCN's ``gen_A``): ``A = B * p / (column sums of B + 1e-6) + I``; the diagonal weight is 1,
      not ``1 - p``, and ``p = 0.25`` is the code's value (the paper states 0.2).
    - ``paper`` (Eq. 8): each row's edges scaled to sum to ``p`` (rows without edges stay zero) and a diagonal of
      ``1 - p``.

    Args:
        tau: binarisation threshold of the conditional probabilities (0.4 in the code and paper).
        p: the weight given to the neighbours.

    Shapes:
        cooccurrence (C, C), counts (C,) -> (C, C).
    """
    return correlation_adjacency(conditional_probability(cooccurrence, counts), tau, p, style)


def correlation_adjacency(
    probability: torch.Tensor, tau: float = 0.4, p: float = 0.25, style: Literal["official", "paper"] = "official"
) -> torch.Tensor:
    """:func:`ml_gcn_adjacency` from the conditional probabilities ``P(j | i)`` themselves (a label graph's, which
    may come from incomplete labels: :meth:`LabelGraph.conditional_probability`).

    Shapes:
        probability (C, C) -> (C, C).
    """
    binary = (probability >= tau).float()
    binary.fill_diagonal_(0)
    eye = torch.eye(binary.shape[0])
    if style == "official":
        return binary * p / (binary.sum(dim=0, keepdim=True) + 1e-6) + eye
    if style == "paper":
        row_sums = binary.sum(dim=1, keepdim=True)
        return torch.where(row_sums > 0, binary * p / row_sums.clamp_min(1), torch.zeros_like(binary)) + (1 - p) * eye
    raise ValueError(f"unknown adjacency style {style!r}; use 'official' or 'paper'")


def normalize_adjacency(adj: torch.Tensor, style: Literal["ml_gcn", "symmetric"] = "ml_gcn") -> torch.Tensor:
    """Normalise an adjacency matrix for graph convolution.

    - ``ml_gcn``: ``D A^T D`` with ``D = diag(rowsum(A))^-1/2``, exactly as ML-GCN's ``gen_adj`` (node i then
      aggregates from j with weight proportional to ``A[j, i]``; the result is not symmetric in general).
    - ``symmetric``: ``D~^-1/2 (A + I) D~^-1/2`` with ``D~ = diag(rowsum(A + I))`` (Kipf & Welling; A-GCN).

    Rows summing to zero get zero weights instead of infinities.

    Shapes:
        adj (C, C) -> (C, C).
    """
    if style == "ml_gcn":
        mat = adj
    elif style == "symmetric":
        mat = adj + torch.eye(adj.shape[-1], device=adj.device, dtype=adj.dtype)
    else:
        raise ValueError(f"unknown normalisation {style!r}; use 'ml_gcn' or 'symmetric'")
    rows = mat.sum(dim=-1)
    d = torch.where(rows > 0, rows.clamp_min(1e-12).pow(-0.5), torch.zeros_like(rows))
    if style == "ml_gcn":
        return d[:, None] * mat.transpose(-1, -2) * d[None, :]
    return d[:, None] * mat * d[None, :]


def gcn_adjacency(
    label_graph: LabelGraph, graph: GraphSource, tau: float, p: float, style: Literal["official", "paper"]
) -> torch.Tensor:
    """The normalised adjacency of an ML-GCN-style head (ML-GCN, IML-GCN, DB-DGCN's static prior) for the chosen graph
    source: ML-GCN's re-weighted binary co-occurrence graph (also the start of a ``learned`` one) or the identity.

    Shapes:
        -> (C, C).
    """
    if graph == "identity":
        return torch.eye(label_graph.num_classes)
    if graph not in ("cooccurrence", "learned"):
        raise ValueError(f"unknown graph source {graph!r}; use cooccurrence, identity or learned")
    adj = correlation_adjacency(label_graph.conditional_probability(), tau=tau, p=p, style=style)
    return normalize_adjacency(adj, "ml_gcn")
