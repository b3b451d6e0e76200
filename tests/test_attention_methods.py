"""What makes ADD-GCN, DB-DGCN and SSGRL what they are: class maps, dynamic graphs, semantic decoupling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelgraph import LabelGraph, create_model
from labelgraph.graph import conditional_probability
from labelgraph.layers import SemanticDecoupling
from labelgraph.models import Backbone
from labelgraph.models.ml_gcn import gcn_adjacency

from .conftest import TINY_BACKBONE

C = 5


@pytest.fixture(scope="module")
def graph() -> LabelGraph:
    rng = np.random.default_rng(1)
    g = LabelGraph.from_targets((rng.random((60, C)) < 0.4).astype(np.int8), [f"c{i}" for i in range(C)])
    g.embeddings = torch.randn(C, 12)
    return g


def build(name: str, graph: LabelGraph, **kwargs):
    torch.manual_seed(0)
    return create_model(name, num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, **kwargs)


@pytest.mark.parametrize(
    ("name", "map_size"),
    [("add_gcn", (2, 3)), ("db_dgcn", (4, 6)), ("ssgrl", (1, 2))],  # 64 x 96: layer4 2 x 3, layer3 4 x 6
)
def test_class_maps_and_logits_at_a_non_square_input(name, map_size, graph):
    model = build(name, graph).eval()
    x = torch.rand(2, 3, 64, 96)
    assert model(x).shape == (2, C)
    maps = model.class_maps(x)
    assert maps.shape == (2, C, *map_size)
    assert torch.isfinite(maps).all()


def test_class_maps_are_refused_by_methods_without_maps(graph):
    with pytest.raises(NotImplementedError, match="no class maps.*add_gcn"):
        build("baseline", graph).class_maps(torch.rand(1, 3, 32, 32))


class TestADDGCN:
    def test_logits_are_the_mean_of_the_map_score_and_the_graph_score(self, graph):
        out = build("add_gcn", graph).eval().forward_train(torch.rand(2, 3, 64, 64))
        assert torch.allclose(out["logits"], (out["map_logits"] + out["graph_logits"]) / 2)

    def test_map_score_is_the_spatial_max_of_the_activation_maps(self, graph):
        model = build("add_gcn", graph).eval()
        x = torch.rand(2, 3, 64, 64)
        out = model.forward_train(x)
        assert torch.allclose(out["map_logits"], model.class_maps(x).flatten(2).amax(-1))

    def test_dynamic_graph_depends_on_the_image_only(self, graph):
        model = build("add_gcn", graph).eval()
        a, b = torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64)
        adj = model.forward_train(torch.cat([a, b, a]))["dynamic_adjacency"]
        assert adj.shape == (3, C, C)
        assert torch.allclose(adj[0], adj[2], atol=1e-6)  # same image, same graph (batch-independent in eval)
        assert (adj[0] - adj[1]).abs().max() > 1e-4  # different images, different graphs
        assert ((adj > 0) & (adj < 1)).all()

    def test_static_graph_is_learned_and_declared(self, graph):
        model = build("add_gcn", graph)
        assert "head.static_graph.adj" in dict(model.named_parameters())
        assert model.head.learnable_graph == ("static_graph",)


class TestDBDGCN:
    def test_static_prior_is_the_ml_gcn_cooccurrence_buffer(self, graph):
        model = build("db_dgcn", graph)
        buffers = dict(model.named_buffers())
        assert torch.equal(
            buffers["head.static_graph.adj"], gcn_adjacency(graph, "cooccurrence", 0.4, 0.25, "official")
        )
        assert "head.static_graph.adj" not in dict(model.named_parameters())

    def test_multi_scale_uses_the_last_two_stages(self, graph):
        model = build("db_dgcn", graph)
        assert len(model.backbone.channels) == 2 and len(model.head.sam) == 2
        assert model.backbone.reductions == [16, 32]

    def test_auxiliary_branch_builds_its_graph_from_the_class_features(self, graph):
        model = build("db_dgcn", graph).eval()
        x = torch.rand(2, 3, 64, 64)
        out = model.forward_train(x)
        _, v = model.head.attend(model.features(x))
        assert torch.allclose(out["auxiliary_adjacency"], model.head.auxiliary_adjacency(v))
        without = build("db_dgcn", graph, auxiliary=False)
        assert not hasattr(without.head, "auxiliary_graph")
        assert "auxiliary_adjacency" not in without.eval().forward_train(x)

    def test_all_switches_off_is_exactly_add_gcn(self, graph):
        add = build("add_gcn", graph).eval()
        ablated = build("db_dgcn", graph, multi_scale=False, prior=False, auxiliary=False).eval()
        assert add.state_dict().keys() == ablated.state_dict().keys()
        ablated.load_state_dict(add.state_dict())
        x = torch.rand(2, 3, 48, 64)
        assert torch.equal(add(x), ablated(x))

    def test_map_weight_sets_the_final_average(self, graph):
        model = build("db_dgcn", graph, map_weight=0.25).eval()
        out = model.forward_train(torch.rand(2, 3, 64, 64))
        assert torch.allclose(out["logits"], 0.25 * out["map_logits"] + 0.75 * out["graph_logits"], atol=1e-6)
        with pytest.raises(ValueError, match="map_weight"):
            build("db_dgcn", graph, map_weight=1.5)

    def test_prior_needs_a_label_graph(self):
        with pytest.raises(ValueError, match="label graph"):
            create_model("db_dgcn", num_classes=C, backbone=TINY_BACKBONE)
        create_model("db_dgcn", num_classes=C, backbone=TINY_BACKBONE, prior=False)


class TestSSGRL:
    def test_attention_sums_to_one_over_positions(self, graph):
        maps = build("ssgrl", graph).eval().class_maps(torch.rand(2, 3, 128, 96))
        assert maps.shape == (2, C, 2, 2)
        assert torch.allclose(maps.flatten(2).sum(-1), torch.ones(2, C), atol=1e-5)
        assert (maps >= 0).all()

    def test_graph_is_the_conditional_probability_in_both_directions(self, graph):
        head = build("ssgrl", graph).head
        expected = conditional_probability(graph.cooccurrence, graph.counts)
        assert torch.equal(head.adj_in, expected) and torch.equal(head.adj_out, expected.T)

    def test_reset_gate_has_its_own_weights(self, graph):
        model = build("ssgrl", graph).eval()
        x = torch.rand(2, 3, 64, 64)
        before = model(x)
        with torch.no_grad():
            model.head.cell.u_r.weight.add_(0.5)  # the official code never uses U_r
        assert not torch.allclose(before, model(x))

    def test_only_the_last_stage_trains_and_frozen_batchnorm_keeps_its_statistics(self, graph, tmp_path):
        from safetensors.torch import save_file

        weights = tmp_path / "backbone.safetensors"  # the official setting applies on pretrained weights
        save_file({k: v.contiguous() for k, v in Backbone(TINY_BACKBONE).body.state_dict().items()}, str(weights))
        model = build("ssgrl", graph, pretrained=str(weights)).train()
        trainable = {n.split(".")[1] for n, p in model.backbone.named_parameters() if p.requires_grad}
        assert trainable == {"layer4"}
        frozen_bn = model.backbone.body.layer3[0].bn1
        assert not frozen_bn.training and model.backbone.body.layer4[0].bn1.training
        stats = frozen_bn.running_mean.clone()
        model.forward_train(torch.rand(2, 3, 64, 64))
        assert torch.equal(stats, frozen_bn.running_mean)
        everything = build("ssgrl", graph, pretrained=str(weights), trainable_stages=None)
        assert all(p.requires_grad for p in everything.parameters())
        assert all(p.requires_grad for p in build("ssgrl", graph).parameters())  # random weights: nothing frozen
        assert build("ssgrl", graph, pretrained=str(weights)).config["kwargs"]["trainable_stages"] == 1  # recorded


@pytest.mark.parametrize("name", ["resnet10t", "torchvision/resnet18"])
def test_backbone_trainable_stages(name):
    bb = Backbone(name, trainable_stages=2)
    trained = sorted({n.split(".")[1] for n, p in bb.named_parameters() if p.requires_grad})
    assert trained == ["layer3", "layer4"]
    assert all(not p.requires_grad for p in Backbone(name, trainable_stages=0).parameters())
    with pytest.raises(ValueError, match="trainable_stages"):
        Backbone(name, trainable_stages=9)


def test_chunked_semantic_decoupling_equals_the_official_dense_formulation():
    torch.manual_seed(0)
    dense = SemanticDecoupling(32, 12, hidden=24, formulation="dense").double()
    chunked = SemanticDecoupling(32, 12, hidden=24, class_chunk=3, formulation="chunked").double()
    chunked.load_state_dict(dense.state_dict())
    x, embed = torch.randn(2, 32, 5, 7, dtype=torch.double), torch.randn(7, 12, dtype=torch.double)
    outputs, grads = [], []
    for module in (dense, chunked):
        xi = x.clone().requires_grad_()
        attention, features = module(xi, embed)
        (features.pow(2).sum() + attention.pow(3).sum()).backward()
        outputs.append((attention, features))
        grads.append([xi.grad, *(p.grad for p in module.parameters())])
        assert attention.shape == (2, 7, 35) and features.shape == (2, 7, 32)
    for a, b in zip(outputs[0], outputs[1], strict=True):
        assert torch.allclose(a, b, atol=1e-10)
    for a, b in zip(grads[0], grads[1], strict=True):
        assert torch.allclose(a, b, atol=1e-10)
