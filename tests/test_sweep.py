"""``labelgraph sweep``: config merging, grids, resumable runs, one point per job, tables."""

from __future__ import annotations

import csv
import json

import pytest
import yaml

from labelgraph.cli import main as cli_main
from labelgraph.studies.sweep import Sweep, deep_merge, parse_assignment, set_dotted

from .conftest import TINY_BACKBONE, TINY_SIZE


def test_deep_merge_and_dotted_keys():
    base = {"model": {"method": "ml_gcn", "model_args": {"tau": 0.4, "p": 0.25}}, "trainer": {"callbacks": [1, 2]}}
    merged = deep_merge(base, {"model": {"model_args": {"tau": 0.1}}, "trainer": {"callbacks": [3]}})
    assert merged["model"]["model_args"] == {"tau": 0.1, "p": 0.25} and merged["trainer"]["callbacks"] == [3]
    assert base["model"]["model_args"]["tau"] == 0.4  # inputs untouched
    config = {"model": {"aux_losses": [{"init_args": {"weight": 1.0}}]}}
    set_dotted(config, "model.aux_losses.0.init_args.weight", 0.1)
    set_dotted(config, "data.feature_cache", "c")
    assert config["model"]["aux_losses"][0]["init_args"]["weight"] == 0.1 and config["data"] == {"feature_cache": "c"}
    with pytest.raises(KeyError, match="not an index"):
        set_dotted(config, "model.aux_losses.3.weight", 1)


def test_assignments_parse_yaml_values():
    assert parse_assignment("model.model_args.tau=0.1,0.25", many=True) == ("model.model_args.tau", [0.1, 0.25])
    assert parse_assignment("a=true,[1, 2],x", many=True) == ("a", [True, [1, 2], "x"])
    assert parse_assignment("data.batch_size=8", many=False) == ("data.batch_size", 8)
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("tau", many=True)


def test_grids_are_products_run_one_after_the_other(tmp_path):
    base = tmp_path / "base.yaml"
    base.write_text("model: {method: lglm}\n")
    sweep = Sweep([base], [{"a": [1, 2], "b": ["x", "y", "z"]}, {"c": [0.5]}])
    points = sweep.points()
    assert len(points) == 7 and points[0] == {"a": 1, "b": "x"} and points[5] == {"a": 2, "b": "z"}
    assert points[6] == {"c": 0.5}
    with pytest.raises(ValueError, match="needs a grid"):
        Sweep([base], [{}])
    with pytest.raises(ValueError, match="model.model_args.tau"):
        Sweep([base], [{"model.init_args.tau": [0.1]}])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Sweep([tmp_path / "missing.yaml"], [{"a": [1]}])


@pytest.fixture
def base_config(tiny_dataset, tmp_path) -> str:
    config = {
        "seed_everything": 0,
        "trainer": {"max_epochs": 1, "accelerator": "cpu", "logger": False, "enable_checkpointing": False,
                    "enable_progress_bar": False, "enable_model_summary": False},
        "model": {"method": "ml_gcn", "backbone": TINY_BACKBONE},
        "data": {"train": str(tiny_dataset / "train.csv"), "val": str(tiny_dataset / "val.csv"),
                 "test": str(tiny_dataset / "test.csv"), "classes": str(tiny_dataset / "classes.txt"),
                 "image_size": TINY_SIZE, "train_transform": "none", "batch_size": 16, "num_workers": 0,
                 "embeddings": "onehot", "feature_cache": str(tmp_path / "cache")},
    }  # fmt: skip
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def test_sweep_runs_every_point_resumes_and_writes_tables(base_config, tmp_path):
    out = tmp_path / "sw"
    argv = ["sweep", "--config", base_config, "--grid", "model.model_args.tau=0.1,0.4", "--grid",
            "model.model_args.p=0.25", "--out", str(out), "--name", "tau_p"]  # fmt: skip
    assert cli_main(argv) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert [r["model.model_args.tau"] for r in rows] == ["0.1", "0.4"] and all(float(r["mAP"]) > 0 for r in rows)
    markdown = (out / "results.md").read_text()
    assert "| tau \\ p | 0.25 |" in markdown and (out / "results.png").stat().st_size > 0
    point = yaml.safe_load((out / "point-001" / "sweep_config.yaml").read_text())
    assert point["model"]["model_args"] == {"tau": 0.4, "p": 0.25}
    first = (out / "point-000" / "result.json").stat().st_mtime_ns
    assert cli_main(argv) == 0  # done points are not run again
    assert (out / "point-000" / "result.json").stat().st_mtime_ns == first
    result = json.loads((out / "point-000" / "result.json").read_text())
    assert set(result) >= {"test", "val_mAP", "seconds"} and len(result["val_mAP"]) == 1


