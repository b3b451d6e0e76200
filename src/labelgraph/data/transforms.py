"""Transform presets on uint8 tensors (3, H, W): what goes in is :func:`~labelgraph.data.read_image`'s output (or a
PIL image), what comes out is a uint8 tensor (3, S, S), dense in channels-last memory (see ``ChannelsLast``); the
model scales and normalises it (see
``MultiLabelClassifier``), so 4x fewer bytes travel from loader workers and to the GPU than as float.

Crops are views, every preset resizes once with antialiasing (the kernel of PIL's resize; upsampling is
plain bilinear either way), and every random draw comes from Python's ``random`` and torch's global generator, which
``MultiLabelDataset`` seeds per sample.

Train presets:
    ``ml_gcn``: TSN-style ``MultiScaleCrop`` (scales 1, .875, .75, .66, .5; aspect distortion <= 2 steps; 13 fixed
        offsets) to S x S + horizontal flip, on the raw image (ML-GCN).
    ``add_gcn``: resize to (S + 64)^2 first, then as ``ml_gcn`` (ADD-GCN, SADCL stage 2).
    ``asl``: squash-resize to S x S, ``Cutout(0.5)`` (a random-colour square of half the image side), RandAugment
        (ASL, Query2Label; torchvision's RandAugment stands in for the ``randaugment`` pip package they use).
    ``ssgrl``: squash-resize to (10/9 S)^2, a random square crop of side (10/9, 1, 8/9, 2/3, 5/9) x S chosen
        uniformly, resized to S x S; no flip (SSGRL: 640 -> crop of 640/576/512/384/320 -> 576).
    ``c_tran``: ``ssgrl`` + horizontal flip (C-Tran's load_data.py: the same crops, then a flip).
    ``graphmlc``: graphMLC's augmentation (albumentations there; ``review``, its old name, is still read for one
        release, with a DeprecationWarning): squash-resize, then with p = 0.3 one of
        contrast / gamma / brightness / equalisation (its CLAHE), with p = 0.5 a shift-scale-rotate (shift 6.25 %,
        scale +-10 %, rotation up to 45 degrees), and a horizontal flip.
    ``flip``: squash-resize + horizontal flip (a light preset for small data).
    ``none``: the eval pipeline.
Eval presets: ``resize`` squash-resizes to S x S (every anchor paper tests this way, except SSGRL);
``center_crop`` resizes the shorter side to 10/9 S and takes the central S x S (SSGRL: 640 -> 576).
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from labelgraph.models.model_config import EVAL_TRANSFORMS

TRAIN_PRESETS = ("ml_gcn", "add_gcn", "asl", "ssgrl", "c_tran", "graphmlc", "flip", "none")
#: old preset names still read for one release: old -> new
RENAMED_PRESETS = {"review": "graphmlc"}
EVAL_PRESETS = EVAL_TRANSFORMS  # what a trained model can record (labelgraph.models.model_config)
SSGRL_CROPS = (640, 576, 512, 384, 320)  # crop sides at S = 576, scaled with S
ML_GCN_SCALES = (1.0, 0.875, 0.75, 0.66, 0.5)


def crop_resized(img: torch.Tensor, box: tuple[int, int, int, int], frame: tuple[int, int], size: int) -> torch.Tensor:
    """The crop ``box`` = (x, y, w, h) of ``img`` squash-resized to ``frame`` = (W, H), resized to ``size`` x ``size``:
    one resize of the matching source region instead of two (the result differs by interpolation only)."""
    h, w = img.shape[-2:]
    fx, fy = w / frame[0], h / frame[1]
    x0, y0 = round(box[0] * fx), round(box[1] * fy)
    x1, y1 = max(round((box[0] + box[2]) * fx), x0 + 1), max(round((box[1] + box[3]) * fy), y0 + 1)
    return resize_image(img[..., y0:y1, x0:x1], size)  # the crop (3, h', w') is a view


def resize_image(img: torch.Tensor, size: int) -> torch.Tensor:
    """Antialiased bilinear resize of a uint8 (3, H, W) to (3, size, size), through PyTorch's channels-last kernel.

    A crop of a decoded image is a strided view; handed over as it is, it takes the generic kernel (2.4x slower at
    448 px). One channels-last copy of the crop (what ``decode_jpeg`` returns is already channels-last) fixes that.
    """
    batch = img.unsqueeze(0).contiguous(memory_format=torch.channels_last)  # (1, 3, H, W), HWC in memory
    return F.interpolate(batch, size=(size, size), mode="bilinear", antialias=True)[0]


class MultiScaleCrop:
    """TSN/ML-GCN multi-scale crop: pick a crop side per axis from ``scales`` x min(w, h), with the two sides at most
    ``max_distort`` scale steps apart, place it at one of 13 fixed offsets, and resize it to ``size`` x ``size``.

    Crop sides within 3 pixels of ``size`` snap to ``size``, as in the original. (ML-GCN's class default scale list
    has ``875`` where ``.875`` was meant; we use the list its callers pass.) ``frame`` = F crops the image as if it
    had first been squash-resized to F x F (ADD-GCN's ``Resize(S + 64)``), with one resize in all.
    """

    def __init__(
        self, size: int, scales: Sequence[float] = ML_GCN_SCALES, max_distort: int = 2, frame: int | None = None
    ) -> None:
        self.size, self.scales, self.max_distort, self.frame = size, tuple(scales), max_distort, frame

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        if self.frame is not None:
            w = h = self.frame
        base = min(w, h)
        sides = [int(base * s) for s in self.scales]
        sides = [self.size if abs(s - self.size) < 3 else s for s in sides]
        pairs = [(sw, sh) for i, sh in enumerate(sides) for j, sw in enumerate(sides) if abs(i - j) <= self.max_distort]
        cw, ch = random.choice(pairs)
        x, y = random.choice(self._offsets(w, h, cw, ch))
        return crop_resized(img, (x, y, cw, ch), (w, h), self.size)

    @staticmethod
    def _offsets(w: int, h: int, cw: int, ch: int) -> list[tuple[int, int]]:
        sx, sy = (w - cw) // 4, (h - ch) // 4
        grid = [(0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1), (1, 3), (3, 3)]
        return [(i * sx, j * sy) for i, j in grid]

    def __repr__(self) -> str:
        frame = f", frame={self.frame}" if self.frame is not None else ""
        return f"MultiScaleCrop(size={self.size}, scales={self.scales}, max_distort={self.max_distort}{frame})"


class SquareCrop:
    """SSGRL's crop: squash-resize to ``frame`` x ``frame``, take a square of a side drawn uniformly from ``sides`` at a
    uniform position, resize it to ``size`` -- done as one resize of the matching source region."""

    def __init__(self, size: int, sides: Sequence[int], frame: int) -> None:
        self.size, self.sides, self.frame = size, tuple(sides), frame

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        side = min(random.choice(self.sides), self.frame)
        x, y = random.randint(0, self.frame - side), random.randint(0, self.frame - side)
        return crop_resized(img, (x, y, side, side), (self.frame, self.frame), self.size)

    def __repr__(self) -> str:
        return f"SquareCrop(size={self.size}, sides={self.sides}, frame={self.frame})"


class Cutout:
    """ASL's CutoutPIL: a rectangle of ``fraction`` x the image side, random colour, centred at a random point and
    clipped at the borders. (Query2Label's ``--cutout`` flag yields a degenerate patch; this is the intended one.)"""

    def __init__(self, fraction: float = 0.5) -> None:
        self.fraction = fraction

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        h, w = img.shape[-2:]
        cw, ch = int(self.fraction * w), int(self.fraction * h)
        cx, cy = random.randint(0, w - 1), random.randint(0, h - 1)
        x0, y0, x1, y1 = max(cx - cw // 2, 0), max(cy - ch // 2, 0), min(cx + cw // 2, w), min(cy + ch // 2, h)
        if x1 > x0 and y1 > y0:
            colour = torch.tensor([random.randint(0, 255) for _ in range(3)], dtype=img.dtype)
            img = img.clone()
            img[..., y0 : y1 + 1, x0 : x1 + 1] = colour.view(3, 1, 1)  # PIL's rectangle includes both corners
        return img

    def __repr__(self) -> str:
        return f"Cutout(fraction={self.fraction})"


class RandomGamma:
    """albumentations' ``RandomGamma``: ``x ** (g / 100)`` with ``g`` uniform in ``gamma_limit`` (on [0, 1] values)."""

    def __init__(self, gamma_limit: tuple[int, int] = (80, 120)) -> None:
        self.gamma_limit = gamma_limit

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return v2.functional.adjust_gamma(img, random.uniform(*self.gamma_limit) / 100)

    def __repr__(self) -> str:
        return f"RandomGamma(gamma_limit={self.gamma_limit})"


def _graphmlc_steps(s: int) -> list:
    photometric = v2.RandomChoice(
        [v2.ColorJitter(contrast=0.2), RandomGamma((80, 120)), v2.ColorJitter(brightness=0.2), v2.RandomEqualize(1.0)]
    )
    geometric = v2.RandomAffine(  # (albumentations reflects at the border; torchvision fills with black)
        degrees=45, translate=(0.0625, 0.0625), scale=(0.9, 1.1), interpolation=v2.InterpolationMode.BILINEAR
    )
    return [
        SquashResize(s),
        v2.RandomApply([photometric], p=0.3),
        v2.RandomApply([geometric], p=0.5),
        v2.RandomHorizontalFlip(),
    ]


class SquashResize:
    """Resize to ``size`` x ``size`` whatever the aspect ratio (:func:`resize_image`)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return resize_image(img, self.size)

    def __repr__(self) -> str:
        return f"SquashResize(size={self.size})"


class ChannelsLast:
    """The last step of every pipeline: (3, H, W) dense in channels-last (HWC) memory, a copy only where a crop left
    a view. ``collate_images`` then stacks a batch with one memcpy per image, and the batch reaches the model as the
    channels-last (B, 3, H, W) the GPU kernels want; a CHW-contiguous image would cost a transposing copy here (0.8 ms
    at 448 px) and another in the collation."""

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        return img.permute(1, 2, 0).contiguous().permute(2, 0, 1)

    def __repr__(self) -> str:
        return "ChannelsLast()"


def _pipeline(steps: list) -> v2.Compose:
    return v2.Compose([v2.PILToTensor(), *steps, v2.ToPureTensor(), ChannelsLast()])  # a tensor passes PILToTensor


def eval_transform(image_size: int, preset: str = "resize") -> v2.Compose:
    """The evaluation pipeline ``preset`` (see the module docstring) at ``image_size``: uint8 (3, S, S)."""
    s = image_size
    if preset == "resize":
        steps = [SquashResize(s)]
    elif preset == "center_crop":
        steps = [v2.Resize(round(s * 640 / 576), antialias=True), v2.CenterCrop(s)]
    else:
        raise ValueError(f"unknown eval transform {preset!r}; available: {', '.join(EVAL_PRESETS)}")
    return _pipeline(steps)


def eval_view(img: torch.Tensor, preset: str) -> torch.Tensor:
    """The part of ``img`` (3, H, W) that the eval ``preset`` keeps, before resizing: all of it (``resize``), or the
    central square of side 9/10 of the shorter side (``center_crop``: 10/9 S -> S). Maps drawn over this region cover
    exactly what the model saw."""
    if preset == "resize":
        return img
    if preset != "center_crop":
        raise ValueError(f"unknown eval transform {preset!r}; available: {', '.join(EVAL_PRESETS)}")
    h, w = img.shape[-2:]
    side = max(1, round(min(h, w) * 576 / 640))
    top, left = (h - side) // 2, (w - side) // 2
    return img[..., top : top + side, left : left + side]


def decode_size(preset: str, image_size: int) -> int:
    """The side both image sides must keep when decoded for ``preset`` (train or eval) to lose no detail: a JPEG of
    twice this is decoded at a reduced DCT scale (:func:`~labelgraph.data.read_image`'s ``min_size``; 1/2, 1/4, 1/8).

    The rule: no view the preset can draw is resized up from fewer pixels than its paper's pipeline, which decodes in
    full, would give it. A crop taken from the image itself (``ml_gcn``: a side as small as 0.5 x the shorter one)
    needs the shorter side at S / (smallest crop scale) = 2 S, so that the smallest crop still spans S decoded pixels.
    A pipeline that squash-resizes to a frame first and crops that (``add_gcn``: S + 64, ``ssgrl``, ``c_tran`` and
    the ``center_crop`` evaluation: 10/9 S; ``asl``, ``graphmlc``, ``flip``, ``none``, ``resize``: S) needs the
    frame: its crops see the frame's pixels in the paper's pipeline too. ``tests/test_decode_scale.py`` reads each
    preset's frame and crop scales from the transform objects and holds this function to them."""
    s = image_size
    frame = s * 640 / 576  # SSGRL's and C-Tran's 640 for 576
    sides = {"ml_gcn": s / min(ML_GCN_SCALES), "add_gcn": s + 64, "ssgrl": frame, "c_tran": frame, "center_crop": frame}
    return round(sides.get(preset, s))


def current_preset_name(preset: str) -> str:
    """A train preset's name, an old one (:data:`RENAMED_PRESETS`) replaced by its new one with a warning."""
    if preset in RENAMED_PRESETS:
        new = RENAMED_PRESETS[preset]
        warnings.warn(
            f"train transform {preset!r} is now called {new!r}; the old name goes in labelgraph 0.2",
            DeprecationWarning,
            stacklevel=3,
        )
        return new
    return preset


def train_transform(preset: str, image_size: int) -> v2.Compose:
    """The training augmentation ``preset`` (see the module docstring) at ``image_size``."""
    preset = current_preset_name(preset)
    s = image_size
    resize = SquashResize(s)
    steps = {
        "ml_gcn": [MultiScaleCrop(s), v2.RandomHorizontalFlip()],
        "add_gcn": [MultiScaleCrop(s, frame=s + 64), v2.RandomHorizontalFlip()],
        "asl": [resize, Cutout(0.5), v2.RandAugment()],
        "ssgrl": [SquareCrop(s, [round(s * c / 576) for c in SSGRL_CROPS], frame=round(s * 640 / 576))],
        "c_tran": [
            SquareCrop(s, [round(s * c / 576) for c in SSGRL_CROPS], frame=round(s * 640 / 576)),
            v2.RandomHorizontalFlip(),
        ],  # fmt: skip
        "graphmlc": _graphmlc_steps(s),
        "flip": [resize, v2.RandomHorizontalFlip()],
        "none": [resize],
    }
    if preset not in steps:
        raise ValueError(f"unknown train transform {preset!r}; available: {', '.join(TRAIN_PRESETS)}")
    return _pipeline(steps[preset])
