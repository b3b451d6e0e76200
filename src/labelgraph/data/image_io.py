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
import os
import re
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
OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
ORIENTATION = 0x0112  # the EXIF tag exif_transpose reads
#: what one decode may hold unless a caller says otherwise (a 16-bit RGB image of ~13,000 x 13,000 pixels); the server
#: sets its own, lower limit (``labelgraph serve --max-decoded-mb``)
DEFAULT_MAX_DECODED_BYTES = 1 << 30
#: scans a JPEG may have: progressive encoders write about 10, and every scan is one more pass over the whole image's
#: coefficients (a 40 KB file of 1,000 scans takes seconds to decode); libjpeg-turbo's ``djpeg -maxscans`` is the model
MAX_JPEG_SCANS = 100


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
        data = path.read_bytes()
        img = Image.open(io.BytesIO(data))
        check_jpeg_scans(data, img, path)
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
        check_jpeg_scans(data, img, name)
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


def reduction(size: tuple[int, int], min_size: tuple[int, int] | None) -> int:
    """The integer factor an image of ``size`` is box-reduced by before its conversion to RGB: as large as keeps both
    sides at or above ``min_size`` (1 without one)."""
    if min_size is None:
        return 1
    return max(1, min(size[0] // max(min_size[0], 1), size[1] // max(min_size[1], 1)))


#: bytes PIL holds per pixel of a decoded image: 1 for bilevel, grey and palette, 2 for 16-bit grey, else 4 (RGB and
#: two-band modes are padded to four bytes)
PIL_PIXEL_BYTES = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2}
#: bytes held per source pixel, beyond the decoded image itself, by the full-size steps of each mode's conversion to RGB
#: (:func:`_to_rgb`): bilevel becomes grey, a palette image RGB(A), alpha is premultiplied before the reduction (high
#: bit-depth samples are read out a band at a time: nothing at full size)
CONVERSION_BYTES = {"1": 1, "P": 8, "PA": 8, "RGBA": 4, "LA": 4}
#: what the decoders' own buffers and the allocator's rounding add to any decode (measured: 5-15 MB)
DECODE_OVERHEAD = 16 << 20
BAND_SAMPLES = 1 << 22  # samples of high bit-depth images converted at a time (float64: 32 MB)


def decoded_bytes(img: Image.Image, min_size: tuple[int, int] | None = None) -> int:
    """What decoding ``img``'s first frame and converting it to an RGB tensor hold at their peak: the decoded image
    (width x height x the larger of the bytes the file stores per pixel and :data:`PIL_PIXEL_BYTES`, a JPEG's sides
    divided by the DCT reduction it will get), the coefficients a progressive JPEG keeps, a copy if EXIF turns it, the
    full-size steps of its mode's conversion (:data:`CONVERSION_BYTES`), the image after the box reduction on its way
    to RGB (:func:`reduced_bytes`) and :data:`DECODE_OVERHEAD`. ``benchmarks/bench_decode_modes.py`` measures every
    mode against it."""
    scale = draft_scale(img.size, min_size) if img.format == "JPEG" else 1
    width, height = -(-img.size[0] // scale), -(-img.size[1] // scale)
    as_stored = len(img.getbands()) * max(sample_bits(img), 8) // 8
    stored = width * height * max(as_stored, PIL_PIXEL_BYTES.get(img.mode, 4))
    extra = stored if orientation(img) != 1 else 0  # the copy exif_transpose makes
    if img.format == "TIFF":  # libtiff is handed the whole file, read into memory, and decodes into its own buffer
        extra += encoded_size(img) + stored
    converted = width * height * CONVERSION_BYTES.get(img.mode, 0)
    if img.mode == "P" and "transparency" not in img.info:
        converted = width * height * 4  # straight to RGB, never premultiplied
    if img.format == "JPEG" and img.info.get("progressive"):
        converted += coefficient_bytes(img)
    k = reduction((width, height), min_size)
    high = img.mode.startswith("I") or img.mode == "F"
    band = min(width * height, BAND_SAMPLES) * 20 if high else 0  # float64 samples, the crop, its bytes, copies
    reduced = (width // k) * (height // k) * reduced_bytes(img.mode, k)
    return stored + extra + converted + band + reduced + DECODE_OVERHEAD


def encoded_size(img: Image.Image) -> int:
    """Bytes of the file ``img`` was opened from."""
    fp = getattr(img, "fp", None)
    if fp is None:
        return 0
    here = fp.tell()
    size = fp.seek(0, os.SEEK_END)
    fp.seek(here)
    return size


def upright_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of the image as shown (EXIF rotation by a quarter turn swaps them), from its header only."""
    with _errors_named(path), Image.open(path) as img:
        width, height = img.size
        return (height, width) if orientation(img) in (5, 6, 7, 8) else (width, height)


def orientation(img: Image.Image) -> int:
    """The EXIF orientation the header declares (1: upright), without decoding: ``Image.getexif`` decodes a whole PNG
    to look for EXIF after its pixels."""
    tags = getattr(img, "tag_v2", None)  # TIFF
    if tags is not None:
        return int(tags.get(ORIENTATION, 1) or 1)
    if "exif" not in img.info:
        return 1
    exif = Image.Exif()
    try:
        exif.load(img.info["exif"])
    except (SyntaxError, ValueError, OSError, TypeError):
        return 1
    return int(exif.get(ORIENTATION, 1) or 1)


def coefficient_bytes(img: Image.Image) -> int:
    """What a progressive JPEG's decoder keeps until its last scan: every DCT coefficient of every component at full
    size, 2 bytes each, whatever the reduction (``img.layer``: each component's sampling factors)."""
    layers = getattr(img, "layer", None) or [(0, 1, 1, 0)] * len(img.getbands())
    h_max, v_max = max(layer[1] for layer in layers), max(layer[2] for layer in layers)
    samples = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)  # per pixel: 1.5 for 4:2:0 colour
    return int(img.size[0] * img.size[1] * samples * 2)


def reduced_bytes(mode: str, k: int) -> int:
    """Bytes per pixel of the reduced image on its way to the RGB tensor (3 bytes, the last copy; PIL's RGB images
    take 4): float32 means, 8-bit samples and RGB for high bit depth; the premultiplied image and the composite on
    white with alpha; else the reduced image and its RGB conversion."""
    if mode.startswith("I") or mode == "F":
        return 4 + 1 + 4 + 3
    if mode in ("P", "PA", "RGBA", "LA", "RGBa", "La"):
        return 5 * 4 + 3
    if mode == "RGB":
        return (4 if k > 1 else 0) + 3
    return 4 + 4 + 3


def check_decode_cost(img: Image.Image, min_size: tuple[int, int] | None, limit: int, name: str | Path) -> None:
    """Refuse (:class:`ImageTooLargeError`) an image whose decode would hold more than ``limit`` bytes."""
    cost = decoded_bytes(img, min_size)
    if cost > limit:
        width, height = img.size
        raise ImageTooLargeError(
            f"{name}: refused, decoding it would take {cost / 2**20:.0f} MB ({width} x {height} pixels, "
            f"{len(img.getbands())} channel(s) of {sample_bits(img)} bits); the limit is {limit / 2**20:.0f} MB"
        )


def jpeg_scans(data: bytes, img: Image.Image) -> int:
    """How many scans (start-of-scan markers) a progressive JPEG holds; 1 for a baseline one (its header, as PIL read
    it, says so: no need to count), 0 for another format. Inside entropy-coded data a 0xFF byte is always followed by
    0x00, so the marker cannot occur there: counting it is exact (about 1 ms a megabyte)."""
    if img.format != "JPEG":
        return 0
    return data.count(b"\xff\xda") if img.info.get("progressive") else 1


def check_jpeg_scans(data: bytes, img: Image.Image, name: str | Path) -> None:
    """Refuse (:class:`ImageTooLargeError`) a JPEG of more than :data:`MAX_JPEG_SCANS` scans."""
    scans = jpeg_scans(data, img)
    if scans > MAX_JPEG_SCANS:
        raise ImageTooLargeError(
            f"{name}: refused, a JPEG of {scans} scans (progressive JPEGs have about 10, and each scan is a pass over "
            f"the whole image); the limit is {MAX_JPEG_SCANS}"
        )


def _decode_pil(img: Image.Image, min_size: tuple[int, int] | None) -> Image.Image:
    with img:
        if img.format == "JPEG" and _worth_a_draft(img.size, min_size):
            img.draft("RGB", min_size)  # DCT-domain downscale by 2, 4 or 8; both sides stay >= min_size
        img.load()  # decode now, so truncated files fail here and not inside a transform
        ImageOps.exif_transpose(img, in_place=True)  # no copy when there is nothing to turn
        return _to_rgb(img, reduction(img.size, min_size))


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
        raise ImageLoadError(f"{path}: cannot read image ({decoder_problem(err)})") from err


def decoder_problem(err: BaseException) -> str:
    """``Type: message`` of a decoder's error, without the ``repr`` of the in-memory file PIL names (``<_io.BytesIO
    object at 0x7f...>``: an address of the server's memory, nothing the sender can use)."""
    return f"{type(err).__name__}: " + OBJECT_REPR.sub("the data", str(err))


def _to_rgb(img: Image.Image, k: int = 1) -> Image.Image:
    """``img`` as RGB, box-reduced by ``k`` in its own mode (or the cheapest one that averages right) before the
    conversion: no full-size copy beyond :data:`CONVERSION_BYTES`, none in floating point."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):  # high bit depth: reduced in chunks, rescaled to 8 bits
        return Image.fromarray(_rescale_to_uint8(_block_mean(img, k))).convert("RGB")
    if img.mode == "1":
        img = img.convert("L")
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode == "PA":
        img = img.convert("RGBA")
    alpha = {"RGBA": "RGBa", "LA": "La", "RGBa": "RGBa", "La": "La"}.get(img.mode)
    if alpha:  # premultiplied, so that averaging and compositing on white commute
        img = img.convert(alpha) if img.mode != alpha else img
    small = img.reduce(k) if k > 1 else img
    if alpha:
        rgba = small.convert("LA" if small.mode == "La" else "RGBA").convert("RGBA")  # (PIL has no La -> RGBA)
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return small if small.mode == "RGB" else small.convert("RGB")  # L, CMYK, YCbCr, LAB, HSV


def _block_mean(img: Image.Image, k: int) -> np.ndarray:
    """A high bit-depth image -> (H // k, W // k) float32 means of its k x k blocks, read out of PIL a band of rows at a
    time (no full-size copy: ``np.asarray`` of a whole image copies it twice); refuses NaN or infinite samples, which
    would turn the rescaled image black."""
    w, h = img.size[0] // k * k, img.size[1] // k * k
    out = np.empty((h // k, w // k), np.float32)
    rows = max(k, BAND_SAMPLES // max(w, 1) // k * k)  # input rows per band, a multiple of k
    bad = 0
    for top in range(0, h, rows):
        band = np.asarray(img.crop((0, top, w, min(top + rows, h))), dtype=np.float64)
        bad += int(band.size - np.isfinite(band).sum()) if img.mode == "F" else 0
        out[top // k : (top + band.shape[0]) // k] = band.reshape(-1, k, w // k, k).mean(axis=(1, 3))
    if bad:
        raise ValueError(f"{bad} pixel(s) are NaN or infinite")
    return out


def _rescale_to_uint8(arr: np.ndarray) -> np.ndarray:
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return ((arr - lo) * (255 / (hi - lo))).astype(np.uint8)
