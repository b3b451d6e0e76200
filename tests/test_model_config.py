"""What a trained model carries (``ModelConfig``): one writer, one validating reader, the recorded eval transform used
by predict, old files of this project still read, and a malformed config a one-line error naming the file and field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file
from torchvision.transforms.v2 import functional as TF

from labelgraph import LabelGraph, create_model
from labelgraph.apis import save_model
from labelgraph.apis.export import export_checkpoint
from labelgraph.cli import main
from labelgraph.data.transforms import EVAL_PRESETS
from labelgraph.models import ConfigError, ModelConfig, load_model, load_trained_model

from .conftest import TINY_BACKBONE

LEGACY = Path(__file__).parent / "data" / "legacy"  # made at commit 5fa41b5 (before format 2): see its README.md


@pytest.fixture(scope="module")
def graph() -> LabelGraph:
    rng = np.random.default_rng(0)
    g = LabelGraph.from_targets((rng.random((30, 4)) < 0.4).astype(np.int8), ["cat", "dog", "sky", "sea"])
    g.embeddings, g.embedding_source = torch.randn(4, 8), "test"
    return g


@pytest.fixture()
def exported(graph, tmp_path) -> Path:
    """An ML-GCN export (with its label graph) to break."""
    model = create_model("ml_gcn", num_classes=4, label_graph=graph, backbone=TINY_BACKBONE, hidden=16).eval()
    return save_model(model, tmp_path / "model", class_names=graph.class_names, image_size=32)


def photo(path: Path, size: tuple[int, int] = (60, 40)) -> Path:
    """A non-square RGB PNG of random pixels."""
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


@pytest.mark.parametrize("preset", EVAL_PRESETS)
def test_predict_uses_the_recorded_eval_transform(preset, tmp_path, capsys):
    """``labelgraph predict`` equals the model's own forward on the recorded crop of a non-square image."""
    torch.manual_seed(0)
    model = create_model("baseline", num_classes=3, backbone=TINY_BACKBONE).eval()
    folder = save_model(model, tmp_path / "m", class_names=["a", "b", "c"], image_size=32, eval_transform=preset)
    image = photo(tmp_path / "wide.png")
    assert main(["predict", str(folder), str(image), "--out", str(tmp_path / "p.json")]) == 0
    predicted = json.loads((tmp_path / "p.json").read_text())["predictions"][0]["scores"]
    pixels = torch.from_numpy(np.array(Image.open(image).convert("RGB"))).permute(2, 0, 1)  # (3, 40, 60)
    if preset == "resize":  # the whole image squashed to 32 x 32
        x = TF.resize(pixels, [32, 32], antialias=True)
    else:  # SSGRL: the shorter side to 10/9 x 32, the central 32 x 32
        x = TF.center_crop(TF.resize(pixels, [round(32 * 640 / 576)], antialias=True), [32, 32])
    with torch.no_grad():
        expected = torch.sigmoid(model(x[None]))[0]
    assert list(predicted.values()) == pytest.approx(expected.tolist(), abs=1e-5)
    assert json.loads((folder / "config.json").read_text())["eval_transform"] == preset
    capsys.readouterr()
    assert main(["explain", str(folder), str(image), "--out", str(tmp_path / "maps"), "--classes", "b"]) == 0
    assert f"p={expected[1]:.3f}" in capsys.readouterr().out  # explain reads and crops the image as predict does


def test_one_schema_round_trips_and_records_what_training_knew(exported, graph):
    config = json.loads((exported / "config.json").read_text())
    assert config["format_version"] == 2 and config["method"] == "ml_gcn" and config["eval_transform"] == "resize"
    assert config["label_graph"] == {"classes": 4, "train_images": 30, "embeddings": "test", "embedding_dim": 8,
                                     "knowledge_nodes": None}  # fmt: skip
    assert config["labelgraph_version"] and "pretrained" not in config["model_kwargs"]
    model, read = load_model(exported)
    assert read == ModelConfig.from_dict(config, "x") and read.class_names == graph.class_names
    assert read.to_dict() == config  # one writer: what is read is what was written


def test_old_exports_and_checkpoints_of_this_project_still_load(tmp_path):
    expected = load_file(str(LEGACY / "expected_logits.safetensors"))
    model, config = load_model(LEGACY / "export_ml_gcn")  # format 1: preprocessing.resize, has_label_graph, extra
    assert config.eval_transform == "resize" and config.calibrated and len(config.thresholds) == 10
    assert config.image_size == 32 and config.label_graph is not None and config.metrics["val"]["mAP"] > 0
    with torch.no_grad():
        assert torch.allclose(model(expected["images"]), expected["export_logits"], atol=1e-6)
    model, config = load_trained_model(LEGACY / "legacy_ml_gcn.ckpt")  # model_config / preprocessing entries
    assert config.method == "ml_gcn" and config.model_kwargs == {"backbone": "test_resnet", "hidden": 16}
    with torch.no_grad():
        assert torch.allclose(model(expected["images"]), expected["checkpoint_logits"], atol=1e-6)
    out = export_checkpoint(LEGACY / "legacy_ml_gcn.ckpt", tmp_path / "upgraded")  # re-exported in format 2
    assert json.loads((out / "config.json").read_text())["format_version"] == 2
    with torch.no_grad():
        assert torch.allclose(load_model(out)[0](expected["images"]), expected["checkpoint_logits"], atol=1e-6)


