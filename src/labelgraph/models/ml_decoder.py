"""ML-Decoder: Ridnik, Sharir, Ben-Cohen, Ben-Baruch, Noy, "ML-Decoder: Scalable and Versatile Classification
Head", WACV 2023. https://arxiv.org/abs/2111.12933 -- official code: Alibaba-MIIL/ML_Decoder.

Not a label-graph method: the strongest label-query head with public code (90.1 COCO mAP with TResNet-L at 448 px,
91.4 with TResNet-XL at 640 in the official model zoo), here as the competitor the graph methods are measured
against. It replaces global pooling + linear: the last feature map's tokens are projected (linear 2432 -> 768 +
ReLU for TResNet-L), K query tokens cross-attend to them in one decoder layer **without self-attention** (8 heads,
feed-forward 2048, dropout 0.1), and group decoding turns each query's output into ``ceil(C / K)`` logits through
its own projection. K = min(100, C): with C > 100 a query scores several classes, so the cost stays flat in C.

Queries: ``"fixed"`` (the official code: random N(0, 1) embeddings that are never trained), ``"learnable"``, or
``"embeddings"`` -- each class's query made from its word vector (linear + ReLU; one query per class) and one
projection shared by every class, the paper's zero-shot setting: new class names get new word vectors and are
scored by the same network (``MultiLabelClassifier.score_new_classes``; ``labelgraph predict MODEL --classes FILE
--embeddings ...``).

Departures from the official code: none in the architecture or its initialisation (its ``tgt + dropout(tgt)`` where
self-attention was is kept, see :class:`~labelgraph.layers.group_decoder.CrossAttentionLayer`; group decoding and the
zero-shot classifier start from a xavier-normal weight and a zero bias, as its code initialises them). Added:
``class_maps`` returns the cross-attention of each class's query.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn as nn

from labelgraph.errors import InvalidInputError
from labelgraph.graph import LabelGraph, require_embeddings
from labelgraph.layers.group_decoder import CrossAttentionLayer, GroupFullyConnected
from labelgraph.losses import ASL_PRESETS
from labelgraph.models._registry import extends, register_model
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.recipe import ONE_CYCLE, Component, Recipe, asl

QuerySource = Literal["fixed", "learnable", "embeddings"]


class MLDecoderHead(MultiLabelHead):
    """Token projection + query decoder (no self-attention) + group decoding (or one shared projection).

    Args:
        in_channels: backbone width.
        num_classes: C.
        queries: ``fixed`` / ``learnable`` (K = min(num_groups, C) query embeddings) or ``embeddings`` (one query
            per class from ``label_embeddings`` (C, e), and a projection shared by all classes).
        num_groups, embed_dim, num_layers, nhead, dim_feedforward, dropout: the paper's 100, 768, 1, 8, 2048, 0.1.

    Shapes:
        features[-1] (B, D, H, W) -> tokens (B, HW, embed_dim) -> query outputs (B, K, embed_dim) -> logits (B, C).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        queries: QuerySource = "fixed",
        label_embeddings: torch.Tensor | None = None,
        num_groups: int = 100,
        embed_dim: int = 768,
        num_layers: int = 1,
        nhead: int = 8,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.queries = queries
        self.input_proj = nn.Sequential(nn.Linear(in_channels, embed_dim), nn.ReLU())
        self.layers = nn.ModuleList(
            CrossAttentionLayer(embed_dim, nhead, dim_feedforward, dropout) for _ in range(num_layers)
        )
        if queries == "embeddings":
            self.register_buffer("label_embed", label_embeddings.float().clone())  # (C, e)
            self.graph_priors = ("label_embed",)  # the word vectors the queries are made from (a buffer)
            self.query_proj = nn.Sequential(nn.Linear(label_embeddings.shape[1], embed_dim), nn.ReLU())
            self.classifier = nn.Linear(embed_dim, 1)  # shared by every class: any class list can be scored
            nn.init.xavier_normal_(self.classifier.weight)  # the official zero-shot duplicate_pooling's init
            nn.init.zeros_(self.classifier.bias)
        else:
            groups = min(num_groups, num_classes)
            self.query_embed = nn.Embedding(groups, embed_dim)  # N(0, 1)
            self.query_embed.weight.requires_grad_(queries == "learnable")
            self.classifier = GroupFullyConnected(groups, embed_dim, num_classes)

    def query_tokens(self, batch: int) -> torch.Tensor:
        """(B, K, embed_dim): the queries, K = C with word-vector queries."""
        q = self.query_proj(self.label_embed) if self.queries == "embeddings" else self.query_embed.weight
        return q[None].expand(batch, -1, -1)

    def decode(self, features: list[torch.Tensor], need_weights: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """Query outputs (B, K, embed_dim) and the last layer's attention (B, K, HW) (None unless asked)."""
        tokens = self.input_proj(features[-1].flatten(2).transpose(1, 2))  # (B, HW, embed_dim)
        h, weights = self.query_tokens(tokens.shape[0]), None
        for layer in self.layers:
            h, weights = layer(h, tokens, need_weights)
        return h, weights

    def logits(self, h: torch.Tensor) -> torch.Tensor:
        return self.classifier(h).squeeze(-1) if self.queries == "embeddings" else self.classifier(h)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.logits(self.decode(features)[0])

    def class_maps(self, features: list[torch.Tensor]) -> torch.Tensor:
        """(B, C, h, w): where each class's query looked (cross-attention of the last layer, heads averaged)."""
        _, weights = self.decode(features, need_weights=True)  # (B, K, HW)
        if self.queries != "embeddings":
            classes = torch.arange(self.classifier.num_classes, device=weights.device)
            weights = weights[:, self.classifier.group_of(classes)]
        return weights.unflatten(-1, features[-1].shape[-2:])

    def label_embeddings(self) -> torch.Tensor:
        if self.queries != "embeddings":
            return super().label_embeddings()
        return self.label_embed  # (C, e)

    @torch.no_grad()
    def class_vectors(self) -> torch.Tensor:
        """(C, embed_dim): the vector that scores each class -- its column of its group's projection, or with
        word-vector queries (one projection shared by all) its query."""
        if self.queries == "embeddings":
            return self.query_proj(self.label_embed)
        weight = self.classifier.weight  # (K, d, g): class k g + j is scored by weight[k, :, j]
        return weight.permute(0, 2, 1).flatten(0, 1)[: self.classifier.num_classes]

    def set_label_embeddings(self, embeddings: torch.Tensor) -> None:
        """Score another class list from now on: one word vector per class (zero-shot)."""
        if self.queries != "embeddings":
            raise InvalidInputError("only ml_decoder with queries='embeddings' scores classes it was not trained on")
        if embeddings.shape[1] != self.label_embed.shape[1]:
            expected, got = self.label_embed.shape[1], embeddings.shape[1]
            raise InvalidInputError(
                f"the model's queries take {expected}-d word vectors, these are {got}-d "
                "(use the embeddings it was trained with)"
            )
        self.label_embed = embeddings.to(self.label_embed).clone()


RECIPE = Recipe(
    source="ML-Decoder train.py: Adam 1e-4 with L2 1e-4 on weights only, one-cycle over 40 epochs (20 % warm-up) "
    "stepped per batch, EMA 0.9997, ASL (γ- 4, γ+ 0, clip 0.05, sum), batch 56, squash resize + Cutout + RandAugment",
    backbone="tresnet_l",
    model_args={
        "queries": "fixed",
        "num_groups": 100,
        "embed_dim": 768,
        "num_layers": 1,
        "nhead": 8,
        "dim_feedforward": 2048,
        "dropout": 0.1,
    },
    criterion=asl(ASL_PRESETS["asl"]),
    optimizer=Component("labelgraph.engine.recipes.AdamNoDecayOn1d", {"lr": 1e-4, "weight_decay": 1e-4}),
    backbone_lr_mult=1.0,
    lr_scheduler=ONE_CYCLE,
    ema_decay=0.9997,
    epochs=40,
    batch_size=56,
    gradient_clip_val=None,
    train_transform="asl",
    metrics="asl",
)


@register_model("ml_decoder", recipe=RECIPE, head=MLDecoderHead)
@extends(MLDecoderHead, exclude=("in_channels", "label_embeddings"))
def ml_decoder(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "tresnet_l",
    pretrained: bool | str = False,
    queries: QuerySource = "fixed",
    **options: Any,
) -> MultiLabelClassifier:
    """ML-Decoder with the paper's defaults (TResNet-L, K = min(100, C) fixed queries, 768-d, 1 layer, 8 heads, FFN
    2048, dropout 0.1: ``options``, :class:`MLDecoderHead`'s). ``queries="embeddings"`` needs the label graph's word
    vectors (zero-shot capable)."""
    if queries not in ("fixed", "learnable", "embeddings"):
        raise ValueError(f"queries must be 'fixed', 'learnable' or 'embeddings', got {queries!r}")
    embeddings = None
    if queries == "embeddings":
        embeddings = require_embeddings("ml_decoder", label_graph, num_classes).embeddings
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,))
    head = MLDecoderHead(body.channels[-1], num_classes, queries, embeddings, **options)
    return MultiLabelClassifier(body, head, num_classes)
