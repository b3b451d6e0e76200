"""Guards a later change could break without any other test noticing: each test here was seen failing with its guard
broken the way a maintainer would break it (the break is named in the test's docstring)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

import labelgraph
from labelgraph import create_model
from labelgraph.apis.export import update_config
from labelgraph.data.formats import load_table, read_class_list
from labelgraph.data.hide_labels import LabelSetting, hide_labels
from labelgraph.data.label_table import LabelTable
from labelgraph.data.preflight import check_splits
from labelgraph.data.splitting import iterative_stratification
from labelgraph.errors import LabelgraphError
from labelgraph.files import write_text
from labelgraph.graph import LabelGraph, gcn_adjacency, ml_gcn_adjacency, normalize_adjacency

from .conftest import TINY_BACKBONE
from .test_hostile_input import png16
from .test_task import datamodule, task_for, trainer


def test_ml_gcn_like_graphs_count_cooccurrence_over_known_pairs_only():
    """Break: a GCN head built with ``ml_gcn_adjacency(cooccurrence, counts)``, which reads unknown pairs as absent."""
    full = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1], [0, 1, 0]], dtype=np.int8)
    partial = full.copy()
    partial[0, 1] = partial[1, 2] = -1  # P(b | a): 1/2 over known pairs, 1/3 read as absent: the 0.4 cut differs
    graph = LabelGraph.from_targets(partial, ["a", "b", "c"])
    graph.embeddings, graph.embedding_source = torch.randn(3, 8), "image:test"  # IML-GCN's kind of node features
    known = gcn_adjacency(graph, "cooccurrence", 0.4, 0.25, "official")
    as_absent = normalize_adjacency(ml_gcn_adjacency(graph.cooccurrence, graph.counts, 0.4, 0.25, "official"))
    assert not torch.allclose(known, as_absent)
    for method in ("ml_gcn", "iml_gcn", "db_dgcn"):
        model = create_model(method, num_classes=3, label_graph=graph, backbone=TINY_BACKBONE)
        adjacencies = [b for name, b in model.named_buffers() if name.endswith("adj")]
        assert adjacencies and any(torch.allclose(a, known) for a in adjacencies), method
        assert not any(torch.allclose(a, as_absent) for a in adjacencies), method


def test_an_80_20_split_puts_every_class_with_two_positives_on_both_sides():
    """Break: the two arguments of the fold choice swapped (the 50/50 test cannot tell)."""
    targets = np.zeros((100, 10), dtype=np.int8)
    rng = np.random.default_rng(0)
    for c in range(10):
        targets[rng.choice(100, 5, replace=False), c] = 1
    train, val = iterative_stratification(targets, [0.8, 0.2], seed=0)
    assert abs(len(val) - 20) <= 2
    assert (targets[val] == 1).sum(0).min() >= 1 and (targets[train] == 1).sum(0).min() >= 3


def test_predict_uses_the_stored_thresholds_by_default(tiny_model, tiny_dataset, tmp_path):
    """Break: ``predict`` falling back to 0.5 instead of the model's stored thresholds."""
    folder = Path(shutil.copytree(tiny_model, tmp_path / "m"))
    classes = labelgraph.load(folder).classes
    update_config(folder, thresholds=[0.0] + [1.0] * (len(classes) - 1))  # the first class always, the others never
    images = sorted((tiny_dataset / "images").rglob("*.png"))[:4]
    result = labelgraph.load(folder).predict(images)
    assert [p["labels"] for p in result["predictions"]] == [[classes[0]]] * 4


def test_calibration_fits_on_the_calibration_split_not_the_evaluation_one(tiny_model, tiny_dataset, tmp_path):
    """Break: calibration fitting its thresholds (or scaling) on the split it is evaluated on."""
    from labelgraph.apis.calibration import calibrate_model, split_logits
    from labelgraph.evaluation.posthoc import fit_posthoc
    from labelgraph.evaluation.thresholds import ThresholdRule

    folder = Path(shutil.copytree(tiny_model, tmp_path / "m"))
    classes = (tiny_dataset / "classes.txt").read_text().split()
    val = load_table("csv", str(tiny_dataset / "val.csv"), class_names=classes)
    test = load_table("csv", str(tiny_dataset / "test.csv"), class_names=classes)
    predictor = labelgraph.load(folder)
    report = calibrate_model(folder, val, test, predictor=predictor)
    expected = fit_posthoc(split_logits(predictor, val, 32, folder), val.targets, ThresholdRule(), "platt")
    assert list(report["thresholds"].values()) == pytest.approx(expected.thresholds.thresholds.tolist(), abs=1e-4)
    assert report["scaling"]["temperature"][0] == pytest.approx(expected.scaling.temperature[0], abs=1e-4)


