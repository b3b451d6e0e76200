"""The Hugging Face Hub without a network: push to a loopback Hub (``HF_ENDPOINT``), load from a real cache layout
with ``HF_HUB_OFFLINE=1``, and the generated model card."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import labelgraph
from labelgraph.apis.model_card import model_card
from labelgraph.cli import main as cli_main
from labelgraph.errors import InvalidInputError
from labelgraph.models.hub_source import parse_hub_source

from .fake_hub import FakeHub
from .test_cli import cli_args

ROOT = Path(__file__).resolve().parents[1]
REPO = "labelgraph-tests/tiny-tagger"


def run_cli(args: list[str], **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", **env}
    return subprocess.run([sys.executable, "-m", "labelgraph.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


@pytest.fixture(scope="module")
def checkpoint(tiny_dataset, tmp_path_factory) -> Path:
    """One epoch of ``labelgraph fit`` with the demo config (in this process, its command line recorded)."""
    run = tmp_path_factory.mktemp("fit")
    args = [*cli_args(tiny_dataset, 1), "--model.method", "ml_gcn", "--data.embeddings", "onehot",
            "--trainer.logger", "false"]  # fmt: skip
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(run)  # the demo config writes runs/demo/checkpoints relative to the working directory
        mp.setattr("sys.argv", ["labelgraph", "fit", *args])
        cli_main(["fit", *args])
    return run / "runs" / "demo" / "checkpoints" / "last.ckpt"


def place_in_hf_cache(folder: Path, cache: Path, repo_id: str, commit: str = "0123456789" * 4) -> None:
    """The Hugging Face cache layout: blobs by content hash, ``refs/main`` -> commit, a snapshot of symlinks."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    blobs, snapshot = repo / "blobs", repo / "snapshots" / commit
    blobs.mkdir(parents=True), snapshot.mkdir(parents=True), (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for file in folder.iterdir():
        data = file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        (blobs / digest).write_bytes(data)
        (snapshot / file.name).symlink_to(f"../../blobs/{digest}")


def test_export_pushes_folder_and_card_to_the_hub(checkpoint, tmp_path):
    out = tmp_path / "model"
    with FakeHub() as hub:
        done = run_cli(["export", str(checkpoint), "--out", str(out), "--push-to-hub", REPO, "--private"],
                       HF_ENDPOINT=hub.endpoint, HF_TOKEN="hf_test_token")  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    uploaded = hub.repos[REPO]
    assert uploaded["private"] and uploaded["commits"] == ["Upload labelgraph model"]
    assert set(uploaded["files"]) == {"config.json", "model.safetensors", "label_graph.safetensors", "README.md",
                                      "model.onnx"}  # fmt: skip
    for name, data in uploaded["files"].items():
        assert data == (out / name).read_bytes(), name  # byte for byte what was exported
    assert set(hub.authorizations) == {"Bearer hf_test_token"}
    card = uploaded["files"]["README.md"].decode()
    val = torch.load(checkpoint, weights_only=True)["labelgraph"]["config"]["metrics"]["val"]
    assert "library_name: labelgraph" in card and "https://arxiv.org/abs/1904.03582" in card  # ML-GCN's paper
    assert f"| val | {val['mAP']:.2f} |" in card and "labelgraph fit --config" in card
    assert "`circle`" in card and f'labelgraph.load("hf-hub:{REPO}")' in card


def test_push_to_a_missing_repo_or_without_a_model_is_a_clear_error(tmp_path):
    assert cli_main(["export", str(tmp_path), "--push-to-hub", REPO]) == 2
    with pytest.raises(InvalidInputError, match="ORG/NAME"):
        parse_hub_source("hf-hub:just-a-name")


def test_hub_model_loads_offline_from_the_cache(checkpoint, tmp_path):
    model = tmp_path / "model"
    assert cli_main(["export", str(checkpoint), "--out", str(model)]) == 0
    cache = tmp_path / "hf"
    place_in_hf_cache(model, cache, REPO)
    offline = {"HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    photo = tmp_path / "photo.jpg"  # any image: the test is about where the model comes from
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(photo)
    hub = run_cli(["predict", f"hf-hub:{REPO}", str(photo)], **offline)
    assert hub.returncode == 0, hub.stderr[-3000:]
    local = labelgraph.load(model).predict([photo])
    assert json.loads(hub.stdout)["predictions"][0]["scores"] == pytest.approx(local["predictions"][0]["scores"])
    missing = run_cli(["predict", "hf-hub:labelgraph-tests/not-cached", str(photo)], **offline)
    assert missing.returncode == 2 and "not in the Hugging Face cache" in missing.stderr, missing.stderr[-2000:]


def test_card_describes_a_demo_export(tmp_path):
    from labelgraph import create_model
    from labelgraph.apis import save_model

    net = create_model("baseline", num_classes=2, backbone="test_resnet")
    folder = save_model(net, tmp_path, class_names=["cat", "dog"], image_size=64, thresholds=[0.3, 0.6],
                        command="labelgraph demo", metrics={"test": {"mAP": 61.6, "CF1": 50.2}})  # fmt: skip
    card = model_card(folder)
    assert "| test | 61.60 | 50.20 |" in card and "calibrated per class (0.30 .. 0.60)" in card
    assert "64 x 64" in card and "(2, in output order): `cat`, `dog`" in card


def test_card_keeps_any_class_name_as_text(tmp_path):
    """Break: class names written as `name` (a backtick in a name closes the code span and what follows is Markdown,
    raw HTML included)."""
    from markdown_it import MarkdownIt

    from labelgraph import create_model
    from labelgraph.apis import save_model

    names = ["a`<script>alert(1)</script>`", "``<img src=x onerror=alert(2)>", "$x^$", "plain"]
    net = create_model("baseline", num_classes=len(names), backbone="test_resnet")
    folder = save_model(net, tmp_path / "m`<b>x</b>`", class_names=names, image_size=64, command="labelgraph ```x")
    html = MarkdownIt("commonmark").render(model_card(folder).split("---\n", 2)[2])
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<code>$x^$</code>" in html
