"""Query2Label: Liu, Zhang, Yang, Su, Zhu, "Query2Label: A Simple Transformer Way to Multi-Label Classification",
2021. https://arxiv.org/abs/2107.10834 -- official code: SlongLiu/query2labels.

The last feature map (plus a 2-D sine position encoding) goes through a 1-layer transformer encoder; C learnable
label queries cross-attend to it in a 2-layer decoder (4 heads, feed-forward 4 x hidden -- the official R101 setting
is exactly that, 2048 -> 8192 --, hidden = backbone width, dropout 0.1, decoder self-attention removed as in the
official code); a group-wise linear layer (one weight vector and bias per class) turns each label's output feature
into its logit. On pretrained weights the backbone follows the official ResNet setting: frozen BatchNorm
everywhere, stem and layer1 frozen (``trainable_stages=3``); from random weights nothing is frozen (``"auto"``).

Departures from the official code, on purpose: the position encoding is computed for the actual feature-map size
(the official one is a buffer fixed to the training resolution, so another input size fails); the input projection
is applied whenever the backbone width differs from ``hidden`` (the official code replaces it by an identity
unless asked, which only works when they are equal); the feed-forward width follows the hidden width (the official
8192 is a constant, 16x a 512-wide backbone); freezing follows the weights (see above).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn

from labelgraph.graph import LabelGraph
from labelgraph.layers.label_transformer import LabelQueryTransformer
from labelgraph.layers.position_encoding import sine_position_encoding
from labelgraph.losses import ASL_PRESETS
from labelgraph.models._registry import extends, register_model
from labelgraph.models.backbone import Backbone, official_if_pretrained
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.recipe import ONE_CYCLE, Component, Recipe, asl


class GroupWiseLinear(nn.Module):
    """logit_c = <w_c, h_c> + b_c, one weight vector and bias per class (U(±1/sqrt(d)) init).

    Shapes:
        h (B, C, d) -> (B, C).
    """

    def __init__(self, num_classes: int, dim: int) -> None:
        super().__init__()
        bound = dim**-0.5
        self.weight = nn.Parameter(torch.empty(num_classes, dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_classes).uniform_(-bound, bound))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return (h * self.weight).sum(-1) + self.bias


class Query2LabelHead(MultiLabelHead):
    """Input projection + position encoding + label-query transformer + group-wise linear classifier.

    Args:
        in_channels: backbone width.
        num_classes: C (number of label queries).
        hidden: transformer width (default: the backbone width, as the official R101 setting).
        **transformer: ``LabelQueryTransformer`` options (nhead 4, 1 encoder and 2 decoder layers, feed-forward
            4 x hidden, dropout 0.1, no decoder self-attention).

    Shapes:
        features[-1] (B, D, H, W) -> tokens (B, HW, hidden) -> label features (B, C, hidden) -> logits (B, C).
    """

    def __init__(self, in_channels: int, num_classes: int, hidden: int | None = None, **transformer: Any) -> None:
        super().__init__()
        hidden = hidden or in_channels
        self.hidden = hidden
        self.input_proj = nn.Conv2d(in_channels, hidden, 1) if hidden != in_channels else nn.Identity()
        self.transformer = LabelQueryTransformer(hidden, **transformer)
        self.query_embed = nn.Embedding(num_classes, hidden)
        self.classifier = GroupWiseLinear(num_classes, hidden)

    def label_features(self, features: list[torch.Tensor]) -> torch.Tensor:
        """(B, C, hidden): the decoder's output for each label query."""
        x = self.input_proj(features[-1])  # (B, hidden, H, W)
        pos = sine_position_encoding(*x.shape[-2:], self.hidden, device=x.device, dtype=x.dtype)
        tokens = x.flatten(2).transpose(1, 2)  # (B, HW, hidden)
        return self.transformer(tokens, pos.flatten(1).T[None], self.query_embed.weight)

    def forward_train(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.label_features(features)
        return {"logits": self.classifier(h), "label_features": h}

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.classifier(self.label_features(features))

    def class_vectors(self) -> torch.Tensor:
        return self.classifier.weight.detach()  # (C, hidden): the group-wise classifier's rows


def build_query2label(
    head_class: type[Query2LabelHead],
    *,
    num_classes: int,
    backbone: str,
    pretrained: bool | str,
    trainable_stages: int | None | Literal["auto"] = "auto",
    frozen_batchnorm: bool | Literal["auto"] = "auto",
    hidden: int | None = None,
    **head_args: Any,
) -> MultiLabelClassifier:
    """Query2Label's backbone setting (on pretrained weights: frozen BatchNorm, stem and layer1 frozen: ``"auto"``) +
    a Query2Label-style head of ``hidden`` width (default: the backbone's) given ``head_args`` (the transformer's
    options, and a variant head's own)."""
    freezing = {
        "trainable_stages": official_if_pretrained(trainable_stages, pretrained, official=3, off=None),
        "frozen_batchnorm": official_if_pretrained(frozen_batchnorm, pretrained, official=True, off=False),
    }
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,), **freezing)
    model = MultiLabelClassifier(body, head_class(body.channels[-1], num_classes, hidden, **head_args), num_classes)
    model.resolved_kwargs = freezing
    return model


RECIPE = Recipe(
    source="Query2Label README command: AdamW 1e-4 (one learning rate for every parameter), weight decay 1e-2, "
    "one-cycle stepped per batch (20 % warm-up), EMA 0.9997, ASL (γ- 2, mean x 1000), batch 64, 80 epochs with early "
    "stopping after 8 without a better EMA mAP, squash resize + Cutout + RandAugment",
    model_args={
        "nhead": 4,
        "num_encoder_layers": 1,
        "num_decoder_layers": 2,
        "dim_feedforward": 8192,
        "dropout": 0.1,
        "decoder_self_attention": False,
        "trainable_stages": 3,
    },
    criterion=asl(ASL_PRESETS["query2label"]),
    optimizer=Component("torch.optim.AdamW", {"lr": 1e-4, "weight_decay": 1e-2}),
    backbone_lr_mult=1.0,
    lr_scheduler=ONE_CYCLE,
    ema_decay=0.9997,
    epochs=80,
    batch_size=64,
    gradient_clip_val=None,
    early_stopping_patience=8,
    train_transform="asl",
    metrics="query2label",
)


@register_model("query2label", recipe=RECIPE, head=Query2LabelHead)
@extends(build_query2label, LabelQueryTransformer, exclude=("head_class", "d_model"))
def query2label(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    **options: Any,
) -> MultiLabelClassifier:
    """Query2Label with the official R101 defaults (enc 1, dec 2, 4 heads, FFN 4 x hidden = 8192 at 2048, hidden =
    backbone width; on pretrained weights frozen BatchNorm and layer2-4 trained); ``options``: the backbone setting
    of :func:`build_query2label` and the transformer's (:class:`~labelgraph.layers.label_transformer.
    LabelQueryTransformer`), with their defaults.

    No label graph is used (``label_graph`` is accepted and ignored).
    """
    return build_query2label(
        Query2LabelHead, num_classes=num_classes, backbone=backbone, pretrained=pretrained, **options
    )
