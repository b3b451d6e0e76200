"""What a ``POST /predict`` carries, read and checked in the HTTP process before anything reaches the model.

Two bodies mean the same thing:

- ``multipart/form-data`` with one or more file fields named ``images`` (``curl -F images=@dog.jpg``);
- ``application/json``: ``{"images": [{"name": "dog.jpg", "data": "<base64>"}, ...]}`` (a bare base64 string is an
  image too).

and the query string holds the options: ``threshold`` (a probability, ``calibrated`` or ``recall``), ``top_k``,
``maps``, ``known`` (the labels already known of the images, in the CSV format's labels field: ``cat|!dog|?*``).

Each image is checked here for what is cheap to see -- empty, over ``max_image_mb``, not an image by its content
type or its header, more pixels than ``max_pixels`` (the decompression-bomb guard: a few kilobytes of PNG can
declare gigapixels), a decode that would hold more than ``max_decoded_mb`` (width x height x channels x bytes per
stored sample, after the reduction a JPEG is decoded at: a 500 KB 16-bit PNG can declare half a gigabyte) -- and a
bad one becomes an error entry naming it, so a request with one bad image of several is still answered for the
others. A request with no good image, an unknown field, a wrong content type or a bad option is refused here with a
4xx (:class:`RequestRefused`). The images that pass are decoded and brought to the model's input here too, in this HTTP
process's decode pool (:mod:`~labelgraph.serving.decode_pool`), so the model worker receives small tensors and never
spends a moment decoding. Nothing is written to disk: multipart files are kept in memory (starlette's parser
would spool parts over 1 MB to a temporary file), each part released as soon as it is read. A client that hangs up
mid-upload costs one log line.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from PIL import Image, UnidentifiedImageError
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect

from labelgraph.data.formats.csv_format import AnnotationError, parse_labels
from labelgraph.data.image_io import ImageTooLargeError, check_decode_cost, check_jpeg_scans, decoder_problem
from labelgraph.errors import InvalidInputError
from labelgraph.serving.decode_pool import DecodeFailed

log = logging.getLogger("labelgraph.serve")

OPTIONS = ("threshold", "top_k", "maps", "known")
IMAGE_FIELD = "images"
NOT_IMAGE_TYPES = ("text/", "application/json", "application/xml", "application/pdf", "audio/", "video/")


@dataclass(frozen=True)
class UploadLimits:
    """What one request may carry, and what the server holds for it.

    Args:
        max_image_bytes, max_images, max_pixels: one file's size, a request's image count, one image's pixels.
        max_decoded_bytes: what decoding one image may hold (estimated from its header).
        decode_timeout: seconds one request's images may take to decode (in the decode pool, whose process is killed
            when they are spent); the image being decoded then and those left are answered 503.
        read_timeout: seconds a client has to send its request line and headers, and the window over which its body
            must keep ``min_upload_rate`` (else 408).
        min_upload_rate: bytes a second a body must arrive at, at least, over every ``read_timeout`` window.
        max_inflight_bytes: request bodies the server holds at once (None: an eighth of the machine's memory,
            within 256 MB - 4 GB); beyond it requests are answered 503 with ``Retry-After``.
        decode_processes: decoder processes per HTTP process at most (None: twice the cores, at least 4).
    """

    max_image_bytes: int = 20 * 2**20
    max_images: int = 64
    max_pixels: int = Image.MAX_IMAGE_PIXELS or 89_478_485
    max_decoded_bytes: int = 256 * 2**20
    decode_timeout: float = 10.0
    read_timeout: float = 30.0
    min_upload_rate: float = 32 * 1024
    max_inflight_bytes: int | None = None
    decode_processes: int | None = None

    @property
    def max_request_bytes(self) -> int:
        return self.max_images * self.max_image_bytes + 2**20  # + room for the multipart framing / base64 text


class RequestRefused(InvalidInputError):
    """A request answered with ``status`` and no prediction: the message says why, ``errors`` name the images."""

    def __init__(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors or []

    def body(self) -> dict[str, Any]:
        return {"detail": str(self), "errors": self.errors}


async def read_upload(request: Request) -> dict[str, Any]:
    """The FastAPI dependency of ``POST /predict``: the request -> a plain dict for the inference worker.

    Returns:
        ``{"images": [{"index", "name", "data": bytes}], "errors": [{"index", "image", "error", "status"}],
        "options": {...}}`` -- only images that passed the checks travel on.
    """
    limits: UploadLimits = request.app.state.upload_limits
    options = read_options(dict(request.query_params))
    if "known" in options:  # -> a (C,) row in {1, 0, -1} over the served classes; 422 on an unknown class
        try:
            options["known"] = parse_labels(options["known"], request.app.state.classes, "known").tolist()
        except AnnotationError as err:
            raise RequestRefused(422, str(err)) from None
    if options.get("threshold") == "calibrated" and not request.app.state.calibrated:
        raise RequestRefused(422, "this model has no calibrated thresholds: run `labelgraph calibrate` first")
    if options.get("threshold") == "recall" and not request.app.state.recall_rule:
        raise RequestRefused(422, "this model has no recall rule: run `labelgraph calibrate --recall 0.9` first")
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        items = await multipart_items(request, limits)
    elif content_type == "application/json":
        items = json_items(await read_body(request))
    else:
        raise RequestRefused(415, f"content type {content_type or '(none)'!r}: send multipart/form-data or JSON")
    if not items:
        raise RequestRefused(422, f"no image: send one or more files in the field {IMAGE_FIELD!r}")
    if len(items) > limits.max_images:
        raise RequestRefused(413, f"{len(items)} images in one request; at most {limits.max_images}")
    images, errors = await prepare_images(items, request.app.state, limits, bool(options.get("maps")))
    if not images:
        raise RequestRefused(errors[0]["status"], f"no readable image: {errors[0]['error']}", errors)
    return {"images": images, "errors": errors, "options": options}


async def prepare_images(
    items: list[tuple[str, str, bytes | None]], state: Any, limits: UploadLimits, maps: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Check every upload's header, then decode the good ones in the decode pool within the request's
    ``decode_timeout`` -> (images ``{"index", "name", "input", "overlay"}``, errors ``{"index", "image", "error",
    "status"}``)."""
    images, errors = [], []
    deadline = time.monotonic() + limits.decode_timeout
    for index, (name, media_type, data) in enumerate(items):
        problem = check_image(data, media_type, limits, state.decode_size)
        if problem is None:
            try:
                if (left := deadline - time.monotonic()) <= 0:
                    spent = f"this request's images took longer than {limits.decode_timeout:g} s to decode"
                    raise DecodeFailed(f"{name}: not decoded, {spent}; send fewer or smaller ones", 503)
                model_input, overlay = await state.decode_pool.prepare(data, name, maps, left)
                images.append({"index": index, "name": name, "input": model_input, "overlay": overlay})
                continue
            except DecodeFailed as err:
                problem = (err.status, str(err))
        errors.append({"index": index, "image": name, "error": problem[1], "status": problem[0]})
    return images, errors


