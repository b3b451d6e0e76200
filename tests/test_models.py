"""Invariants of every registered model (timm-style), plus backbone and registry behaviour."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from labelgraph import LabelGraph, create_model, list_models
from labelgraph.apis import load_model, save_model
from labelgraph.models import (
    Backbone,
    MultiLabelClassifier,
    MultiLabelHead,
    Recipe,
    methods_providing,
    register_model,
)

from . import golden
from .conftest import TINY_BACKBONE

NUM_CLASSES = 6


@pytest.fixture(scope="module")
def label_graph() -> LabelGraph:
    rng = np.random.default_rng(0)
    targets = (rng.random((40, NUM_CLASSES)) < 0.4).astype(np.int8)
    graph = LabelGraph.from_targets(targets, [f"c{i}" for i in range(NUM_CLASSES)])
    graph.embeddings = torch.randn(NUM_CLASSES, 16)
    graph.embedding_source = "image:test"  # iml_gcn accepts image-based embeddings only
    return graph


def build(name: str, graph: LabelGraph):
    return create_model(name, num_classes=NUM_CLASSES, label_graph=graph, backbone=TINY_BACKBONE)


@pytest.mark.parametrize("name", list_models())
class TestEveryModel:
    def test_logits_shape_at_any_input_size(self, name, label_graph):
        model = build(name, label_graph).eval()
        for size in (32, 48, 64):
            out = model(torch.rand(2, 3, size, size + 16))
            assert out.shape == (2, NUM_CLASSES)
            assert torch.isfinite(out).all()

    def test_a_model_knows_its_recipe_input_and_save_model_takes_it(self, name, label_graph, tmp_path):
        from labelgraph import get_recipe
        from labelgraph.apis.export import save_model
        from labelgraph.models.weights import read_model_config

        recipe, model = get_recipe(name), build(name, label_graph)
        assert (model.preprocessing["image_size"], model.preprocessing["eval_transform"]) == (
            recipe.image_size, recipe.eval_transform
        )  # fmt: skip
        save_model(model, tmp_path, class_names=label_graph.class_names)
        config = read_model_config(tmp_path)
        assert (config.image_size, config.eval_transform) == (recipe.image_size, recipe.eval_transform)

    def test_forward_train_returns_logits_and_every_parameter_gets_a_gradient(self, name, label_graph):
        model = build(name, label_graph).train()
        out = model.forward_train(torch.rand(3, 3, 48, 48))
        assert out["logits"].shape == (3, NUM_CLASSES)
        loss = sum(
            v.float().pow(2).mean() for v in out.values() if isinstance(v, torch.Tensor) and v.is_floating_point()
        )
        loss.backward()
        no_grad = [
            n
            for n, p in model.named_parameters()
            if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
        ]
        assert not no_grad, f"parameters without a finite gradient: {no_grad[:10]}"

    def test_deterministic_construction_and_forward(self, name, label_graph):
        x = torch.rand(2, 3, 48, 48)
        torch.manual_seed(123)
        a = build(name, label_graph).eval()(x)
        torch.manual_seed(123)
        b = build(name, label_graph).eval()(x)
        assert torch.equal(a, b)

    def test_graph_priors_are_declared_buffers_and_all_the_head_takes_from_the_graph(self, name, label_graph):
        """Built twice from one seed with two label graphs, the heads differ only in what they declare: their
        ``graph_priors`` (buffers, never trained) and what they learn from the graph (``learnable_graph``)."""
        one_label_each = np.eye(NUM_CLASSES, dtype=np.int8).repeat(5, axis=0)  # no two classes ever co-occur
        other = LabelGraph.from_targets(one_label_each, label_graph.class_names)
        other.embeddings, other.embedding_source = label_graph.embeddings + 1, label_graph.embedding_source
        torch.manual_seed(0)
        head = build(name, label_graph).head
        torch.manual_seed(0)
        state = build(name, other).head.state_dict()
        priors = set(head.graph_priors)
        learnable = tuple(head.learnable_graph)
        buffers = dict(head.named_buffers())
        assert priors <= set(buffers), f"graph priors that are not buffers: {priors - set(buffers)}"
        differ = {k for k, v in head.state_dict().items() if not torch.equal(v, state[k])}
        undeclared = {k for k in differ - priors if not k.startswith(learnable) or not learnable}
        assert undeclared == set(), f"taken from the label graph but not declared a prior: {undeclared}"
        assert priors <= differ, f"declared priors that do not come from the label graph: {priors - differ}"

    def test_forward_train_logits_equal_forward_in_eval_mode(self, name, label_graph):
        model = build(name, label_graph).eval()
        x = torch.rand(2, 3, 48, 64)
        with torch.no_grad():
            assert torch.equal(model.forward_train(x)["logits"], model(x))

    def test_logits_equal_the_stored_golden_ones(self, name):
        """Any change to a head's arithmetic or initialisation fails here (``python -m tests.golden`` rewrites
        the files once a change is meant)."""
        path = golden.FOLDER / f"{name}.safetensors"
        assert path.is_file(), f"no stored logits for {name}: run python -m tests.golden {name}"
        expected = load_file(str(path))["logits"]
        assert torch.allclose(golden.golden_logits(name), expected, rtol=1e-4, atol=1e-5)

    def test_fixed_priors_stay_fixed_through_a_training_step_and_travel_in_the_weights(self, name, label_graph):
        model = build(name, label_graph).train()
        statistics = ("running_mean", "running_var", "num_batches_tracked")  # BatchNorm's, updated by design
        fixed = {n: b.clone() for n, b in model.head.named_buffers() if not n.endswith(statistics)}
        optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1.0)
        out = model.forward_train(torch.rand(3, 3, 48, 48))
        sum(v.float().pow(2).mean() for v in out.values() if torch.is_tensor(v) and v.is_floating_point()).backward()
        optimizer.step()
        changed = [n for n, b in model.head.named_buffers() if n in fixed and not torch.equal(b, fixed[n])]
        assert changed == [], f"buffers changed by a training step: {changed}"
        state = model.state_dict()
        assert all(f"head.{n}" in state for n in fixed)

    def test_export_round_trip(self, name, label_graph, tmp_path):
        model = build(name, label_graph).eval()
        classes = label_graph.class_names
        save_model(model, tmp_path / "m", class_names=classes, image_size=48, label_graph=label_graph)
        loaded, config = load_model(tmp_path / "m")
        x = torch.rand(2, 3, 48, 48)
        assert torch.equal(model(x), loaded(x))
        assert config.class_names == classes and config.method == name and config.image_size == 48


def test_registry_errors_name_the_alternatives():
    with pytest.raises(ValueError, match="available: .*baseline"):
        create_model("nonexistent", num_classes=3)
    with pytest.raises(TypeError, match="unknown arguments"):
        create_model("baseline", num_classes=3, backbone=TINY_BACKBONE, bogus=1)
    with pytest.raises(ValueError, match="already registered"):
        register_model("baseline", recipe=Recipe(source="test"), head=MultiLabelHead)(lambda **k: None)
    with pytest.raises(TypeError, match="recipe must be a labelgraph.models.Recipe"):
        register_model("another", recipe={"optimizer": "sgd"}, head=MultiLabelHead)
    with pytest.raises(TypeError, match="head must be a subclass of labelgraph.models.MultiLabelHead"):
        register_model("another", recipe=Recipe(source="test"), head=torch.nn.Linear)


def test_a_head_overriding_an_ability_with_another_signature_fails_when_defined():
    with pytest.raises(TypeError, match=r"WrongMaps.class_maps\(self, feats\) does not match .*class_maps"):

        class WrongMaps(MultiLabelHead):
            def class_maps(self, feats):
                return feats

    with pytest.raises(TypeError, match=r"WrongHook.after_loss\(self, outputs\) does not match"):

        class WrongHook(MultiLabelHead):
            def after_loss(self, outputs):
                pass

    with pytest.raises(TypeError, match="WrongMults.lr_mults must be a dict"):

        class WrongMults(MultiLabelHead):
            lr_mults = (("graph", 4.0),)

    class Right(MultiLabelHead):
        def class_maps(self, features):
            return features[-1]

    assert Right().provides("class_maps") and not Right().provides("label_features")
    with pytest.raises(TypeError, match="not a labelgraph.models.MultiLabelHead"):
        MultiLabelClassifier(Backbone(TINY_BACKBONE, out_indices=(-1,)), torch.nn.Identity(), 3)


def test_the_registry_knows_each_method_head_and_what_it_offers(label_graph):
    assert methods_providing("class_maps") == ["add_gcn", "db_dgcn", "ml_decoder", "salgl", "ssgrl"]
    assert methods_providing("forward_known") == ["c_tran"]
    assert methods_providing("label_features") == ["query2label", "sadcl"]
    assert methods_providing("class_prototypes") == ["sadcl"]
    assert methods_providing("class_vectors") == list_models()  # every shipped head has per-class vectors
    with pytest.raises(NotImplementedError, match="methods with maps: add_gcn, db_dgcn, ml_decoder, salgl, ssgrl"):
        build("baseline", label_graph).class_maps(torch.rand(1, 3, 32, 32))


def test_the_adding_a_method_page_lists_every_head_ability():
    """The page's "What a head can add" bullets name exactly the abilities ``MultiLabelHead`` declares, in order."""
    from labelgraph.models.head import ABILITIES

    page = (Path(__file__).resolve().parents[1] / "docs" / "adding_a_method.md").read_text()
    section = page.split("## What a head can add", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^- `([a-z_]+)", section, flags=re.M)
    assert listed == list(ABILITIES)


def test_baseline_pooling_modes():
    m_max = create_model("baseline", num_classes=3, backbone=TINY_BACKBONE, pool="max").eval()
    feats = [torch.randn(2, m_max.backbone.channels[-1], 3, 3)]
    assert torch.allclose(m_max.head(feats), m_max.head.fc(feats[0].amax(dim=(2, 3))))
    with pytest.raises(ValueError, match="pooling"):
        create_model("baseline", num_classes=3, backbone=TINY_BACKBONE, pool="median")


class TestBackbone:
    def test_multi_stage_channels_and_strides(self):
        bb = Backbone("resnet10t", out_indices=(-2, -1))
        assert bb.channels == [256, 512] and bb.reductions == [16, 32]
        feats = bb(torch.rand(1, 3, 64, 96))
        assert [tuple(f.shape) for f in feats] == [(1, 256, 4, 6), (1, 512, 2, 3)]

    def test_torchvision_resnet(self):
        bb = Backbone("torchvision/resnet18", out_indices=(3, 4))
        assert bb.channels == [256, 512] and bb.reductions == [16, 32]
        feats = bb(torch.rand(1, 3, 64, 64))
        assert [f.shape[1] for f in feats] == [256, 512]

    def test_local_pretrained_file_is_loaded(self, tmp_path):
        source = Backbone("resnet10t")
        path = tmp_path / "weights.safetensors"
        save_file({k: v.contiguous() for k, v in source.body.state_dict().items()}, str(path))
        loaded = Backbone("resnet10t", pretrained=str(path))
        for (k, a), b in zip(source.body.state_dict().items(), loaded.body.state_dict().values(), strict=True):
            assert torch.equal(a, b), k

    def test_torchvision_local_weights(self, tmp_path):
        import torchvision

        net = torchvision.models.resnet18()
        path = tmp_path / "r18.pth"
        torch.save(net.state_dict(), path)
        bb = Backbone("torchvision/resnet18", pretrained=str(path))
        assert torch.equal(bb.body.conv1.weight, net.conv1.weight)

    def test_errors(self):
        with pytest.raises(FileNotFoundError, match="does not exist"):
            Backbone("resnet10t", pretrained="/nonexistent/weights.pth")
        with pytest.raises(ValueError, match="unknown backbone"):
            Backbone("resnet_does_not_exist")
        with pytest.raises(ValueError, match="not supported"):
            Backbone("torchvision/vit_b_16")

    def test_tresnet_expects_unnormalised_input(self):
        bb = Backbone("tresnet_m")
        assert bb.mean == (0.0, 0.0, 0.0) and bb.std == (1.0, 1.0, 1.0)


def test_parameter_groups_and_lr_multiplier():
    from labelgraph.engine.task import MultiLabelTask

    task = MultiLabelTask(
        backbone=TINY_BACKBONE, num_classes=3, backbone_lr_mult=0.1, optimizer=lambda p: torch.optim.SGD(p, lr=0.5)
    )
    opt = task.configure_optimizers()["optimizer"]  # (with the baseline recipe's step schedule)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"backbone": pytest.approx(0.05), "head": pytest.approx(0.5)}
    n_opt = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in task.model.parameters())


def test_a_variant_takes_its_parents_arguments_with_their_defaults(label_graph):
    """``extends``: SADCL's signature is its own arguments, then Query2Label's (and the transformer's), with their
    defaults; they reach the head; an argument no parent takes is refused by name before anything is built."""
    import inspect

    from labelgraph.models import get_model_builder

    params = inspect.signature(get_model_builder("sadcl")).parameters
    assert params["nhead"].default == 4 and params["trainable_stages"].default == "auto"
    assert params["memory_size"].default == 8 and not any(p.kind == p.VAR_KEYWORD for p in params.values())
    model = create_model("sadcl", num_classes=NUM_CLASSES, backbone=TINY_BACKBONE, nhead=2, dim_feedforward=16)
    assert model.head.transformer.decoder[0].cross_attn.num_heads == 2
    with pytest.raises(TypeError, match=r"unknown arguments \['bogus'\]"):
        create_model("iml_gcn", num_classes=NUM_CLASSES, label_graph=label_graph, backbone=TINY_BACKBONE, bogus=1)
    lglm = create_model("lglm", num_classes=NUM_CLASSES, label_graph=label_graph, backbone=TINY_BACKBONE, hidden=8)
    assert lglm.head.gc1.weight.shape[1] == 8  # A-GCN's option, through LGLM's head
