"""IML-GCN: ML-GCN whose node features are image-based (Singh et al.): the class means of a trained CNN's
pooled features over the train split, reduced with PCA, with a TResNet-M backbone (un-normalised [0, 1] input,
which the backbone's preprocessing records).

No public code of IML-GCN could be found (searched: the paper's page, GitHub, Papers with Code), so this follows the
paper's description: the
embeddings are computed by ``labelgraph data graph --embeddings image:MODEL_DIR --pca D`` (or
:func:`labelgraph.graph.image_embeddings`) and stored in the label graph; the model refuses other embeddings so
that an "IML-GCN" result cannot silently be an ML-GCN with word vectors. The recipe config pairs it with ASL,
as the TResNet line of work trains.
"""

from __future__ import annotations

from typing import Any

from labelgraph.graph import LabelGraph, require_embeddings
from labelgraph.losses import ASL_PRESETS
from labelgraph.models._registry import extends, register_model
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.ml_gcn import MLGCNHead, build_ml_gcn
from labelgraph.models.recipe import Component, ImageEmbeddings, Recipe, asl

RECIPE = Recipe(
    source="no official code; the TResNet/ASL line it builds on: Adam 1e-4, weight decay 1e-4, cosine over 40 epochs, "
    "EMA 0.9997, ASL (γ- 4, clip 0.05, sum), batch 32, squash resize + Cutout + RandAugment",
    backbone="tresnet_m",
    model_args={"tau": 0.4, "p": 0.25, "adjacency_style": "official", "hidden": 1024},
    criterion=asl(ASL_PRESETS["asl"]),
    optimizer=Component("torch.optim.Adam", {"lr": 1e-4, "weight_decay": 1e-4}),
    backbone_lr_mult=1.0,
    lr_scheduler=Component("torch.optim.lr_scheduler.CosineAnnealingLR", {"T_max": 40}),
    ema_decay=0.9997,
    epochs=40,
    batch_size=32,
    gradient_clip_val=None,
    train_transform="asl",
    staged_stage1_epochs=10,
    prerequisite=ImageEmbeddings("baseline"),  # class means of a trained CNN's pooled features
)


@register_model("iml_gcn", recipe=RECIPE, head=MLGCNHead)
@extends(build_ml_gcn)
def iml_gcn(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "tresnet_m",
    pretrained: bool | str = False,
    **options: Any,
) -> MultiLabelClassifier:
    """IML-GCN: TResNet-M + ML-GCN head over image-based (PCA) node embeddings; ``options``: ML-GCN's
    (:func:`~labelgraph.models.ml_gcn.build_ml_gcn`), with its defaults."""
    graph = require_embeddings("iml_gcn", label_graph, num_classes)
    if not (graph.embedding_source or "").startswith("image"):
        raise ValueError(
            f"iml_gcn needs image-based label embeddings, the label graph has {graph.embedding_source!r}: "
            "compute them with `labelgraph data graph --embeddings image:MODEL_DIR --pca D`"
        )
    return build_ml_gcn(num_classes=num_classes, label_graph=graph, backbone=backbone, pretrained=pretrained, **options)
