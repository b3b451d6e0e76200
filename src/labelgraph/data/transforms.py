"""Transform presets. Pipelines output float tensors in [0, 1]; the model normalises (see MultiLabelClassifier).

Train presets:
    ``ml_gcn``: TSN-style ``MultiScaleCrop`` (scales 1, .875, .75, .66, .5; aspect distortion <= 2 steps; 13 fixed
        offsets) to S x S + horizontal flip, on the raw image (ML-GCN).
    ``add_gcn``: resize to (S + 64)^2 first, then as ``ml_gcn`` (ADD-GCN, SADCL stage 2).
    ``asl``: squash-resize to S x S, ``Cutout(0.5)`` (a random-colour square of half the image side), RandAugment
        (ASL, Query2Label; torchvision's RandAugment stands in for the ``randaugment`` pip package they use).
    ``ssgrl``: squash-resize to (10/9 S)^2, a random square crop of side (10/9, 1, 8/9, 2/3, 5/9) x S chosen
        uniformly, resized to S x S; no flip (SSGRL: 640 -> crop of 640/576/512/384/320 -> 576).
    ``review``: the GGNN/SSGRL/ML-GCN review's (graphMLC, albumentations): squash-resize, then with p = 0.3 one of
        contrast / gamma / brightness / equalisation (its CLAHE), with p = 0.5 a shift-scale-rotate (shift 6.25 %,
        scale +-10 %, rotation up to 45 degrees), and a horizontal flip.
    ``flip``: squash-resize + horizontal flip (a light preset for small data).
    ``none``: the eval pipeline.
Eval presets: ``resize`` squash-resizes to S x S (every anchor paper tests this way, except SSGRL);
``center_crop`` resizes the shorter side to 10/9 S and takes the central S x S (SSGRL: 640 -> 576).
"""

from __future__ import annotations

import random
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw
from torchvision.transforms import v2

TRAIN_PRESETS = ("ml_gcn", "add_gcn", "asl", "ssgrl", "review", "flip", "none")
EVAL_PRESETS = ("resize", "center_crop")
SSGRL_CROPS = (640, 576, 512, 384, 320)  # crop sides at S = 576, scaled with S
ML_GCN_SCALES = (1.0, 0.875, 0.75, 0.66, 0.5)


class MultiScaleCrop:
    """TSN/ML-GCN multi-scale crop: pick a crop side per axis from ``scales`` x min(w, h), with the two sides at most
    ``max_distort`` scale steps apart, place it at one of 13 fixed offsets, and resize it to ``size`` x ``size``.

    Crop sides within 3 pixels of ``size`` snap to ``size``, as in the original. (ML-GCN's class default scale list
    has ``875`` where ``.875`` was meant; we use the list its callers pass.)
    """

    def __init__(self, size: int, scales: Sequence[float] = ML_GCN_SCALES, max_distort: int = 2) -> None:
        self.size, self.scales, self.max_distort = size, tuple(scales), max_distort

    def __call__(self, img: Image.Image) -> Image.Image:
        w, h = img.size
        base = min(w, h)
        sides = [int(base * s) for s in self.scales]
        sides = [self.size if abs(s - self.size) < 3 else s for s in sides]
        pairs = [(sw, sh) for i, sh in enumerate(sides) for j, sw in enumerate(sides) if abs(i - j) <= self.max_distort]
        cw, ch = random.choice(pairs)
        x, y = random.choice(self._offsets(w, h, cw, ch))
        return img.crop((x, y, x + cw, y + ch)).resize((self.size, self.size), Image.BILINEAR)

    @staticmethod
    def _offsets(w: int, h: int, cw: int, ch: int) -> list[tuple[int, int]]:
        sx, sy = (w - cw) // 4, (h - ch) // 4
        grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
        return [(i * sx, j * sy) for i, j in grid]

    def __repr__(self) -> str:
        return f"MultiScaleCrop(size={self.size}, scales={self.scales}, max_distort={self.max_distort})"


