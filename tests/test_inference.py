"""Using a trained model: export from a checkpoint (+ ONNX), predict, calibrate, explain, model details."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.metrics import f1_score

import labelgraph
from labelgraph import create_model
from labelgraph.apis import load_model, save_model
from labelgraph.cli import main as cli_main
from labelgraph.engine.task import MultiLabelTask
from labelgraph.evaluation.thresholds import f1_optimal_thresholds
from labelgraph.visualization.explain import grad_cam

from .conftest import TINY_BACKBONE, TINY_SIZE
from .test_task import datamodule, trainer

CLASSES = ["cat", "dog", "tree"]
DARKNET_PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"  # Debian darknet's photos (install.sh)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> dict[str, Path]:
    """Good images in every awkward encoding, and broken files."""
    d = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    rgb = Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8))
    paths = {name: d / name for name in ("a.jpg", "alpha.png", "cmyk.jpg", "gray16.png", "gray.png", "sub/b.png")}
    rgb.save(paths["a.jpg"])
    rgb.convert("RGBA").save(paths["alpha.png"])
    rgb.convert("CMYK").save(paths["cmyk.jpg"])
    Image.fromarray(rng.integers(0, 65535, (30, 30), dtype=np.uint16)).save(paths["gray16.png"])
    rgb.convert("L").save(paths["gray.png"])
    paths["sub/b.png"].parent.mkdir()
    rgb.save(paths["sub/b.png"])
    (d / "empty.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(paths["a.jpg"].read_bytes()[:200])
    paths["empty.jpg"], paths["truncated.jpg"] = d / "empty.jpg", d / "truncated.jpg"
    return paths


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, Path]:
    out = {}
    for method in ("baseline", "add_gcn"):
        torch.manual_seed(0)
        model = create_model(method, num_classes=len(CLASSES), backbone=TINY_BACKBONE).eval()
        out[method] = save_model(model, tmp_path_factory.mktemp(method), class_names=CLASSES, image_size=64)
    return out


class TestPredict:
    def test_folder_predicts_good_images_and_lists_broken_ones(self, images, model_dirs, tmp_path):
        folder = images["a.jpg"].parent
        out = tmp_path / "p.json"
        code = cli_main(["predict", str(model_dirs["baseline"]), str(folder), "missing.jpg", "--out", str(out)])
        assert code == 1  # some files failed
        result = json.loads(out.read_text())
        assert result["classes"] == CLASSES
        predicted = {Path(p["image"]).name for p in result["predictions"]}
        assert predicted == {"a.jpg", "alpha.png", "cmyk.jpg", "gray16.png", "gray.png", "b.png"}
        failed = {Path(e["image"]).name: e["error"] for e in result["errors"]}
        assert set(failed) == {"empty.jpg", "truncated.jpg", "missing.jpg"}
        assert "empty.jpg" in failed["empty.jpg"]
        for p in result["predictions"]:
            assert list(p["scores"]) == CLASSES and all(0 <= v <= 1 for v in p["scores"].values())
            assert p["labels"] == sorted((c for c in CLASSES if p["scores"][c] >= 0.5), key=lambda c: -p["scores"][c])

    def test_csv_output_glob_threshold_and_top_k(self, images, model_dirs, tmp_path):
        out = tmp_path / "p.csv"
        pattern = str(images["a.jpg"].parent / "*.png")
        args = ["predict", str(model_dirs["baseline"]), pattern, "--out", str(out), "--threshold", "0", "--top-k", "2"]
        assert cli_main(args) == 0
        rows = list(csv.DictReader(out.open()))
        assert [Path(r["image"]).name for r in rows] == ["alpha.png", "gray.png", "gray16.png"]
        assert all(len(r["labels"].split("|")) == 2 for r in rows)  # threshold 0 passes all, top-k keeps two
        assert set(rows[0]) == {"image", "labels", *CLASSES}

    def test_python_api_matches_the_model(self, images, model_dirs):
        predictor = labelgraph.load(model_dirs["baseline"])
        result = predictor.predict([images["a.jpg"], Image.open(images["a.jpg"])])
        model, _ = load_model(model_dirs["baseline"])
        x = predictor.transform(Image.open(images["a.jpg"]).convert("RGB"))[None]
        expected = torch.sigmoid(model(x))[0]
        for p in result["predictions"]:
            assert np.allclose(list(p["scores"].values()), expected.detach().numpy(), atol=1e-5)
        with pytest.raises(ValueError, match="no calibrated thresholds"):
            predictor.predict([images["a.jpg"]], threshold="calibrated")

    def test_real_photographs(self, model_dirs, images, tmp_path):
        photos = sorted(DARKNET_PHOTOS.glob("*.jpg"))
        out = tmp_path / "p.json"
        args = ["predict", str(model_dirs["add_gcn"]), *map(str, photos), str(images["truncated.jpg"])]
        assert cli_main([*args, "--out", str(out)]) == 1  # the truncated file fails, the photos do not
        result = json.loads(out.read_text())
        assert len(result["predictions"]) == len(photos) >= 5 and len(result["errors"]) == 1
        for p in result["predictions"]:
            assert all(0 <= v <= 1 for v in p["scores"].values()) and list(p["scores"]) == CLASSES


class TestExportFromCheckpoint:
    def test_graph_method_round_trip_with_onnx(self, tiny_dataset, tmp_path):
        L.seed_everything(0)
        dm = datamodule(tiny_dataset, embeddings="onehot")
        task = MultiLabelTask(
            method="ml_gcn",
            backbone=TINY_BACKBONE,
            num_classes=dm.num_classes,
            class_names=dm.class_names,
            label_graph=dm.label_graph,
            optimizer=lambda p: torch.optim.SGD(p, lr=0.01),
        )
        t = trainer(tmp_path, epochs=1, max_steps=1, enable_checkpointing=False, limit_val_batches=0)
        t.fit(task, dm)
        t.save_checkpoint(tmp_path / "m.ckpt")
        assert cli_main(["export", str(tmp_path / "m.ckpt"), "--out", str(tmp_path / "model"), "--onnx"]) == 0
        model, config = load_model(tmp_path / "model")
        assert config.class_names == dm.class_names and config.image_size == TINY_SIZE
        x = torch.rand(3, 3, TINY_SIZE, TINY_SIZE)
        assert torch.allclose(model(x), task.model.eval()(x), atol=1e-6)
        assert torch.equal(model.head.adj, task.model.head.adj)  # the graph travels inside the checkpoint
        assert (tmp_path / "model" / "model.onnx").is_file()


class TestCalibration:
    def test_thresholds_maximise_each_class_f1(self):
        rng = np.random.default_rng(3)
        targets = (rng.random((200, 4)) < 0.3).astype(np.int8)
        targets[:5, 0] = -1
        scores = np.clip(rng.normal(0.3 + 0.4 * targets, 0.25), 0, 1).round(2)  # rounded: ties everywhere
        thresholds = f1_optimal_thresholds(scores, targets)
        for c in range(4):
            known = targets[:, c] >= 0
            y, s = targets[known, c], scores[known, c]
            best = max(f1_score(y, s >= t) for t in np.unique(s))  # brute force over every cut
            assert f1_score(y, s >= thresholds[c]) == pytest.approx(best)
            assert thresholds[c] not in s  # placed between scores
        assert f1_optimal_thresholds(scores, np.zeros_like(targets))[0] == 0.5  # no positive: default

    def test_calibrate_command_stores_thresholds_that_predict_uses(self, tiny_dataset, model_dirs, tmp_path):
        model = create_model("baseline", num_classes=10, backbone=TINY_BACKBONE)
        classes = (tiny_dataset / "classes.txt").read_text().split()
        folder = save_model(model, tmp_path / "m", class_names=classes, image_size=TINY_SIZE)
        args = ["calibrate", str(folder), "--split", str(tiny_dataset / "val.csv"), "--classes"]
        args += [str(tiny_dataset / "classes.txt"), "--eval-split", str(tiny_dataset / "test.csv")]
        assert cli_main(args) == 0
        stored = json.loads((folder / "config.json").read_text())["thresholds"]
        assert len(stored) == 10
        predictor = labelgraph.load(folder)
        assert predictor.calibrated and np.allclose(predictor.resolve_thresholds("calibrated"), stored)


class TestExplain:
    def test_own_maps_for_add_gcn_and_grad_cam_for_the_baseline(self, images, model_dirs, tmp_path, capsys):
        for method, kind in (("add_gcn", "class maps"), ("baseline", "Grad-CAM")):
            out = tmp_path / method
            args = ["explain", str(model_dirs[method]), str(images["a.jpg"]), "--out", str(out), "--classes", "cat,dog"]
            assert cli_main(args) == 0
            written = sorted(p.name for p in out.glob("*.png"))
            assert written == ["a_cat.png", "a_dog.png"]
            assert Image.open(out / "a_cat.png").size == Image.open(images["a.jpg"]).size
            assert kind in capsys.readouterr().out

    def test_explain_names_the_class_and_the_probability_predict_gives(self, images, model_dirs, tmp_path, capsys):
        image = str(images["a.jpg"])
        assert cli_main(["predict", str(model_dirs["add_gcn"]), image, "--out", str(tmp_path / "p.json")]) == 0
        predicted = json.loads((tmp_path / "p.json").read_text())["predictions"][0]["scores"]
        capsys.readouterr()
        out = tmp_path / "maps"
        assert cli_main(["explain", str(model_dirs["add_gcn"]), image, "--out", str(out), "--classes", "cat,dog"]) == 0
        printed = capsys.readouterr().out
        for name in ("cat", "dog"):
            assert f"p={predicted[name]:.3f})" in printed.split(f"a_{name}.png")[1].splitlines()[0]
            picture = np.asarray(Image.open(out / f"a_{name}.png").convert("RGB"), dtype=np.float64)
            band = max(14, picture.shape[0] // 10)
            assert np.median(picture[-band:]) < 0.6 * np.median(picture[:-band])  # the caption's darkened band
            assert (picture[-band:].min(axis=2) > 150).any()  # and its white text

    def test_a_caption_names_the_class_and_shows_the_colour_scale(self):
        from labelgraph.visualization.explain import caption

        picture = np.asarray(caption(Image.new("RGB", (320, 200), (128, 128, 128)), "dog  p=0.912"), dtype=np.int64)
        assert picture.shape == (200, 320, 3)
        band, bar_w, row = 20, 80, 190
        assert np.abs(picture[:180] - 128).max() == 0  # the picture above the band is untouched
        assert np.abs(picture[row, 320 - bar_w - 4] - [0, 0, 127]).max() <= 1  # jet's least: dark blue
        assert np.abs(picture[row, 320 - 5] - [127, 0, 0]).max() <= 1  # jet's most: dark red
        text = picture[-band:, :100]
        assert (text.min(axis=2) > 200).any() and np.median(text) < 50  # white text on the darkened band

    def test_grad_cam_of_a_max_pooled_linear_head_by_hand(self):
        torch.manual_seed(0)
        model = create_model("baseline", num_classes=3, backbone=TINY_BACKBONE, pool="max").eval()
        x = torch.rand(1, 3, 64, 64)
        cams = grad_cam(model, x, [0, 2])
        a = model.features(x)[-1][0].detach()  # (D, h, w)
        d, h, w = a.shape
        flat = a.flatten(1)
        for row, c in zip(cams, (0, 2), strict=True):
            # d logit / d A[k, p] = w[c, k] at the arg-max position of channel k, 0 elsewhere
            grad = torch.zeros_like(flat)
            grad[torch.arange(d), flat.argmax(1)] = model.head.fc.weight[c].detach()
            weights = grad.mean(1)
            expected = torch.relu((weights[:, None] * flat).sum(0)).view(h, w)
            assert torch.allclose(row, expected, atol=1e-6)

    def test_unknown_class_is_refused(self, images, model_dirs, tmp_path, capsys):
        argv = ["explain", str(model_dirs["baseline"]), str(images["a.jpg"]), "--out", str(tmp_path), "--classes", "x"]
        assert cli_main(argv) == 2
        assert "--classes: unknown ['x']" in capsys.readouterr().err


def test_models_details_lists_parameters_and_flops(capsys):
    assert cli_main(["models", "--details", "--backbone", TINY_BACKBONE, "--size", "64", "--classes", "5"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert set(rows) == set(labelgraph.list_models())
    assert all(float(gflops) > 0 for _, gflops in rows.values())
