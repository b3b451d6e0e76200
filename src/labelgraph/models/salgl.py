"""SALGL: Zhu, Liu, Liu, Ge, Liu, Cao, "Scene-Aware Label Graph Learning for Multi-Label Image Classification", ICCV
2023. https://openaccess.thecvf.com/content/ICCV2023/html/Zhu_Scene-Aware_Label_Graph_Learning_for_Multi-Label_Image_Classification_ICCV_2023_paper.html
-- official code: jasonseu/SALGL.

Co-occurrence depends on the scene (a kitchen, a street), which one global graph cannot say. The last feature map's
positions go through one transformer encoder layer (8 heads, feed-forward 2048, post-norm); their mean scores K
scenes (a linear layer without bias, softmax) learnt without scene labels. Each scene keeps its own label
co-occurrence matrix, counted over the training images assigned to it (the image's most probable scene, or every
scene by its probability with ``soft``); the graph of an image is its scene's P(j | i), rows renormalised. Label
features come from low-rank bilinear attention of the label embeddings over the positions, pass ``num_steps`` gated
graph steps on that graph (messages along both directions), and, concatenated with their input, a linear layer +
tanh and a per-class readout give the logits. Two auxiliary terms shape the scenes
(:mod:`labelgraph.losses.scene_entropy`).

Departures from the official code: the co-occurrence counts of a training batch are added after its loss (the
``after_loss`` hook), the official forward adds them before using the graph, so a batch sees the counts up to the
batch before (one batch of ~100k steps); the two biases the official gate layers add (``fc*_w`` and ``fc*_u``) are
one here (the same function; the parity harness sums them). The official repository has no training script; the
recipe is the reproduction's (``yu-gi-oh-leilei/SALGL``, whose run reproduces the paper's 85.75 COCO mAP): 6 scenes,
hard assignment, 3 graph steps, ASL, AdamW 1e-4 one-cycle, EMA 0.9997 (of the counts too), BERT label embeddings
(here: the label graph's, e.g. MiniLM or GloVe).
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn as nn

from labelgraph.graph import LabelGraph, require_embeddings
from labelgraph.layers.bilinear_attention import LowRankBilinearAttention
from labelgraph.layers.gated_graph import GatedGraphCell
from labelgraph.losses import ASL_PRESETS
from labelgraph.models._registry import register_model
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.query2label import GroupWiseLinear
from labelgraph.models.recipe import ONE_CYCLE, Component, Recipe, asl
from labelgraph.models.sadcl import gather_batches


class SALGLHead(MultiLabelHead):
    """Scene-aware label graph head.

    Args:
        in_channels: backbone width d.
        num_classes: C.
        label_embed: (C, e) label embeddings (a fixed prior, as the official buffer).
        num_scenes: K (6).
        att_dim: width of the bilinear attention (1024).
        num_steps: gated graph steps (3).
        soft: count an image in every scene by its probability and mix the scene graphs at inference (False: its
            most probable scene, as the reproduction).
        normalize: renormalise each row of a scene graph to sum 1 (True); ignore_self: zero its diagonal (False).

    Shapes:
        features[-1] (B, d, H, W) -> tokens (B, HW, d) -> scene probs (B, K), graph (B, C, C), label features
        (B, C, d) -> logits (B, C).
    """

    graph_priors = ("label_embed",)

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        label_embed: torch.Tensor,
        num_scenes: int = 6,
        att_dim: int = 1024,
        num_steps: int = 3,
        nhead: int = 8,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        soft: bool = False,
        normalize: bool = True,
        ignore_self: bool = False,
    ) -> None:
        super().__init__()
        d = in_channels
        self.encoder = nn.TransformerEncoderLayer(d, nhead, dim_feedforward, dropout, batch_first=True)
        self.register_buffer("label_embed", label_embed.detach().float().clone())  # (C, e)
        self.scene_linear = nn.Linear(d, num_scenes, bias=False)
        self.register_buffer("comatrix", torch.zeros(num_scenes, num_classes, num_classes))  # counts per scene
        self.attention = LowRankBilinearAttention(d, label_embed.shape[1], att_dim)
        self.cell = GatedGraphCell(d, bias=True, edge_transform=False)
        self.fc = nn.Sequential(nn.Linear(2 * d if num_steps > 0 else d, d), nn.Tanh())
        self.classifier = GroupWiseLinear(num_classes, d)
        self.num_steps, self.soft, self.normalize, self.ignore_self = num_steps, soft, normalize, ignore_self

    def scene_graphs(self) -> torch.Tensor:
        """(K, C, C): each scene's P(j | i) from its counts (row i divided by its diagonal), rows renormalised."""
        counts = self.comatrix.transpose(1, 2)
        graphs = counts / (torch.diagonal(counts, dim1=1, dim2=2)[..., None] + 1e-8)
        if self.ignore_self:
            graphs = graphs * (1 - torch.eye(graphs.shape[-1], device=graphs.device))
        if self.normalize:
            graphs = graphs / (graphs.sum(-1, keepdim=True) + 1e-8)
        return graphs

    def attend(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The encoded positions (B, HW, d), and each label's feature (B, C, d) and attention (B, C, HW)."""
        tokens = self.encoder(features[-1].flatten(2).transpose(1, 2))
        labels = self.label_embed[None].expand(tokens.shape[0], -1, -1).to(tokens.dtype)  # (B, C, e)
        return tokens, *self.attention(tokens, labels)

    def forward_train(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        tokens, label_feats, attention = self.attend(features)
        scene_probs = torch.softmax(self.scene_linear(tokens.mean(1)), dim=-1)  # (B, K)
        graphs = self.scene_graphs().to(tokens.dtype)
        if self.soft:
            graph = torch.einsum("bk,kij->bij", scene_probs, graphs)
        else:
            graph = graphs[scene_probs.argmax(-1)]  # (B, C, C)
        h = label_feats
        for _ in range(self.num_steps):
            h = self.cell(h, graph, graph.transpose(1, 2))
        out = self.fc(torch.cat([label_feats, h], dim=-1) if self.num_steps > 0 else h)
        return {"logits": self.classifier(out), "scene_probs": scene_probs, "attention": attention}

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        return self.forward_train(features)["logits"]

    def after_loss(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> None:
        """Count this batch's co-occurrences in its images' scenes (every rank's batch under DDP)."""
        scene_probs, present = outputs["scene_probs"].detach().float(), (targets == 1).float()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            scene_probs, present = gather_batches(scene_probs), gather_batches(present)
        if not self.soft:
            scene_probs = nn.functional.one_hot(scene_probs.argmax(-1), scene_probs.shape[-1]).float()
        pairs = present[:, :, None] * present[:, None, :]  # (B, C, C)
        self.comatrix += torch.einsum("bk,bij->kij", scene_probs, pairs).to(self.comatrix.dtype)

    def class_maps(self, features: list[torch.Tensor]) -> torch.Tensor:
        """Each label's attention over the positions, (B, C, h, w)."""
        attention = self.attend(features)[2]  # no graph steps: the maps need only the attention
        return attention.view(*attention.shape[:2], *features[-1].shape[-2:])

    def class_vectors(self) -> torch.Tensor:
        return self.classifier.weight.detach()

    def label_embeddings(self) -> torch.Tensor:
        return self.label_embed


RECIPE = Recipe(
    source="SALGL: the official repository has no training script; the reproduction's config (yu-gi-oh-leilei/SALGL "
    "coco2014, 85.75 mAP): AdamW 1e-4, weight decay 1e-2, one-cycle (20 % warm-up), EMA 0.9997, ASL (γ- 2, γ+ 0, "
    "clip 0), scene entropy and balance terms at weight 1, 6 scenes, hard assignment, 3 graph steps, batch 128, "
    "80 epochs with early stopping, 448 px, random resized crop + Cutout + RandAugment + flip",
    model_args={"num_scenes": 6, "num_steps": 3, "att_dim": 1024, "soft": False},
    criterion=asl(ASL_PRESETS["query2label"]),
    aux_losses=(
        Component("labelgraph.losses.SceneEntropyLoss", {"weight": 1.0}),
        Component("labelgraph.losses.SceneBalanceLoss", {"weight": 1.0}),
    ),  # fmt: skip
    optimizer=Component("torch.optim.AdamW", {"lr": 1e-4, "weight_decay": 1e-2}),
    backbone_lr_mult=1.0,
    lr_scheduler=ONE_CYCLE,
    ema_decay=0.9997,
    epochs=80,
    batch_size=128,
    gradient_clip_val=None,
    early_stopping_patience=8,
    train_transform="asl",
    metrics="salgl",
)


@register_model("salgl", recipe=RECIPE, head=SALGLHead)
def salgl(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    num_scenes: int = 6,
    att_dim: int = 1024,
    num_steps: int = 3,
    soft: bool = False,
    normalize: bool = True,
    ignore_self: bool = False,
) -> MultiLabelClassifier:
    """ResNet-101 + SALGL (6 scenes, hard assignment, 3 graph steps) over the label graph's embeddings."""
    graph = require_embeddings("salgl", label_graph, num_classes)
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-1,))
    head = SALGLHead(body.channels[-1], num_classes, graph.embeddings, num_scenes=num_scenes, att_dim=att_dim,
                     num_steps=num_steps, soft=soft, normalize=normalize, ignore_self=ignore_self)  # fmt: skip
    return MultiLabelClassifier(body, head, num_classes)
