"""The PIL training pipeline labelgraph used before its tensor pipeline (v0.x), kept as the benchmarks' reference.

Same random draws as ``labelgraph.data.transforms`` (Python's ``random`` for the crop box, torch's generator for the
flip), so for one seed the two pipelines crop the same box and differ by interpolation only.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch
from PIL import Image, ImageOps
from torchvision.transforms import v2

from labelgraph.data.transforms import ML_GCN_SCALES, MultiScaleCrop


def load_pil(path: str | Path) -> Image.Image:
    """The former ``load_image``: decode, EXIF-transpose (a copy), RGB (another copy)."""
    with Image.open(path) as img:
        img.load()
        img = ImageOps.exif_transpose(img)
        return img.copy() if img.mode == "RGB" else img.convert("RGB")


class PILMultiScaleCrop:
    """The former PIL ``MultiScaleCrop`` (crop, then ``Image.resize`` bilinear), optionally after a squash resize."""

    def __init__(self, size: int, frame: int | None = None) -> None:
        self.size, self.frame = size, frame

    def __call__(self, img: Image.Image) -> Image.Image:
        if self.frame is not None:
            img = img.resize((self.frame, self.frame), Image.BILINEAR)
        w, h = img.size
        sides = [int(min(w, h) * s) for s in ML_GCN_SCALES]
        sides = [self.size if abs(s - self.size) < 3 else s for s in sides]
        pairs = [(sw, sh) for i, sh in enumerate(sides) for j, sw in enumerate(sides) if abs(i - j) <= 2]
        cw, ch = random.choice(pairs)
        x, y = random.choice(MultiScaleCrop._offsets(w, h, cw, ch))
        return img.crop((x, y, x + cw, y + ch)).resize((self.size, self.size), Image.BILINEAR)


def pil_train_transform(preset: str, size: int) -> v2.Compose:
    """``ml_gcn`` or ``add_gcn`` the former way: PIL crop + resize + flip, then a float tensor in [0, 1]."""
    frame = size + 64 if preset == "add_gcn" else None
    return v2.Compose(
        [PILMultiScaleCrop(size, frame), v2.RandomHorizontalFlip(), v2.PILToTensor(), v2.ToDtype(torch.float32, True)]
    )


def pil_eval_transform(size: int) -> v2.Compose:
    return v2.Compose([v2.Resize((size, size), antialias=True), v2.PILToTensor(), v2.ToDtype(torch.float32, True)])


class PILDataset(torch.utils.data.Dataset):
    """The former ``MultiLabelDataset`` item: forked RNG per sample, PIL decode and augment, float32 out."""

    def __init__(self, files: list[Path], transform: v2.Compose, num_classes: int = 80) -> None:
        self.files, self.transform, self.target = files, transform, torch.zeros(num_classes, dtype=torch.int8)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        state = random.getstate()
        try:
            with torch.random.fork_rng(devices=[]):
                random.seed(index)
                torch.manual_seed(index)
                return self.transform(load_pil(self.files[index])), self.target
        finally:
            random.setstate(state)
