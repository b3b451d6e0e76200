"""Faults: SIGKILL and exact resume, DDP equals one process, unsafe or broken checkpoints, decompression bombs."""

from __future__ import annotations

import csv
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

from labelgraph.data.image_io import ImageLoadError, load_image
from labelgraph.engine.checkpoint_io import SafeCheckpointIO
from labelgraph.models import CheckpointError, load_trained_model, read_checkpoint

from .conftest import TINY_BACKBONE, TINY_SIZE

ROOT = Path(__file__).resolve().parents[1]
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"


def fit_args(data: Path, *extra: str) -> list[str]:
    return [
        "--config", str(DEMO_CONFIG),
        "--data.train", str(data / "train.csv"), "--data.val", str(data / "val.csv"),
        "--data.test", str(data / "test.csv"), "--data.classes", str(data / "classes.txt"),
        "--data.image_size", str(TINY_SIZE), "--data.batch_size", "16", "--data.train_transform", "ml_gcn",
        "--model.backbone", TINY_BACKBONE, "--trainer.max_epochs", "3", "--model.lr_scheduler.init_args.T_max", "3",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        # every epoch's weights, next to the config's best/last checkpoints
        "--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.dirpath=runs/epochs",
        "--trainer.callbacks.save_top_k=-1", "--trainer.callbacks.filename={epoch}", *extra,
    ]  # fmt: skip


def run_cli(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, wait_for: Path | None = None, send: int = 0
) -> subprocess.CompletedProcess:
    """``labelgraph ARGS`` in a child process; with ``wait_for``, send it signal ``send`` once that file exists."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", **(env or {})}
    command = [sys.executable, "-m", "labelgraph.cli", *args]
    with subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as p:
        if wait_for is not None:
            deadline = time.monotonic() + 300
            while not wait_for.exists() and p.poll() is None and time.monotonic() < deadline:
                time.sleep(0.1)
            if p.poll() is None:
                p.send_signal(send)
        out, err = p.communicate(timeout=600)
    return subprocess.CompletedProcess(command, p.returncode, out, err)


def val_map(metrics_csv: Path) -> float:
    rows = [r for r in csv.DictReader(metrics_csv.open()) if r.get("val/mAP")]
    return float(rows[-1]["val/mAP"])


def last_val_map(run: Path) -> float:
    """The last validation mAP of the newest run (version_10 is newer than version_9: compared as numbers)."""
    logs = (run / "runs" / "demo" / "lightning_logs").glob("version_*/metrics.csv")
    return val_map(max(logs, key=lambda p: int(p.parent.name.removeprefix("version_"))))


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tiny_dataset, tmp_path):
    whole, crashed = tmp_path / "whole", tmp_path / "crashed"
    whole.mkdir(), crashed.mkdir()
    done = run_cli(["fit", *fit_args(tiny_dataset, "--data.num_workers", "2")], whole)
    assert done.returncode == 0, done.stderr[-3000:]
    # 48 images / 16 = 3 steps per epoch: step 7 is in the middle of the third epoch
    kill = ["--trainer.callbacks+=tests.kill_callback.KillAtStep", "--trainer.callbacks.step=7"]
    killed = run_cli(["fit", *fit_args(tiny_dataset, "--data.num_workers", "2", *kill)], crashed)
    assert killed.returncode == -9, killed.stderr[-3000:]
    resumed = run_cli(["fit", *fit_args(tiny_dataset, "--data.num_workers", "2"), "--ckpt_path", "last"], crashed)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    a = read_checkpoint(whole / "runs" / "epochs" / "epoch=2.ckpt")
    b = read_checkpoint(crashed / "runs" / "epochs" / "epoch=2.ckpt")
    assert a["global_step"] == b["global_step"] == 9
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for key, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][key]), key
    assert last_val_map(whole) == last_val_map(crashed)


@pytest.mark.slow
def test_ddp_validation_equals_one_process(tiny_dataset, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for name in ("train.csv", "test.csv", "classes.txt"):
        (data / name).write_text((tiny_dataset / name).read_text())
    lines = (tiny_dataset / "val.csv").read_text().splitlines()
    (data / "val.csv").write_text("\n".join(lines[:16]) + "\n")  # 15 images: uneven across 2 processes
    (data / "images").symlink_to(tiny_dataset / "images")
    run = tmp_path / "run"
    run.mkdir()
    fit = run_cli(["fit", *fit_args(data, "--data.num_workers", "0", "--trainer.max_epochs", "1")], run)
    assert fit.returncode == 0, fit.stderr[-3000:]
    ckpt = str(run / "runs" / "demo" / "checkpoints" / "last.ckpt")
    results = {}
    for name, extra in (("one", []), ("ddp", ["--trainer.strategy", "ddp", "--trainer.devices", "2"])):
        log = run / "runs" / "demo" / "lightning_logs" / f"validate-{name}" / "metrics.csv"
        assert not log.exists()
        out = run_cli(
            ["validate", *fit_args(data, "--data.num_workers", "0", "--trainer.accelerator", "cpu", *extra),
             "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "runs/demo",
             "--trainer.logger.version", f"validate-{name}", "--ckpt_path", ckpt], run,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        if name == "ddp":
            assert "MEMBER: 2/2" in out.stderr  # two processes really ran
        results[name] = val_map(log)  # this run's own log, written by this run
    assert results["one"] == pytest.approx(results["ddp"], abs=1e-6)


class TestCheckpointFiles:
    def test_pickled_code_is_refused_without_running(self, tmp_path):
        marker = tmp_path / "pwned"

        class Evil:
            def __reduce__(self):
                return (os.system, (f"touch {marker}",))

        path = tmp_path / "evil.ckpt"
        path.write_bytes(pickle.dumps({"state_dict": Evil()}))
        with pytest.raises(CheckpointError, match="refused, nothing was run"):
            read_checkpoint(path)
        with pytest.raises(CheckpointError, match="evil.ckpt"):
            load_trained_model(path)
        assert not marker.exists()

    def test_truncated_checkpoint_is_refused_with_its_name(self, tmp_path):
        good = tmp_path / "good.ckpt"
        torch.save({"state_dict": {"w": torch.randn(1000)}}, good)
        bad = tmp_path / "bad.ckpt"
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
        with pytest.raises(CheckpointError, match="bad.ckpt.*truncated or corrupt"):
            read_checkpoint(bad)
        with pytest.raises(FileNotFoundError, match="does not exist"):
            read_checkpoint(tmp_path / "none.ckpt")

    def test_a_failed_write_leaves_the_previous_checkpoint_intact(self, tmp_path, monkeypatch):
        io = SafeCheckpointIO()
        path = tmp_path / "last.ckpt"
        io.save_checkpoint({"step": 1}, path)

        def crash(obj, f, *args, **kwargs):
            Path(f).write_bytes(b"partial")
            raise OSError("disk full")

        monkeypatch.setattr(torch, "save", crash)
        with pytest.raises(OSError, match="disk full"):
            io.save_checkpoint({"step": 2}, path)
        monkeypatch.undo()
        assert io.load_checkpoint(path) == {"step": 1}
        assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_decompression_bomb_is_refused_with_the_file_name(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("RGB", (300, 300)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100 * 100 // 2)  # PIL errors above twice this
    with pytest.raises(ImageLoadError, match="big.png: refused, larger than"):
        load_image(path)
