"""Baseline: a CNN, global pooling and a linear classifier.

The reference every label-graph method must beat. ML-GCN's README reports ResNet-101 with global max pooling
(GMP) at 81.9 mAP on COCO-2014 (448 px) against 77.3 with average pooling (GAP), so GMP is the default here.
Pooling is adaptive, so any input size works (the official ML-GCN code hard-codes a 14x14 pool).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn

from labelgraph.graph import LabelGraph
from labelgraph.layers import global_pool
from labelgraph.models._registry import extends, register_model
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.recipe import Recipe


class PoolLinearHead(MultiLabelHead):
    """Global pooling of the last feature map, dropout, linear classifier.

    Shapes:
        features[-1] (B, D, H, W) -> logits (B, num_classes).
    """

    def __init__(self, in_channels: int, num_classes: int, pool: Literal["max", "avg"] = "max", dropout: float = 0.0):
        super().__init__()
        global_pool(torch.zeros(1, 1, 1, 1), pool)  # validate early, with the message above
        self.pool = pool
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        pooled = global_pool(features[-1], self.pool)  # (B, D)
        return self.fc(self.dropout(pooled))  # (B, C)

    def class_vectors(self) -> torch.Tensor:
        return self.fc.weight.detach()  # (C, d)


RECIPE = Recipe(
    source="ML-GCN's baseline (ResNet-101 + global max pooling), trained as ML-GCN trains: SGD 0.1, momentum 0.9, "
    "weight decay 1e-4, backbone x0.1, lr / 10 every 40 epochs, grad-norm clip 10",
)


@register_model("baseline", recipe=RECIPE, head=PoolLinearHead)
@extends(PoolLinearHead, exclude=("in_channels",))
def baseline(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    **options: Any,
) -> MultiLabelClassifier:
    """ResNet-101 + global max pooling + linear (ML-GCN's baseline; ``options``, :class:`PoolLinearHead`'s: ``pool``,
    ``dropout``). ``label_graph`` is accepted and unused."""
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,))
    head = PoolLinearHead(body.channels[-1], num_classes, **options)
    return MultiLabelClassifier(body, head, num_classes)
