"""Robust image loading: every readable image becomes an RGB PIL image, every unreadable one a clear error."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from labelgraph.errors import LabelgraphError


class ImageLoadError(LabelgraphError, OSError):
    """An image file that cannot be decoded; the message names the file."""


def load_image(path: str | Path) -> Image.Image:
    """Open an image as RGB.

    EXIF orientation is applied; grayscale, 16-bit, CMYK and palette images are converted; transparent images
    are composited on white (a black background would invent dark objects). A missing, empty, truncated or
    non-image file raises :class:`ImageLoadError` naming it.
    """
    path = Path(path)
    try:
        with Image.open(path) as img:
            img.load()  # decode now, so truncated files fail here and not inside a transform
            img = ImageOps.exif_transpose(img)
            return _to_rgb(img)
    except Image.DecompressionBombError as err:  # PIL's guard against images that would exhaust memory
        raise ImageLoadError(
            f"{path}: refused, larger than PIL.Image.MAX_IMAGE_PIXELS ({Image.MAX_IMAGE_PIXELS}) pixels ({err})"
        ) from err
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError) as err:
        if isinstance(err, FileNotFoundError):
            raise ImageLoadError(f"{path}: file not found") from err
        raise ImageLoadError(f"{path}: cannot read image ({type(err).__name__}: {err})") from err


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img.copy()
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # high bit-depth grayscale: rescale to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8)).convert("RGB")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
