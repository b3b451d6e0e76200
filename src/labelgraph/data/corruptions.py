"""Image corruptions in the style of ImageNet-C (Hendrycks & Dietterich, ICLR 2019, https://arxiv.org/abs/1903.12261)
at five severities, plus occlusion by random boxes, for robustness evaluation.

Each corruption takes a float image (3, H, W) in [0, 1] at the network's input size -- ImageNet-C corrupts the
224 x 224 network input, so sizes in pixels (the defocus radius) are scaled by min(H, W) / 224 -- and a
``torch.Generator`` for its random draws, so a corrupted test set is the same in every run and for every model.

Severity parameters (ImageNet-C's, where it has the corruption):
    gaussian_noise    sigma of additive noise: .08, .12, .18, .26, .38
    defocus_blur      disk radius (at 224 px) and the Gaussian sigma that anti-aliases it: (3, .1), (4, .5), (6, .5),
                      (8, .5), (10, .5)
    jpeg_compression  JPEG quality: 25, 18, 15, 10, 7
    brightness        + c on the HSV value channel: .1, .2, .3, .4, .5
    contrast          (x - channel mean) * c + channel mean: .4, .3, .2, .1, .05
    occlusion         boxes of random colour (sides 10-30 % of the image) until this fraction of the image is covered:
                      .1, .2, .3, .4, .5 (not in ImageNet-C; the occlusion DB-DGCN's robustness claim is about)
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

SEVERITIES = (1, 2, 3, 4, 5)
NOISE_SIGMA = (0.08, 0.12, 0.18, 0.26, 0.38)
DEFOCUS = ((3, 0.1), (4, 0.5), (6, 0.5), (8, 0.5), (10, 0.5))
JPEG_QUALITY = (25, 18, 15, 10, 7)
BRIGHTNESS = (0.1, 0.2, 0.3, 0.4, 0.5)
CONTRAST = (0.4, 0.3, 0.2, 0.1, 0.05)
OCCLUDED_FRACTION = (0.1, 0.2, 0.3, 0.4, 0.5)


def gaussian_noise(image: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(image.shape, generator=generator) * NOISE_SIGMA[severity - 1]
    return (image + noise).clamp(0, 1)


def defocus_kernel(radius: float, alias_sigma: float) -> torch.Tensor:
    """ImageNet-C's aliased disk: a normalised disk of ``radius``, blurred by a 3 x 3 Gaussian of ``alias_sigma``."""
    r = max(radius, 0.5)
    grid = torch.arange(-math.ceil(r), math.ceil(r) + 1, dtype=torch.float64)
    disk = ((grid[:, None] ** 2 + grid[None, :] ** 2) <= r**2).double()
    disk /= disk.sum()
    g = torch.exp(-(torch.arange(-1, 2, dtype=torch.float64) ** 2) / (2 * max(alias_sigma, 1e-6) ** 2))
    g = g / g.sum()
    kernel = F.conv2d(F.pad(disk[None, None], (1, 1, 1, 1)), (g[:, None] * g[None, :])[None, None])[0, 0]
    return (kernel / kernel.sum()).float()


def defocus_blur(image: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    radius, alias = DEFOCUS[severity - 1]
    scale = min(image.shape[-2:]) / 224
    kernel = defocus_kernel(radius * scale, alias)
    pad = kernel.shape[-1] // 2
    padded = F.pad(image[None], (pad, pad, pad, pad), mode="reflect" if pad < min(image.shape[-2:]) else "replicate")
    weight = kernel[None, None].expand(3, 1, -1, -1)
    return F.conv2d(padded, weight, groups=3)[0].clamp(0, 1)


def jpeg_compression(image: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    array = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG", quality=JPEG_QUALITY[severity - 1])
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        out = np.asarray(decoded.convert("RGB"), dtype=np.float32) / 255
    return torch.from_numpy(out).permute(2, 0, 1).contiguous()


def brightness(image: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    """V + c in HSV (hue and saturation kept): RGB scales by clip(V + c) / V; black pixels become grey c."""
    c = BRIGHTNESS[severity - 1]
    value = image.amax(dim=0, keepdim=True)
    brighter = (value + c).clamp(max=1.0)
    scaled = image * brighter / value.clamp(min=1e-12)
    return torch.where(value > 0, scaled, brighter.expand_as(image)).clamp(0, 1)


def contrast(image: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    c = CONTRAST[severity - 1]
    mean = image.mean(dim=(1, 2), keepdim=True)
    return ((image - mean) * c + mean).clamp(0, 1)


def occlusion(image: torch.Tensor, severity: int, generator: torch.Generator) -> torch.Tensor:
    target = OCCLUDED_FRACTION[severity - 1]
    out = image.clone()
    h, w = image.shape[-2:]
    covered = torch.zeros(h, w, dtype=torch.bool)
    for _ in range(1000):  # bounded; coverage grows by at least one box per step
        if covered.float().mean() >= target:
            break
        side = min(h, w) * (0.1 + 0.2 * torch.rand((), generator=generator).item())
        bh, bw = max(1, round(side)), max(1, round(side))
        y = int(torch.randint(0, max(h - bh, 0) + 1, (), generator=generator))
        x = int(torch.randint(0, max(w - bw, 0) + 1, (), generator=generator))
        out[:, y : y + bh, x : x + bw] = torch.rand(3, 1, 1, generator=generator)
        covered[y : y + bh, x : x + bw] = True
    return out


CORRUPTIONS: dict[str, Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "defocus_blur": defocus_blur,
    "jpeg_compression": jpeg_compression,
    "brightness": brightness,
    "contrast": contrast,
    "occlusion": occlusion,
}


def corrupt(image: torch.Tensor, name: str, severity: int, seed: int) -> torch.Tensor:
    """``image`` (3, H, W) in [0, 1] under corruption ``name`` at ``severity`` (1-5), drawing from ``seed``."""
    if name not in CORRUPTIONS:
        raise ValueError(f"unknown corruption {name!r}; available: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be one of {SEVERITIES}, got {severity}")
    generator = torch.Generator().manual_seed(int(seed))
    return CORRUPTIONS[name](image.float(), severity, generator)
