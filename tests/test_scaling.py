"""More than one machine, on loopback: ``labelgraph fit`` as two torchrun nodes equals the two-process single-node
run; SLURM's pre-emption signal writes a checkpoint, requeues the job, and the requeued run resumes it exactly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from labelgraph.models import read_checkpoint

from .test_reliability import ROOT, fit_args, last_val_map, run_cli, val_map

CLUSTER_CONFIG = ROOT / "configs" / "cluster" / "slurm_ddp.yaml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(args: list[str], cwd: Path, nnodes: int, node_rank: int, nproc: int, port: int) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(nnodes), "--node-rank", str(node_rank),
                "--nproc-per-node", str(nproc), "--master-addr", "127.0.0.1", "--master-port", str(port)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*launcher, "-m", "labelgraph.cli", "fit", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip


def finish(process: subprocess.Popen) -> str:
    out, _ = process.communicate(timeout=600)
    assert process.returncode == 0, out[-4000:]
    return out


def ddp_args(data: Path, devices: int, nodes: int) -> list[str]:
    return fit_args(data, "--data.num_workers", "0", "--trainer.max_epochs", "2", "--trainer.accelerator", "cpu",
                    "--trainer.strategy", "ddp", "--trainer.devices", str(devices),
                    "--trainer.num_nodes", str(nodes))  # fmt: skip


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = read_checkpoint(a), read_checkpoint(b)
    assert first["global_step"] == second["global_step"]
    assert first["state_dict"].keys() == second["state_dict"].keys()
    for key, value in first["state_dict"].items():
        assert torch.equal(value, second["state_dict"][key]), key


@pytest.mark.slow
def test_two_nodes_equal_two_processes_on_one_node_and_one_process_validates_the_same(tiny_dataset, tmp_path):
    port = free_port()
    nodes = [torchrun(ddp_args(tiny_dataset, 1, 2), tmp_path / f"node{rank}", 2, rank, 1, port) for rank in (0, 1)]
    logs = [finish(node) for node in nodes]
    assert "MEMBER: 1/2" in logs[0] and "MEMBER: 2/2" in logs[1]  # one process on each "machine"
    single = tmp_path / "single"
    log = finish(torchrun(ddp_args(tiny_dataset, 2, 1), single, 1, 0, 2, free_port()))
    assert "MEMBER: 2/2" in log
    multi = tmp_path / "node0"
    assert not (tmp_path / "node1" / "runs" / "epochs").exists()  # rank 0 alone writes checkpoints
    assert_same_weights(multi / "runs" / "epochs" / "epoch=1.ckpt", single / "runs" / "epochs" / "epoch=1.ckpt")
    assert last_val_map(multi) == last_val_map(single)
    # the final weights validated by one process give the metrics the two nodes logged (gathered across nodes)
    ckpt = str(multi / "runs" / "epochs" / "epoch=1.ckpt")
    one = run_cli(["validate", *fit_args(tiny_dataset, "--data.num_workers", "0", "--trainer.accelerator", "cpu"),
                   "--trainer.logger", "lightning.pytorch.loggers.CSVLogger", "--trainer.logger.save_dir", "one",
                   "--ckpt_path", ckpt], tmp_path)  # fmt: skip
    assert one.returncode == 0, one.stderr[-3000:]
    (one_log,) = (tmp_path / "one").rglob("metrics.csv")
    assert val_map(one_log) == pytest.approx(last_val_map(multi), abs=1e-6)


def slurm_env(tmp_path: Path) -> dict[str, str]:
    """What srun would set for a one-task job, and an ``scontrol`` that logs its call and, as SLURM does when it
    requeues a job, kills the job's process."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f'#!/bin/sh\necho "$@" >> {tmp_path / "scontrol.log"}\nkill -9 $PPID\n')
    scontrol.chmod(0o755)
    return {"SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_NNODES": "1", "SLURM_NODEID": "0",
            "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_JOB_ID": "4242", "SLURM_JOB_NAME": "labelgraph",
            "SLURM_NODELIST": "127.0.0.1", "PATH": f"{bin_dir}:{os.environ['PATH']}"}  # fmt: skip


