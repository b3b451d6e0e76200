"""ONNX export of an exported model, checked against PyTorch on real inputs (``labelgraph export --onnx``).

The graph takes images in [0, 1] (normalisation is inside, as in PyTorch) with a dynamic batch size at the
model's image size, and returns logits. Needs the ``onnx`` extra (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def export_onnx(model: torch.nn.Module, image_size: int, out: str | Path) -> Path:
    """Write ``out`` (``images`` (B, 3, S, S) -> ``logits`` (B, C)) with torch's exporter."""
    model = model.eval()
    example = torch.rand(2, 3, image_size, image_size)
    torch.onnx.export(
        model,
        (example,),
        str(out),
        input_names=["images"],
        output_names=["logits"],
        dynamic_shapes={"images": {0: torch.export.Dim("batch", min=1, max=1024)}},
        dynamo=True,
        verbose=False,
    )
    return Path(out)


def check_onnx(model: torch.nn.Module, onnx_path: str | Path, images: torch.Tensor) -> float:
    """Run the ONNX file with onnxruntime on ``images`` and return the largest |logit difference| to PyTorch."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"images": images.numpy().astype(np.float32)})[0]
    with torch.no_grad():
        torch_logits = model.eval()(images).numpy()
    return float(np.abs(onnx_logits - torch_logits).max())