def read_options(query: dict[str, str]) -> dict[str, Any]:
    """``?threshold=0.3&top_k=3&maps=true`` -> ``{"threshold": 0.3, "top_k": 3, "maps": True}``; 422 on a bad one."""
    unknown = sorted(set(query) - set(OPTIONS))
    if unknown:
        raise RequestRefused(422, f"unknown query parameter(s) {unknown}; known: {', '.join(OPTIONS)}")
    options: dict[str, Any] = {}
    try:
        if "threshold" in query:
            value = query["threshold"]
            options["threshold"] = value if value in ("calibrated", "recall") else float(value)
            if value not in ("calibrated", "recall") and not 0.0 <= options["threshold"] <= 1.0:
                raise ValueError
        if "top_k" in query:
            options["top_k"] = int(query["top_k"])
            if options["top_k"] < 1:
                raise ValueError
    except ValueError:
        problem = "threshold must be a probability, 'calibrated' or 'recall'; top_k an integer >= 1"
        raise RequestRefused(422, problem) from None
    if "known" in query:
        options["known"] = query["known"]
    if "maps" in query:
        if query["maps"].lower() not in ("true", "false", "1", "0"):
            raise RequestRefused(422, f"maps must be true or false, not {query['maps']!r}")
        options["maps"] = query["maps"].lower() in ("true", "1")
    return options


