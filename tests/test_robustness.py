"""Corruptions (ImageNet-C style) against hand-computed values, and robustness evaluation through the CLI."""

from __future__ import annotations

import colorsys
import json

import numpy as np
import pytest
import torch

from labelgraph.apis.export import save_model
from labelgraph.cli import main as cli_main
from labelgraph.data.corruptions import CONTRAST, CORRUPTIONS, NOISE_SIGMA, OCCLUDED_FRACTION, corrupt, defocus_kernel
from labelgraph.data.formats import load_table
from labelgraph.evaluation.metrics import evaluate
from labelgraph.evaluation.robustness import CorruptedDataset, evaluate_models
from labelgraph.models import create_model

from .conftest import TINY_BACKBONE, TINY_SIZE


@pytest.fixture
def image() -> torch.Tensor:
    return torch.rand(
        3, 96, 128, generator=torch.Generator().manual_seed(0)
    )  # defocus radius 3 x 96 / 224 at severity 1


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_every_corruption_keeps_shape_and_range_and_is_seeded(name, image):
    out = corrupt(image, name, 3, seed=7)
    assert out.shape == image.shape and out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, corrupt(image, name, 3, seed=7))
    distances = [(corrupt(image, name, s, seed=7) - image).abs().mean().item() for s in (1, 3, 5)]
    assert distances[0] > 0 and distances == sorted(distances), distances  # stronger with severity


def test_contrast_and_noise_equal_their_formulas(image):
    mean = image.mean(dim=(1, 2), keepdim=True)
    assert torch.allclose(corrupt(image, "contrast", 2, 0), ((image - mean) * CONTRAST[1] + mean).clamp(0, 1))
    grey = torch.full((3, 200, 200), 0.5)
    noise = corrupt(grey, "gaussian_noise", 4, 0) - grey
    assert noise.std().item() == pytest.approx(NOISE_SIGMA[3], rel=0.05)


def test_brightness_adds_to_the_hsv_value(image):
    out = corrupt(image, "brightness", 2, 0)  # + 0.2 on V
    for y, x in [(0, 0), (10, 20), (95, 127)]:
        h, s, v = colorsys.rgb_to_hsv(*image[:, y, x].tolist())
        expected = colorsys.hsv_to_rgb(h, s, min(v + 0.2, 1.0))
        assert out[:, y, x].tolist() == pytest.approx(expected, abs=1e-6)
    black = corrupt(torch.zeros(3, 4, 4), "brightness", 5, 0)
    assert torch.allclose(black, torch.full((3, 4, 4), 0.5))  # V = 0 becomes grey c


def test_defocus_kernel_is_a_normalised_symmetric_disk():
    k = defocus_kernel(3.0, 0.1)
    assert k.shape == (7, 7) and k.sum().item() == pytest.approx(1.0)
    assert torch.allclose(k, k.T) and torch.allclose(k, k.flip(0))
    assert k[0, 0] < 1e-6 < k[3, 0]  # the corner is outside the disk, the edge midpoint inside
    flat = corrupt(torch.full((3, 20, 20), 0.3), "defocus_blur", 5, 0)
    assert torch.allclose(flat, torch.full_like(flat, 0.3), atol=1e-6)  # blurring a flat image changes nothing


def test_occlusion_covers_at_least_the_target_fraction(image):
    for severity in (1, 5):
        out = corrupt(image, "occlusion", severity, 3)
        covered = (out != image).any(dim=0).float().mean().item()
        assert OCCLUDED_FRACTION[severity - 1] <= covered < OCCLUDED_FRACTION[severity - 1] + 0.2


def test_jpeg_is_lossy_but_close(image):
    smooth = torch.linspace(0, 1, 64).expand(3, 48, 64).clone()
    out = corrupt(smooth, "jpeg_compression", 1, 0)
    assert 0 < (out - smooth).abs().mean() < 0.05


def test_bad_arguments_name_the_alternatives(image):
    with pytest.raises(ValueError, match="available: gaussian_noise"):
        corrupt(image, "fog", 1, 0)
    with pytest.raises(ValueError, match="severity"):
        corrupt(image, "contrast", 6, 0)


