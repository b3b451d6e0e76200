"""ML-GCN, GGNN and IML-GCN: layers equal their formulas, priors are buffers, graph options behave."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open

from labelgraph import LabelGraph, create_model
from labelgraph.apis.export import save_model
from labelgraph.graph import KnowledgeGraph, knowledge_graph_from_relationships, load_knowledge_graph
from labelgraph.layers import GatedGraphCell, GraphConvolution

from .conftest import TINY_BACKBONE

C = 4


@pytest.fixture
def graph() -> LabelGraph:
    targets = (np.random.default_rng(0).random((30, C)) < 0.5).astype(np.int8)
    g = LabelGraph.from_targets(targets, ["w", "x", "y", "z"])
    g.embeddings, g.embedding_source = torch.randn(C, 8), "glove:test"
    return g


def test_graph_convolution_equals_naive_formula():
    layer = GraphConvolution(3, 5)
    x, adj = torch.randn(4, 3), torch.rand(4, 4)
    naive = torch.stack([sum(adj[i, j] * (x[j] @ layer.weight) for j in range(4)) for i in range(4)])
    assert torch.allclose(layer(x, adj), naive, atol=1e-6)
    assert layer.bias is None
    assert layer.weight.abs().max() <= 1 / 5**0.5  # U(+-1/sqrt(out))


def test_ggnn_step_equals_gru_equations():
    torch.manual_seed(0)
    cell = GatedGraphCell(6, bias=False)
    h, a_in, a_out = torch.randn(2, 5, 6), torch.rand(5, 5), torch.rand(5, 5)
    m_in = a_in @ (h @ cell.message_in.weight.T + cell.message_in.bias)
    m_out = a_out @ (h @ cell.message_out.weight.T + cell.message_out.bias)
    a = torch.cat([m_in, m_out], -1)
    z = torch.sigmoid(a @ cell.w_z.weight.T + h @ cell.u_z.weight.T)
    r = torch.sigmoid(a @ cell.w_r.weight.T + h @ cell.u_r.weight.T)
    h_tilde = torch.tanh(a @ cell.w_h.weight.T + (r * h) @ cell.u_h.weight.T)
    assert torch.allclose(cell(h, a_in, a_out), (1 - z) * h + z * h_tilde, atol=1e-6)
    assert cell.u_r is not cell.u_z  # SSGRL's bug: the reset gate reusing U_z


def test_ggnn_messages_are_recomputed_every_step(graph):
    model = create_model("ggnn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, steps=2).eval()
    calls = []
    model.head.cell.message_in.register_forward_hook(lambda *a: calls.append(1))
    model(torch.rand(1, 3, 32, 32))
    assert len(calls) == 2


def test_ml_gcn_head_equals_the_paper_formula(graph):
    model = create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE).eval()
    head, x = model.head, torch.rand(2, 3, 32, 32)
    pooled = model.features(x)[-1].amax(dim=(2, 3))
    w = head.adj @ (F.leaky_relu(head.adj @ (head.label_embed @ head.gc1.weight), 0.2) @ head.gc_out.weight)
    assert torch.allclose(model(x), pooled @ w.T, atol=1e-5)
    assert torch.equal(head.label_embed, graph.embeddings)


def test_ml_gcn_depth_inserts_hidden_layers(graph):
    model = create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, num_layers=3).eval()
    head, x = model.head, torch.rand(2, 3, 32, 32)
    pooled = model.features(x)[-1].amax(dim=(2, 3))
    a, act = head.adj, lambda t: F.leaky_relu(t, 0.2)
    h = act(a @ (act(a @ (head.label_embed @ head.gc1.weight)) @ head.middle[0].weight))
    assert torch.allclose(model(x), pooled @ (a @ (h @ head.gc_out.weight)).T, atol=1e-5)
    two = create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE)
    assert not any(k.startswith("middle") for k in two.head.state_dict())  # 2 layers: ML-GCN's parameter names
    with pytest.raises(ValueError, match="num_layers"):
        create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, num_layers=1)


def test_priors_are_buffers_saved_in_the_exported_model(graph, tmp_path):
    for method in ("ml_gcn", "ggnn"):
        model = create_model(method, num_classes=C, label_graph=graph, backbone=TINY_BACKBONE)
        params = {n for n, _ in model.named_parameters()}
        buffers = {"ml_gcn": ("head.adj", "head.label_embed"), "ggnn": ("head.adj_in", "head.adj_out")}[method]
        assert not params & set(buffers)
        save_model(model, tmp_path / method, class_names=graph.class_names, image_size=32, label_graph=graph)
        with safe_open(str(tmp_path / method / "model.safetensors"), "pt") as f:
            assert set(buffers) <= set(f.keys())


def test_ml_gcn_graph_sources(graph):
    identity = create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, graph="identity")
    assert torch.equal(identity.head.adj, torch.eye(C))
    learned = create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, graph="learned")
    assert isinstance(learned.head.adj, torch.nn.Parameter)
    paper = create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, adjacency_style="paper")
    default = create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE)
    assert not torch.allclose(paper.head.adj, default.head.adj)
    with pytest.raises(ValueError, match="graph source"):
        create_model("ml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, graph="random")


def test_methods_explain_missing_embeddings(graph):
    bare = LabelGraph(graph.class_names, graph.counts, graph.cooccurrence, graph.num_images)
    with pytest.raises(ValueError, match="labelgraph data graph --embeddings"):
        create_model("ml_gcn", num_classes=C, label_graph=bare, backbone=TINY_BACKBONE)
    with pytest.raises(ValueError, match="image-based"):
        create_model("iml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE)  # glove: refused
    graph.embedding_source = "image:baseline+pca3"
    model = create_model("iml_gcn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE).eval()
    assert model(torch.rand(1, 3, 32, 32)).shape == (1, C)


def test_iml_gcn_defaults_to_tresnet_m_with_unnormalised_input(graph):
    graph.embedding_source = "image:x"
    model = create_model("iml_gcn", num_classes=C, label_graph=graph)
    assert model.backbone.name == "tresnet_m"
    assert model.preprocessing == {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "image_size": 448,
                                   "eval_transform": "resize"}  # fmt: skip


def test_ggnn_on_a_knowledge_graph_with_more_nodes_than_classes(graph):
    k = 7
    graph.knowledge = KnowledgeGraph([f"n{i}" for i in range(k)], torch.rand(k, k), [0, 2, 4, 6])
    model = create_model("ggnn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE)
    assert model.head.adj_in.shape == (k, k) and model.head.annotate.out_features == k
    assert model(torch.rand(2, 3, 32, 32)).shape == (2, C)
    co = create_model("ggnn", num_classes=C, label_graph=graph, backbone=TINY_BACKBONE, graph="cooccurrence")
    assert co.head.adj_in.shape == (C, C)


def test_knowledge_graph_from_visual_genome_relationships(tmp_path):
    rel = [
        {
            "relationships": [
                {"predicate": "ON", "subject": {"name": "Cat"}, "object": {"name": "sofa"}},
                {"predicate": "on", "subject": {"names": ["cat"]}, "object": {"name": "couch"}},
                {"predicate": "near", "subject": {"name": "person"}, "object": {"name": "tree"}},
                {"predicate": "rare", "subject": {"name": "person"}, "object": {"name": "cat"}},
            ]
        },
        {"relationships": [{"predicate": "near", "subject": {"name": "tree"}, "object": {"name": "car"}}]},
    ]
    path = tmp_path / "relationships.json"
    path.write_text(json.dumps(rel))
    kg = knowledge_graph_from_relationships(path, ["cat", "sofa"], num_nodes=4, num_predicates=2)
    assert kg.node_names[:2] == ["cat", "couch"] and len(kg.node_names) == 4  # VOC "sofa" -> VG "couch"
    i = {n: k for k, n in enumerate(kg.node_names)}
    assert kg.adjacency[i["cat"], i["couch"]] == 1  # "cat on sofa" does not count: 'sofa' is not a node name
    assert kg.adjacency[i["person"], i["cat"]] == 0  # predicate "rare" is not among the 2 most frequent
    assert kg.class_nodes == [0, 1]


def test_user_knowledge_graph_files(tmp_path):
    (tmp_path / "g.csv").write_text("source,target,weight\ncat,animal,2\ndog,animal,1\nanimal,pet,1\n")
    kg = load_knowledge_graph(tmp_path / "g.csv", ["dog", "cat"])
    assert kg.node_names == ["cat", "animal", "dog", "pet"] and kg.class_nodes == [2, 0]
    assert kg.adjacency[0, 1] == 2
    (tmp_path / "g.json").write_text(json.dumps({"nodes": ["a", "b"], "edges": [["a", "b", 0.5]]}))
    assert load_knowledge_graph(tmp_path / "g.json", ["b"]).adjacency[0, 1] == 0.5
    with pytest.raises(ValueError, match=r"classes \['zebra'\] are not nodes"):
        load_knowledge_graph(tmp_path / "g.csv", ["zebra"])
    (tmp_path / "bad.csv").write_text("only-one-column\n")
    with pytest.raises(ValueError, match="bad.csv.*line 1"):
        load_knowledge_graph(tmp_path / "bad.csv", ["x"])


def test_label_graph_file_keeps_the_knowledge_graph(graph, tmp_path):
    graph.knowledge = KnowledgeGraph(["w", "x", "y", "z", "extra"], torch.rand(5, 5), [0, 1, 2, 3])
    graph.save(tmp_path / "g.safetensors")
    loaded = LabelGraph.load(tmp_path / "g.safetensors")
    assert loaded.knowledge.node_names == graph.knowledge.node_names
    assert torch.equal(loaded.knowledge.adjacency, graph.knowledge.adjacency)
