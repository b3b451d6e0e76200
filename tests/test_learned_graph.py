"""A-GCN and LGLM: the learned graph, its sparsity loss, and the MFC fusion."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelgraph import LabelGraph, create_model
from labelgraph.engine.task import MultiLabelTask
from labelgraph.losses import GraphSparsityLoss
from labelgraph.models.a_gcn import AdaptiveGraph
from labelgraph.models.lglm import MFCFusion

from .conftest import TINY_BACKBONE

C = 5


@pytest.fixture
def graph() -> LabelGraph:
    targets = (np.random.default_rng(0).random((20, C)) < 0.5).astype(np.int8)
    g = LabelGraph.from_targets(targets, [f"c{i}" for i in range(C)])
    g.embeddings, g.embedding_source = torch.randn(C, 12), "glove:test"
    return g


def test_adaptive_graph_is_normalised_as_specified():
    torch.manual_seed(0)
    module, emb = AdaptiveGraph(12, graph_dim=16), torch.randn(C, 12)
    l1, l2 = torch.sigmoid(module.proj1(emb)), torch.sigmoid(module.proj2(emb))
    a_tilde = l1 @ l2.T / C + torch.eye(C)
    d = a_tilde.sum(1).pow(-0.5)
    expected = torch.diag(d) @ a_tilde @ torch.diag(d)
    adj = module(emb)
    assert torch.isfinite(adj).all() and torch.allclose(adj, expected, atol=1e-6)


def test_sparsity_loss_is_zero_at_identity_and_matches_hand_values():
    module, emb = AdaptiveGraph(4, graph_dim=8), torch.randn(3, 4)
    with torch.no_grad():
        for proj in (module.proj1, module.proj2):
            proj.weight.zero_()
            proj.bias.fill_(-60.0)  # sigmoid -> 0, so A -> 0 and Â -> I
    loss = GraphSparsityLoss()({"adjacency": module(emb)}, torch.zeros(1, 3))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)
    adj = torch.tensor([[1.0, 0.5], [0.5, 1.0]])
    assert GraphSparsityLoss(norm="l1").term({"adjacency": adj}, None).item() == pytest.approx(1.0)
    assert GraphSparsityLoss(norm="l2").term({"adjacency": adj}, None).item() == pytest.approx(0.5**0.5)
    assert GraphSparsityLoss(weight=2.0)({"adjacency": adj}, None).item() == pytest.approx(2.0)


def test_vectorised_mfc_equals_a_per_class_loop():
    torch.manual_seed(0)
    fusion = MFCFusion(dim=6, num_classes=3, m=8, g=2).eval()
    image, classifiers = torch.randn(4, 6), torch.randn(3, 6)
    expected = torch.zeros(4, 3)
    for b in range(4):
        for c in range(3):
            z = fusion.image_proj(image[b]) * fusion.class_proj(classifiers[c])  # (m,)
            pooled = torch.stack([z[k : k + 2].sum() for k in range(0, 8, 2)])  # groups of g = 2
            expected[b, c] = pooled @ fusion.weight[c] + fusion.bias[c]
    assert torch.allclose(fusion(image, classifiers), expected, atol=1e-6)
    with pytest.raises(ValueError, match="multiple"):
        MFCFusion(6, 3, m=9, g=2)


def test_mfc_in_training_drops_out_the_hadamard_product_before_the_group_sums():
    torch.manual_seed(0)
    fusion = MFCFusion(dim=6, num_classes=3, m=8, g=2, dropout=0.5).train()
    image, classifiers = torch.randn(4, 6), torch.randn(3, 6)
    torch.manual_seed(1)
    out = fusion(image, classifiers)
    torch.manual_seed(1)
    mask = torch.nn.functional.dropout(torch.ones(4, 3, 8), 0.5, training=True)  # the same draws: mask / (1 - p)
    z = fusion.image_proj(image)[:, None] * fusion.class_proj(classifiers)[None] * mask  # (B, C, m)
    expected = (z.view(4, 3, 4, 2).sum(-1) * fusion.weight).sum(-1) + fusion.bias
    assert torch.allclose(out, expected, atol=1e-5) and (mask == 0).any()


def test_lglm_with_dot_fusion_is_a_gcn(graph):
    x = torch.rand(2, 3, 32, 32)
    torch.manual_seed(7)
    agcn = create_model("a_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE).eval()
    torch.manual_seed(7)
    dot = create_model("lglm", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, fusion="dot").eval()
    assert torch.equal(agcn(x), dot(x))
    mfc = create_model("lglm", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE).eval()
    assert mfc.head.fusion.image_proj.out_features == 1024 and mfc.head.fusion.weight.shape == (C, 512)


def test_the_task_trains_the_fusion_layers_and_applies_the_sparsity_loss(graph):
    task = MultiLabelTask(
        method="lglm",
        backbone=TINY_BACKBONE,
        num_classes=C,
        label_graph=graph,
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1),
    )
    assert [type(a).__name__ for a in task.aux_losses] == ["GraphSparsityLoss"]
    opt = task.configure_optimizers()["optimizer"]  # (beside LGLM's step schedule)
    optimised = {id(p) for group in opt.param_groups for p in group["params"]}
    assert all(id(p) in optimised for p in task.model.head.fusion.parameters())  # the released code's bug
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["head.graph"] == pytest.approx(0.4) and lrs["head"] == pytest.approx(0.1)
    out = task.model.forward_train(torch.rand(2, 3, 32, 32))
    total = task.criterion(out["logits"], torch.zeros(2, C)) + task.aux_losses[0](out, None)
    total.backward()
    assert task.model.head.graph.proj1.weight.grad.abs().sum() > 0
    none = MultiLabelTask(method="a_gcn", backbone=TINY_BACKBONE, num_classes=C, label_graph=graph, aux_losses=[])
    assert len(none.aux_losses) == 0
