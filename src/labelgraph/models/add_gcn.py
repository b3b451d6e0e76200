"""ADD-GCN: Ye, Hu, Sun, Zhu, "Attention-Driven Dynamic Graph Convolutional Network for Multi-Label Image
Recognition", ECCV 2020. https://arxiv.org/abs/2012.02994 -- official code: Yejin0111/ADD-GCN.

A semantic attention module turns the last feature map into class activation maps M and content-aware class
features V (1024-d, σ(M)-weighted spatial sums); the D-GCN runs a static GCN (a learned C x C node mixing,
LeakyReLU 0.2, residual H = V + H_s) and then a dynamic GCN whose graph is built per image from a global context
vector and the node features (A_d = σ(W [g; H])); an outer residual gives Z = V + Z_d. Two scores: s_m, the spatial
max of M, and s_r, a per-class classifier on Z; the logits are their mean -- what the official trainer optimises
(one loss on the averaged logits) and evaluates.

Departures from the official code: the per-class classifier is an explicit (C, 1024) weight and bias (the code
computes a C x C ``Conv1d`` output and keeps its diagonal through a frozen identity "parameter"; same function,
C times less work); the head works at any input size and aspect ratio.

``DynamicGraphHead`` is shared with DB-DGCN (``labelgraph.models.db_dgcn``), whose switches default to off here.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from labelgraph.graph import LabelGraph
from labelgraph.layers.dynamic_graph import DynamicAdjacency, DynamicGraphConv, StaticGraphConv
from labelgraph.layers.semantic_attention import SemanticAttention
from labelgraph.models._registry import register_model
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.recipe import Component, Recipe


class DynamicGraphHead(MultiLabelHead):
    """Semantic attention (on one or several stages) + static GCN + dynamic GCN(s) + two scores.

    Args:
        in_channels: channels of each input stage, shallow to deep (one stage: ADD-GCN).
        num_classes: C.
        dim: class feature size (1024).
        static_prior: (C, C) fixed static graph (a buffer), or ``None`` to learn it (ADD-GCN).
        auxiliary: add DB-DGCN's auxiliary branch: a second dynamic graph built from the content-aware features V
            themselves, applied after the main dynamic GCN (cascade).
        map_weight: α in logits = α s_m + (1 - α) s_r (ADD-GCN: 0.5, the mean).
        negative_slope: LeakyReLU slope (0.2).

    Shapes:
        features[-len(in_channels):] (B, d_k, H_k, W_k) -> logits (B, C); ``class_maps`` -> (B, C, H_0, W_0) at the
        finest used stage.
    """

    def __init__(
        self,
        in_channels: list[int],
        num_classes: int,
        dim: int = 1024,
        static_prior: torch.Tensor | None = None,
        auxiliary: bool = False,
        map_weight: float = 0.5,
        negative_slope: float = 0.2,
    ) -> None:
        super().__init__()
        if not 0.0 <= map_weight <= 1.0:
            raise ValueError(f"map_weight must be in [0, 1], got {map_weight}")
        self.num_stages, self.map_weight = len(in_channels), map_weight
        self.sam = nn.ModuleList(SemanticAttention(c, num_classes, dim) for c in in_channels)
        self.static_graph = StaticGraphConv(dim, num_classes, static_prior, negative_slope)
        self.dynamic_adjacency = DynamicAdjacency(dim, num_classes, negative_slope)
        self.dynamic_graph = DynamicGraphConv(dim, negative_slope)
        if auxiliary:
            self.auxiliary_adjacency = DynamicAdjacency(dim, num_classes, negative_slope)
            self.auxiliary_graph = DynamicGraphConv(dim, negative_slope)
        self.auxiliary = auxiliary
        self.classifier_weight = nn.Parameter(torch.empty(num_classes, dim).uniform_(-(dim**-0.5), dim**-0.5))
        self.classifier_bias = nn.Parameter(torch.empty(num_classes).uniform_(-(dim**-0.5), dim**-0.5))
        if static_prior is None:
            self.learnable_graph = ("static_graph",)  # ADD-GCN learns its static graph
        self.graph_priors = ("static_graph.adj",) if static_prior is not None else ()  # DB-DGCN's fixed prior

    def attend(self, features: list[torch.Tensor]) -> tuple[list[torch.Tensor], torch.Tensor]:
        """Class activation maps of each stage and the class features V (B, dim, C), summed over stages.

        A shallower stage's σ-weighted sum is rescaled by (deepest positions / its positions), so each stage
        contributes on the scale of the deepest one (with one stage this is exactly ADD-GCN's V).
        """
        stages = features[-self.num_stages :]
        deepest = stages[-1].shape[-2] * stages[-1].shape[-1]
        maps, v = [], 0.0
        for sam, x in zip(self.sam, stages, strict=True):
            m, v_k = sam(x)
            maps.append(m)
            v = v + v_k * (deepest / (x.shape[-2] * x.shape[-1]))
        return maps, v

    def forward_train(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        maps, v = self.attend(features)
        map_logits = torch.stack([m.flatten(2).amax(-1) for m in maps]).mean(0)  # (B, C): s_m
        h = v + self.static_graph(v)  # (B, dim, C)
        adjacency = self.dynamic_adjacency(h)  # (B, C, C)
        z = self.dynamic_graph(h, adjacency)
        out = {"dynamic_adjacency": adjacency}
        if self.auxiliary:
            out["auxiliary_adjacency"] = self.auxiliary_adjacency(v)
            z = self.auxiliary_graph(z, out["auxiliary_adjacency"])
        z = v + z  # outer residual
        graph_logits = torch.einsum("bdc,cd->bc", z, self.classifier_weight) + self.classifier_bias  # s_r
        logits = self.map_weight * map_logits + (1 - self.map_weight) * graph_logits
        return {"logits": logits, "map_logits": map_logits, "graph_logits": graph_logits, **out}

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.forward_train(features)["logits"]

    def class_vectors(self) -> torch.Tensor:
        return self.classifier_weight.detach()  # (C, dim): the per-class classifier of the graph branch

    def class_maps(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Class activation maps (B, C, h, w), averaged over stages at the finest stage's resolution."""
        maps, _ = self.attend(features)
        size = maps[0].shape[-2:]
        return torch.stack([F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in maps]).mean(0)


RECIPE = Recipe(
    source="ADD-GCN main.py: SGD 0.05, momentum 0.9, weight decay 1e-4, backbone x0.1, lr / 10 at epochs 30 and 40 "
    "of 50, grad-norm clip 10, batch 16, drop_last, resize to S + 64 -> multi-scale crop + flip",
    model_args={"dim": 1024},
    optimizer=Component("torch.optim.SGD", {"lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4}),
    lr_scheduler=Component("torch.optim.lr_scheduler.MultiStepLR", {"milestones": [30, 40], "gamma": 0.1}),
    epochs=50,
    drop_last=True,
    train_transform="add_gcn",
    metrics="add_gcn",
)


@register_model("add_gcn", recipe=RECIPE, head=DynamicGraphHead)
def add_gcn(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    dim: int = 1024,
) -> MultiLabelClassifier:
    """ADD-GCN with the official defaults (1024-d class features, LeakyReLU 0.2, logits = mean of s_m and s_r).

    The static graph is learned, so no label graph is needed (``label_graph`` is accepted and ignored).
    """
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,))
    head = DynamicGraphHead(body.channels, num_classes, dim=dim)
    return MultiLabelClassifier(body, head, num_classes)
