"""DB-DGCN: Wang, Zheng, Liang, Huang, Du, "Dual-Branch Dynamic Graph Convolutional Network for Robust
Multi-Label Image Classification", IJIRCST 12(5), 2024. https://ijircst.irpublications.org/index.php/ijircst/article/view/128

ADD-GCN (``labelgraph.models.add_gcn``) extended in three ways, each an ablation switch:

- ``multi_scale``: the semantic attention module runs on the backbone's last two stages (ResNet layer3 and
  layer4), each with its own activation-map and projection convolutions, so small objects get a finer map;
- ``prior``: the main path's static graph is the dataset's co-occurrence prior -- ML-GCN's thresholded,
  re-weighted, normalised adjacency (τ 0.4, p 0.25), a fixed buffer -- instead of a learned C x C mixing; the
  statically propagated features H' = V + H_s guide the dynamic graph A_d = σ(W_A [g; H']);
- ``auxiliary``: a second dynamic graph built straight from the content-aware class features V (before any
  propagation), applied in cascade after the main dynamic GCN: Z = V + D_aux(D_main(H', A_d), A_aux).

Final score: logits = α s_m + (1 - α) s_r, the weighted average of the adaptive score from the activation maps
(spatial max) and the graph score (per-class classifiers on Z); α = ``map_weight`` = 0.5.

The paper is vague in places; the choices made here, explicitly:
- multi-scale class features are summed over the stages; a shallower stage's σ-weighted spatial sum is
  rescaled by (deepest-stage positions / its positions) so both stages contribute on the same scale; s_m is the
  mean of the per-stage spatial maxima; ``class_maps`` averages the stages' maps at the finest resolution;
- "the two cascaded" is read as the auxiliary dynamic GCN taking the main dynamic GCN's output as its input
  (the auxiliary graph itself is computed from V only);
- the static prior is used as given (not re-learned), and the per-image graphs keep ADD-GCN's sigmoid entries.
With all three switches off the model is exactly ADD-GCN (same modules, same parameter names).
"""

from __future__ import annotations

from typing import Any

from labelgraph.graph import LabelGraph, gcn_adjacency
from labelgraph.models._registry import extends, register_model
from labelgraph.models.add_gcn import RECIPE as ADD_GCN_RECIPE
from labelgraph.models.add_gcn import DynamicGraphHead, add_gcn
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.recipe import Component

RECIPE = ADD_GCN_RECIPE.replace(  # ADD-GCN's schedule, crops and metrics, at its own learning rate and batch
    source="DB-DGCN paper: SGD momentum 0.9, weight decay 1e-3, lr 0.5 for the heads and 0.05 for the CNN, lr x 0.1 "
    "at epochs 30 and 40, batch 18, ADD-GCN's crops and flips (epochs not stated: 50 as ADD-GCN)",
    model_args={
        "dim": 1024,
        "multi_scale": True,
        "prior": True,
        "auxiliary": True,
        "map_weight": 0.5,
        "tau": 0.4,
        "p": 0.25,
    },
    optimizer=Component("torch.optim.SGD", {"lr": 0.5, "momentum": 0.9, "weight_decay": 1e-3}),
    batch_size=18,
)


@register_model("db_dgcn", recipe=RECIPE, head=DynamicGraphHead)
@extends(add_gcn)
def db_dgcn(
    *,
    num_classes: int,
    label_graph: LabelGraph | None = None,
    backbone: str = "resnet101",
    pretrained: bool | str = False,
    multi_scale: bool = True,
    prior: bool = True,
    auxiliary: bool = True,
    map_weight: float = 0.5,
    tau: float = 0.4,
    p: float = 0.25,
    **options: Any,
) -> MultiLabelClassifier:
    """DB-DGCN with the paper's components on (multi-scale SAM, co-occurrence prior, auxiliary branch); ``options``:
    ADD-GCN's (``dim``), with its defaults.

    ``prior=True`` needs a label graph with co-occurrence statistics (the data module provides it).
    """
    static_prior = None
    if prior:
        if label_graph is None:
            raise ValueError("db_dgcn with prior=True needs a label graph (co-occurrence counts of the train split)")
        if label_graph.num_classes != num_classes:
            raise ValueError(f"the label graph has {label_graph.num_classes} classes, the model {num_classes}")
        static_prior = gcn_adjacency(label_graph, "cooccurrence", tau, p, "official")
    body = Backbone(backbone, pretrained=pretrained, out_indices=(-2, -1) if multi_scale else (-1,))
    head = DynamicGraphHead(
        body.channels, num_classes, static_prior=static_prior, auxiliary=auxiliary, map_weight=map_weight, **options
    )
    return MultiLabelClassifier(body, head, num_classes)
