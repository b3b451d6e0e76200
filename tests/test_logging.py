"""Logs people look at: the recipes write TensorBoard (scalars, per-class AP and precision-recall figures) with a CSV
beside it; a sweep moves every logger and checkpoint folder into its point's folder."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from labelgraph.cli import main as cli_main
from labelgraph.studies.sweep import relocate_outputs

from .test_cli import cli_args

ROOT = Path(__file__).resolve().parents[1]


def read_events(folder: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (event_file,) = folder.rglob("events.out.tfevents.*")
    events = EventAccumulator(str(event_file), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    return events


def test_fit_writes_tensorboard_scalars_and_figures_with_csv_beside(tiny_dataset, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard", reason="the labelgraph[tensorboard] extra is not installed")
    monkeypatch.chdir(tmp_path)  # the demo config logs to runs/demo
    monkeypatch.setattr("sys.argv", ["labelgraph"])
    cli_main(["fit", *cli_args(tiny_dataset, 2), "--model.method", "ml_gcn", "--data.embeddings", "onehot"])
    events = read_events(tmp_path / "runs" / "demo" / "tensorboard")
    tags = events.Tags()
    assert {"val/mAP", "val/CF1", "val/OF1", "train/loss_epoch"} <= set(tags["scalars"])
    steps = [e.step for e in events.Scalars("val/mAP")]
    assert len(steps) == 2  # one per epoch
    assert {"val/per_class_AP", "val/pr_curves"} <= set(tags["images"])
    for tag in ("val/per_class_AP", "val/pr_curves"):
        images = events.Images(tag)
        assert [i.step for i in images] == steps  # beside the epoch's scalars on TensorBoard's step axis
        assert images[-1].width > 300 and images[-1].encoded_image_string.startswith(b"\x89PNG")
    (csv,) = (tmp_path / "runs" / "demo" / "lightning_logs").rglob("metrics.csv")
    assert "val/mAP" in csv.read_text().splitlines()[0]


@pytest.mark.parametrize("recipe", sorted((ROOT / "configs").glob("*_*-*.yaml")), ids=lambda p: p.stem)
def test_every_recipe_logs_to_tensorboard_and_csv_with_figures(recipe):
    trainer = yaml.safe_load(recipe.read_text())["trainer"]
    loggers = [entry["class_path"].rsplit(".", 1)[1] for entry in trainer["logger"]]
    assert loggers == ["TensorBoardLogger", "CSVLogger"]
    callbacks = [entry["class_path"] for entry in trainer["callbacks"]]
    assert "labelgraph.engine.callbacks.ValidationFigures" in callbacks


def test_sweep_points_log_into_their_own_folder(tmp_path):
    config = yaml.safe_load((ROOT / "configs" / "ml_gcn_resnet101_voc2007-448.yaml").read_text())
    moved = relocate_outputs(config, tmp_path / "point-003")
    assert {entry["init_args"]["save_dir"] for entry in moved["trainer"]["logger"]} == {str(tmp_path / "point-003")}
    checkpoint = next(e for e in moved["trainer"]["callbacks"] if e["class_path"].endswith("ModelCheckpoint"))
    assert checkpoint["init_args"]["dirpath"] == str(tmp_path / "point-003" / "checkpoints")
