"""Every registered method against ``baseline`` on the same backbone and input: forward + backward time, activation
memory, parameters and FLOPs.

    python benchmarks/bench_methods.py [--out benchmarks/results/methods.json] [--backbone resnet10t] [--size 224]

CPU here (CUDA when present: time with synchronisation, ``max_memory_allocated`` as peak memory). Activation memory
is what autograd saves for the backward pass (``saved_tensors_hooks``, unique storages): exact and deterministic on
any device. Ratios are method / baseline, measured in the same process one after the other.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import RESULTS, saved_bytes, timed, write
from labelgraph import LabelGraph, create_model, list_models


def label_graph(classes: int) -> LabelGraph:
    rng = np.random.default_rng(0)
    graph = LabelGraph.from_targets(
        (rng.random((2000, classes)) < 0.05).astype(np.int8), [f"c{i}" for i in range(classes)]
    )
    graph.embeddings, graph.embedding_source = torch.randn(classes, 300), "image:random"
    return graph


def run(backbone: str = "resnet10t", size: int = 224, batch: int = 8, classes: int = 80, repeats: int = 3) -> dict:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    graph = label_graph(classes)
    x = torch.rand(batch, 3, size, size, device=device)
    rows = {}
    for name in list_models():
        torch.manual_seed(0)
        model = create_model(name, num_classes=classes, label_graph=graph, backbone=backbone).to(device).train()

        def step(model: torch.nn.Module = model) -> None:
            out = model.forward_train(x)
            sum(v.float().square().mean() for v in out.values() if v.is_floating_point()).backward()
            if device == "cuda":
                torch.cuda.synchronize()

        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        seconds, _ = timed(step, repeats, warmup=1)
        with FlopCounterMode(display=False) as flops:
            model.eval()(x[:1])
        rows[name] = {
            "fwd_bwd_seconds": seconds,
            "activation_mb": saved_bytes(lambda: model.train().forward_train(x)) / 2**20,  # noqa: B023
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "gflops_per_image": flops.get_total_flops() / 1e9,
            "cuda_peak_mb": torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None,
        }
    base = rows["baseline"]
    for row in rows.values():
        row["time_vs_baseline"] = row["fwd_bwd_seconds"] / base["fwd_bwd_seconds"]
        row["activation_vs_baseline"] = row["activation_mb"] / base["activation_mb"]
    return {
        "benchmark": "methods",
        "setting": {"backbone": backbone, "image_size": size, "batch": batch, "classes": classes, "device": device},
        "methods": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "methods.json"))
    parser.add_argument("--backbone", default="resnet10t")
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    print(write(run(args.backbone, args.size), args.out))


if __name__ == "__main__":
    main()
