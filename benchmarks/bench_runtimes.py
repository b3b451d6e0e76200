"""``predict`` and ``serve`` on eager PyTorch vs ONNX Runtime, on camera photos and on 640 x 480 photos.

    python -m benchmarks.bench_runtimes [--methods baseline,ml_gcn,query2label] [--images 32] [--out FILE]

For each method, a model of ``labelgraph train``'s default backbone (``tf_efficientnet_lite0`` at 224 px; random
weights: speed does not depend on them) is exported with its ``model.onnx`` (as ``labelgraph export`` and ``train``
write it; each of torch's two exporters timed writing it). On the same files, in interleaved rounds:

- ``Predictor.predict(paths, batch_size=B)`` (what ``labelgraph predict`` runs: decode, eval transform, scores), B = 1
  and 32, with ``runtime="torch"`` and ``runtime="onnx"``; images/s, and the largest probability difference between
  the two on these files;
- ``labelgraph serve --runtime torch`` and ``--runtime onnx`` side by side (one inference worker each, default
  batching), one-image requests from 16 keep-alive connections: images/s; then latency p50 / p99 with 1 and 16
  connections. The client shares the machine's cores with the server.

Files: the real photos of :mod:`benchmarks.real_photos` as 4000 x 3000 quality-90 JPEGs
(:func:`benchmarks.bench_camera_photos.write_camera_photos`) and as 640 x 480 views (:mod:`benchmarks.bench_data`),
cycled to ``--images`` files.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks.bench_camera_photos import write_camera_photos
from benchmarks.bench_data import make_images
from benchmarks.bench_methods import label_graph
from benchmarks.bench_serve import percentile, send_all
from benchmarks.common import RESULTS, interleaved, machine, write
from labelgraph import create_model
from labelgraph.apis import Predictor, save_model
from labelgraph.apis.onnx import EXPORTERS, export_onnx, weights_digest
from labelgraph.serving.process import ServerProcess

BACKBONE, SIZE = "tf_efficientnet_lite0", 224
METHODS = ("baseline", "ml_gcn", "query2label")


def photo_sets(folder: Path, images: int) -> dict[str, list[Path]]:
    """``camera`` and ``640x480``: ``images`` files each."""
    (folder / "camera").mkdir()
    (folder / "small").mkdir()
    write_camera_photos(folder / "camera")
    camera = sorted((folder / "camera").glob("*.jpg"))
    table, _ = make_images(folder / "small", images)
    return {
        "camera_4000x3000": [camera[i % len(camera)] for i in range(images)],
        "photos_640x480": [table.path(i) for i in range(len(table))],
    }


def exported(method: str, folder: Path) -> tuple[Path, dict[str, float]]:
    """The model folder with its ``model.onnx``, and the seconds each of torch's exporters took to write it."""
    graph = label_graph(80)
    torch.manual_seed(0)
    model = create_model(method, num_classes=80, label_graph=graph, backbone=BACKBONE).eval()
    save_model(model, folder / method, class_names=graph.class_names, image_size=SIZE, label_graph=graph)
    seconds = {}
    for exporter in reversed(EXPORTERS):  # the default one last: its file is the one measured
        start = time.perf_counter()
        export_onnx(model, SIZE, folder / method / "model.onnx", weights_sha256=weights_digest(folder / method),
                    exporter=exporter)  # fmt: skip
        seconds[f"export_{exporter}_s"] = round(time.perf_counter() - start, 2)
    return folder / method, seconds


def predict_rates(model_dir: Path, files: list[Path], rounds: int) -> dict[str, Any]:
    predictors = {runtime: Predictor.load(model_dir, runtime=runtime) for runtime in ("torch", "onnx")}
    assert predictors["onnx"].runtime == "onnxruntime"
    contenders = {
        f"{runtime}_batch_{batch}": lambda p=predictor, b=batch: p.predict(files, batch_size=b)
        for runtime, predictor in predictors.items()
        for batch in (1, 32)
    }
    seconds = interleaved(contenders, rounds, warmup=1)
    row: dict[str, Any] = {f"predict_{name}_images_per_s": round(len(files) / s, 2) for name, s in seconds.items()}
    for batch in (1, 32):
        row[f"predict_onnx_over_torch_batch_{batch}"] = round(
            seconds[f"torch_batch_{batch}"] / seconds[f"onnx_batch_{batch}"], 2
        )
    probs = {
        runtime: np.array([list(p["scores"].values()) for p in predictor.predict(files)["predictions"]])
        for runtime, predictor in predictors.items()
    }
    row["max_abs_probability_difference"] = float(np.abs(probs["onnx"] - probs["torch"]).max())
    return row