def test_evaluate_models_matches_direct_metrics_and_every_model_sees_the_same_images(tiny_dataset):
    table = load_table("csv", str(tiny_dataset / "test.csv"), class_names=None)
    torch.manual_seed(0)
    model = create_model("baseline", num_classes=table.num_classes, backbone=TINY_BACKBONE).eval()
    results = evaluate_models({"a": model, "b": model}, table, TINY_SIZE, ["contrast"], [1, 5], batch_size=5)
    with torch.no_grad():
        images = torch.stack([CorruptedDataset(table, TINY_SIZE)[i][0] for i in range(len(table))])
        scores = torch.sigmoid(model(images)).numpy()
    assert results["a"]["clean"]["mAP"] == pytest.approx(evaluate(scores, table.targets)["mAP"], abs=1e-6)
    assert results["a"]["corrupted"] == results["b"]["corrupted"]
    clean, per = results["a"]["clean"]["mAP"], results["a"]["corrupted"]["contrast"]
    expected = np.mean([100 * (clean - per[s]) / clean for s in ("1", "5")])
    assert results["a"]["mean_relative_drop"] == pytest.approx(expected)


def test_evaluate_command_writes_tables_and_json(tiny_dataset, tmp_path):
    classes = (tiny_dataset / "classes.txt").read_text().split()
    dirs = []
    for method in ("baseline", "add_gcn"):
        torch.manual_seed(0)
        model = create_model(method, num_classes=len(classes), backbone=TINY_BACKBONE).eval()
        dirs.append(str(save_model(model, tmp_path / method, class_names=classes, image_size=TINY_SIZE)))
    out, md = tmp_path / "r.json", tmp_path / "r.md"
    argv = ["evaluate", *dirs, "--data", str(tiny_dataset / "test.csv"), "--corruptions", "occlusion", "contrast",
            "--severities", "1,2", "--out", str(out), "--markdown", str(md)]  # fmt: skip
    assert cli_main(argv) == 0
    payload = json.loads(out.read_text())
    assert set(payload["models"]) == {"baseline", "add_gcn"}
    assert set(payload["models"]["add_gcn"]["corrupted"]) == {"occlusion", "contrast"}
    assert "mean relative drop" in md.read_text() and "| occlusion | clean | 1 | 2 |" in md.read_text()
    assert cli_main(["evaluate", dirs[0], "--split", str(tiny_dataset / "test.csv")]) == 0  # clean metrics only
    assert cli_main(["evaluate", dirs[0], "--split", str(tiny_dataset / "test.csv"), "--severities", "x"]) == 2


def test_evaluate_reports_the_ece_of_the_probabilities_predict_gives_and_draws_the_reliability(
    tiny_dataset, tmp_path, capsys
):
    from labelgraph.apis.export import update_config
    from labelgraph.evaluation.calibration import calibration_error

    classes = (tiny_dataset / "classes.txt").read_text().split()
    torch.manual_seed(0)
    model = create_model("baseline", num_classes=len(classes), backbone=TINY_BACKBONE).eval()
    folder = save_model(model, tmp_path / "m", class_names=classes, image_size=TINY_SIZE)
    update_config(folder, temperature=2.5)
    out, picture = tmp_path / "r.json", tmp_path / "reliability.png"
    argv = ["evaluate", str(folder), "--split", str(tiny_dataset / "test.csv"), "--classes",
            str(tiny_dataset / "classes.txt"), "--out", str(out), "--reliability", str(picture)]  # fmt: skip
    assert cli_main(argv) == 0
    assert "| ECE |" in capsys.readouterr().out
    table = load_table("csv", str(tiny_dataset / "test.csv"), class_names=classes)
    with torch.no_grad():
        images = torch.stack([CorruptedDataset(table, TINY_SIZE)[i][0] for i in range(len(table))])
        probs = torch.sigmoid(model(images) / 2.5).numpy()
    reported = json.loads(out.read_text())["models"]["baseline"]["clean"]
    assert reported["ECE"] == pytest.approx(calibration_error(probs, table.targets)["overall"], abs=1e-4)
    assert picture.stat().st_size > 5_000 and picture.read_bytes()[:4] == b"\x89PNG"