class Cutout:
    """ASL's CutoutPIL: a rectangle of ``fraction`` x the image side, random colour, centred at a random point and
    clipped at the borders. (Query2Label's ``--cutout`` flag yields a degenerate patch; this is the intended one.)"""

    def __init__(self, fraction: float = 0.5) -> None:
        self.fraction = fraction

    def __call__(self, img: Image.Image) -> Image.Image:
        img = img.copy()
        w, h = img.size
        cw, ch = int(self.fraction * w), int(self.fraction * h)
        cx, cy = random.randint(0, w - 1), random.randint(0, h - 1)
        box = (max(cx - cw // 2, 0), max(cy - ch // 2, 0), min(cx + cw // 2, w), min(cy + ch // 2, h))
        if box[2] > box[0] and box[3] > box[1]:
            colour = tuple(random.randint(0, 255) for _ in range(3))
            ImageDraw.Draw(img).rectangle(box, fill=colour)
        return img

    def __repr__(self) -> str:
        return f"Cutout(fraction={self.fraction})"


class RandomGamma:
    """albumentations' ``RandomGamma``: ``x ** (g / 100)`` with ``g`` uniform in ``gamma_limit`` (on [0, 1] values)."""

    def __init__(self, gamma_limit: tuple[int, int] = (80, 120)) -> None:
        self.gamma_limit = gamma_limit

    def __call__(self, img: Image.Image) -> Image.Image:
        return v2.functional.adjust_gamma(img, random.uniform(*self.gamma_limit) / 100)

    def __repr__(self) -> str:
        return f"RandomGamma(gamma_limit={self.gamma_limit})"


def _review_steps(s: int) -> list:
    photometric = v2.RandomChoice(
        [v2.ColorJitter(contrast=0.2), RandomGamma((80, 120)), v2.ColorJitter(brightness=0.2), v2.RandomEqualize(1.0)]
    )
    geometric = v2.RandomAffine(  # (albumentations reflects at the border; torchvision fills with black)
        degrees=45, translate=(0.0625, 0.0625), scale=(0.9, 1.1), interpolation=v2.InterpolationMode.BILINEAR
    )
    return [
        v2.Resize((s, s), antialias=True),
        v2.RandomApply([photometric], p=0.3),
        v2.RandomApply([geometric], p=0.5),
        v2.RandomHorizontalFlip(),
    ]


def _to_tensor() -> list:
    return [v2.PILToTensor(), v2.ToDtype(torch.float32, scale=True)]


def eval_transform(image_size: int, preset: str = "resize") -> v2.Compose:
    """The evaluation pipeline ``preset`` (see the module docstring) at ``image_size``; float tensor in [0, 1]."""
    s = image_size
    if preset == "resize":
        steps = [v2.Resize((s, s), antialias=True)]
    elif preset == "center_crop":
        steps = [v2.Resize(round(s * 640 / 576), antialias=True), v2.CenterCrop(s)]
    else:
        raise ValueError(f"unknown eval transform {preset!r}; available: {', '.join(EVAL_PRESETS)}")
    return v2.Compose([*steps, *_to_tensor()])


def train_transform(preset: str, image_size: int) -> v2.Compose:
    """The training augmentation ``preset`` (see the module docstring) at ``image_size``."""
    s = image_size
    resize = v2.Resize((s, s), antialias=True)
    steps = {
        "ml_gcn": [MultiScaleCrop(s), v2.RandomHorizontalFlip()],
        "add_gcn": [v2.Resize((s + 64, s + 64), antialias=True), MultiScaleCrop(s), v2.RandomHorizontalFlip()],
        "asl": [resize, Cutout(0.5), v2.RandAugment()],
        "ssgrl": [
            v2.Resize((round(s * 640 / 576),) * 2, antialias=True),
            v2.RandomChoice([v2.RandomCrop(round(s * c / 576)) for c in SSGRL_CROPS]),
            resize,
        ],
        "review": _review_steps(s),
        "flip": [resize, v2.RandomHorizontalFlip()],
        "none": [resize],
    }
    if preset not in steps:
        raise ValueError(f"unknown train transform {preset!r}; available: {', '.join(TRAIN_PRESETS)}")
    return v2.Compose([*steps[preset], *_to_tensor()])
