"""The streaming accumulator under a real 2-process (gloo) group: every sample counted exactly once."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from labelgraph.data.samplers import UnpaddedDistributedSampler
from labelgraph.evaluation.metrics import MultiLabelMetrics, evaluate

N, C = 37, 4  # odd N: ranks get 19 and 18 samples; a padding sampler would count one sample twice


def _data():
    rng = np.random.default_rng(0)
    return rng.random((N, C)), rng.integers(-1, 2, (N, C)).astype(np.int8)


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    scores, targets = _data()
    indices = list(UnpaddedDistributedSampler(range(N), num_replicas=world, rank=rank))
    metric = MultiLabelMetrics()
    for i in range(0, len(indices), 5):  # batches of 5
        idx = indices[i : i + 5]
        metric.update(torch.from_numpy(scores[idx]), torch.from_numpy(targets[idx]))
    result = metric.compute()
    np.save(os.path.join(out_dir, f"rank{rank}.npy"), np.array([result["mAP"], result["OF1"], len(indices)]))
    dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_gather_counts_every_sample_once(tmp_path):
    port = 29500 + os.getpid() % 1000
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    scores, targets = _data()
    expected = evaluate(scores, targets)
    counts = 0
    for rank in range(2):
        mAP, of1, n = np.load(tmp_path / f"rank{rank}.npy")
        assert mAP == pytest.approx(expected["mAP"], abs=1e-4)
        assert of1 == pytest.approx(expected["OF1"], abs=1e-4)
        counts += int(n)
    assert counts == N


def test_unpadded_sampler_partitions_the_dataset():
    shards = [list(UnpaddedDistributedSampler(range(10), num_replicas=3, rank=r)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(10))
    assert [len(s) for s in shards] == [4, 3, 3]
