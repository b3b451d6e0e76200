"""SADCL's memory bank under a real 2-process (gloo) DDP group: one bank for the job, identical on every rank."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn

from labelgraph.models.sadcl import SADCLHead

C, D = 3, 8


class HeadOnly(nn.Module):
    """A SADCL head on given feature maps: what DDP wraps (its buffers are the bank)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)  # the same initial weights and bank on every rank, as DDP requires
        self.head = SADCLHead(D, C, memory_size=4, memory_threshold=0.0, nhead=2, dim_feedforward=16, dropout=0.0)

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head.forward_train([features])


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    model = nn.parallel.DistributedDataParallel(HeadOnly())  # broadcast_buffers=True, DDP's default
    torch.manual_seed(100 + rank)  # each rank its own images
    for step in range(2):
        batch = 2 + rank  # uneven batches: 2 images on rank 0, 3 on rank 1
        out = model(torch.randn(batch, D, 2, 2))
        targets = torch.zeros(batch, C, dtype=torch.int8)
        targets[:, rank] = 1  # rank 0's images show class 0, rank 1's class 1
        sum(v.sum() for v in out.values() if v.is_floating_point() and v.requires_grad).backward()
        model.module.head.after_loss(out, targets)
        torch.save({"features": out["label_features"].detach(), "targets": targets},
                   os.path.join(out_dir, f"rank{rank}-step{step}.pt"))  # fmt: skip
    head = model.module.head
    torch.save({"memory": head.memory, "valid": head.memory_valid}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_holds_the_whole_jobs_bank(tmp_path):
    port = 29600 + os.getpid() % 1000
    mp.spawn(_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    banks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert torch.equal(banks[0]["memory"], banks[1]["memory"]) and torch.equal(banks[0]["valid"], banks[1]["valid"])
    bank, valid = banks[0]["memory"], banks[0]["valid"]
    # class 0 got rank 0's 2 images per step, class 1 rank 1's 3 per step; the FIFO keeps the last 4 of each
    for rank, count in ((0, 2), (1, 3)):
        steps = [torch.load(tmp_path / f"rank{rank}-step{s}.pt", weights_only=True) for s in range(2)]
        written = torch.cat([s["features"][:, rank] for s in steps])  # (2 * count, D) in write order
        assert len(written) == 2 * count
        assert int(valid[rank].sum()) == min(4, len(written))
        for slot in range(4):
            index = slot + 4 * ((len(written) - 1 - slot) // 4)  # the last write that landed in this slot
            assert torch.allclose(bank[rank, slot], written[index], atol=1e-6), (rank, slot)
    assert not valid[2].any()  # no image showed class 2
