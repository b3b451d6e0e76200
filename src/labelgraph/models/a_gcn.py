"""A-GCN: Li et al., "Learning Category Correlations for Multi-label Image Recognition with Graph Networks",
2019/2020 (https://arxiv.org/abs/1909.13005); the adaptive label graph that LGLM builds on (official code:
lzHZWZ/LGLM, an ML-GCN fork).

The label graph is learned instead of counted: two 1x1 projections of the label embeddings L (C x d) give
L1, L2 (C x d_L, d_L = 1024, each through a sigmoid as in the code, so the graph is non-negative), A = L1 L2^T / C,
and the GCN runs on Â = D~^-1/2 (A + I) D~^-1/2. A regulariser L_A = ||Â - I|| (``GraphSparsityLoss``, λ = 1,
applied by default through ``forward_train``'s ``"adjacency"``) keeps the graph sparse. The 2-layer GCN
(d -> 1024 -> backbone width, LeakyReLU 0.2) turns the embeddings into classifiers applied to the globally
max-pooled image feature, as in ML-GCN.

Departures from the code: each class's graph projection is of that class's own embedding, L1_i = σ(W1 l_i), as the
paper's formula writes it -- the released code feeds its 1x1 convolutions ``inp.view(1, 300, C, 1)`` of the C x 300
embedding matrix, a reinterpretation of memory, not a transpose, so every "class" it projects is a mix of 300
consecutive numbers spanning several classes' vectors; the co-occurrence matrix it loads into an unused parameter is
not carried; pooling is adaptive (the code hard-codes 14 x 14); the graph projections get 4x the learning rate as
the code's optimizer groups do (``graph_lr_mult``).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from labelgraph.graph import LabelGraph, normalize_adjacency, require_embeddings
from labelgraph.layers import GraphConvolution, global_pool
from labelgraph.models._registry import extends, register_model
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.recipe import Component, Recipe


class AdaptiveGraph(nn.Module):
    """Â = D~^-1/2 (A + I) D~^-1/2 with A = σ(L W1) σ(L W2)^T / C learned from the label embeddings.

    Shapes:
        label_embed (C, d) -> Â (C, C)
    """

    def __init__(self, embed_dim: int, graph_dim: int = 1024) -> None:
        super().__init__()
        self.proj1 = nn.Linear(embed_dim, graph_dim)  # a 1x1 convolution over the C "pixels" of L
        self.proj2 = nn.Linear(embed_dim, graph_dim)

    def raw(self, label_embed: torch.Tensor) -> torch.Tensor:
        l1, l2 = torch.sigmoid(self.proj1(label_embed)), torch.sigmoid(self.proj2(label_embed))  # (C, d_L)
        return l1 @ l2.T / label_embed.shape[0]  # (C, C)

    def forward(self, label_embed: torch.Tensor) -> torch.Tensor:
        return normalize_adjacency(self.raw(label_embed), "symmetric")


class AGCNHead(MultiLabelHead):
    """Learned graph + GCN classifiers, scored against the pooled image feature by a dot product.

    Args:
        in_channels: backbone width (the GCN's output size).
        label_embed: (C, d) label embeddings (a buffer).
        graph_dim: d_L of the graph projections (1024).
        hidden: first GCN layer width (1024).
        graph_lr_mult: learning-rate factor of the graph projections (4, the official optimizer groups).

    Shapes:
        features[-1] (B, D, H, W) -> logits (B, C); ``forward_train`` adds ``adjacency`` (C, C).
    """

    graph_priors = ("label_embed",)  # fixed, from the label graph (buffers)
    learnable_graph = ("graph",)  # learnt on purpose (parameters)

    def __init__(
        self,
        in_channels: int,
        label_embed: torch.Tensor,
        graph_dim: int = 1024,
        hidden: int = 1024,
        graph_lr_mult: float = 4.0,
    ) -> None:
        super().__init__()
        self.register_buffer("label_embed", label_embed.detach().float().clone())
        self.graph = AdaptiveGraph(label_embed.shape[1], graph_dim)
        self.gc1 = GraphConvolution(label_embed.shape[1], hidden)
        self.gc2 = GraphConvolution(hidden, in_channels)
        self.act = nn.LeakyReLU(0.2)
        self.lr_mults = {"graph": graph_lr_mult}

    def classifiers(self, adjacency: torch.Tensor) -> torch.Tensor:
        return self.gc2(self.act(self.gc1(self.label_embed, adjacency)), adjacency)  # (C, D)

    @torch.no_grad()
    def class_vectors(self) -> torch.Tensor:
        return self.classifiers(self.graph(self.label_embed))  # (C, D): from the learned graph

    def label_embeddings(self) -> torch.Tensor:
        return self.label_embed  # (C, e)

    def score(self, pooled: torch.Tensor, classifiers: torch.Tensor) -> torch.Tensor:
        return pooled @ classifiers.T  # (B, C)

    def forward_train(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        adjacency = self.graph(self.label_embed)
        logits = self.score(global_pool(features[-1], "max"), self.classifiers(adjacency))
        return {"logits": logits, "adjacency": adjacency}

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.forward_train(features)["logits"]


RECIPE = Recipe(
    source="A-GCN's ML-GCN-derived code: SGD 0.1, momentum 0.9, weight decay 1e-4, backbone x0.1, graph projections "
    "x4, lr / 10 every 40 epochs, batch 32; graph sparsity loss (L1, weight 1)",
    model_args={"graph_dim": 1024, "hidden": 1024, "graph_lr_mult": 4.0},
    aux_losses=(Component("labelgraph.losses.GraphSparsityLoss", {"weight": 1.0, "norm": "l1"}),),
    batch_size=32,
    staged_stage1_epochs=10,
)


@register_model("a_gcn", recipe=RECIPE, head=AGCNHead)
@extends(AGCNHead, exclude=("in_channels", "label_embed"))
def a_gcn(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    **options: Any,
) -> MultiLabelClassifier:
    """A-GCN with the official defaults (``options``, :class:`AGCNHead`'s: d_L = 1024, GCN 300 -> 1024 -> 2048, graph
    lr x4)."""
    graph = require_embeddings("a_gcn", label_graph, num_classes)
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,))
    head = AGCNHead(body.channels[-1], graph.embeddings, **options)
    return MultiLabelClassifier(body, head, num_classes)
