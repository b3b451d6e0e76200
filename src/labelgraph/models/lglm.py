"""LGLM: Xie et al., "Label graph learning for multi-label image recognition with cross-modal fusion",
Multimedia Tools and Applications, 2022 (official code: lzHZWZ/LGLM).

A-GCN's learned label graph and GCN classifiers W, with the dot product between the image feature F and each
classifier W_i replaced by a multi-modal factorised fusion (MFC): F and W_i are mapped by two fully connected
layers to m = 1024 dims, multiplied element-wise, dropout, summed in groups of g = 2 (-> m/g values), and a
fully connected layer per class gives the logit Y_i. The paper reports that it converges in 25 epochs instead
of 150. ``fusion="dot"`` switches MFC off ("LGLM without MFC" = A-GCN).

Implemented from the paper, departing from the released code (lzHZWZ/LGLM), which does not run as shipped:
the graph projections take each class's own embedding (the code's ``inp.view(1, 300, C, 1)`` mixes classes; see
``labelgraph.models.a_gcn``); the fusion layers are trained (the code's optimizer omits them, so under SGD they stay
at their random initialisation); the fusion is vectorised over batch and classes (the code loops in Python); the
defaults are the paper's m = 1024, g = 2 (the code's 358 / 358 make the fusion a single low-rank dot product); the
final layer is one weight vector and bias per class over its m/g pooled values (the code's variant mixes all
classes' pooled values in one Linear(C m/g -> C)).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn

from labelgraph.graph import LabelGraph, require_embeddings
from labelgraph.models._registry import extends, register_model
from labelgraph.models.a_gcn import RECIPE as A_GCN_RECIPE
from labelgraph.models.a_gcn import AGCNHead, a_gcn
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier


class MFCFusion(nn.Module):
    """Multi-modal factorised fusion of an image feature with every class's classifier vector.

    Shapes:
        image (B, D), classifiers (C, D) -> logits (B, C), through (B, C, m) -> (B, C, m / g).
    """

    def __init__(self, dim: int, num_classes: int, m: int = 1024, g: int = 2, dropout: float = 0.1) -> None:
        super().__init__()
        if m % g:
            raise ValueError(f"m = {m} must be a multiple of the group size g = {g}")
        self.g = g
        self.image_proj = nn.Linear(dim, m)
        self.class_proj = nn.Linear(dim, m)
        self.dropout = nn.Dropout(dropout)
        self.weight = nn.Parameter(torch.empty(num_classes, m // g))
        self.bias = nn.Parameter(torch.zeros(num_classes))
        nn.init.uniform_(self.weight, -((g / m) ** 0.5), (g / m) ** 0.5)

    def forward(self, image: torch.Tensor, classifiers: torch.Tensor) -> torch.Tensor:
        # The per-class layer over the group sums is linear, so it folds into the class side first:
        # sum_j w_cj sum_{k in group j} drop(I_bk K_ck) = sum_k drop(I_bk K_ck w_c,k//g) -- the same numbers with the
        # same dropout mask, two fewer (B, C, m) passes, and one matmul where dropout is off (evaluation).
        weighted = self.class_proj(classifiers) * self.weight.repeat_interleave(self.g, dim=1)  # (C, m)
        image = self.image_proj(image)  # (B, m)
        if self.training and self.dropout.p > 0:
            joint = self.dropout(image[:, None, :] * weighted[None])  # (B, C, m) Hadamard, dropped out
            return joint.sum(-1) + self.bias  # (B, C)
        return image @ weighted.T + self.bias  # (B, C)


class LGLMHead(AGCNHead):
    """A-GCN's head with the dot product replaced by MFC fusion (or kept, ``fusion="dot"``)."""

    def __init__(
        self,
        in_channels: int,
        label_embed: torch.Tensor,
        fusion: Literal["mfc", "dot"] = "mfc",
        m: int = 1024,
        g: int = 2,
        dropout: float = 0.1,
        **graph_options: Any,
    ) -> None:
        super().__init__(in_channels, label_embed, **graph_options)
        if fusion not in ("mfc", "dot"):
            raise ValueError(f"fusion={fusion!r}; use 'mfc' or 'dot'")
        self.fusion = MFCFusion(in_channels, label_embed.shape[0], m, g, dropout) if fusion == "mfc" else None

    def score(self, pooled: torch.Tensor, classifiers: torch.Tensor) -> torch.Tensor:
        return super().score(pooled, classifiers) if self.fusion is None else self.fusion(pooled, classifiers)


RECIPE = A_GCN_RECIPE.replace(  # A-GCN's optimisation and sparsity loss, over 50 epochs
    source="LGLM paper: SGD 0.1, momentum 0.9, weight decay 1e-4, lr / 10 every 40 epochs, batch 32 (it reports "
    "convergence in 25 epochs; 50 here); A-GCN's graph sparsity loss (L1, weight 1)",
    model_args={"fusion": "mfc", "m": 1024, "g": 2, "dropout": 0.1, "graph_dim": 1024, "hidden": 1024},
    epochs=50,
)


@register_model("lglm", recipe=RECIPE, head=LGLMHead)
@extends(LGLMHead, a_gcn, exclude=("in_channels", "label_embed"))
def lglm(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    **options: Any,
) -> MultiLabelClassifier:
    """LGLM with the paper's defaults (``options``: :class:`LGLMHead`'s, m = 1024, g = 2, and A-GCN's graph, d_L =
    1024, GCN 1024 -> 2048)."""
    graph = require_embeddings("lglm", label_graph, num_classes)
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,))
    return MultiLabelClassifier(body, LGLMHead(body.channels[-1], graph.embeddings, **options), num_classes)
