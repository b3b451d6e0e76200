"""Where the model sees each class: its own class maps (ADD-GCN / DB-DGCN activation maps, SSGRL attention) or,
for every other method, Grad-CAM on the last backbone stage (Selvaraju et al., ICCV 2017,
https://arxiv.org/abs/1610.02391), drawn over the image (``labelgraph explain``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


def grad_cam(model: torch.nn.Module, images: torch.Tensor, classes: list[int]) -> torch.Tensor:
    """Grad-CAM of ``classes`` for one image: ReLU(sum_k w_k A_k) with w_k the spatial mean of d logit / d A_k.

    Shapes:
        images (1, 3, H, W) -> (len(classes), h, w) on the last backbone stage's grid.
    """
    with torch.enable_grad():
        features = [f.detach().requires_grad_() for f in model.features(images)]
        logits = model.head(features)  # (1, C)
        maps = []
        for c in classes:
            (grad,) = torch.autograd.grad(logits[0, c], features[-1], retain_graph=True)
            weights = grad.mean(dim=(2, 3), keepdim=True)  # (1, D, 1, 1)
            maps.append(F.relu((weights * features[-1]).sum(1))[0].detach())
    return torch.stack(maps)


def explain(model: torch.nn.Module, images: torch.Tensor, classes: list[int]) -> tuple[torch.Tensor, str]:
    """The maps of ``classes`` for one image and what they are (``class maps`` or ``Grad-CAM``)."""
    if model.head.provides("class_maps"):
        with torch.no_grad():
            return model.class_maps(images)[0, classes], "class maps"
    return grad_cam(model, images, classes), "Grad-CAM"


def overlays(
    model: torch.nn.Module,
    images: torch.Tensor,
    image: Image.Image,
    classes: list[int],
    captions: list[str] | None = None,
):
    """:func:`explain` of ``classes`` for one model input ``images`` (1, 3, H, W), each map drawn over ``image`` by
    :func:`overlay` and, with ``captions`` (one per class, e.g. ``"dog  p=0.91"``), labelled by :func:`caption`:
    ``([PIL image per class], kind)``."""
    maps, kind = explain(model, images, classes)
    drawn = [overlay(image, heat.float().cpu().numpy()) for heat in maps]
    return ([caption(d, text) for d, text in zip(drawn, captions, strict=True)] if captions else drawn), kind


def caption(image: Image.Image, text: str) -> Image.Image:
    """``image`` with a dark band along its bottom holding ``text`` (the class and its probability) and, where the
    text leaves room, the colour scale of the map (``jet``: blue = least, red = most attention); the size is
    unchanged."""
    from matplotlib import colormaps
    from PIL import ImageDraw, ImageFont

    w, h = image.size
    band = max(14, h // 10)
    font = ImageFont.load_default(size=max(9, band * 2 // 3))
    pixels = np.asarray(image.convert("RGB"), dtype=np.float64).copy()
    pixels[h - band :] *= 0.35  # darken the band so that white text reads on any picture
    out = Image.fromarray(np.uint8(pixels))
    draw = ImageDraw.Draw(out)
    draw.text((4, h - band / 2), text, fill=(255, 255, 255), font=font, anchor="lm")
    bar_w = max(8, w // 4)
    if 4 + draw.textlength(text, font=font) + 8 + bar_w + 4 <= w:
        ramp = np.uint8(colormaps["jet"](np.linspace(0, 1, bar_w))[:, :3] * 255)  # (bar_w, 3)
        strip = Image.fromarray(np.repeat(ramp[None], band - 2 * (band // 4), axis=0))
        out.paste(strip, (w - bar_w - 4, h - band + band // 4))
    return out


def overlay(image: Image.Image, heat: np.ndarray, alpha: float = 0.5) -> Image.Image:
    """``heat`` (h, w), any range, min-max normalised, stretched to the image and blended in the ``jet`` colour map.
    ``image`` is what the model saw (``labelgraph.data.transforms.eval_view``: the whole image, squash-resized, or
    the centre crop), so the map's grid covers it exactly."""
    from matplotlib import colormaps

    heat = np.asarray(heat, dtype=np.float64)
    span = heat.max() - heat.min()
    heat = (heat - heat.min()) / span if span > 0 else np.zeros_like(heat)
    small = Image.fromarray(np.uint8(heat * 255))
    resized = np.asarray(small.resize(image.size, Image.BILINEAR), dtype=np.float64) / 255
    coloured = colormaps["jet"](resized)[..., :3] * 255
    blended = (1 - alpha) * np.asarray(image.convert("RGB"), dtype=np.float64) + alpha * coloured
    return Image.fromarray(np.uint8(blended.clip(0, 255)))
