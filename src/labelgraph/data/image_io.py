"""Robust image loading: every readable image becomes RGB, every unreadable one a clear error.

Two readers with one meaning:

- :func:`read_image` -> uint8 tensor (3, H, W), for the data pipeline and ``predict``. Baseline and progressive
  8-bit RGB or grayscale JPEGs are decoded by ``torchvision.io.decode_jpeg`` (libjpeg-turbo, straight into a
  tensor, EXIF orientation applied); everything else -- CMYK JPEGs, PNG, TIFF, palette, alpha, 16-bit, other formats
  -- goes through PIL as in :func:`load_image`. A JPEG at least twice the size the caller needs on both sides is
  decoded by PIL at a reduced DCT scale (``Image.draft``: 1/2, 1/4 or 1/8, never below the requested size), which
  is several times faster than a full decode for the large originals of NUS-WIDE, MIRFLICKR and phone photos.
- :func:`load_image` -> RGB PIL image, for figures and reports.

Both estimate what a decode will cost from the header before decoding -- width x height x bands x bytes per stored
sample, after the DCT reduction a JPEG gets (:func:`decoded_bytes`) -- and refuse an image beyond ``max_decoded_bytes``
(:class:`ImageTooLargeError`): a 170 KB 16-bit PNG can declare 9400 x 9400 pixels, half a gigabyte and seconds of
inflating. Floating-point images with NaN or infinite pixels are refused too (they would decode to black).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_jpeg

from labelgraph.errors import LabelgraphError

# torchvision 0.29 deprecates its image codecs in favour of TorchCodec, whose decode_jpeg has no EXIF orientation
# yet; until it has, torchvision's libjpeg-turbo decoder stays, without a warning per image.
warnings.filterwarnings("ignore", category=DeprecationWarning, module="torchvision.io.image")

JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
#: what one decode may hold unless a caller says otherwise (a 16-bit RGB image of ~13,000 x 13,000 pixels); the server
#: sets its own, lower limit (``labelgraph serve --max-decoded-mb``)
DEFAULT_MAX_DECODED_BYTES = 1 << 30


class ImageLoadError(LabelgraphError, OSError):
    """An image file that cannot be decoded; the message names the file."""


class ImageTooLargeError(ImageLoadError):
    """An image whose decode would hold more than allowed (estimated from its header, before decoding)."""


def load_image(path: str | Path, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES) -> Image.Image:
    """Open an image as RGB.

    EXIF orientation is applied; grayscale, 16-bit, CMYK and palette images are converted; transparent images
    are composited on white (a black background would invent dark objects). A missing, empty, truncated or
    non-image file raises :class:`ImageLoadError` naming it.
    """
    path = Path(path)
    with _errors_named(path):
        img = Image.open(path)
        check_decode_cost(img, None, max_decoded_bytes, path)
        return _decode_pil(img, None)


def read_image(
    path: str | Path, min_size: tuple[int, int] | None = None, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
) -> torch.Tensor:
    """Read an image as a uint8 tensor (3, H, W) with the conversions of :func:`load_image`.

    Args:
        path: the image file.
        min_size: (width, height) the caller needs at least (after EXIF rotation the two may swap, so pass a
            square where that matters). A JPEG of at least twice this on both sides is decoded at a reduced scale
            that keeps both sides at or above it; None decodes at full size.
        max_decoded_bytes: refuse an image whose decode would hold more (:func:`decoded_bytes`).
    """
    path = Path(path)
    with _errors_named(path):
        data = path.read_bytes()
    return decode_image(data, min_size, name=str(path), max_decoded_bytes=max_decoded_bytes)


def decode_image(
    data: bytes,
    min_size: tuple[int, int] | None = None,
    name: str = "<bytes>",
    max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES,
) -> torch.Tensor:
    """:func:`read_image` of an encoded image held in memory (an upload); errors name it ``name``."""
    with _errors_named(name):
        if not data:
            raise ValueError("empty file")
        img = Image.open(io.BytesIO(data))  # reads the header only
        check_decode_cost(img, min_size, max_decoded_bytes, name)
        whole_jpeg = data[:3] == JPEG_MAGIC and data[-2:] == JPEG_END  # a truncated one goes to PIL, which says so
        if whole_jpeg and img.mode in ("RGB", "L") and not _worth_a_draft(img.size, min_size):
            return _decode_jpeg(data)
        return pil_to_tensor(_decode_pil(img, min_size))


def _decode_jpeg(data: bytes) -> torch.Tensor:
    buffer = torch.frombuffer(bytearray(data), dtype=torch.uint8)
    return decode_jpeg(buffer, mode=ImageReadMode.RGB, apply_exif_orientation=True)  # (3, H, W), HWC in memory


def _worth_a_draft(size: tuple[int, int], min_size: tuple[int, int] | None) -> bool:
    return min_size is not None and size[0] >= 2 * min_size[0] and size[1] >= 2 * min_size[1]


def draft_scale(size: tuple[int, int], min_size: tuple[int, int] | None) -> int:
    """The DCT reduction (1, 2, 4 or 8) a JPEG of ``size`` gets when ``min_size`` is needed (PIL's ``draft``)."""
    if min_size is None:
        return 1
    return max((s for s in (1, 2, 4, 8) if size[0] >= s * min_size[0] and size[1] >= s * min_size[1]), default=1)


def sample_bits(img: Image.Image) -> int:
    """Bits of one stored sample, from the header: 16 for 16-bit PNG/TIFF (even where PIL decodes them to 8), 32
    for integer and float images, 1 for bilevel, else 8."""
    rawmodes = [tile[3][0] if isinstance(tile[3], tuple) else tile[3] for tile in getattr(img, "tile", []) or []]
    if img.mode in ("I", "F") or any("32" in str(r) for r in rawmodes):
        return 32
    if img.mode.startswith("I;16") or any("16" in str(r) for r in rawmodes):
        return 16
    return 1 if img.mode == "1" else 8


def decoded_bytes(img: Image.Image, min_size: tuple[int, int] | None = None) -> int:
    """What decoding ``img``'s first frame holds: width x height x bands x bytes per stored sample, with a JPEG's
    sides divided by the DCT reduction it will get."""
    width, height = img.size
    scale = draft_scale(img.size, min_size) if img.format == "JPEG" else 1
    bands = len(img.getbands())
    return -(-width // scale) * -(-height // scale) * bands * max(sample_bits(img), 8) // 8


def check_decode_cost(img: Image.Image, min_size: tuple[int, int] | None, limit: int, name: str | Path) -> None:
    """Refuse (:class:`ImageTooLargeError`) an image whose decode would hold more than ``limit`` bytes."""
    cost = decoded_bytes(img, min_size)
    if cost > limit:
        width, height = img.size
        raise ImageTooLargeError(
            f"{name}: refused, decoding it would take {cost / 2**20:.0f} MB ({width} x {height} pixels, "
            f"{len(img.getbands())} channel(s) of {sample_bits(img)} bits); the limit is {limit / 2**20:.0f} MB"
        )


def _decode_pil(img: Image.Image, min_size: tuple[int, int] | None) -> Image.Image:
    with img:
        if img.format == "JPEG" and _worth_a_draft(img.size, min_size):
            img.draft("RGB", min_size)  # DCT-domain downscale by 2, 4 or 8; both sides stay >= min_size
        img.load()  # decode now, so truncated files fail here and not inside a transform
        ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to turn
        return _to_rgb(img)


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """An RGB PIL image -> uint8 (3, H, W), a view of one HWC copy (the layout :func:`read_image` returns)."""
    return torch.from_numpy(np.array(img)).permute(2, 0, 1)  # (H, W, 3) -> (3, H, W), a view of one copy


@contextmanager
def _errors_named(path: Path | str) -> Iterator[None]:
    """Turns every way a file can fail to decode into an :class:`ImageLoadError` that names the file."""
    try:
        yield
    except ImageLoadError:
        raise
    except Image.DecompressionBombError as err:  # PIL's guard against images that would exhaust memory
        raise ImageLoadError(
            f"{path}: refused, larger than PIL.Image.MAX_IMAGE_PIXELS ({Image.MAX_IMAGE_PIXELS}) pixels ({err})"
        ) from err
    except FileNotFoundError as err:
        raise ImageLoadError(f"{path}: file not found") from err
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, RuntimeError) as err:
        raise ImageLoadError(f"{path}: cannot read image ({type(err).__name__}: {err})") from err


def _to_rgb(img: Image.Image) -> Image.Image:
    if img.mode == "RGB":
        return img
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # high bit-depth grayscale: rescale to 8 bits
        arr = np.asarray(img, dtype=np.float64)
        if not np.isfinite(arr).all():  # min/max would be NaN and every pixel black
            bad = int((~np.isfinite(arr)).sum())
            raise ValueError(f"{bad} pixel(s) are NaN or infinite")
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
