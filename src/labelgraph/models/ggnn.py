"""GGNN classifier: Marino, Salakhutdinov, Gupta, "The More You Know: Using Knowledge Graphs for Image
Classification", CVPR 2017 (https://arxiv.org/abs/1612.04844), in the form graphMLC
re-implements and benchmarks on VOC (graphMLC).

The globally max-pooled image feature gives one scalar per graph node ("annotation"); each node's state is its
scalar repeated to the hidden size (10); T = 3 gated propagation steps over in- and out-edges; a linear layer on
[annotations ; flattened final states] gives the C logits. The graph may have more nodes than classes (a
Visual Genome knowledge graph) or be the classes' co-occurrence graph.

Departures from graphMLC's code, on purpose: messages are recomputed from the current states at every step
(the code computes them once from the initial states), and the reset gate has its own weights.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn

from labelgraph.graph import LabelGraph, ggnn_adjacency
from labelgraph.layers import GatedGraphCell, global_pool
from labelgraph.models._registry import extends, register_model
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.recipe import Component, Recipe


class GGNNHead(MultiLabelHead):
    """Pooled feature -> node annotations -> T GGNN steps -> logits.

    Args:
        in_channels: backbone width d.
        num_classes: C.
        adj_in, adj_out: (K, K) edge matrices (buffers); K >= C graph nodes.
        hidden: node state size (10).
        steps: propagation steps T (3).

    Shapes:
        features[-1] (B, d, H, W) -> annotations (B, K) -> states (B, K, hidden) -> logits (B, C).
    """

    graph_priors = ("adj_in", "adj_out")  # fixed, from the label or knowledge graph (buffers)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        adj_in: torch.Tensor,
        adj_out: torch.Tensor,
        hidden: int = 10,
        steps: int = 3,
    ) -> None:
        super().__init__()
        nodes = adj_in.shape[0]
        self.register_buffer("adj_in", adj_in.detach().float().clone())
        self.register_buffer("adj_out", adj_out.detach().float().clone())
        self.hidden, self.steps = hidden, steps
        self.annotate = nn.Linear(in_channels, nodes)
        self.cell = GatedGraphCell(hidden, bias=False)
        self.classifier = nn.Linear(nodes + nodes * hidden, num_classes)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        annotations = self.annotate(global_pool(features[-1], "max"))  # (B, K)
        h = annotations.unsqueeze(-1).repeat(1, 1, self.hidden)  # (B, K, hidden)
        for _ in range(self.steps):
            h = self.cell(h, self.adj_in, self.adj_out)
        return self.classifier(torch.cat([annotations, h.flatten(1)], dim=1))  # (B, C)

    def class_vectors(self) -> torch.Tensor:
        return self.classifier.weight.detach()  # (C, N + N hidden): the weights over every node's state


RECIPE = Recipe(
    source="graphMLC (T. Viel's GGNN, SSGRL and ML-GCN under one protocol), single stage: its second stage's Adam 1e-3 "
    "with cosine decay to 1e-6 over 8 epochs, backbone x0.1, batch 32, its flip augmentation, SSGRL's interpolated AP",
    model_args={"graph": "knowledge", "hidden": 10, "steps": 3, "tau": 0.1, "p": 0.1},
    optimizer=Component("torch.optim.Adam", {"lr": 1e-3}),
    lr_scheduler=Component("torch.optim.lr_scheduler.CosineAnnealingLR", {"T_max": 8, "eta_min": 1e-6}),
    epochs=8,
    batch_size=32,
    gradient_clip_val=None,
    train_transform="flip",
    metrics="ssgrl",
)


@register_model("ggnn", recipe=RECIPE, head=GGNNHead)
@extends(GGNNHead, exclude=("in_channels", "adj_in", "adj_out"))
def ggnn(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    graph: Literal["auto", "knowledge", "cooccurrence"] = "auto",
    tau: float = 0.1,
    p: float = 0.1,
    **options: Any,
) -> MultiLabelClassifier:
    """GGNN classifier with graphMLC's defaults (``options``, :class:`GGNNHead`'s: hidden 10, T = 3; edges binarised
    at 0.1 and re-weighted to 0.1).

    ``graph="auto"`` uses the label graph's knowledge graph when it has one, else the co-occurrence graph
    (edge i -> j weighted by P(j | i)).
    """
    if label_graph is None:
        raise ValueError("ggnn needs a label graph (co-occurrence statistics or a knowledge graph)")
    use_knowledge = graph == "knowledge" or (graph == "auto" and label_graph.knowledge is not None)
    if use_knowledge:
        if label_graph.knowledge is None:
            raise ValueError(
                "graph='knowledge' but the label graph has no knowledge graph (labelgraph data graph --knowledge)"
            )
        weights = label_graph.knowledge.adjacency
    elif graph in ("auto", "cooccurrence"):
        weights = label_graph.conditional_probability()
    else:
        raise ValueError(f"unknown graph {graph!r}; use auto, knowledge or cooccurrence")
    adj_in, adj_out = ggnn_adjacency(weights, tau=tau, p=p)
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,))
    head = GGNNHead(body.channels[-1], num_classes, adj_in, adj_out, **options)
    return MultiLabelClassifier(body, head, num_classes)
