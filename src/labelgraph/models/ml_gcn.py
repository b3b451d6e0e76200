"""ML-GCN: Chen, Wei, Wang, Guo, "Multi-Label Image Recognition with Graph Convolutional Networks", CVPR 2019.
https://arxiv.org/abs/1904.03582 -- official code: megvii-research/ML-GCN.

A 2-layer GCN over the label embeddings (300 -> 1024 -> backbone width, LeakyReLU 0.2 between, no bias) on the
re-weighted, normalised co-occurrence graph produces one classifier per class; the logits are the dot products
of the classifiers with the globally max-pooled image feature.

Departures from the official code, on purpose:
- pooling is adaptive (the code's ``MaxPool2d(14, 14)`` only works at 448 px);
- the graph is a buffer, computed from the train split at construction (the code keeps it as an untrained
  ``nn.Parameter`` that a loaded checkpoint silently overrides) and the embeddings are a buffer too (the code
  feeds them through the data loader with every sample);
- ``graph`` selects the source: ``cooccurrence`` (the paper), ``identity`` (no label correlations: the GCN
  degenerates to per-class MLPs; the ablation users ask for), or ``learned`` (a trainable C x C matrix initialised
  from the co-occurrence graph, as ADD-GCN's authors argue for);
- ``adjacency_style`` picks the code's re-weighting (``official``, default: what produced the published numbers)
  or the paper's Eq. 8 (``paper``); ``p`` defaults to the code's 0.25 (the paper states 0.2).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn

from labelgraph.graph import GraphSource, LabelGraph, gcn_adjacency, require_embeddings
from labelgraph.layers import GraphConvolution, global_pool
from labelgraph.models._registry import extends, register_model
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.recipe import Recipe


class MLGCNHead(MultiLabelHead):
    """GCN-generated classifiers applied to the pooled image feature.

    Args:
        in_channels: backbone width d (the second GCN layer's output size).
        label_embed: (C, D) node features, stored as a buffer.
        adjacency: (C, C) normalised adjacency, a buffer (or a parameter when ``learn_graph``).
        hidden: width of the hidden GCN layers (1024).
        num_layers: GCN depth (2 in ML-GCN; its paper and graphMLC ablate 2-4 layers: D -> hidden -> ... -> d).
        negative_slope: LeakyReLU slope between the GCN layers (0.2).
        learn_graph: make the adjacency a trainable parameter.
        pool: global pooling of the feature map (``max`` in ML-GCN).
        classifier_bias: add a learned per-class bias to the logits (not in ML-GCN; graphMLC's re-implementation
            offers it). Without it the class prior must be carried by the generated classifiers, which is
            unstable when the backbone is not pretrained (see the demo notes in the README).

    Shapes:
        features[-1] (B, d, H, W) -> logits (B, C).
    """

    def __init__(
        self,
        in_channels: int,
        label_embed: torch.Tensor,
        adjacency: torch.Tensor,
        hidden: int = 1024,
        negative_slope: float = 0.2,
        learn_graph: bool = False,
        pool: Literal["max", "avg"] = "max",
        classifier_bias: bool = False,
        num_layers: int = 2,
    ) -> None:
        super().__init__()
        if num_layers < 2:
            raise ValueError(f"num_layers must be >= 2 (D -> hidden -> d), got {num_layers}")
        self.register_buffer("label_embed", label_embed.detach().float().clone())
        if learn_graph:
            self.adj = nn.Parameter(adjacency.detach().float().clone())
            self.learnable_graph = ("adj",)  # learnt on purpose, from the co-occurrence graph
        else:
            self.register_buffer("adj", adjacency.detach().float().clone())
        self.graph_priors = ("label_embed",) if learn_graph else ("label_embed", "adj")  # fixed (buffers)
        self.gc1 = GraphConvolution(label_embed.shape[1], hidden)
        self.middle = nn.ModuleList(GraphConvolution(hidden, hidden) for _ in range(num_layers - 2))
        self.gc_out = GraphConvolution(hidden, in_channels)  # the last layer, at any depth: hidden -> d classifiers
        self.register_load_state_dict_pre_hook(rename_last_layer)
        self.act = nn.LeakyReLU(negative_slope)
        self.pool = pool
        self.bias = nn.Parameter(torch.zeros(label_embed.shape[0])) if classifier_bias else None

    def classifiers(self) -> torch.Tensor:
        """(C, d): one classifier per class, from the graph."""
        h = self.act(self.gc1(self.label_embed, self.adj))
        for layer in self.middle:
            h = self.act(layer(h, self.adj))
        return self.gc_out(h, self.adj)

    @torch.no_grad()
    def class_vectors(self) -> torch.Tensor:
        return self.classifiers()  # (C, d)

    def label_embeddings(self) -> torch.Tensor:
        return self.label_embed  # (C, e)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = global_pool(features[-1], self.pool)  # (B, d)
        logits = x @ self.classifiers().T  # (B, C)
        return logits + self.bias if self.bias is not None else logits


def rename_last_layer(module: nn.Module, state_dict: dict, prefix: str, *args: Any) -> None:
    """Weights saved before the last GCN layer was named ``gc_out`` call it ``gc2`` (its name at depth 2)."""
    for key in [k for k in state_dict if k.startswith(prefix + "gc2.")]:
        state_dict[prefix + "gc_out." + key.removeprefix(prefix + "gc2.")] = state_dict.pop(key)


def build_ml_gcn(
    *,
    num_classes: int,
    label_graph: LabelGraph,
    backbone: str,
    pretrained: bool | str,
    tau: float = 0.4,
    p: float = 0.25,
    adjacency_style: Literal["official", "paper"] = "official",
    graph: GraphSource = "cooccurrence",
    hidden: int = 1024,
    pool: Literal["max", "avg"] = "max",
    classifier_bias: bool = False,
    num_layers: int = 2,
) -> MultiLabelClassifier:
    """ResNet + ML-GCN head over ``label_graph``'s embeddings, with the official code's defaults (τ = 0.4, p = 0.25,
    GCN 300 -> 1024 -> 2048 on ResNet-101); ``num_layers`` > 2 inserts hidden -> hidden layers (the paper's depth
    ablation). ML-GCN and IML-GCN extend it."""
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,))
    adjacency = gcn_adjacency(label_graph, graph, tau, p, adjacency_style)
    head = MLGCNHead(
        body.channels[-1],
        label_graph.embeddings,
        adjacency,
        hidden=hidden,
        learn_graph=graph == "learned",
        pool=pool,
        classifier_bias=classifier_bias,
        num_layers=num_layers,
    )
    return MultiLabelClassifier(body, head, num_classes)


RECIPE = Recipe(
    source="ML-GCN paper (100 epochs, lr / 10 every 40) with its code's values where they differ (p 0.25, backbone "
    "x0.1, grad-norm clip 10): SGD 0.1, momentum 0.9, weight decay 1e-4, batch 16, multi-scale crop + flip",
    model_args={"tau": 0.4, "p": 0.25, "adjacency_style": "official", "graph": "cooccurrence", "hidden": 1024},
    staged_stage1_epochs=10,  # graphMLC trains GCN-generated classifiers 10 epochs on the frozen backbone
)


@register_model("ml_gcn", recipe=RECIPE, head=MLGCNHead)
@extends(build_ml_gcn)
def ml_gcn(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    **options: Any,
) -> MultiLabelClassifier:
    """ML-GCN over word-vector label embeddings; ``options``: those of :func:`build_ml_gcn`, with its defaults."""
    graph = require_embeddings("ml_gcn", label_graph, num_classes)
    return build_ml_gcn(num_classes=num_classes, label_graph=graph, backbone=backbone, pretrained=pretrained, **options)
