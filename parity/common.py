"""What the parity harnesses share: the comparison and the perturbation of BatchNorm statistics."""

from __future__ import annotations

import torch


def relative_difference(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b|."""
    return float((a - b).abs().max() / b.abs().max())


def randomise_batchnorm(model: torch.nn.Module, seed: int) -> None:
    """Random running statistics (mean ~ N(0, 0.01), variance in [0.5, 1.5)): the fresh 0 / 1 would hide a layer
    mapped to the wrong BatchNorm."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