def test_one_point_per_job_then_collect(base_config, tmp_path, monkeypatch):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(yaml.safe_dump({"configs": [base_config], "set": {"model.method": "baseline"},
                                          "grid": {"model.model_args.pool": ["max", "avg"]}}))  # fmt: skip
    out = tmp_path / "sw"
    monkeypatch.setenv("LABELGRAPH_SWEEP_POINT", "1")
    assert cli_main(["sweep", str(sweep_file), "--out", str(out)]) == 0
    assert (out / "point-001" / "result.json").is_file() and not (out / "point-000").exists()
    monkeypatch.delenv("LABELGRAPH_SWEEP_POINT")
    assert cli_main(["sweep", str(sweep_file), "--out", str(out), "--collect"]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert rows[0]["mAP"] == "" and float(rows[1]["mAP"]) > 0  # the point not run yet is listed, empty


def test_a_failing_point_is_reported_and_the_sweep_goes_on(base_config, tmp_path):
    out = tmp_path / "sw"
    argv = ["sweep", "--config", base_config, "--grid", "model.model_args.tau=0.4,oops", "--out", str(out)]
    assert cli_main(argv) == 1
    assert (out / "point-000" / "result.json").is_file()
    assert "tau" in (out / "point-001" / "log.txt").read_text()


def test_in_process_points_equal_subprocess_points(base_config, tmp_path):
    argv = ["sweep", "--config", base_config, "--grid", "model.model_args.tau=0.3"]
    assert cli_main([*argv, "--out", str(tmp_path / "sub")]) == 0
    assert cli_main([*argv, "--out", str(tmp_path / "inproc"), "--in-process"]) == 0
    sub = json.loads((tmp_path / "sub" / "point-000" / "result.json").read_text())
    inproc = json.loads((tmp_path / "inproc" / "point-000" / "result.json").read_text())
    assert sub["test"] == inproc["test"] and sub["val_mAP"] == inproc["val_mAP"]


def test_seed_axis_is_averaged_in_the_tables(tmp_path):
    from labelgraph.studies.sweep_tables import markdown_tables, plot_sweep

    base = tmp_path / "base.yaml"
    base.write_text("model: {method: ml_gcn}\n")
    sweep = Sweep([base], [{"model.model_args.tau": [0.1, 0.4], "seed_everything": [0, 1]}])
    rows = [
        {"model.model_args.tau": tau, "seed_everything": seed, "mAP": m, "CF1": 1.0, "OF1": 2.0, "CF1_top3": 3.0,
         "seconds": 10.0}
        for (tau, seed), m in zip(((0.1, 0), (0.1, 1), (0.4, 0), (0.4, 1)), (60.0, 62.0, 70.0, None), strict=True)
    ]  # fmt: skip
    text = markdown_tables(sweep, rows)
    assert "## tau (mean ± std over 2 seeds)" in text
    assert "| 0.10 | 61.00 ± 1.00 | 1.00 ± 0.00 |" in text and "| 0.40 | 70.00 |" in text  # one seed has no result
    plot_sweep(sweep, rows, tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0
