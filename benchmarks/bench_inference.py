"""Inference of an exported model: eager PyTorch vs ONNX Runtime, images/s at batch 1 and 32.

    python benchmarks/bench_inference.py [--out benchmarks/results/inference.json] [--method ml_gcn]

The model is exported with ``save_model`` and ``export_onnx`` (as ``labelgraph export --onnx`` does); both
runtimes get the same float inputs; the largest logit difference is reported with the speeds.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from benchmarks.bench_methods import label_graph
from benchmarks.common import RESULTS, timed, write
from labelgraph import create_model
from labelgraph.apis import load_model, save_model
from labelgraph.apis.onnx import export_onnx


def run(method: str = "ml_gcn", backbone: str = "resnet10t", size: int = 224, repeats: int = 5) -> dict:
    import onnxruntime as ort

    graph = label_graph(80)
    torch.manual_seed(0)
    model = create_model(method, num_classes=80, label_graph=graph, backbone=backbone).eval()
    result = {"benchmark": "inference", "method": method, "backbone": backbone, "image_size": size}
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_model(model, Path(tmp) / "m", class_names=graph.class_names, image_size=size, label_graph=graph)
        model, _ = load_model(folder)
        session = ort.InferenceSession(str(export_onnx(model, size, folder / "model.onnx")))
        for batch in (1, 32):
            x = torch.rand(batch, 3, size, size)
            with torch.inference_mode():
                t_torch, logits = timed(lambda: model(x), repeats, warmup=1)  # noqa: B023
            t_onnx, onnx_logits = timed(lambda: session.run(None, {"images": x.numpy()})[0], repeats, warmup=1)  # noqa: B023
            result[f"batch_{batch}"] = {
                "torch_images_per_s": batch / t_torch,
                "onnxruntime_images_per_s": batch / t_onnx,
                "onnx_over_torch": t_torch / t_onnx,
                "max_abs_logit_difference": float((torch.from_numpy(onnx_logits) - logits).abs().max()),
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "inference.json"))
    parser.add_argument("--method", default="ml_gcn")
    args = parser.parse_args()
    print(write(run(args.method), args.out))


if __name__ == "__main__":
    main()
