"""SADCL: Ma, Sun, Wang, Zhao, Luo, "Semantic-Aware Dual Contrastive Learning for Multi-Label Image
Classification", ECAI 2023. https://arxiv.org/abs/2307.09715 -- official code: yu-gi-oh-leilei/SADCL.

Query2Label (``labelgraph.models.query2label``) whose label-level features H (B x C x d, the decoder outputs) also
feed two contrastive losses during training (``labelgraph.losses.contrastive``): sample-to-sample between present
labels of the batch and a memory bank, and prototype-to-sample against learnable class prototypes; both go through
a projection head (d -> d -> 1024, ReLU). The total loss is ASL + 100 L_S2S + 50 L_P2S as the official scripts
weight it (``aux_losses`` changes the weights). At inference SADCL is Query2Label: the projection head, prototypes
and bank are not used.

Prototypes start from a file written by ``labelgraph prototypes`` (mean label-level feature of confidently
predicted positives of a trained Query2Label model -- the step the official release lacks), or at random.

The memory bank holds, for each class, the ``memory_size`` most recent label-level features of confidently
predicted (σ > 0.8) present labels -- keyed by class, a FIFO per class. The official bank has one slot per position
in the batch and pairs slot b with whatever image is at position b next time, i.e. with another image's labels;
here an entry is only ever the feature of its own class in its own image. With prototypes from a file the bank
starts filled with them (as the official code); otherwise it starts empty.

Under DDP the bank is one bank for the whole job: every process adds the confident features of *every* process's
batch, in rank order, so all processes hold the same bank -- the one a single process would hold with the global
batch. (The official bank is per process; but its bank is a module buffer, and DDP's default ``broadcast_buffers``
overwrites every process's buffers with rank 0's at each forward, so in practice each process trained against rank
0's bank. With identical banks that broadcast changes nothing, and checkpoints hold the bank every process had.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn
from safetensors.torch import load_file

from labelgraph.graph import LabelGraph
from labelgraph.losses import ASL_PRESETS
from labelgraph.models._registry import extends, register_model
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.query2label import RECIPE as QUERY2LABEL_RECIPE
from labelgraph.models.query2label import Query2LabelHead, build_query2label, query2label
from labelgraph.models.recipe import Component, WarmStart, asl


class SADCLHead(Query2LabelHead):
    """Query2Label head + projection head + class prototypes + class-keyed memory bank.

    Args:
        in_channels, num_classes, hidden, **transformer: as ``Query2LabelHead``.
        projection_dim: output size of the projection head (1024).
        memory_size: bank entries per class (K).
        memory_threshold: probability above which a present label's feature enters the bank (0.8).
        prototypes: (C, hidden) initial prototypes, or None for random ones (and an empty bank).

    Shapes:
        features[-1] (B, D, H, W) -> logits (B, C); ``forward_train`` adds ``label_features`` (B, C, d),
        ``projected`` (B, C, p), ``memory_projected`` (M, p), ``memory_classes`` (M,), ``prototypes_projected`` (C, p).
    """

    def __init__(
        self,
        in_channels: int,
        num_classes: int,
        hidden: int | None = None,
        projection_dim: int = 1024,
        memory_size: int = 8,
        memory_threshold: float = 0.8,
        prototypes: torch.Tensor | None = None,
        **transformer: Any,
    ) -> None:
        super().__init__(in_channels, num_classes, hidden, **transformer)
        d = self.hidden
        self.projection = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, projection_dim))
        if prototypes is not None and prototypes.shape != (num_classes, d):
            raise ValueError(f"prototypes have shape {tuple(prototypes.shape)}, expected ({num_classes}, {d})")
        initial = prototypes.float().clone() if prototypes is not None else torch.randn(num_classes, d)
        self.prototypes = nn.Parameter(initial)
        self.memory_threshold = memory_threshold
        self.register_buffer("memory", initial[:, None].repeat(1, memory_size, 1))  # (C, K, d)
        self.register_buffer("memory_valid", torch.full((num_classes, memory_size), prototypes is not None))
        self.register_buffer("memory_next", torch.zeros(num_classes, dtype=torch.long))  # FIFO write position

    def forward_train(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        h = self.label_features(features)
        valid = self.memory_valid.clone()
        bank = self.memory.clone()[valid]  # (M, d): a copy, so updating the bank after the loss is safe
        return {
            "logits": self.classifier(h),
            "label_features": h,
            "projected": self.projection(h),
            "memory_projected": self.projection(bank.to(h.dtype)),
            "memory_classes": valid.nonzero()[:, 0],
            "prototypes_projected": self.projection(self.prototypes.to(h.dtype)),
        }

    def class_prototypes(self) -> torch.Tensor:
        return self.prototypes.detach()  # (C, hidden)

    @torch.no_grad()
    def after_loss(self, outputs: dict[str, torch.Tensor], targets: torch.Tensor) -> None:
        """Store the label-level features of this batch's confidently predicted present labels in the bank."""
        confident = (targets == 1) & (torch.sigmoid(outputs["logits"].detach().float()) > self.memory_threshold)
        features = outputs["label_features"].detach()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            features, confident = gather_batches(features), gather_batches(confident)  # every rank's, rank order
        size = self.memory.shape[1]
        for b, c in confident.nonzero().tolist():
            slot = int(self.memory_next[c])
            self.memory[c, slot] = features[b, c].to(self.memory.dtype)
            self.memory_valid[c, slot] = True
            self.memory_next[c] = (slot + 1) % size