async def multipart_items(request: Request, limits: UploadLimits) -> list[tuple[str, str, bytes]]:
    """The file parts of a multipart body, in memory: ``[(filename, content type, bytes)]``."""
    parser = MultiPartParser(request.headers, request.stream(), max_files=limits.max_images, max_fields=16)
    parser.spool_max_size = limits.max_request_bytes  # never roll a part over to a temporary file
    try:
        form = await parser.parse()
    except ClientDisconnect:
        raise client_gone() from None
    except MultiPartException as err:
        if "Too many files" in str(err):
            message = f"more than {limits.max_images} images in one request; at most {limits.max_images}"
            raise RequestRefused(413, message) from err
        if "Too many fields" in str(err):
            raise RequestRefused(422, f"unknown fields: images go in file fields named {IMAGE_FIELD!r}") from err
        raise RequestRefused(400, f"malformed multipart body: {err}") from err
    items = []
    try:
        for field, value in form.multi_items():
            if field != IMAGE_FIELD or isinstance(value, str):
                raise RequestRefused(422, f"unknown field {field!r}: images go in file fields named {IMAGE_FIELD!r}")
            data = await value.read()
            await value.close()  # the part's buffer goes now: the upload is held once, as bytes
            items.append((value.filename or f"<image {len(items)}>", value.content_type or "", data))
    finally:
        await form.close()
    return items


async def read_body(request: Request) -> bytes:
    try:
        return await request.body()
    except ClientDisconnect:
        raise client_gone() from None


def client_gone() -> RequestRefused:
    """The client hung up mid-upload: one log line (there is no one to answer)."""
    log.warning("labelgraph serve: a client disconnected during its upload")
    return RequestRefused(400, "the client disconnected during the upload")


def json_items(body: bytes) -> list[tuple[str, str, bytes | None]]:
    """``{"images": [{"name", "data"} | "<base64>"]}`` -> ``[(name, "", bytes)]``; bytes None where the base64 is
    bad (that image's error names it; the others are still answered)."""
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RequestRefused(400, f"the body is not valid JSON ({err})") from err
    if not isinstance(payload, dict) or not isinstance(payload.get(IMAGE_FIELD), list):
        raise RequestRefused(422, f'JSON must be {{"{IMAGE_FIELD}": [{{"name": ..., "data": "<base64>"}}, ...]}}')
    unknown = sorted(set(payload) - {IMAGE_FIELD})
    if unknown:
        raise RequestRefused(422, f"unknown field(s) {unknown}; options go in the query string ({', '.join(OPTIONS)})")
    items = []
    for i, entry in enumerate(payload[IMAGE_FIELD]):
        entry = {"data": entry} if isinstance(entry, str) else entry
        if not isinstance(entry, dict) or set(entry) - {"name", "data"} or not isinstance(entry.get("data"), str):
            raise RequestRefused(422, f"images[{i}]: expected a base64 string or {{'name': ..., 'data': base64}}")
        try:
            data: bytes | None = base64.b64decode(entry["data"], validate=True)
        except (binascii.Error, ValueError):
            data = None
        items.append((str(entry.get("name", f"<image {i}>")), "", data))
    return items


def check_image(
    data: bytes | None, media_type: str, limits: UploadLimits, decode_size: tuple[int, int] | None = None
) -> tuple[int, str] | None:
    """(status, problem) for an image that cannot be worth decoding, None for one that may be. Reads the header
    only; a file that breaks further in (truncated) fails in its full decode. ``decode_size``: the size the
    model needs (a larger JPEG is decoded reduced, which the decode-cost estimate counts)."""
    if data is None:
        return 400, "not valid base64"
    if not data:
        return 400, "empty file"
    if len(data) > limits.max_image_bytes:
        return 413, f"{len(data) / 2**20:.1f} MB; the limit is {limits.max_image_bytes / 2**20:g} MB"
    if media_type.lower().startswith(NOT_IMAGE_TYPES):
        return 415, f"content type {media_type!r} is not an image"
    try:
        with Image.open(io.BytesIO(data)) as img:
            check_jpeg_scans(data, img, "the image")
            width, height = img.size
            check_decode_cost(img, decode_size, limits.max_decoded_bytes, "the image")
    except ImageTooLargeError as err:
        return 413, str(err).removeprefix("the image: ")
    except Image.DecompressionBombError as err:
        return 413, f"refused as a decompression bomb ({err})"
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        return 400, f"cannot read image ({decoder_problem(err)})"
    if width * height > limits.max_pixels:
        return 413, f"{width} x {height} pixels; the limit is {limits.max_pixels} pixels"
    return None
