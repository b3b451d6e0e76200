"""ONNX Runtime behind predict, serve, evaluate and calibrate: the exported graph computes the logits PyTorch does,
for every registered method, and is never run in place of weights it was not exported from."""

from __future__ import annotations

import io
import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

from labelgraph import create_model, list_models
from labelgraph.apis import save_model
from labelgraph.apis.export import update_config, write_config
from labelgraph.apis.onnx import OnnxModel
from labelgraph.apis.predict import Predictor
from labelgraph.cli import main as cli_main
from labelgraph.cli.export import export_and_check_onnx
from labelgraph.errors import InvalidInputError

from .conftest import TINY_BACKBONE
from .golden import golden_graph

pytest.importorskip("onnxruntime")
SIZE = 32


def exported(method: str, folder) -> Predictor:
    torch.manual_seed(0)
    graph = golden_graph()
    model = create_model(method, num_classes=len(graph.class_names), label_graph=graph, backbone=TINY_BACKBONE)
    save_model(model.eval(), folder, class_names=graph.class_names, image_size=SIZE)
    assert export_and_check_onnx(folder) == 0
    return folder


def images(n: int = 3) -> torch.Tensor:
    return torch.randint(0, 256, (n, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(1), dtype=torch.uint8)


@pytest.mark.parametrize("method", list_models())
def test_onnx_runtime_equals_pytorch(method, tmp_path):
    folder = exported(method, tmp_path / method)
    onnx, eager = Predictor.load(folder, runtime="onnx"), Predictor.load(folder, runtime="torch")
    assert (onnx.runtime, eager.runtime, Predictor.load(folder).runtime) == ("onnxruntime", "torch", "onnxruntime")
    assert isinstance(onnx.scorer, OnnxModel)
    x = images()
    assert np.abs(onnx.logits(x) - eager.logits(x)).max() <= 1e-4
    assert np.abs(onnx.scores(x) - eager.scores(x)).max() <= 1e-4
    # calibrate's refit reaches the graph: per-class scaling written into its initializers, outputs still equal
    classes = len(onnx.classes)
    update_config(folder, temperature=[0.5 + 0.25 * c for c in range(classes)], logit_bias=[-0.3] * classes)
    onnx, eager = Predictor.load(folder, runtime="onnx"), Predictor.load(folder, runtime="torch")
    assert onnx.scorer.scaled_as(onnx.temperature, onnx.logit_bias)
    assert np.abs(onnx.scores(x) - eager.scores(x)).max() <= 1e-4
    assert np.abs(onnx.logits(x) - eager.logits(x)).max() <= 1e-4  # the graph's scaling undone


def test_a_graph_with_an_older_scaling_is_undone_and_rescaled(tmp_path):
    folder = exported("ml_gcn", tmp_path / "m")
    config = update_config(folder, temperature=0.7, logit_bias=-0.2)  # the graph scales so
    write_config(folder, config.replace(temperature=2.0, logit_bias=0.4))  # refitted as if without the onnx package
    onnx, eager = Predictor.load(folder, runtime="onnx"), Predictor.load(folder, runtime="torch")
    assert not onnx.scorer.scaled_as(onnx.temperature, onnx.logit_bias)
    x = images()
    assert np.abs(onnx.scores(x) - eager.scores(x)).max() <= 1e-5
    assert np.abs(onnx.scores(x) - Predictor(eager.model, config).scores(x)).max() > 1e-2  # the scaling matters


def test_a_graph_of_other_weights_is_never_run(tmp_path, caplog):
    folder = exported("baseline", tmp_path / "a")
    other = exported("baseline", tmp_path / "b")
    torch.manual_seed(5)
    model = create_model("baseline", num_classes=6, label_graph=golden_graph(), backbone=TINY_BACKBONE)
    save_model(model, folder, class_names=golden_graph().class_names, image_size=SIZE)
    assert not (folder / "model.onnx").exists()  # new weights: the old graph removed
    (folder / "model.onnx").write_bytes((other / "model.onnx").read_bytes())  # a graph of other weights put back
    with caplog.at_level(logging.WARNING):
        assert Predictor.load(folder).runtime == "torch"
    assert "exported from other weights" in caplog.text
    with pytest.raises(InvalidInputError, match="other weights"):
        Predictor.load(folder, runtime="onnx")


def test_cli_exports_onnx_by_default_and_predict_says_which_runtime_ran(tiny_model, tiny_dataset, tmp_path, capsys):
    ckpt_free = tmp_path / "m"
    assert cli_main(["export", str(tiny_model), "--out", str(ckpt_free)]) == 0
    assert (ckpt_free / "model.onnx").is_file()
    assert cli_main(["export", str(tiny_model), "--out", str(tmp_path / "plain"), "--no-onnx"]) == 0
    assert not (tmp_path / "plain" / "model.onnx").exists()
    assert "**Runtime**: `model.onnx`" in (ckpt_free / "README.md").read_text()  # the card says what will run
    assert "**Runtime**: PyTorch" in (tmp_path / "plain" / "README.md").read_text()
    assert cli_main(["predict", str(tmp_path / "plain"), str(tiny_dataset / "images"), "--runtime", "onnx"]) != 0
    assert "has no model.onnx" in capsys.readouterr().err
    assert cli_main(["export", str(tmp_path / "plain"), "--onnx"]) == 0  # what the message says to run
    assert (tmp_path / "plain" / "model.onnx").is_file()
    assert "**Runtime**: `model.onnx`" in (tmp_path / "plain" / "README.md").read_text()
    outputs = {}
    for runtime in ("onnx", "torch"):
        out = tmp_path / f"{runtime}.json"
        args = ["predict", str(ckpt_free), str(tiny_dataset / "images"), "--runtime", runtime, "--out", str(out)]
        assert cli_main(args) == 0
        outputs[runtime] = json.loads(out.read_text())
    assert (outputs["onnx"]["runtime"], outputs["torch"]["runtime"]) == ("onnxruntime", "torch")
    for a, b in zip(outputs["onnx"]["predictions"], outputs["torch"]["predictions"], strict=True):
        assert a["image"] == b["image"]
        assert max(abs(a["scores"][c] - b["scores"][c]) for c in a["scores"]) <= 1e-4


def test_calibrate_and_evaluate_on_onnx_runtime_give_pytorchs_numbers(tiny_model, tiny_dataset, tmp_path, capsys):
    results = {}
    for runtime in ("onnx", "torch"):
        folder = tmp_path / runtime
        assert cli_main(["export", str(tiny_model), "--out", str(folder)]) == 0
        data = ["--split", str(tiny_dataset / "val.csv"), "--classes", str(tiny_dataset / "classes.txt")]
        assert cli_main(["calibrate", str(folder), *data, "--runtime", runtime]) == 0
        out = tmp_path / f"{runtime}.json"
        test = ["--split", str(tiny_dataset / "test.csv"), "--classes", str(tiny_dataset / "classes.txt")]
        assert cli_main(["evaluate", str(folder), *test, "--runtime", runtime, "--out", str(out)]) == 0
        assert f"{folder}: {'onnxruntime' if runtime == 'onnx' else 'torch'}" in capsys.readouterr().out
        config = json.loads((folder / "config.json").read_text())
        results[runtime] = (config["temperature"], config["logit_bias"], json.loads(out.read_text())["models"])
    (t_onnx, b_onnx, onnx), (t_torch, b_torch, eager) = results["onnx"], results["torch"]
    assert (t_onnx, b_onnx) == pytest.approx((t_torch, b_torch), abs=1e-4)
    assert (t_torch, b_torch) != (1.0, 0.0)
    clean_onnx, clean_torch = onnx["baseline"]["clean"], eager["baseline"]["clean"]
    assert clean_onnx["mAP"] == pytest.approx(clean_torch["mAP"], abs=1e-3)
    assert clean_onnx["ECE"] == pytest.approx(clean_torch["ECE"], abs=1e-3)


def test_serve_runs_the_graph_and_answers_what_pytorch_computes(tmp_path):
    import httpx

    from labelgraph.serving.process import ServerProcess

    folder = exported("query2label", tmp_path / "m")
    picture = Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    eager = Predictor.load(folder, runtime="torch").predict([picture])["predictions"][0]["scores"]
    with ServerProcess(folder, "--runtime", "onnx", "--device", "cpu", "--quiet") as server:
        assert httpx.get(server.url + "/metadata").json()["runtime"] == "onnxruntime"
        answer = httpx.post(server.url + "/predict", files=[("images", ("a.png", buffer.getvalue(), "image/png"))])
    served = answer.json()["predictions"][0]["scores"]
    assert max(abs(served[c] - eager[c]) for c in eager) <= 1e-4


def test_the_torch_export_exporter_takes_over_where_torchscript_fails(tmp_path, monkeypatch):
    import labelgraph.apis.onnx as onnx_module

    folder = exported("query2label", tmp_path / "m")
    assert OnnxModel(folder / "model.onnx").session.get_modelmeta().custom_metadata_map["labelgraph.exporter"] == (
        "torchscript"
    )
    trace = onnx_module.trace_to_onnx

    def no_torchscript(module, example, path, exporter):
        if exporter == "torchscript":
            raise RuntimeError("unsupported operator")  # as the TorchScript exporter fails on a model it cannot trace
        trace(module, example, path, exporter)

    monkeypatch.setattr(onnx_module, "trace_to_onnx", no_torchscript)
    assert export_and_check_onnx(folder) == 0
    meta = OnnxModel(folder / "model.onnx").session.get_modelmeta().custom_metadata_map
    assert meta["labelgraph.exporter"] == "dynamo"
    onnx, eager = Predictor.load(folder, runtime="onnx"), Predictor.load(folder, runtime="torch")
    assert np.abs(onnx.scores(images()) - eager.scores(images())).max() <= 1e-4