def gather_batches(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B_r, ...) of every process along dim 0, in rank order; batch sizes may differ by rank."""
    world = dist.get_world_size()
    sizes = [torch.zeros(1, dtype=torch.long, device=x.device) for _ in range(world)]
    dist.all_gather(sizes, torch.tensor([len(x)], device=x.device))
    longest = int(max(sizes).item())
    padded = torch.zeros((longest, *x.shape[1:]), dtype=x.dtype, device=x.device)
    padded[: len(x)] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(n)] for part, n in zip(parts, sizes, strict=True)])


def load_prototypes(path: str | Path, num_classes: int) -> torch.Tensor:
    """Read a prototypes file written by ``labelgraph prototypes`` (safetensors, tensor ``prototypes``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"prototypes file {str(path)!r} does not exist (labelgraph prototypes --help)")
    tensors = load_file(str(path))
    if "prototypes" not in tensors:
        raise ValueError(f"{path}: no 'prototypes' tensor (write it with labelgraph prototypes)")
    prototypes = tensors["prototypes"]
    if prototypes.ndim != 2 or prototypes.shape[0] != num_classes:
        raise ValueError(f"{path}: prototypes of shape {tuple(prototypes.shape)} for {num_classes} classes")
    return prototypes


RECIPE = QUERY2LABEL_RECIPE.replace(  # Query2Label's, with SADCL's loss, learning rate, EMA, crops and metrics
    source="SADCL scripts/sadcl/coco.sh: Query2Label first with SADCL's loss and optimiser, then SADCL from its "
    "weights and class prototypes; AdamW 5e-5, weight decay 5e-3, one-cycle (20 % warm-up), EMA 0.9998, ASL (γ- 4, "
    "mean x 1000) + 100 L_S2S + 50 L_P2S, batch 64, multi-scale crop + flip, early stopping",
    model_args={
        "prototypes": None,
        "projection_dim": 1024,
        "memory_size": 8,
        "memory_threshold": 0.8,
        "nhead": 4,
        "num_encoder_layers": 1,
        "num_decoder_layers": 2,
        "dim_feedforward": 8192,
        "trainable_stages": 3,
    },
    criterion=asl(ASL_PRESETS["sadcl"]),
    aux_losses=(
        Component("labelgraph.losses.SampleToSampleContrastiveLoss", {"weight": 100.0}),
        Component("labelgraph.losses.PrototypeToSampleContrastiveLoss", {"weight": 50.0}),
    ),
    aux_tied_to_criterion=True,  # 100 and 50 are relative to ASL's mean x 1000
    optimizer=Component("torch.optim.AdamW", {"lr": 5e-5, "weight_decay": 5e-3}),
    ema_decay=0.9998,
    train_transform="add_gcn",
    metrics="sadcl",
    prerequisite=WarmStart("query2label", share=0.5, prototype_threshold=0.85),
)


@register_model("sadcl", recipe=RECIPE, head=SADCLHead)
@extends(query2label)
def sadcl(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    prototypes: str | None = None,
    projection_dim: int = 1024,
    memory_size: int = 8,
    memory_threshold: float = 0.8,
    **options: Any,
) -> MultiLabelClassifier:
    """SADCL with the official defaults: a projection to 1024, a bank of 8 per class at threshold 0.8, and
    Query2Label's R101 setting and transformer (``options``: those of ``query2label``, with its defaults)."""
    return build_query2label(
        SADCLHead,
        num_classes=num_classes,
        backbone=backbone,
        pretrained=pretrained,
        prototypes=load_prototypes(prototypes, num_classes) if prototypes else None,
        projection_dim=projection_dim,
        memory_size=memory_size,
        memory_threshold=memory_threshold,
        **options,
    )
