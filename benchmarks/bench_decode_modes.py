"""What decoding an image of each mode PIL opens really costs, beside what the decode-cost estimate counts.

    python -m benchmarks.bench_decode_modes [--side 9400] [--min-size 224]

For every mode (and the JPEG and multi-frame cases) an image of ``side`` x ``side`` pixels is written in a format
that stores that mode, then decoded by :func:`labelgraph.data.decode_image` as the server does (``min_size``: the
side the model needs) in a fresh interpreter's forked child, which reports its wall time and the growth of its peak
resident memory (``VmHWM`` over its ``VmRSS`` at the start). Beside them: the estimate of
:func:`labelgraph.data.image_io.decoded_bytes` and its bytes per pixel. Writes
``benchmarks/results/decode_modes.json`` and prints the markdown table of ``docs/serving.md``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from benchmarks.common import RESULTS, machine, png16_bytes, write
from labelgraph.data.image_io import decode_image, decoded_bytes


def status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def measure_in_fork(work: Callable[[], object], warm_up: Callable[[], object] | None = None) -> dict[str, object]:
    """Run ``work`` in a forked child: ``{"seconds", "peak_bytes"}`` (its peak resident memory over its resident
    memory at the start), or ``{"error": "Type: message"}``. ``warm_up`` runs in the child first, unmeasured (the same
    work on a small input: the decoder's code loaded and its tables built are not this image's cost)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: measure, report, leave without running the parent's exit handlers
        try:
            if warm_up is not None:
                warm_up()
            start_kb, start = status_kb("VmRSS"), time.perf_counter()
            try:
                work()
                report: dict[str, object] = {"seconds": time.perf_counter() - start}
                report["peak_bytes"] = (status_kb("VmHWM") - start_kb) * 1024
            except Exception as err:  # noqa: BLE001 - reported to the parent, which decides
                report = {"error": f"{type(err).__name__}: {err}"}
            os.write(write_end, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(answer)


def gradient(side: int, channels: int, dtype: str = "uint8") -> np.ndarray:
    """A smooth side x side image (compresses as photos of skies and walls do, not as noise)."""
    row = np.linspace(0, 1, side, dtype=np.float32)
    plane = (row[None, :] * 0.6 + row[:, None] * 0.4) % 1.0
    top = {"uint8": 255, "uint16": 65535, "int32": 1_000_000, "float32": 1.0}[dtype]
    image = (plane * top).astype(dtype)
    return np.repeat(image[..., None], channels, axis=2) if channels > 1 else image


def encoded(side: int, mode: str) -> bytes:
    """An image of ``mode`` in a format that stores it (case names: ``RGB 16-bit``, ``JPEG``, ``GIF 2 frames``)."""
    buffer = io.BytesIO()
    if mode == "RGB 16-bit":  # PNG with 16-bit samples: PIL decodes it to 8-bit RGB, the file stores 6 bytes a pixel
        return png16_bytes(side, side)
    if mode in ("JPEG", "JPEG progressive", "JPEG CMYK"):
        base = Image.fromarray(gradient(side, 3))
        base = base.convert("CMYK") if mode == "JPEG CMYK" else base
        base.save(buffer, "JPEG", quality=90, progressive=mode == "JPEG progressive")
        return buffer.getvalue()
    if mode == "GIF 2 frames":
        frames = [Image.fromarray(gradient(side, 1)).convert("P") for _ in range(2)]
        frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
        return buffer.getvalue()
    sources = {
        "1": lambda: Image.fromarray(gradient(side, 1) > 127),
        "L": lambda: Image.fromarray(gradient(side, 1)),
        "LA": lambda: Image.fromarray(gradient(side, 2), "LA"),
        "P": lambda: Image.fromarray(gradient(side, 3)).convert("P"),
        "PA": lambda: Image.fromarray(gradient(side, 3)).convert("P").convert("PA"),
        "I;16": lambda: Image.fromarray(gradient(side, 1, "uint16")),
        "I;16B": lambda: Image.fromarray(gradient(side, 1, "uint16")).convert("I").convert("I;16B"),
        "I": lambda: Image.fromarray(gradient(side, 1, "int32")),
        "F": lambda: Image.fromarray(gradient(side, 1, "float32")),
        "RGB": lambda: Image.fromarray(gradient(side, 3)),
        "RGBA": lambda: Image.fromarray(gradient(side, 4), "RGBA"),
        "CMYK": lambda: Image.fromarray(gradient(side, 4), "CMYK"),
        "YCbCr": lambda: Image.fromarray(gradient(side, 3), "YCbCr"),
        "LAB": lambda: Image.fromarray(gradient(side, 3), "LAB"),
    }
    image = sources[mode]()
    png = mode in ("1", "L", "LA", "P", "I;16", "RGB", "RGBA")
    image.save(buffer, "PNG" if png else "TIFF", **({} if png else {"compression": "tiff_adobe_deflate"}))
    return buffer.getvalue()


def many_scans_jpeg(side: int, extra_scans: int) -> bytes:
    """A progressive JPEG of one grey, its last scan repeated ``extra_scans`` times: a few bytes a scan, each a pass
    over the whole image when decoded (libjpeg warns of the repetition and goes on)."""
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (120, 130, 140)).save(buffer, "JPEG", progressive=True, quality=90)
    data = buffer.getvalue()
    last_scan, end = data.rindex(b"\xff\xda"), data.rindex(b"\xff\xd9")
    return data[:end] + data[last_scan:end] * extra_scans + data[end:]


