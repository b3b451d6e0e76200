"""GPU check: every method trains 20 steps at ResNet-101 / 448 px with AMP (bf16, fp16) in channels-last memory.

    python -m benchmarks.gpu_check [--out benchmarks/results/gpu_check.json] [--batch 16] [--steps 20]

For each registered method and each precision: images/s over the steps after 3 warm-up steps (synchronised),
peak GPU memory (``max_memory_allocated``), with the method's own loss and auxiliary terms and SGD; fp16 runs with a
``GradScaler``. Beside it, the data loader's images/s with 8 workers (``ml_gcn`` preset, 448 px, 640 x 480 JPEGs,
pinned memory), i.e. whether the CPU side can feed the GPU. Prints a Markdown table and writes the JSON.

Without CUDA it stops at once with a message and exit status 2 (``--device cpu`` runs the same loop on the CPU
with whatever settings are given: the test suite's smoke run).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from benchmarks.bench_data import make_images
from benchmarks.bench_methods import label_graph
from benchmarks.common import RESULTS, write
from labelgraph import create_model, list_models
from labelgraph.data.dataset import MultiLabelDataset, collate_skipping_bad
from labelgraph.data.samplers import SeededEpochSampler
from labelgraph.data.transforms import decode_size, train_transform
from labelgraph.engine.recipes import build_aux_losses, build_criterion
from labelgraph.models import get_recipe

PRECISIONS = {"bf16": torch.bfloat16, "fp16": torch.float16}


def train_rate(method: str, precision: str, args: argparse.Namespace, device: torch.device) -> dict:
    """Images/s and peak memory of ``args.steps`` training steps of ``method`` (uint8 channels-last input)."""
    torch.manual_seed(0)
    graph = label_graph(args.classes)
    model = create_model(method, num_classes=args.classes, label_graph=graph, backbone=args.backbone).to(device)
    model = model.to(memory_format=torch.channels_last).train()
    recipe = get_recipe(method)
    criterion, aux_losses = build_criterion(recipe).to(device), build_aux_losses(recipe)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")
    images = torch.randint(0, 256, (args.batch, 3, args.size, args.size), dtype=torch.uint8, device=device)
    images = images.contiguous(memory_format=torch.channels_last)
    targets = (torch.rand(args.batch, args.classes, device=device) < 0.05).to(torch.int8)

    def step() -> None:
        with torch.autocast(device.type, dtype=PRECISIONS[precision]):
            outputs = model.forward_train(images)
            loss = criterion(outputs["logits"], targets) + sum(aux(outputs, targets) for aux in aux_losses)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    for _ in range(3):
        step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(device)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None
    return {"images_per_s": args.batch * args.steps / seconds, "peak_memory_gib": peak}


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def loader_rate(args: argparse.Namespace) -> float:
    """Images/s of the training data path with ``args.workers`` workers (pinned, as on a GPU machine)."""
    with tempfile.TemporaryDirectory() as tmp:
        table, _ = make_images(Path(tmp), args.loader_images)
        preset = train_transform("ml_gcn", args.size)
        dataset = MultiLabelDataset(table, preset, decode_size=decode_size("ml_gcn", args.size))
        loader = DataLoader(
            dataset, batch_size=args.batch, sampler=SeededEpochSampler(dataset), num_workers=args.workers,
            collate_fn=collate_skipping_bad, pin_memory=torch.cuda.is_available(), persistent_workers=args.workers > 0,
        )  # fmt: skip
        list(loader)  # worker start-up
        start = time.perf_counter()
        for _batch in loader:
            pass
        return len(dataset) / (time.perf_counter() - start)


def table(result: dict) -> str:
    s = result["setting"]
    lines = [
        f"{s['backbone']}, {s['size']} px, batch {s['batch']}, {s['steps']} steps, channels-last, {s['device_name']}; "
        f"data loader ({s['workers']} workers, ml_gcn preset): {result['loader_images_per_s']:.0f} img/s",
        "",
        "| method | bf16 img/s | bf16 peak GiB | fp16 img/s | fp16 peak GiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, row in result["methods"].items():
        cells = []
        for precision in PRECISIONS:
            r = row[precision]
            cells += [f"{r['images_per_s']:.0f}", f"{r['peak_memory_gib']:.1f}" if r["peak_memory_gib"] else "-"]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "gpu_check.json"))
    parser.add_argument("--backbone", default="resnet101")
    parser.add_argument("--size", type=int, default=448)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--classes", type=int, default=80)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--loader-images", type=int, default=256)
    parser.add_argument("--methods", default="all", help="comma-separated, or all")
    parser.add_argument("--device", default="cuda", help="cuda (default), or cpu for a smoke run of the loop")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; run it on a machine with one (nothing was measured)", file=sys.stderr)
        return 2
    device = torch.device(args.device)
    methods = list_models() if args.methods == "all" else args.methods.split(",")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    setting = {"backbone": args.backbone, "size": args.size, "batch": args.batch, "steps": args.steps,
               "workers": args.workers, "device_name": name}  # fmt: skip
    result = {"benchmark": "gpu_check", "setting": setting, "loader_images_per_s": loader_rate(args), "methods": {}}
    for method in methods:
        result["methods"][method] = {p: train_rate(method, p, args, device) for p in PRECISIONS}
        print(f"{method}: {result['methods'][method]}", flush=True)
    write(result, args.out)
    print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
