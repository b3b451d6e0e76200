"""ONNX export of an exported model, checked against PyTorch on real inputs (``labelgraph export --onnx``).

The graph takes images in [0, 1] (normalisation is inside, as in PyTorch) with a dynamic batch size at the
model's image size, and returns logits -- scaled as ``labelgraph calibrate`` fitted them (``logit / temperature +
bias``), so that their sigmoid is the probability ``labelgraph predict`` gives. Needs the ``onnx`` extra (onnx,
onnxscript, onnxruntime).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


class ScaledLogits(torch.nn.Module):
    """``model``'s logits scaled as calibration fitted them: ``logit / temperature + bias`` (one value each, or one per
    class): what the exported graph computes."""

    def __init__(self, model: torch.nn.Module, temperature: float | list[float], bias: float | list[float]) -> None:
        super().__init__()
        self.model = model
        self.register_buffer("temperature", torch.as_tensor(temperature, dtype=torch.float32).reshape(1, -1))
        self.register_buffer("bias", torch.as_tensor(bias, dtype=torch.float32).reshape(1, -1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images) / self.temperature + self.bias  # (B, C) with (1, C or 1)


def onnx_module(
    model: torch.nn.Module, temperature: float | list[float] = 1.0, bias: float | list[float] = 0.0
) -> torch.nn.Module:
    """The module the ONNX graph is traced from: the model, with its logits' scaling when it has one."""
    if temperature == 1.0 and bias == 0.0:
        return model.eval()
    return ScaledLogits(model, temperature, bias).eval()


def export_onnx(
    model: torch.nn.Module,
    image_size: int,
    out: str | Path,
    temperature: float | list[float] = 1.0,
    bias: float | list[float] = 0.0,
) -> Path:
    """Write ``out`` (``images`` (B, 3, S, S) -> ``logits`` (B, C), scaled: ``logit / temperature + bias``) with
    torch's exporter."""
    model = onnx_module(model, temperature, bias)
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


def check_onnx(
    model: torch.nn.Module,
    onnx_path: str | Path,
    images: torch.Tensor,
    temperature: float | list[float] = 1.0,
    bias: float | list[float] = 0.0,
) -> float:
    """Run the ONNX file with onnxruntime on ``images`` and return the largest |logit difference| to PyTorch (the
    model's logits scaled the same way)."""
    model = onnx_module(model, temperature, bias)
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    onnx_logits = session.run(None, {"images": images.numpy().astype(np.float32)})[0]
    with torch.no_grad():
        torch_logits = model.eval()(images).numpy()
    return float(np.abs(onnx_logits - torch_logits).max())
