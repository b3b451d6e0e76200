"""Shared helpers of the benchmarks: timing, machine description, JSON output."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results"


def timed(fn: Callable[[], Any], repeats: int, warmup: int = 0) -> tuple[float, Any]:
    """Median wall time of ``fn`` over ``repeats`` calls (after ``warmup`` untimed calls) and its last result."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def interleaved(contenders: dict[str, Callable[[], Any]], rounds: int, warmup: int = 0) -> dict[str, float]:
    """Median seconds of each contender over ``rounds`` rounds that run every contender once, in turn (after
    ``warmup`` untimed rounds), so that a noisy neighbour slows all of them alike."""
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for round_ in range(warmup + rounds):
        for name, fn in contenders.items():
            start = time.perf_counter()
            fn()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def machine() -> dict[str, Any]:
    import torch

    return {
        "platform": platform.platform(),
        "processor": platform.processor(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }


def write(result: dict[str, Any], out: str | Path) -> dict[str, Any]:
    result.setdefault("machine", machine())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    return result


def saved_bytes(fn: Callable[[], Any]) -> int:
    """Bytes autograd keeps for the backward pass of ``fn()`` (unique storages; exact on any device)."""
    import torch

    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def png16_bytes(width: int, height: int, channels: int = 3) -> bytes:
    """A 16-bit RGB (or, ``channels=4``, RGBA) PNG of zeros, compressed row by row: ~500 KB for 9400 x 9400 RGB, half
    a gigabyte decoded (the decompression bomb a header check must catch)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compress, row = zlib.compressobj(9), b"\x00" + bytes(width * 2 * channels)
    idat = b"".join(compress.compress(row) for _ in range(height)) + compress.flush()
    header = struct.pack(">IIBBBBB", width, height, 16, {3: 2, 4: 6}[channels], 0, 0, 0)  # PNG colour type
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
