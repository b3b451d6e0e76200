"""Every registered method against ``baseline`` on the same backbone and input: forward + backward time, activation
memory, parameters and FLOPs.

    python -m benchmarks.bench_methods [--out benchmarks/results/methods.json] [--rounds 5]

At ResNet-50 / 224 px and resnet10t / 224 px, batch 8 of uint8 images, 80 classes; CPU here (CUDA when present, timed
with synchronisation). Times are interleaved: each round runs one step of every method in turn, and each figure is
the median over the rounds, so that a noisy neighbour slows all methods alike. Besides the whole step, the head
alone is timed on fixed backbone features: its extra cost over the baseline's head, as a fraction of the baseline's
whole step, is what the method adds (``head_over_baseline_step``). Activation memory is what autograd saves for the
backward pass (``saved_tensors_hooks``, unique storages): exact and deterministic on any device.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import RESULTS, interleaved, saved_bytes, write
from labelgraph import LabelGraph, create_model, list_models


def label_graph(classes: int) -> LabelGraph:
    rng = np.random.default_rng(0)
    graph = LabelGraph.from_targets(
        (rng.random((2000, classes)) < 0.05).astype(np.int8), [f"c{i}" for i in range(classes)]
    )
    graph.embeddings, graph.embedding_source = torch.randn(classes, 300), "image:random"
    return graph


def loss_of(outputs: dict[str, torch.Tensor]) -> torch.Tensor:
    return sum(v.float().square().mean() for v in outputs.values() if v.is_floating_point())


def setting_rows(backbone: str, size: int, batch: int, classes: int, rounds: int, device: str) -> dict:
    """Every method at one setting, timed interleaved: each round runs one step of every method in turn."""
    graph = label_graph(classes)
    x = torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, device=device)  # what the loader delivers
    models = {}
    for name in list_models():
        torch.manual_seed(0)
        models[name] = create_model(name, num_classes=classes, label_graph=graph, backbone=backbone).to(device).train()
    with torch.no_grad():  # each model's own feature maps (ADD-GCN reads two stages, the others one)
        features = {name: model.features(x) for name, model in models.items()}

    def full_step(name: str) -> None:
        loss_of(models[name].forward_train(x)).backward()

    def head_step(name: str) -> None:  # the head alone, on fixed backbone features
        maps = [f.detach().requires_grad_() for f in features[name]]
        loss_of(models[name].forward_train(maps)).backward()

    def synced(step: Callable[[str], None], name: str) -> Callable[[], None]:
        def run() -> None:
            step(name)
            if device == "cuda":
                torch.cuda.synchronize()

        return run

    timings = {
        label: interleaved({name: synced(step, name) for name in models}, rounds, warmup=1)
        for label, step in (("fwd_bwd_seconds", full_step), ("head_fwd_bwd_seconds", head_step))
    }
    rows = {}
    for name, model in models.items():
        with FlopCounterMode(display=False) as flops:
            model.eval()(x[:1])
        rows[name] = {
            "fwd_bwd_seconds": timings["fwd_bwd_seconds"][name],
            "head_fwd_bwd_seconds": timings["head_fwd_bwd_seconds"][name],
            "activation_mb": saved_bytes(lambda: model.train().forward_train(x)) / 2**20,  # noqa: B023
            "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
            "gflops_per_image": flops.get_total_flops() / 1e9,
        }
    base = rows["baseline"]
    for row in rows.values():
        row["time_vs_baseline"] = row["fwd_bwd_seconds"] / base["fwd_bwd_seconds"]
        row["head_over_baseline_step"] = (row["head_fwd_bwd_seconds"] - base["head_fwd_bwd_seconds"]) / base[
            "fwd_bwd_seconds"
        ]  # the head's extra cost as a fraction of the baseline's whole step
        row["activation_vs_baseline"] = row["activation_mb"] / base["activation_mb"]
    return rows


def run(
    settings: tuple[tuple[str, int], ...] = (("resnet50", 224), ("resnet10t", 224)),
    batch: int = 8,
    classes: int = 80,
    rounds: int = 5,
) -> dict:
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result = {"benchmark": "methods", "batch": batch, "classes": classes, "rounds": rounds, "device": device}
    result["load_average_before"] = os.getloadavg()[0]
    result["settings"] = [
        {"backbone": b, "image_size": s, "methods": setting_rows(b, s, batch, classes, rounds, device)}
        for b, s in settings
    ]
    result["load_average_after"] = os.getloadavg()[0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "methods.json"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(write(run(rounds=args.rounds), args.out))


if __name__ == "__main__":
    main()