def test_a_checkpoint_records_the_eval_transform_the_data_module_used(tiny_dataset, tmp_path):
    """Break: the checkpoint reading the data module's eval transform under another name (a ``getattr`` default then
    records a resize for a model validated with a centre crop)."""
    from labelgraph.models import load_trained_model

    L.seed_everything(0)
    dm = datamodule(tiny_dataset, eval_transform="center_crop")
    task = task_for(dm, method="baseline")
    t = trainer(tmp_path, epochs=1, max_steps=1, enable_checkpointing=False, limit_val_batches=1)
    t.fit(task, dm)
    t.save_checkpoint(tmp_path / "m.ckpt")
    _, config = load_trained_model(tmp_path / "m.ckpt")
    assert config.eval_transform == "center_crop"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_preflight_refuses_an_image_too_costly_to_decode(tmp_path):
    """Break: the pre-flight decode-cost refusal removed (the image would be found out mid-training)."""
    # 144 M pixels: under PIL's own bomb limit (179 M), but 1.07 GiB decoded, over the readers' 1 GiB
    png16(tmp_path / "big.png", 12000, 12000, channels=4)
    table = LabelTable(["big.png"], ["a"], np.array([[1]], dtype=np.int8), tmp_path, "train.csv")
    refused = "\n".join(check_splits({"train": table}).refused)
    assert "big.png" in refused and "refused, decoding it would take" in refused


def test_files_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    """Break: ``files.write_text`` writing straight to its target."""
    target = tmp_path / "metrics.json"
    write_text(target, "old")

    def failing_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        write_text(target, "new, and never complete")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["metrics.json"]  # no temporary left either


def test_single_positive_keeps_any_of_an_images_positives_not_the_first():
    """Break: hide-labels keeping always the first positive of each image."""
    table = LabelTable([f"{i}.png" for i in range(300)], ["a", "b", "c"], np.ones((300, 3), dtype=np.int8))
    kept = hide_labels(table, LabelSetting.parse("single-positive"), seed=0).targets
    assert (kept == 1).sum(1).tolist() == [1] * 300
    shares = (kept == 1).mean(0)
    assert shares.min() > 0.25  # each of the three about a third of the time


def test_a_class_list_splits_at_line_ends_only(tmp_path):
    """Break: the class list read with ``splitlines()``, which also splits at U+2028, U+0085, form feeds..."""
    path = tmp_path / "classes.txt"
    path.write_text("cat\ndog\u2028house\n", encoding="utf-8")
    with pytest.raises(LabelgraphError, match="line 2"):
        read_class_list(path)  # one name with a line separator inside: refused, not read as two classes
    path.write_text("cat\r\ndog\n\n", encoding="utf-8")
    assert read_class_list(path) == ["cat", "dog"]


def test_thresholds_outside_zero_one_are_refused_everywhere(tiny_model, tmp_path, capsys):
    """Break: a per-class threshold (or a command's) outside [0, 1] accepted."""
    from labelgraph.cli import main

    folder = Path(shutil.copytree(tiny_model, tmp_path / "m"))
    classes = labelgraph.load(folder).classes
    with pytest.raises(LabelgraphError, match="thresholds"):
        update_config(folder, thresholds=[1.5] + [0.5] * (len(classes) - 1))
    assert main(["predict", str(folder), "x.png", "--threshold", "1.5"]) == 2
    assert "a probability in [0, 1]" in capsys.readouterr().err


@pytest.mark.parametrize("loss", ["splc", "ll_r"])
def test_the_task_tells_an_incomplete_label_loss_the_epoch(tiny_dataset, tmp_path, loss):
    """Break: ``on_train_epoch_start`` no longer calls ``set_epoch`` (or passes 0): SPLC never starts correcting and
    LL never starts rejecting, and every unit test of the losses, which set the epoch themselves, still passes."""
    L.seed_everything(0)
    dm = datamodule(tiny_dataset)
    task = task_for(dm, method="baseline", loss=loss)
    seen: list[int] = []
    forward = task.criterion.forward
    task.criterion.forward = lambda *args: seen.append(task.criterion.epoch) or forward(*args)
    trainer(tmp_path, epochs=3, limit_train_batches=1, limit_val_batches=0, enable_checkpointing=False).fit(task, dm)
    assert seen == [0, 1, 2]
