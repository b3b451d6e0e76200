"""The command line: LightningCLI with the shipped demo config (fit, resume, test), models, data, demo."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from labelgraph.cli import main
from labelgraph.models import list_models
from labelgraph.studies.demo import run_demo

from .conftest import TINY_BACKBONE, TINY_SIZE

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
TINY_DEMO = {
    "epochs": 1,
    "data": "shapes",
    "image_size": TINY_SIZE,
    "backbone": TINY_BACKBONE,
    "progress": False,
    "pretrain_images": 32,
}


def cli_args(data: Path, epochs: int) -> list[str]:
    return [
        "--config",
        str(DEMO_CONFIG),
        "--data.train",
        str(data / "train.csv"),
        "--data.val",
        str(data / "val.csv"),
        "--data.test",
        str(data / "test.csv"),
        "--data.classes",
        str(data / "classes.txt"),
        "--data.image_size",
        str(TINY_SIZE),
        "--data.num_workers",
        "0",
        "--model.backbone",
        TINY_BACKBONE,
        "--trainer.max_epochs",
        str(epochs),
        "--trainer.enable_progress_bar",
        "false",
        "--trainer.enable_model_summary",
        "false",
    ]


@pytest.mark.slow
def test_fit_resume_and_test_with_the_demo_config(tiny_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the config writes runs/demo relative to the working directory
    monkeypatch.setattr("sys.argv", ["labelgraph"])
    main(["fit", *cli_args(tiny_dataset, 1)])
    last = tmp_path / "runs" / "demo" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == 2  # 48 train images / batch 32: 2 steps per epoch
    main(["fit", *cli_args(tiny_dataset, 2), "--ckpt_path", "last"])  # resumes: one more epoch, not two
    state = torch.load(last, weights_only=True)
    assert state["global_step"] == 4
    assert state["loops"]["fit_loop"]["epoch_progress"]["total"]["completed"] == 2
    main(["test", *cli_args(tiny_dataset, 2), "--ckpt_path", str(last)])


def test_models_lists_registered_methods_and_their_recipes(capsys):
    assert main(["models"]) == 0
    assert "baseline" in capsys.readouterr().out.split()
    assert main(["models", "--recipes"]) == 0
    rows = {line.split(" | ")[0].strip("| `"): line for line in capsys.readouterr().out.splitlines()[2:]}
    assert set(rows) == set(list_models())
    assert "AdamW(lr 0.0001, weight_decay 0.01)" in rows["query2label"] and "center_crop" in rows["ssgrl"]


def test_help_lists_commands(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "demo" in out and "fit" in out


def test_data_demo_writes_the_csv_dataset(tmp_path, capsys):
    main(["data", "demo", "--out", str(tmp_path / "d"), "--data", "shapes", "--images", "8"])
    assert (tmp_path / "d" / "train.csv").read_text().startswith("image,labels")
    assert len(list((tmp_path / "d" / "images" / "train").glob("*.png"))) == 8


@pytest.mark.slow
def test_demo_writes_results_report_and_models(tmp_path):
    results = run_demo(
        out=tmp_path,
        methods=["baseline"],
        train_images=32,
        batch_size=16,
        **TINY_DEMO,
    )
    on_disk = json.loads((tmp_path / "results.json").read_text())
    assert on_disk["methods"].keys() == results["methods"].keys() == {"baseline"}
    row = on_disk["methods"]["baseline"]
    for key in ("mAP", "CF1", "OF1", "CF1_top3", "params", "seconds"):
        assert isinstance(row[key], (int, float)), key
    assert on_disk["dataset"]["kind"] == "shapes" and on_disk["dataset"]["sizes"]["train"] == 32
    assert (tmp_path / "baseline" / "model" / "model.safetensors").is_file()
    assert (tmp_path / "report.md").is_file() and (tmp_path / "per_class_ap.png").is_file()
    assert (tmp_path / "curves.png").is_file()
    report = (tmp_path / "report.md").read_text()
    classes = " | ".join(name[:10] for name in on_disk["dataset"]["classes"])
    assert f"| method | {classes} | mAP |" in report  # the per-class AP table of the VOC seeds
    cells = ["—" if v != v else f"{v:.1f}" for v in results["per_class_AP"]["baseline"]]  # NaN: no positives
    assert f"| baseline | {' | '.join(cells)} |" in report


@pytest.mark.slow
def test_demo_trains_the_graph_methods(tmp_path):
    methods = [
        "ml_gcn",
        "ggnn",
        "iml_gcn",
        "a_gcn",
        "lglm",
    ]  # iml_gcn's image embeddings need the baseline: trained, not reported
    results = run_demo(out=tmp_path, methods=methods, train_images=24, batch_size=8, **TINY_DEMO)
    assert list(results["methods"]) == methods
    for method in methods:
        assert (tmp_path / method / "model" / "model.safetensors").is_file()
    from labelgraph.models import load_model

    _, config = load_model(tmp_path / "iml_gcn" / "model")
    assert config.method == "iml_gcn"


def test_demo_rejects_unknown_methods(tmp_path):
    with pytest.raises(ValueError, match="available"):
        run_demo(out=tmp_path, methods=["nope"], epochs=1, data="shapes", train_images=8)


def test_demo_methods_option_names_the_tour_all_or_a_list():
    from labelgraph.cli.demo import demo_methods
    from labelgraph.studies.demo import QUICK_TOUR

    assert demo_methods("tour") == QUICK_TOUR.methods == ["baseline", "ml_gcn", "add_gcn", "query2label"]
    assert demo_methods("all") is None  # run_demo: every registered method
    assert demo_methods("ml_gcn,ggnn") == ["ml_gcn", "ggnn"]


def test_demo_is_deterministic(tmp_path):
    kw = dict(methods=["baseline"], train_images=16, batch_size=8, **TINY_DEMO)
    a = run_demo(out=tmp_path / "a", **kw)["methods"]["baseline"]
    b = run_demo(out=tmp_path / "b", **kw)["methods"]["baseline"]
    assert a["mAP"] == b["mAP"] and a["OF1"] == b["OF1"]


class TestUserErrors:
    """A user's mistake reads as one line on stderr with exit status 2; --debug adds the traceback; a bug keeps it."""

    @pytest.fixture
    def files(self, tmp_path):
        (tmp_path / "bad.csv").write_text("path,cat,dog\na.png,1\n")  # no image/labels columns
        (tmp_path / "ok.csv").write_text("image,labels\na.png,cat\n")
        (tmp_path / "notamodel").mkdir()
        (tmp_path / "bad.ckpt").write_bytes(b"not a checkpoint")
        return tmp_path

    CASES = {
        "malformed CSV": (["data", "stats", "--split", "bad.csv"], "bad.csv: line 1: header"),
        "missing class list": (["data", "stats", "--split", "ok.csv", "--classes", "nope.txt"], "'nope.txt' does not"),
        "not a model folder": (["predict", "notamodel", "x.jpg"], "notamodel: not an exported labelgraph model"),
        "refused checkpoint": (["export", "bad.ckpt", "--out", "m"], "bad.ckpt: cannot load this checkpoint"),
        "bad argument": (["data", "stats", "--split", "ok.csv", "--option", "foo"], "--option 'foo': expected KEY="),
        "malformed CSV under fit": (
            ["fit", "--data.train", "bad.csv", "--trainer.max_epochs", "1", "--trainer.logger", "false"],
            "bad.csv: line 1: header",
        ),
    }

    @pytest.mark.parametrize("case", list(CASES))
    def test_one_line_and_status_2(self, files, case):
        import subprocess
        import sys

        argv, message = self.CASES[case]
        result = subprocess.run(
            [sys.executable, "-m", "labelgraph.cli", *argv], cwd=files, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 2, result.stderr
        errors = [line for line in result.stderr.splitlines() if line.startswith("labelgraph: error: ")]
        assert len(errors) == 1 and message in errors[0], result.stderr
        assert "Traceback" not in result.stderr

    def test_debug_shows_the_traceback(self, files, monkeypatch):
        monkeypatch.chdir(files)
        from labelgraph.data import AnnotationError

        with pytest.raises(AnnotationError, match="line 1: header"):
            main(["data", "stats", "--split", "bad.csv", "--debug"])
        monkeypatch.setenv("LABELGRAPH_DEBUG", "1")
        with pytest.raises(AnnotationError):
            main(["data", "stats", "--split", "bad.csv"])

    def test_a_bug_keeps_its_traceback(self, monkeypatch):

        def broken(argv):
            raise KeyError("a bug")

        monkeypatch.setattr("labelgraph.cli.models.run", broken)
        with pytest.raises(KeyError):
            main(["models"])


def test_every_listed_command_answers_its_own_help(capsys):
    """``labelgraph --help`` lists each command once, and ``labelgraph CMD --help`` is answered by CMD's parser."""
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out
    listed = re.findall(r"^  (\w+)  ", listing, flags=re.M)
    assert len(listed) == len(set(listed)) >= 17 and "predict" in listed and "fit" in listed
    for name in listed:
        with pytest.raises(SystemExit) as exit_:
            main([name, "--help"])
        assert exit_.value.code == 0, name
        usage = capsys.readouterr().out.splitlines()[0]
        assert re.match(rf"usage: labelgraph (\[options\] )?{name}\b", usage), (name, usage)
    assert main(["nonexistent"]) == 2 and "unknown command 'nonexistent'" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["train", "x.csv", "--image-size", "-3"], "argument --image-size: must be an integer >= 1, not '-3'"),
        (["train", "x.csv", "--image-size", "0"], "argument --image-size: must be an integer >= 1, not '0'"),
        (["train", "x.csv", "--epochs", "-1"], "argument --epochs: must be an integer >= 1"),
        (["train", "x.csv", "--recall", "nan"], "argument --recall: must be a number from 0 to 1"),
        (["train", "x.csv", "--format", "coco"], "argument --format: invalid choice: 'coco'"),
        (["compare", "x.csv", "--seeds", "0"], "argument --seeds: must be an integer >= 1"),
        (["evaluate", "m", "--split", "x.csv", "--format", "nope"], "argument --format: invalid choice"),
        (["predict", "m", "x.jpg", "--top-k", "0"], "argument --top-k: must be an integer >= 1"),
        (["serve", "m", "--port", "70000"], "argument --port: must be a port from 0 to 65535"),
        (["serve", "m", "--decode-timeout", "0"], "argument --decode-timeout: must be a number > 0"),
        (["data", "hide-labels", "x.csv", "--keep", "1.5"], "argument --keep: must be a number from 0 to 1"),
        (["demo", "--image-size", "-3"], "argument --image-size: must be an integer >= 1"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2_before_any_work(argv, says, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and says in captured.err, captured
    assert list(tmp_path.iterdir()) == []  # nothing written: no run folder to block the retry


def test_an_unknown_method_is_refused_before_the_images_are_read(tiny_dataset, tmp_path, monkeypatch, capsys):
    import labelgraph.cli.own_data as own_data

    def no_reading(args):
        raise AssertionError("the splits were read before --method was checked")

    monkeypatch.setattr(own_data, "read_splits", no_reading)
    monkeypatch.chdir(tmp_path)
    assert main(["train", str(tiny_dataset / "train.csv"), "--method", "nonsense"]) == 2
    assert main(["compare", str(tiny_dataset / "train.csv"), "--methods", "ml_gcn,nonsense"]) == 2
    assert capsys.readouterr().err.count("not registered") == 2


def test_the_format_names_the_parser_offers_are_the_readers():
    from labelgraph.cli._common import FORMAT_NAMES
    from labelgraph.data.formats import FORMATS

    assert set(FORMAT_NAMES) == set(FORMATS)


def test_fit_into_a_log_file_writes_lines_not_progress_bars(tiny_dataset, tmp_path):
    """Output that is not a terminal (CI, ``| tee``, ``nohup``) gets one line an epoch and no carriage returns."""
    import os
    import subprocess
    import sys

    args = cli_args(tiny_dataset, 2)
    del args[args.index("--trainer.enable_progress_bar") : args.index("--trainer.enable_progress_bar") + 2]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run([sys.executable, "-m", "labelgraph.cli", "fit", *args, "--trainer.logger", "false"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    log = done.stdout + done.stderr
    assert "\r" not in log
    assert "fit epoch 1/2: loss" in log and "fit epoch 2/2: loss" in log and "val mAP" in log
