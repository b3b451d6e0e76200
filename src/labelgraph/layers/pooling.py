"""Global pooling of a feature map, as the methods' heads pool the last backbone stage."""

from __future__ import annotations

from typing import Literal

import torch

PoolMode = Literal["max", "avg"]


def global_pool(x: torch.Tensor, mode: PoolMode) -> torch.Tensor:
    """(B, C, H, W) -> (B, C) by global max or average pooling (adaptive: any H, W)."""
    if mode == "max":
        return x.amax(dim=(2, 3))
    if mode == "avg":
        return x.mean(dim=(2, 3))
    raise ValueError(f"unknown pooling {mode!r}; use 'max' or 'avg'")