def slurm_fit(data: Path, *extra: str) -> list[str]:
    """The demo recipe with the shipped cluster config, scaled down to one CPU process."""
    return ["fit", *fit_args(data, "--data.num_workers", "2"), "--config", str(CLUSTER_CONFIG),
            "--trainer.accelerator", "cpu", "--trainer.devices", "1", "--trainer.num_nodes", "1",
            "--trainer.strategy", "auto", *extra]  # fmt: skip


@pytest.mark.slow
def test_sigusr1_on_slurm_checkpoints_requeues_and_resumes_exactly(tiny_dataset, tmp_path):
    env = slurm_env(tmp_path)
    whole, job = tmp_path / "whole", tmp_path / "job"
    whole.mkdir(), job.mkdir()
    done = run_cli(slurm_fit(tiny_dataset), whole, env)
    assert done.returncode == 0, done.stderr[-3000:]
    # 48 images / 16 = 3 steps per epoch: step 7 is the first batch of the third epoch, mid-epoch
    marker = tmp_path / "at_step_7"
    wait = ["--trainer.callbacks+=tests.kill_callback.WaitForSignalAtStep", "--trainer.callbacks.step=7",
            f"--trainer.callbacks.marker={marker}"]  # fmt: skip
    first = run_cli(slurm_fit(tiny_dataset, *wait), job, env, wait_for=marker, send=signal.SIGUSR1)
    assert first.returncode == -9, first.stderr[-3000:]  # killed by the (fake) requeue, after the checkpoint
    assert (tmp_path / "scontrol.log").read_text().split() == ["requeue", "4242"]
    hpc = job / "runs" / "slurm" / "hpc_ckpt_1.ckpt"
    assert read_checkpoint(hpc)["global_step"] == 7
    requeued = run_cli(slurm_fit(tiny_dataset), job, env)  # the same command: the job as SLURM restarts it
    assert requeued.returncode == 0, requeued.stderr[-3000:]
    assert "hpc_ckpt_1.ckpt" in requeued.stderr + requeued.stdout  # resumed from the pre-emption checkpoint
    assert_same_weights(whole / "runs" / "epochs" / "epoch=2.ckpt", job / "runs" / "epochs" / "epoch=2.ckpt")
    assert read_checkpoint(job / "runs" / "epochs" / "epoch=2.ckpt")["global_step"] == 9
    assert last_val_map(whole) == last_val_map(job)


def test_cluster_recipe_requeues_on_sigusr1_and_keeps_safe_checkpoints():
    import yaml

    trainer = yaml.safe_load(CLUSTER_CONFIG.read_text())["trainer"]
    plugins = {p["class_path"].rsplit(".", 1)[1]: p.get("init_args", {}) for p in trainer["plugins"]}
    assert plugins["SLURMEnvironment"] == {"auto_requeue": True, "requeue_signal": "SIGUSR1"}
    assert "SafeCheckpointIO" in plugins  # a plugins list replaces the CLI's default one
    sbatch = (ROOT / "configs" / "cluster" / "slurm_ddp.sbatch").read_text()
    assert "#SBATCH --signal=SIGUSR1@" in sbatch and "#SBATCH --requeue" in sbatch
    assert "--ckpt_path" not in sbatch.split("srun", 1)[1]  # Lightning finds the hpc checkpoint only without one
    ntasks = int(sbatch.split("--ntasks-per-node=")[1].split()[0]) * int(sbatch.split("--nodes=")[1].split()[0])
    assert trainer["devices"] * trainer["num_nodes"] == ntasks


@pytest.mark.parametrize("workers", [0, 2])
def test_resumed_loader_skips_the_trained_batches_once(workers):
    from labelgraph.data.resumable_loader import ResumableDataLoader

    done = {"batches": 0}
    loader = ResumableDataLoader(list(range(10)), batch_size=3, num_workers=workers, persistent_workers=workers > 0,
                                 batches_done=lambda: done["batches"])  # fmt: skip
    done["batches"] = 2
    assert loader.state_dict() == {"batches_done": 2}
    done["batches"] = 4  # the epoch's last batch: the next epoch starts afresh
    assert loader.state_dict() == {"batches_done": 0}
    loader.load_state_dict({"batches_done": 2})
    assert [b.tolist() for b in loader] == [[6, 7, 8], [9]]  # the interrupted epoch's remaining batches
    assert [b.tolist() for b in loader] == [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]  # then whole epochs
