"""SSGRL: Chen, Xu, Hui, Wu, Lin, "Learning Semantic-Specific Graph Representation for Multi-Label Image
Recognition", ICCV 2019. https://arxiv.org/abs/1908.07325 -- official code: HCPLab-SYSU/SSGRL.

Semantic decoupling turns the last feature map (ResNet-101 layer4 followed by a 2 x 2 average pooling: 9 x 9 at
576 px) into one feature per class through an attention map guided by the class's word embedding
(``SemanticDecoupling``); a GGNN (T = 3, in- and out-edges of the co-occurrence graph A[i, j] = P(j | i), messages
are the neighbours' raw 2048-d states, separate reset- and update-gate weights) lets the class features interact;
the output o_c = tanh(W [h_c^T ; h_c^0]) (4096 -> 2048) is scored by one linear classifier per class.
The recipe trains ResNet layer4 and the heads only (conv1..layer3 frozen, in eval mode): ``trainable_stages=1`` on
pretrained weights; from random weights nothing is frozen (``"auto"``: frozen random stages stay random).

Departures from the official code, on purpose:
- the reset gate has its own U_r (the code reuses the update gate's U_z and leaves U_r unused);
- the semantic decoupling is computed in a memory-lean form (chunked over classes, checkpointed, no B x HW x C x d
  broadcast) that gives the same function; ``formulation="dense"`` restores the official one;
- the extra 2 x 2 average pooling uses ``ceil_mode`` so maps of odd or unit size still work (identical at even
  sizes such as 18 x 18); any input size and aspect ratio work (the code assumes a square map).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from labelgraph.graph import LabelGraph, require_embeddings
from labelgraph.layers import GatedGraphCell
from labelgraph.layers.semantic_decoupling import Formulation, SemanticDecoupling
from labelgraph.models._registry import extends, register_model
from labelgraph.models.backbone import Backbone, official_if_pretrained
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.recipe import Component, Recipe


class SSGRLHead(MultiLabelHead):
    """Semantic decoupling -> GGNN semantic interaction -> per-class classifiers.

    Args:
        in_channels: backbone width d (node state size).
        label_embed: (C, E) label embeddings (a buffer).
        adjacency: (C, C) co-occurrence graph P(j | i) (a buffer; "in" edges A, "out" edges A^T).
        hidden: semantic decoupling intermediate size (1024).
        steps: GGNN time steps T (3).
        feature_pool: extra average pooling of the feature map (2; 1 = none).
        class_chunk, formulation: see ``SemanticDecoupling``.

    Shapes:
        features[-1] (B, d, H, W) -> pooled (B, d, h, w) -> node features (B, C, d) -> logits (B, C);
        ``class_maps`` -> attention (B, C, h, w), summing to 1 over positions.
    """

    graph_priors = ("label_embed", "adj_in", "adj_out")  # fixed, from the label graph (buffers)

    def __init__(
        self,
        in_channels: int,
        label_embed: torch.Tensor,
        adjacency: torch.Tensor,
        hidden: int = 1024,
        steps: int = 3,
        feature_pool: int = 2,
        class_chunk: int = 16,
        formulation: Formulation = "chunked",
    ) -> None:
        super().__init__()
        num_classes = label_embed.shape[0]
        self.register_buffer("label_embed", label_embed.detach().float().clone())
        self.register_buffer("adj_in", adjacency.detach().float().clone())
        self.register_buffer("adj_out", adjacency.detach().float().T.clone())
        self.steps, self.feature_pool = steps, feature_pool
        self.decoupling = SemanticDecoupling(in_channels, label_embed.shape[1], hidden, class_chunk, formulation)
        self.cell = GatedGraphCell(in_channels, bias=True, edge_transform=False)
        self.output = nn.Linear(2 * in_channels, in_channels)
        bound = in_channels**-0.5
        self.classifier_weight = nn.Parameter(torch.empty(num_classes, in_channels).uniform_(-bound, bound))
        self.classifier_bias = nn.Parameter(torch.empty(num_classes).uniform_(-bound, bound))

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.feature_pool == 1:
            return x
        return F.avg_pool2d(x, self.feature_pool, ceil_mode=True)

    def forward_train(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        x = self.pool(features[-1])
        attention, h0 = self.decoupling(x, self.label_embed)  # (B, C, hw), (B, C, d)
        h = h0
        for _ in range(self.steps):
            h = self.cell(h, self.adj_in, self.adj_out)
        o = torch.tanh(self.output(torch.cat([h, h0], dim=-1)))  # (B, C, d)
        logits = (o * self.classifier_weight).sum(-1) + self.classifier_bias
        return {"logits": logits, "attention": attention.view(*attention.shape[:2], *x.shape[-2:])}

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.forward_train(features)["logits"]

    def class_vectors(self) -> torch.Tensor:
        return self.classifier_weight.detach()  # (C, d): one linear classifier per class

    def label_embeddings(self) -> torch.Tensor:
        return self.label_embed  # (C, e)

    def class_maps(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Semantic decoupling attention (B, C, h, w) on the pooled map."""
        x = self.pool(features[-1])
        attention, _ = self.decoupling(x, self.label_embed)
        return attention.view(*attention.shape[:2], *x.shape[-2:])


RECIPE = Recipe(
    source="SSGRL main_coco.sh / main_voc.sh: Adam 1e-5, no weight decay, no decay over 200 epochs, batch 4, mean BCE, "
    "layer4 + heads trained; 640 -> random square crop -> 576, test 640 -> centre crop 576",
    model_args={"hidden": 1024, "steps": 3, "feature_pool": 2, "trainable_stages": 1},
    optimizer=Component("torch.optim.Adam", {"lr": 1e-5, "weight_decay": 0.0}),
    backbone_lr_mult=1.0,
    lr_scheduler=None,
    epochs=200,
    batch_size=4,
    gradient_clip_val=None,
    image_size=576,
    train_transform="ssgrl",
    eval_transform="center_crop",
    metrics="ssgrl",
)


@register_model("ssgrl", recipe=RECIPE, head=SSGRLHead)
@extends(SSGRLHead, exclude=("in_channels", "label_embed", "adjacency"))
def ssgrl(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    trainable_stages: int | None | Literal["auto"] = "auto",
    **options: Any,
) -> MultiLabelClassifier:
    """SSGRL with the official defaults (``options``, :class:`SSGRLHead`'s: 1024-d decoupling, T = 3, 2 x 2 pooling;
    on pretrained weights only the last stage trains, from random weights all do: ``trainable_stages="auto"``)."""
    graph = require_embeddings("ssgrl", label_graph, num_classes)
    adjacency = graph.conditional_probability()
    stages = official_if_pretrained(trainable_stages, pretrained, official=1, off=None)
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,), trainable_stages=stages)
    head = SSGRLHead(body.channels[-1], graph.embeddings, adjacency, **options)
    model = MultiLabelClassifier(body, head, num_classes)
    model.resolved_kwargs = {"trainable_stages": stages}
    return model
