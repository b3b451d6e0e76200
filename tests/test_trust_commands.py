"""How far to trust a tag and a label, end to end: ``labelgraph calibrate`` (temperature, thresholds, the recall rule)
stored and applied by predict, serve and ONNX; ``labelgraph audit`` and ``data add-noise``; ``labelgraph train``'s
checks of its own choices (the best stage-1 epoch, early stopping after the warm-up, the better of raw and EMA
weights, the loss check) and its report."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch
from lightning.pytorch.demos.boring_classes import BoringModel

import labelgraph
from labelgraph.cli import main as cli_main
from labelgraph.data.formats import load_table
from labelgraph.engine.callbacks import EarlyStoppingAfterWarmup, LatestBestCheckpoint

from .conftest import TINY_SIZE
from .test_task import datamodule, task_for, trainer


def calibrated_copy(tiny_model: Path, tiny_dataset: Path, out: Path, *extra: str) -> Path:
    import shutil

    folder = Path(shutil.copytree(tiny_model, out))
    args = ["calibrate", str(folder), "--split", str(tiny_dataset / "val.csv"), "--classes",
            str(tiny_dataset / "classes.txt"), "--eval-split", str(tiny_dataset / "test.csv"), *extra]  # fmt: skip
    assert cli_main(args) == 0
    return folder


def test_calibrate_stores_temperature_thresholds_and_recall_rule_that_predict_applies(
    tiny_model, tiny_dataset, tmp_path, capsys
):
    folder = calibrated_copy(tiny_model, tiny_dataset, tmp_path / "m", "--recall", "0.8", "--json",
                             str(tmp_path / "report.json"))  # fmt: skip
    printed = capsys.readouterr().out
    assert "the test split" not in printed and "held out (not used to calibrate)" in printed
    assert "cross-fitted" in printed and "ECE" in printed and "recall rule: p >=" in printed
    config = json.loads((folder / "config.json").read_text())
    report = json.loads((tmp_path / "report.json").read_text())
    assert isinstance(config["temperature"], float) and isinstance(config["logit_bias"], float)
    assert (config["temperature"], config["logit_bias"]) != (1.0, 0.0)  # Platt scaling, fitted
    assert config["recall_rule"]["recall"] == 0.8 and config["calibration"]["out_of_sample"]["where"].startswith(
        str(tiny_dataset / "test.csv")
    )
    assert config["calibration"]["positives"] == [s["positives"] for s in report["support"].values()]
    assert report["in_sample"]["where"].startswith("the calibration split itself: in-sample")
    # predict scales the logits as fitted and applies the recall rule's threshold to every class
    predictor = labelgraph.load(folder)
    x = torch.rand(2, 3, TINY_SIZE, TINY_SIZE)
    scaled = predictor.logits(x) / config["temperature"] + config["logit_bias"]
    assert np.allclose(predictor.scores(x), 1 / (1 + np.exp(-scaled)), atol=1e-6)
    assert np.allclose(predictor.resolve_thresholds("recall"), config["recall_rule"]["threshold"])
    images = [str(p) for p in sorted((tiny_dataset / "images").rglob("*.png"))[:3]]
    out = tmp_path / "tags.csv"
    assert cli_main(["predict", str(folder), *images, "--threshold", "recall", "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    for row in rows:
        expected = [c for c in predictor.classes if float(row[c]) >= config["recall_rule"]["threshold"]]
        assert set(row["labels"].split("|")) - {""} == set(expected)


def test_recall_threshold_and_a_bad_threshold_are_refused_where_they_cannot_apply(tiny_model, capsys):
    with pytest.raises(labelgraph.errors.InvalidInputError, match="no recall rule"):
        labelgraph.load(tiny_model).resolve_thresholds("recall")
    assert cli_main(["predict", str(tiny_model), "x.png", "--threshold", "high"]) == 2
    assert "a probability in [0, 1], 'calibrated' or 'recall'" in capsys.readouterr().err


def test_per_class_temperature_and_precision_target(tiny_model, tiny_dataset, tmp_path, capsys):
    folder = calibrated_copy(tiny_model, tiny_dataset, tmp_path / "m", "--scaling", "temperature-per-class",
                             "--target", "precision:0.8", "--prior-positives", "0")  # fmt: skip
    config = json.loads((folder / "config.json").read_text())
    # 16 validation images: no class has 10 known positives and negatives, so each takes the one global temperature
    assert isinstance(config["temperature"], float) and config["calibration"]["scaling"] == "temperature_per_class"
    assert config["logit_bias"] == 0.0  # temperature scaling: no bias
    assert config["calibration"]["rule_settings"] == {"objective": "precision", "level": 0.8, "prior_positives": 0}
    assert config["recall_rule"] is None
    assert cli_main(["calibrate", str(folder), "--split", "v.csv", "--target", "precision"]) == 2
    assert "precision:LEVEL" in capsys.readouterr().err


def test_onnx_graph_scales_the_logits_as_predict_does(tiny_model, tiny_dataset, tmp_path):
    pytest.importorskip("onnxruntime")
    import onnxruntime as ort

    from labelgraph.apis.export import update_config

    folder = calibrated_copy(tiny_model, tiny_dataset, tmp_path / "m")
    classes = len(labelgraph.load(folder).classes)
    update_config(folder, temperature=np.linspace(0.5, 3.0, classes).tolist(),
                  logit_bias=np.linspace(-1.0, 1.0, classes).tolist())  # one per class  # fmt: skip
    assert cli_main(["export", str(folder), "--out", str(tmp_path / "exported"), "--onnx"]) == 0
    session = ort.InferenceSession(str(tmp_path / "exported" / "model.onnx"), providers=["CPUExecutionProvider"])
    x = torch.rand(3, 3, TINY_SIZE, TINY_SIZE)
    onnx_probs = 1 / (1 + np.exp(-session.run(None, {"images": x.numpy()})[0]))
    assert np.allclose(onnx_probs, labelgraph.load(folder).scores(x), atol=1e-5)  # what predict gives


def test_add_noise_and_audit_with_a_model_trained_elsewhere(tiny_model, tiny_dataset, tmp_path, capsys):
    noisy = tmp_path / "noisy.csv"
    args = ["data", "add-noise", str(tiny_dataset / "train.csv"), "--classes", str(tiny_dataset / "classes.txt"),
            "--drop", "0.2", "--add", "0.1", "--out", str(noisy)]  # fmt: skip
    assert cli_main(args) == 0
    record = json.loads(noisy.with_name("noisy.noise.json").read_text())
    clean = load_table(
        "csv", str(tiny_dataset / "train.csv"), class_names=(tiny_dataset / "classes.txt").read_text().split()
    )
    table = load_table("csv", str(noisy), class_names=clean.class_names)
    changed = np.argwhere(table.targets != clean.targets)
    assert len(changed) == len(record["changed"]) > 0
    assert {e["kind"] for e in record["changed"]} == {"missing", "spurious"}
    out = tmp_path / "audit"
    assert cli_main(["audit", str(noisy), "--classes", str(tiny_dataset / "classes.txt"), "--model", str(tiny_model),
                     "--out", str(out)]) == 0  # fmt: skip
    rows = list(csv.DictReader((out / "audit.csv").open()))
    assert rows and float(rows[0]["score"]) >= float(rows[-1]["score"])  # most suspect first
    assert {r["kind"] for r in rows} == {"missing", "spurious"}
    assert all(r["given"] == ("1" if r["kind"] == "spurious" else "0") for r in rows)
    summary = json.loads((out / "audit.json").read_text())
    assert summary["entries_audited"] == int((table.targets >= 0).sum())
    page = (out / "audit.html").read_text()
    assert page.count("class='card'") == min(60, len(rows)) and "data:image/png;base64" in page
    # the suspects for review in the labelling tools: each image's labels with its suspect entries flipped
    suspect = {}
    for r in rows:
        if float(r["score"]) >= 0.5:
            suspect.setdefault(r["image"], set()).add(r["label"])
    tasks = json.loads((out / "review.label-studio.json").read_text())
    assert summary["review"]["images"] == len(tasks) == len(suspect)
    assert len(ET.parse(out / "review.cvat.xml").getroot().findall("image")) == len(tasks)


def test_audit_review_files_flip_the_suspect_labels(tiny_dataset, tmp_path):
    """The review files: one task per image with an entry scored >= 0.5, the most suspect first, its labels the given
    ones with those entries flipped; read back (accepted as they are) they give the corrected table."""
    from labelgraph.studies.audit import write_review

    table = load_table("csv", str(tiny_dataset / "train.csv")).subset([0, 1, 2])
    classes = table.class_names
    probs = np.full(table.targets.shape, 0.5)
    given0 = classes[int(np.flatnonzero(table.targets[0] == 1)[0])]
    absent2 = classes[int(np.flatnonzero(table.targets[2] == 0)[0])]
    entries = [
        {"image": str(table.path(2)), "label": absent2, "given": 0, "suspicion": 0.9, "probability": 0.97},
        {"image": str(table.path(0)), "label": given0, "given": 1, "suspicion": 0.7, "probability": 0.02},
        {"image": str(table.path(1)), "label": classes[0], "given": 0, "suspicion": 0.3, "probability": 0.6},
    ]
    review = write_review(table, probs, entries, tmp_path)
    assert review == {"images": 2, "written": True, "image_root": str(table.root)}
    tasks = json.loads((tmp_path / "review.label-studio.json").read_text())
    assert [t["predictions"][0]["score"] for t in tasks] == [pytest.approx(0.1), pytest.approx(0.3)]
    assert "not tagged, model 0.97 (score 0.90)" in tasks[0]["data"]["suspects"]
    accepted = [{"id": k + 1, "data": t["data"], "annotations": [{"result": t["predictions"][0]["result"]}]}
                for k, t in enumerate(tasks)]  # fmt: skip
    (tmp_path / "export.json").write_text(json.dumps(accepted))
    back = load_table("label-studio", str(tmp_path / "export.json"), root=table.root, class_names=classes)
    expected = (table.targets[[2, 0]] == 1).astype(np.int8)
    expected[0, classes.index(absent2)], expected[1, classes.index(given0)] = 1, 0
    assert [back.path(i) for i in range(2)] == [table.path(2), table.path(0)]
    assert np.array_equal(back.targets, expected)
    cvat = load_table("cvat", str(tmp_path / "review.cvat.xml"), root=table.root)
    assert np.array_equal(cvat.targets, expected)


def test_early_stopping_waits_for_the_warm_up(tmp_path):
    class Worsening(BoringModel):
        def on_validation_epoch_end(self) -> None:
            self.log("val/mAP", -float(self.current_epoch))  # best at epoch 0, worse every epoch after

    def run(start_epoch: int) -> int:
        stop = EarlyStoppingAfterWarmup("val/mAP", patience=1, mode="max", start_epoch=start_epoch)
        t = L.Trainer(max_epochs=10, callbacks=[stop], logger=False, enable_checkpointing=False,
                      enable_progress_bar=False, enable_model_summary=False, limit_train_batches=2,
                      limit_val_batches=1)  # fmt: skip
        t.fit(Worsening())
        return t.current_epoch

    assert run(0) <= 2  # plain early stopping: over after the patience
    assert run(4) >= 5  # not before the warm-up is over, and the warm-up's epochs don't set the best


def test_the_best_checkpoint_is_the_latest_of_equally_good_epochs(tmp_path):
    class Flat(BoringModel):  # a tiny validation split: the same mAP from the first epoch to the last
        def on_validation_epoch_end(self) -> None:
            self.log("val/mAP", 56.67 if self.current_epoch < 4 else 50.0)

    best = LatestBestCheckpoint(dirpath=tmp_path, filename="best", monitor="val/mAP", mode="max", save_top_k=1,
                                enable_version_counter=False)  # fmt: skip
    t = L.Trainer(max_epochs=6, callbacks=[best], logger=False, enable_progress_bar=False, enable_model_summary=False,
                  limit_train_batches=2, limit_val_batches=1)  # fmt: skip
    t.fit(Flat())
    assert torch.load(best.best_model_path, weights_only=True)["epoch"] == 3  # the last of the four flat epochs


def test_with_an_ema_the_better_of_raw_and_ema_is_monitored(tiny_dataset, tmp_path):
    L.seed_everything(0)
    dm = datamodule(tiny_dataset)
    task = task_for(dm, method="baseline", ema_decay=0.9999)  # the EMA stays near the untrained weights
    t = trainer(tmp_path, epochs=2, enable_checkpointing=False)
    t.fit(task, dm)
    raw, ema, best = (float(t.callback_metrics[f"{k}/mAP"]) for k in ("val", "val_ema", "val_best"))
    assert raw > ema + 1  # here the raw weights are better: monitoring the EMA alone would pick the wrong ones
    assert best == pytest.approx(raw)


def test_the_loss_check_keeps_the_better_head_and_reports_a_collapse(monkeypatch, tiny_dataset, capsys):
    from labelgraph.studies import loss_check

    assert loss_check.plain_alternative("single-positive", "splc") == "an"
    assert loss_check.plain_alternative("partial:0.5", "ignore") is None
    collapsing = [{"epoch": 0, "train/loss_epoch": 0.3}, {"epoch": 1, "train/loss_epoch": 0.0}]
    assert loss_check.collapse_epoch(collapsing) == 2 and loss_check.collapse_epoch(collapsing[:1]) is None
    found = {"splc": 35.8, "an": 68.9}
    monkeypatch.setattr(loss_check, "validation_map", lambda folder, table: (found[folder.name], False))
    val = load_table("csv", str(tiny_dataset / "val.csv"))
    chosen = loss_check.choose_loss({"splc": (Path("splc"), collapsing), "an": (Path("an"), [])}, val)
    assert chosen["chosen"] == "an" and chosen["folder"] == Path("an") and chosen["collapsed"] == {"splc": 2}
    printed = capsys.readouterr().out
    assert "the splc loss reached 0 at stage-1 epoch 2" in printed and "splc 35.80, an 68.90 -> an goes on" in printed
    found["an"] = 35.8  # a tie keeps the recommended one
    assert loss_check.choose_loss({"splc": (Path("splc"), []), "an": (Path("an"), [])}, val)["chosen"] == "splc"


def test_the_validation_map_counts_unknown_as_absent_only_where_nothing_is_known_absent(tiny_model, tiny_dataset):
    from labelgraph.studies.loss_check import validation_map

    val = load_table(
        "csv", str(tiny_dataset / "val.csv"), class_names=(tiny_dataset / "classes.txt").read_text().split()
    )
    full, unknown_as_absent = validation_map(tiny_model, val)
    assert not unknown_as_absent
    positives_only = val.subset(np.arange(len(val)))
    positives_only.targets[positives_only.targets == 0] = -1
    mapped, unknown_as_absent = validation_map(tiny_model, positives_only)
    assert unknown_as_absent and mapped == pytest.approx(full)


@pytest.mark.slow
def test_train_keeps_stage_ones_best_epoch_and_reports_how_far_to_trust_it(tmp_path, capsys, monkeypatch):
    assert cli_main(["data", "demo", "--out", str(tmp_path / "d"), "--data", "shapes", "--images", "80"]) == 0
    d = tmp_path / "d"
    out = tmp_path / "run"
    monkeypatch.chdir(tmp_path)  # a relative --out, as the default runs/trainN is
    args = ["train", str(d / "train.csv"), "--val", str(d / "val.csv"), "--classes", str(d / "classes.txt"),
            "--weights", "none", "--backbone", "resnet10t", "--image-size", "48", "--epochs", "2", "--out", "run",
            "--method", "baseline", "--recall", "0.8"]  # fmt: skip
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert "cross-fitted" in printed and "ECE" in printed and "recall rule" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["calibration"]["out_of_sample"]["where"].startswith("the validation split, 5-fold cross-fitted")
    assert metrics["label_audit"]["entries"] and metrics["calibration"]["in_sample"]["where"].startswith("the calib")
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["recall_rule"]["recall"] == 0.8 and config["calibration"]["scaling"] == "platt"
    assert (config["image_size"], config["eval_transform"]) == (48, "resize")  # the input it was trained at
    page = (out / "report.html").read_text()
    assert "How far to trust this model" in page and "Labels to double-check" in page and "stage 2" in page
    assert page.count("<div class='ex'>") == 6  # the examples, found from the run folder whatever --out was
    card = (out / "model" / "README.md").read_text()  # a model card in the model folder train writes
    assert "calibrated" in card and "## Metrics (percent)" in card
    # stage 2 started from stage 1's best validation epoch, not its last
    results = json.loads((out / "results.json").read_text())
    head_epochs = results["methods"]["baseline"]["recipe"]["plan"]["head_epochs"]
    stage1 = [h["val/mAP"] for h in results["history"]["baseline"] if h["epoch"] < head_epochs]
    from labelgraph.studies.loss_check import validation_map

    val = load_table("csv", str(d / "val.csv"), class_names=(d / "classes.txt").read_text().split())
    exported, _ = validation_map(out / "stage1", val)
    assert max(stage1) > stage1[-1] + 0.1  # this run's best head epoch is not its last, so the test can tell
    assert exported == pytest.approx(max(stage1), abs=0.02)


@pytest.mark.slow
def test_audit_scores_every_image_with_a_model_that_never_saw_it(tmp_path, capsys):
    assert cli_main(["data", "demo", "--out", str(tmp_path / "d"), "--data", "shapes", "--images", "60"]) == 0
    d = tmp_path / "d"
    out = tmp_path / "audit"
    args = ["audit", str(d / "train.csv"), "--classes", str(d / "classes.txt"), "--weights", "none", "--backbone",
            "resnet10t", "--image-size", "48", "--protocol", "head", "--folds", "3", "--out", str(out)]  # fmt: skip
    assert cli_main(args) == 0
    assert "entries audited" in capsys.readouterr().out
    everything = {row.split(",")[0] for row in (d / "train.csv").read_text().splitlines()[1:]}
    everything = {str((d / image).resolve()) for image in everything}
    held_out = []
    for fold in sorted((out / "folds").iterdir()):
        seen = set()
        for split in ("train", "val"):
            seen |= {row.split(",")[0] for row in (fold / "splits" / f"{split}.csv").read_text().splitlines()[1:]}
        held_out.append(everything - seen)  # what this fold's model scored: the images it never trained on
    assert len(held_out) == 3 and all(held_out)
    assert sum(map(len, held_out)) == len(everything) and set().union(*held_out) == everything  # a partition
    assert len(list(csv.DictReader((out / "audit.csv").open()))) > 0
