"""ML-Decoder: group decoding against an explicit loop, no self-attention anywhere, the paper's defaults, fixed or
learnable queries, class maps from the cross-attention, word-vector queries that score new classes, and a zero-shot
run: trained on twenty coloured demo shapes, it ranks five colour-shape pairs it never saw well above chance."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn
from PIL import Image

from labelgraph import LabelGraph, create_model
from labelgraph.errors import InvalidInputError
from labelgraph.graph.embeddings import word_vector_embeddings
from labelgraph.layers.group_decoder import GroupFullyConnected

from .conftest import GLOVE_SUBSET, TINY_BACKBONE


def graph_with_embeddings(num_classes: int, dim: int = 12) -> LabelGraph:
    targets = (np.random.default_rng(0).random((30, num_classes)) < 0.4).astype(np.int8)
    graph = LabelGraph.from_targets(targets, [f"c{i}" for i in range(num_classes)])
    graph.embeddings = torch.randn(num_classes, dim)
    return graph


@pytest.mark.parametrize("num_classes, groups", [(7, 7), (150, 100), (250, 100)])
def test_group_decoding_equals_an_explicit_loop(num_classes, groups):
    torch.manual_seed(0)
    fc = GroupFullyConnected(groups, 16, num_classes)
    nn.init.normal_(fc.bias)
    h = torch.randn(3, groups, 16)
    g = -(-num_classes // groups)  # ceil
    assert fc.group_size == g
    expected = torch.zeros(3, groups * g)
    for k in range(groups):  # query k scores classes k g .. k g + g - 1 through its own (16 x g) matrix
        expected[:, k * g : (k + 1) * g] = h[:, k] @ fc.weight[k]
    expected = expected[:, :num_classes] + fc.bias
    assert torch.allclose(fc(h), expected, atol=1e-5)


def test_paper_defaults_and_query_count():
    model = create_model("ml_decoder", num_classes=80, backbone=TINY_BACKBONE)
    head = model.head
    assert head.query_embed.weight.shape == (80, 768)  # K = min(100, C)
    assert len(head.layers) == 1
    layer = head.layers[0]
    assert layer.cross_attn.num_heads == 8 and layer.ffn.net[0].out_features == 2048 and layer.dropout.p == 0.1
    assert create_model("ml_decoder", num_classes=300, backbone=TINY_BACKBONE).head.query_embed.weight.shape[0] == 100
    assert not head.query_embed.weight.requires_grad  # the official code's fixed random queries
    learnable = create_model("ml_decoder", num_classes=80, backbone=TINY_BACKBONE, queries="learnable")
    assert learnable.head.query_embed.weight.requires_grad
    graph = LabelGraph.from_targets(np.eye(6, dtype=np.int8), [f"c{i}" for i in range(6)])
    graph.embeddings = torch.randn(6, 50)
    torch.manual_seed(0)
    shared = create_model("ml_decoder", num_classes=6, label_graph=graph, backbone=TINY_BACKBONE, queries="embeddings")
    weight = shared.head.classifier.weight  # (1, 768): the official zero-shot head's xavier-normal init, zero bias
    assert torch.equal(shared.head.classifier.bias, torch.zeros(1))
    assert weight.std().item() == pytest.approx((2 / (768 + 1)) ** 0.5, rel=0.1)  # not PyTorch's default U(±1/sqrt(d))


def test_only_cross_attention_runs():
    """Every attention call takes its keys from the image tokens, never from the queries (no self-attention)."""
    model = create_model("ml_decoder", num_classes=5, backbone=TINY_BACKBONE, num_layers=3).eval()
    attentions = [m for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    assert len(attentions) == 3  # one per layer
    calls = []
    for attention in attentions:
        attention.register_forward_hook(lambda m, args, out: calls.append((args[0].shape, args[1].shape)))
    model(torch.rand(2, 3, 64, 96))  # test_resnet: a 2 x 3 feature map, 6 tokens; 5 queries
    assert calls == [((2, 5, 768), (2, 6, 768))] * 3


def test_fixed_queries_stay_fixed_while_training():
    model = create_model("ml_decoder", num_classes=4, backbone=TINY_BACKBONE).train()
    before = model.head.query_embed.weight.detach().clone()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.rand(2, 3, 32, 32)).sum().backward()
    optimizer.step()
    assert torch.equal(model.head.query_embed.weight, before)


def test_class_maps_are_each_class_query_attention():
    model = create_model("ml_decoder", num_classes=150, backbone=TINY_BACKBONE).eval()  # 100 queries, 2 classes each
    maps = model.class_maps(torch.rand(2, 3, 64, 96))
    assert maps.shape == (2, 150, 2, 3)
    assert torch.allclose(maps.sum(dim=(2, 3)), torch.ones(2, 150), atol=1e-5)
    assert torch.equal(maps[:, 0], maps[:, 1]) and not torch.equal(maps[:, 1], maps[:, 2])  # classes 0, 1: query 0


def test_word_vector_queries_score_new_classes():
    model = create_model("ml_decoder", num_classes=6, label_graph=graph_with_embeddings(6), backbone=TINY_BACKBONE,
                         queries="embeddings").eval()  # fmt: skip
    images = torch.rand(2, 3, 32, 32)
    trained = model(images)
    assert trained.shape == (2, 6)
    new = torch.randn(9, 12)
    model.score_new_classes(torch.cat([model.head.label_embed, new]))
    scores = model(images)
    assert scores.shape == (2, 15) and model.num_classes == 15
    assert torch.allclose(scores[:, :6], trained, atol=1e-5)  # a class's score depends on its own query only
    with pytest.raises(InvalidInputError, match="12-d"):
        model.score_new_classes(torch.randn(3, 50))
    with pytest.raises(InvalidInputError, match="queries='embeddings'"):
        create_model("ml_decoder", num_classes=3, backbone=TINY_BACKBONE).score_new_classes(new)


def test_class_vectors_are_the_group_columns():
    model = create_model("ml_decoder", num_classes=150, backbone=TINY_BACKBONE).eval()
    h = torch.randn(1, 100, 768)
    vectors = model.head.class_vectors()  # (150, 768)
    logits = model.head.classifier(h) - model.head.classifier.bias
    for c in (0, 1, 77, 149):  # class c = query c // 2 through its own column
        assert torch.allclose(logits[0, c], h[0, c // 2] @ vectors[c], atol=1e-4)


def test_predict_scores_new_class_names_from_the_command_line(tmp_path):
    import json

    from labelgraph.apis import save_model
    from labelgraph.cli import main as cli_main

    graph = graph_with_embeddings(2)
    graph.class_names, graph.embeddings = ["cat", "dog"], word_vector_embeddings(GLOVE_SUBSET, ["cat", "dog"])
    model = create_model("ml_decoder", num_classes=2, label_graph=graph, backbone=TINY_BACKBONE, queries="embeddings")
    folder = save_model(model.eval(), tmp_path / "model", class_names=["cat", "dog"], image_size=32, label_graph=graph)
    photo = str(tmp_path / "photo.png")  # any image: the test is about the class list
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photo)
    (tmp_path / "new.txt").write_text("cat\ndog\nhorse\n")
    out_trained, out_new = tmp_path / "trained.json", tmp_path / "new.json"
    assert cli_main(["predict", str(folder), photo, "--out", str(out_trained)]) == 0
    new = ["predict", str(folder), photo, "--classes", str(tmp_path / "new.txt"), "--out", str(out_new)]
    assert cli_main(new) == 2  # --classes needs --embeddings
    assert cli_main([*new, "--embeddings", f"glove:{GLOVE_SUBSET}"]) == 0
    trained = json.loads(out_trained.read_text())["predictions"][0]["scores"]
    scores = json.loads(out_new.read_text())["predictions"][0]["scores"]
    assert list(scores) == ["cat", "dog", "horse"]
    assert scores["cat"] == pytest.approx(trained["cat"], abs=1e-5) and scores["dog"] == pytest.approx(trained["dog"])


@pytest.mark.slow
def test_zero_shot_held_out_classes_score_above_chance():
    """The zero-shot protocol (:mod:`labelgraph.studies.zero_shot`) with GloVe queries: the 5 held-out names rank
    their own pairs' images well above chance, and each above the other new names' images."""
    from labelgraph.studies.zero_shot import zero_shot_run

    run = zero_shot_run(lambda names: word_vector_embeddings(GLOVE_SUBSET, names), seed=0, backbone=TINY_BACKBONE)
    ap, prevalence = run["held_out_ap"], run["prevalence"]
    print(f"held-out AP {np.round(100 * ap, 1)} (mean {100 * ap.mean():.1f}), chance {np.round(100 * prevalence, 1)}")
    assert ap.mean() > 3 * prevalence.mean(), (ap, prevalence)  # 4.8x to 10.5x over six seeds (one thread)
    assert np.nanmean(run["seen_ap"]) > 0.8  # the trained classes were learnt: 0.96-0.98
    cross = run["cross"]  # the name decides: a held-out pair's images are ranked by its own name's scores
    own, other = np.diag(cross).mean(), cross[~np.eye(len(cross), dtype=bool)].mean()
    assert own > 2 * other, np.round(100 * cross, 1)  # 4.1x to 10.1x over six seeds


def test_zero_shot_names_are_embedded_with_what_the_model_records(tmp_path):
    """A model trained on MiniLM label embeddings scores new names (and a --classes file's descriptions) through
    MiniLM without --embeddings; the trained names keep their scores."""
    import json

    from labelgraph.apis import save_model
    from labelgraph.cli import main as cli_main
    from labelgraph.graph.embeddings import embeddings_from_source

    graph = graph_with_embeddings(2)
    graph.class_names = ["cat", "dog"]
    graph.embeddings, graph.embedding_source = embeddings_from_source("minilm", ["cat", "dog"])
    model = create_model("ml_decoder", num_classes=2, label_graph=graph, backbone=TINY_BACKBONE, queries="embeddings")
    folder = save_model(model.eval(), tmp_path / "model", class_names=["cat", "dog"], image_size=32, label_graph=graph)
    photo = str(tmp_path / "photo.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photo)
    (tmp_path / "new.txt").write_text("cat\ndog\nhorse: a large animal people ride\n")
    out_trained, out_new = tmp_path / "trained.json", tmp_path / "new.json"
    assert cli_main(["predict", str(folder), photo, "--out", str(out_trained), "--runtime", "torch"]) == 0
    assert cli_main(["predict", str(folder), photo, "--classes", str(tmp_path / "new.txt"), "--out", str(out_new)]) == 0
    trained = json.loads(out_trained.read_text())["predictions"][0]["scores"]
    scores = json.loads(out_new.read_text())["predictions"][0]["scores"]
    assert list(scores) == ["cat", "dog", "horse"]
    assert scores["cat"] == pytest.approx(trained["cat"], abs=1e-5)
    assert scores["dog"] == pytest.approx(trained["dog"], abs=1e-5)
    (tmp_path / "bare.txt").write_text("cat\ndog\nhorse\n")  # the description, not the name, made horse's query
    bare = ["predict", str(folder), photo, "--classes", str(tmp_path / "bare.txt"), "--out", str(out_new)]
    assert cli_main(bare) == 0
    horse = json.loads(out_new.read_text())["predictions"][0]["scores"]["horse"]
    assert horse != pytest.approx(scores["horse"], abs=1e-4)
