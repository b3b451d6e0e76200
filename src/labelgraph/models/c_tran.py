"""C-Tran: Lanchantin, Wang, Ordonez, Qi, "General Multi-label Image Classification with Transformers", CVPR 2021.
https://arxiv.org/abs/2011.14027 -- official code: QData/C-Tran.

The last feature map's H x W positions and C label embeddings go through one transformer encoder together (3 layers,
4 heads, feed-forward width = model width = backbone width, dropout 0.1, post-norm, ReLU), after one LayerNorm of the
whole sequence; each label's output is read out by its own weight vector and bias (the diagonal of a C-way linear
layer). Every label embedding carries a **state embedding**: unknown, negative or positive. Trained with label-mask
training -- each image reveals a random number of its labels (0 to 75 % of the classes) as positive/negative states
and the loss counts only the others --, the model predicts the unknown labels *given the known ones* at inference
(:meth:`CTranHead.forward_known`); ``forward`` is every label unknown.

As the official code: the state embedding of "unknown" is a fixed random vector (its ``nn.Embedding`` row 0 is the
padding index, so it never gets a gradient, and the initialisation overwrites its zeros with U(±1/sqrt(d))): here a
buffer. No position encoding (the official default). Label, state and readout weights start from U(±1/sqrt(d)), as
its ``weights_init``; the transformer layers' linear maps too (its ``weights_init`` reaches every ``nn.Linear`` of
them), their attention projections PyTorch's default.

Departures, on purpose: the loss is the recipe's mean over the counted entries where the official code sums them
(Adam's steps do not depend on the loss scale, up to its epsilon); the official "plateau" schedule steps on the
validation loss, as here, with the patience it states (5 epochs).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from labelgraph.graph import LabelGraph
from labelgraph.models._registry import register_model
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.recipe import Component, Recipe

UNKNOWN, NEGATIVE, POSITIVE = -1, 0, 1  # the entries of ``known``


def uniform_(tensor: torch.Tensor, fan: int) -> torch.Tensor:
    """The official ``weights_init``: U(-1/sqrt(fan), 1/sqrt(fan))."""
    bound = 1.0 / math.sqrt(fan)
    return nn.init.uniform_(tensor, -bound, bound)


class CTranHead(MultiLabelHead):
    """Image positions and state-carrying label embeddings in one transformer encoder; a per-label readout.

    Args:
        in_channels: backbone width d (the transformer's width, as the official hidden = 2048 for ResNet-101).
        num_classes: C.
        num_layers: encoder layers (3).
        nhead: attention heads (4).
        dropout: 0.1.

    Shapes:
        features[-1] (B, d, H, W) -> sequence (B, HW + C, d) -> label outputs (B, C, d) -> logits (B, C);
        known (B, C) in {1, 0, -1} selects each label's state embedding.
    """

    def __init__(self, in_channels: int, num_classes: int, num_layers: int = 3, nhead: int = 4, dropout: float = 0.1):
        super().__init__()
        d = in_channels
        self.label_embed = nn.Parameter(uniform_(torch.empty(num_classes, d), d))  # (C, d)
        self.state_embed = nn.Parameter(uniform_(torch.empty(2, d), d))  # negative, positive: (2, d)
        self.register_buffer("unknown_state", uniform_(torch.empty(d), d))  # never trained, as the official row 0
        self.norm = nn.LayerNorm(d)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(d, nhead, dim_feedforward=d, dropout=dropout, batch_first=True)
            for _ in range(num_layers)
        )
        for layer in self.layers:
            for linear in (layer.linear1, layer.linear2, layer.self_attn.out_proj):
                uniform_(linear.weight, linear.in_features)
                uniform_(linear.bias, linear.in_features)
        self.readout_weight = nn.Parameter(uniform_(torch.empty(num_classes, d), d))  # (C, d)
        self.readout_bias = nn.Parameter(uniform_(torch.empty(num_classes), d))  # (C,)

    def states(self, known: torch.Tensor) -> torch.Tensor:
        """(B, C) in {1, 0, -1} -> the state embeddings (B, C, d)."""
        table = torch.cat([self.unknown_state[None], self.state_embed])  # rows: unknown, negative, positive
        return table[(known.long() + 1).clamp(0, 2)]

    def forward_known(self, features: list[torch.Tensor], known: torch.Tensor) -> torch.Tensor:
        x = features[-1].flatten(2).transpose(1, 2)  # (B, HW, d)
        labels = self.label_embed[None] + self.states(known.to(x.device))  # (B, C, d)
        h = self.norm(torch.cat([x, labels.to(x.dtype)], dim=1))  # (B, HW + C, d)
        for layer in self.layers:
            h = layer(h)
        out = h[:, -labels.shape[1] :]  # (B, C, d)
        return (out * self.readout_weight).sum(-1) + self.readout_bias

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        x = features[-1]
        unknown = torch.full((x.shape[0], self.label_embed.shape[0]), UNKNOWN, dtype=torch.int8, device=x.device)
        return self.forward_known(features, unknown)

    def class_vectors(self) -> torch.Tensor:
        return self.readout_weight.detach()

    def label_embeddings(self) -> torch.Tensor:
        return self.label_embed.detach()


RECIPE = Recipe(
    source="C-Tran README command (COCO): Adam lr 1e-5, batch 16, 3 layers, label-mask training (--use_lmt: up to 75 % "
    "of the labels revealed, BCE on the others), ReduceLROnPlateau on the validation loss (factor 0.1, patience 5), "
    "100 epochs; train 640 px -> a random crop of 640/576/512/384/320 -> 576 px + flip, test 640 -> centre crop 576",
    model_args={"num_layers": 3, "nhead": 4, "dropout": 0.1},
    optimizer=Component("torch.optim.Adam", {"lr": 1e-5}),
    backbone_lr_mult=1.0,
    lr_scheduler=Component("torch.optim.lr_scheduler.ReduceLROnPlateau", {"mode": "min", "factor": 0.1, "patience": 5}),
    epochs=100,
    batch_size=16,
    gradient_clip_val=None,
    image_size=576,
    train_transform="c_tran",
    eval_transform="center_crop",
    metrics="c_tran",
    short_run_lr=1e-4,  # a short run at AdamW 1e-3 leaves C-Tran 15 mAP behind (demo scenes, seed 0: 47.9 vs 62.5)
    label_mask_training=0.75,
)


@register_model("c_tran", recipe=RECIPE, head=CTranHead)
def c_tran(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    num_layers: int = 3,
    nhead: int = 4,
    dropout: float = 0.1,
) -> MultiLabelClassifier:
    """ResNet-101 + C-Tran's transformer (3 layers, 4 heads, width 2048). ``label_graph`` is accepted and unused:
    the label embeddings are learnt, and the dependencies come from attention between labels and image."""
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,))
    head = CTranHead(body.channels[-1], num_classes, num_layers=num_layers, nhead=nhead, dropout=dropout)
    return MultiLabelClassifier(body, head, num_classes)