def rewrite(folder: Path, change) -> None:
    path = folder / "config.json"
    data = json.loads(path.read_text())
    data = change(data) or data
    path.write_text(json.dumps(data))


BROKEN = {  # name: (how the config.json is broken, the field the error must name)
    "not an object": (lambda d: ["ml_gcn"], "a model config is a JSON object"),
    "no model_kwargs": (lambda d: d.pop("model_kwargs") and None, "field 'model_kwargs': missing"),
    "negative image size": (lambda d: d.update(image_size=-32), "field 'image_size'"),
    "non-numeric image size": (lambda d: d.update(image_size="large"), "field 'image_size'"),
    "wrong number of thresholds": (lambda d: d.update(thresholds=[0.5, 0.5]), "field 'thresholds': 2 thresholds for 4"),
    "threshold above 1": (lambda d: d.update(thresholds=1.5), "field 'thresholds'"),
    "unknown method": (lambda d: d.update(method="gcn9000"), "field 'method': unknown method 'gcn9000'"),
    "unknown builder argument": (lambda d: d["model_kwargs"].update(taus=3), "field 'model_kwargs.taus'"),
    "a path to open": (lambda d: d["model_kwargs"].update(prototypes="/etc/hostname"), "model_kwargs.prototypes"),
    "a remote backbone": (lambda d: d["model_kwargs"].update(backbone="hf-hub:x/y"), "model_kwargs.backbone"),
    "three std values of which one is zero": (lambda d: d.update(std=[0.5, 0, 0.5]), "field 'std'"),
    "an unknown eval transform": (lambda d: d.update(eval_transform="fisheye"), "field 'eval_transform'"),
    "a newer format": (lambda d: d.update(format_version=9), "field 'format_version'"),
    "a zero temperature": (lambda d: d.update(temperature=0), "field 'temperature'"),
    "a bias per class, one too few": (lambda d: d.update(logit_bias=[0.1, 0.2, 0.3]), "field 'logit_bias': 3 values"),
    "a recall rule without a threshold": (lambda d: d.update(recall_rule={"recall": 0.9}), "recall_rule.threshold"),
    "a recall of 1": (lambda d: d.update(recall_rule={"recall": 1.0, "threshold": 0.2}), "recall_rule.recall"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_malformed_config_is_one_line_naming_the_file_and_field(case, exported, tmp_path, capsys):
    change, message = BROKEN[case]
    rewrite(exported, change)
    assert main(["predict", str(exported), str(photo(tmp_path / "p.png"))]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("labelgraph: error: ") and "Traceback" not in err, err
    assert str(exported / "config.json") in err and message in err, err


def test_a_truncated_or_missing_label_graph_is_named(exported, tmp_path, capsys):
    image = str(photo(tmp_path / "p.png"))
    graph_file = exported / "label_graph.safetensors"
    graph_file.write_bytes(graph_file.read_bytes()[:100])
    assert main(["predict", str(exported), image]) == 2
    assert f"{graph_file}: unreadable or truncated label graph" in capsys.readouterr().err
    graph_file.unlink()
    assert main(["predict", str(exported), image]) == 2
    assert f"{graph_file}: missing" in capsys.readouterr().err


def test_a_config_never_sends_the_reader_to_a_file(exported, monkeypatch):
    """A ``prototypes`` (or ``pretrained``) path in a config is refused before anything could open it."""
    opened = []
    monkeypatch.setattr("labelgraph.models.sadcl.load_file", lambda path: opened.append(path))
    monkeypatch.setattr("labelgraph.models.backbone.load_state_dict_file", lambda path: opened.append(path))
    rewrite(exported, lambda d: d.update(method="sadcl", model_kwargs={"prototypes": "/etc/hostname"}))
    with pytest.raises(ConfigError, match="model_kwargs.prototypes"):
        load_model(exported)
    rewrite(exported, lambda d: d.update(method="baseline", model_kwargs={"pretrained": "/etc/hostname"}))
    with pytest.raises(ConfigError, match="model_kwargs.pretrained"):
        load_model(exported)
    assert opened == []


def test_checkpoint_configs_are_checked_too(tmp_path):
    checkpoint = torch.load(LEGACY / "legacy_ml_gcn.ckpt", weights_only=True)
    checkpoint["labelgraph"]["preprocessing"]["image_size"] = 0
    broken = tmp_path / "broken.ckpt"
    torch.save(checkpoint, broken)
    with pytest.raises(ConfigError, match=rf"{broken}: field 'image_size'"):
        load_trained_model(broken)