MODES = ["1", "L", "LA", "P", "PA", "I;16", "I;16B", "I", "F", "RGB", "RGB 16-bit", "RGBA", "CMYK", "YCbCr", "LAB",
         "JPEG", "JPEG progressive", "JPEG CMYK", "GIF 2 frames"]  # fmt: skip


def measure_mode(mode: str, side: int, min_size: int) -> dict[str, object]:
    """Encode here, decode in a fresh interpreter (forked there, so that no freed memory of this process, resident
    and reusable, hides what the decode allocates)."""
    import subprocess
    import sys
    import tempfile

    data = encoded(side, mode)
    with Image.open(io.BytesIO(data)) as img:
        opened_as, estimate = img.mode, decoded_bytes(img, (min_size, min_size))
    with tempfile.NamedTemporaryFile(suffix=".img") as file:
        file.write(data)
        file.flush()
        Path(file.name + ".small").write_bytes(encoded(min_size * 2, mode))  # the warm-up: same mode, small
        code = f"from benchmarks.bench_decode_modes import decode_file; decode_file({file.name!r}, {min_size})"
        try:
            run = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
        finally:
            Path(file.name + ".small").unlink()
    return {"mode": mode, "opened_as": opened_as, "file_bytes": len(data), "estimate_bytes": estimate,
            "estimate_per_pixel": estimate / side**2, **run}  # fmt: skip


def decode_file(path: str, min_size: int) -> None:
    """In a fresh interpreter: print :func:`measure_in_fork` of decoding the image file at ``path``."""
    data, small = Path(path).read_bytes(), Path(path + ".small").read_bytes()
    need = (min_size, min_size)
    run = measure_in_fork(lambda: decode_image(data, need, path, 1 << 40), lambda: decode_image(small, need))
    print(json.dumps(run))


def markdown(results: list[dict[str, object]], side: int) -> str:
    lines = [
        f"| mode (as PIL opens it) | file | bytes per pixel counted | counted at {side} x {side} | measured peak "
        "| seconds |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        peak = f"{r['peak_bytes'] / 2**20:.0f} MB" if "peak_bytes" in r else r.get("error", "")
        seconds = f"{r['seconds']:.2f}" if "seconds" in r else "-"
        lines.append(
            f"| {r['mode']} ({r['opened_as']}) | {r['file_bytes'] / 2**20:.1f} MB | {r['estimate_per_pixel']:.2f} | "
            f"{r['estimate_bytes'] / 2**20:.0f} MB | {peak} | {seconds} |"
        )
    return "\n".join(lines)


def run(side: int = 9400, min_size: int = 224) -> dict[str, object]:
    results = []
    for mode in MODES:
        print(f"decode_modes: {mode} ...", flush=True)
        results.append(measure_mode(mode, side, min_size))
    record = {"benchmark": "decode_modes", "machine": machine(), "side": side, "min_size": min_size, "modes": results}
    return write(record, RESULTS / "decode_modes.json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=9400)
    parser.add_argument("--min-size", type=int, default=224)
    args = parser.parse_args()
    record = run(args.side, args.min_size)
    print(markdown(record["modes"], args.side))


if __name__ == "__main__":
    main()
