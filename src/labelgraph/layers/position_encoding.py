"""DETR's 2-D sine position encoding, computed for the feature map at hand."""

from __future__ import annotations

import math

import torch


def sine_position_encoding(
    height: int,
    width: int,
    dim: int,
    temperature: float = 10000.0,
    scale: float = 2 * math.pi,
    device: torch.device | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Normalised sine/cosine encoding of the row and column of every position (DETR, Query2Label).

    Rows and columns are numbered 1..H and 1..W, normalised to (0, 2π], and each is encoded with ``dim / 2``
    interleaved sin/cos frequencies ``temperature^(2 floor(i/2) / (dim/2))``; the row half comes first.
    Query2Label precomputes this once for the training resolution; here it follows the feature map, so any input
    size works.

    Shapes:
        -> (dim, height, width).
    """
    if dim % 4:
        raise ValueError(f"position encoding size must be a multiple of 4, got {dim}")
    half = dim // 2
    eps = 1e-6
    y = torch.arange(1, height + 1, device=device, dtype=torch.float32) / (height + eps) * scale  # (H,)
    x = torch.arange(1, width + 1, device=device, dtype=torch.float32) / (width + eps) * scale  # (W,)
    freq = temperature ** (2 * (torch.arange(half, device=device) // 2).float() / half)  # (dim/2,)

    def encode(pos: torch.Tensor) -> torch.Tensor:  # (N,) -> (N, dim/2), sin on even and cos on odd channels
        angles = pos[:, None] / freq
        return torch.stack([angles[:, 0::2].sin(), angles[:, 1::2].cos()], dim=2).flatten(1)

    pos_y = encode(y)[:, None, :].expand(height, width, half)
    pos_x = encode(x)[None, :, :].expand(height, width, half)
    return torch.cat([pos_y, pos_x], dim=2).permute(2, 0, 1).to(dtype)  # (dim, H, W)