def serve_rates(model_dir: Path, files: list[Path], rounds: int) -> dict[str, Any]:
    payloads = [(f"{i}_{p.name}", p.read_bytes()) for i, p in enumerate(files)]
    args = ("--quiet", "--max-batch-size", "16", "--batch-timeout", "0.01", "--device", "cpu")
    row: dict[str, Any] = {}
    with ExitStack() as stack:
        servers = {r: stack.enter_context(ServerProcess(model_dir, *args, "--runtime", r)) for r in ("torch", "onnx")}
        for server in servers.values():
            asyncio.run(send_all(server.url, payloads[:16], 16))  # warm up the worker's first batches
        contenders = {r: lambda url=s.url: asyncio.run(send_all(url, payloads, 16)) for r, s in servers.items()}
        seconds = interleaved(contenders, rounds)
        for runtime, server in servers.items():
            row[f"serve_{runtime}_images_per_s_16_clients"] = round(len(files) / seconds[runtime], 2)
            for clients in (1, 16):
                latency = asyncio.run(send_all(server.url, payloads, clients))
                for q in (50, 99):
                    row[f"serve_{runtime}_latency_ms_p{q}_{clients}_clients"] = round(percentile(latency, q), 1)
    row["serve_onnx_over_torch_16_clients"] = round(seconds["torch"] / seconds["onnx"], 2)
    return row


def run(methods: tuple[str, ...] = METHODS, images: int = 32, rounds: int = 3) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "runtimes", "machine": machine(), "backbone": BACKBONE, "image_size": SIZE}
    result["load_average_before"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        sets = photo_sets(folder, images)
        for method in methods:
            model_dir, export_seconds = exported(method, folder / "models")
            result.setdefault(method, {})["export"] = export_seconds
            for name, files in sets.items():
                row = predict_rates(model_dir, files, rounds) | serve_rates(model_dir, files, rounds)
                result[method][name] = row
                print(method, name, json.dumps(row), flush=True)
    result["load_average_after"] = os.getloadavg()[0]
    return result


def markdown(result: dict[str, Any]) -> str:
    """The README's table of a run: one row per method and photo set."""
    lines = [
        "| method | photos | predict, batch 1: torch / ONNX RT | batch 32: torch / ONNX RT | serve, 16 connections: "
        "torch / ONNX RT | latency p50 / p99, 1 connection: torch; ONNX RT | 16 connections: torch; ONNX RT | "
        "max prob. diff. |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for method in (m for m in METHODS if m in result):
        for photos in ("camera_4000x3000", "photos_640x480"):
            r = result[method][photos]
            cells = [
                f"{r['predict_torch_batch_1_images_per_s']:.0f} / {r['predict_onnx_batch_1_images_per_s']:.0f} img/s "
                f"({r['predict_onnx_over_torch_batch_1']:.2f}x)",
                f"{r['predict_torch_batch_32_images_per_s']:.0f} / {r['predict_onnx_batch_32_images_per_s']:.0f} "
                f"({r['predict_onnx_over_torch_batch_32']:.2f}x)",
                f"{r['serve_torch_images_per_s_16_clients']:.0f} / {r['serve_onnx_images_per_s_16_clients']:.0f} "
                f"({r['serve_onnx_over_torch_16_clients']:.2f}x)",
            ]
            for clients in (1, 16):
                cells.append("; ".join(
                    f"{r[f'serve_{rt}_latency_ms_p50_{clients}_clients']:.0f} / "
                    f"{r[f'serve_{rt}_latency_ms_p99_{clients}_clients']:.0f} ms" for rt in ("torch", "onnx")
                ))  # fmt: skip
            cells.append(f"{r['max_abs_probability_difference']:.0e}")
            lines.append(f"| {method} | {photos.replace('_', ' ')} | " + " | ".join(cells) + " |")
    exports = ", ".join(
        f"{m} {result[m]['export']['export_torchscript_s']:.1f} s / {result[m]['export']['export_dynamo_s']:.1f} s"
        for m in METHODS
        if m in result
    )
    return "\n".join(lines) + f"\n\nWriting `model.onnx`, TorchScript exporter / torch.export exporter: {exports}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default=str(RESULTS / "runtimes.json"))
    args = parser.parse_args()
    print(markdown(write(run(tuple(args.methods.split(",")), args.images, args.rounds), Path(args.out))))


if __name__ == "__main__":
    main()
