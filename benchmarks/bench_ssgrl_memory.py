"""SSGRL head memory at 576 px x 80 classes: the official (dense) semantic decoupling vs labelgraph's chunked one.

    python -m benchmarks.bench_ssgrl_memory [--out benchmarks/results/ssgrl_memory.json] [--batch 4]

The head (2 x 2 pooling, semantic decoupling, GGNN T = 3, output layer, classifiers) runs forward + backward on a
ResNet-101 layer4 map of a 576 px batch (B x 2048 x 18 x 18 -> 9 x 9), COCO's 80 classes, 300-d embeddings. Each
formulation runs in its own fresh process, so the two peaks do not mix; per formulation:
- ``saved_for_backward_mb``: the bytes autograd keeps for the backward pass (unique storages, counted with
  ``torch.autograd.graph.saved_tensors_hooks``) -- exact and deterministic; ``decoupling_saved_for_backward_mb``:
  the same for the semantic decoupling alone (the part the two formulations differ in; the GGNN over 80 nodes of
  2048-d states is common to both);
- ``peak_rss_increase_mb``: the process's peak resident memory during forward + backward minus before it (CPU);
- ``cuda_peak_mb``: ``torch.cuda.max_memory_allocated`` when a GPU is present;
- ``seconds``: median forward + backward time.
Both formulations compute the same function (checked here on the same weights: max |logit difference|).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from benchmarks.common import RESULTS, saved_bytes, write
from labelgraph.models.ssgrl import SSGRLHead

C, D, E, SIDE = 80, 2048, 300, 18  # COCO classes, ResNet-101 width, GloVe size, layer4 side at 576 px


def make_head(formulation: str, device: str) -> SSGRLHead:
    torch.manual_seed(0)
    adjacency = torch.rand(C, C) * (1 - torch.eye(C))
    return SSGRLHead(D, torch.randn(C, E), adjacency, formulation=formulation).to(device)


def _status_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> int:
    """Reset the kernel's peak-RSS mark (Linux ``clear_refs`` 5) and return the current RSS in kB; building the
    model may have peaked higher than the step we measure, which ``ru_maxrss`` alone would hide."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    current = _status_kb("VmRSS")
    return current if current is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def peak_rss() -> int | None:
    peak = _status_kb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_one(formulation: str, batch: int, repeats: int) -> dict:
    """Measure one formulation (called in a fresh process)."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    head = make_head(formulation, device)
    x = torch.randn(batch, D, SIDE, SIDE, device=device)

    def step() -> torch.Tensor:
        logits = head([x])
        logits.square().mean().backward()
        return logits

    rss_before = reset_peak_rss()
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    logits = step()
    rss_peak = peak_rss()
    result = {
        "formulation": formulation,
        "peak_rss_increase_mb": (rss_peak - rss_before) / 1024 if rss_peak is not None else None,
        "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
    }
    head.zero_grad()
    result["saved_for_backward_mb"] = saved_bytes(lambda: head([x]).square().mean()) / 2**20
    pooled = head.pool(x)
    decoupled = saved_bytes(lambda: head.decoupling(pooled, head.label_embed)[1].square().mean())
    result["decoupling_saved_for_backward_mb"] = decoupled / 2**20
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    result["seconds"] = statistics.median(times)
    result["logits"] = logits.detach().cpu().tolist()
    return result


def run(batch: int = 4, repeats: int = 3) -> dict:
    runs = {}
    root = Path(__file__).resolve().parents[1]
    for formulation in ("dense", "chunked"):
        cmd = [sys.executable, "-m", "benchmarks.bench_ssgrl_memory", "--worker", formulation, "--batch", str(batch)]
        cmd += ["--repeats", str(repeats)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=root)
        runs[formulation] = json.loads(out.stdout)
    dense, chunked = runs["dense"], runs["chunked"]
    diff = (torch.tensor(dense.pop("logits")) - torch.tensor(chunked.pop("logits"))).abs().max().item()
    return {
        "benchmark": "ssgrl_head_memory",
        "setting": {"batch": batch, "image_size": 576, "feature_map": [D, SIDE, SIDE], "classes": C},
        "official_dense": dense,
        "labelgraph_chunked": chunked,
        "saved_for_backward_ratio": dense["saved_for_backward_mb"] / chunked["saved_for_backward_mb"],
        "decoupling_saved_ratio": dense["decoupling_saved_for_backward_mb"]
        / chunked["decoupling_saved_for_backward_mb"],
        "peak_rss_ratio": dense["peak_rss_increase_mb"] / max(chunked["peak_rss_increase_mb"] or 0, 1e-9),
        "time_ratio_dense_over_chunked": dense["seconds"] / chunked["seconds"],
        "max_abs_logit_difference": diff,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "ssgrl_memory.json"))
    parser.add_argument("--batch", type=int, default=4, help="SSGRL's official batch size")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(run_one(args.worker, args.batch, args.repeats)))
        return
    print(json.dumps(write(run(args.batch, args.repeats), args.out), indent=2))


if __name__ == "__main__":
    main()
