"""Uploads decoded outside the model worker, in processes that are killed at the decode deadline.

An image's header can be checked in microseconds, but what its decode costs is only known by decoding it: a 500 KB
progressive JPEG with thousands of scans, a PNG whose rows take seconds to inflate. Decoded in the model worker, such
an upload held every other client's request until it was done, and a deadline read between images could not stop it.
Here each HTTP process decodes its uploads in a small pool of decoder processes (:class:`DecodePool`):

- an upload is decoded, checked and brought to the model's input there (:class:`ImagePreparer`: the same
  :func:`~labelgraph.data.decode_image` and eval transform as ``labelgraph predict``), so only the small
  ``(3, S, S)`` input (and the picture overlays are drawn on, when maps are asked for) travels to the model worker;
- a request's images are decoded one after the other within its ``decode_timeout``; a decode still running when it
  is spent is **killed** with its process (SIGKILL, a new process takes its place) and the image answered 503;
- a request holds one decoder at a time and the pool starts up to ``size`` of them on demand, so a good request beside
  costly ones gets a decoder of its own and shares the CPU with them instead of queueing behind them.

The decoders are forked from a ``forkserver`` that has already imported the decoding code (PyTorch, torchvision,
PIL): a new decoder starts in milliseconds, and none inherits the HTTP process's threads.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch
from PIL import Image

from labelgraph.data.image_io import ImageLoadError, ImageTooLargeError, decode_image
from labelgraph.data.transforms import decode_size, eval_transform, eval_view
from labelgraph.serving.lifecycle import exit_with_parent

OVERLAY_SIDE = 384  # overlays are drawn on the image shrunk to at most this side (a PNG per label)


class DecodeFailed(ImageLoadError):
    """An upload that could not be brought to the model's input: ``status`` is the HTTP status of its error entry."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ImagePreparer:
    """What a decoder does with one upload: decode it (checked against ``max_decoded_bytes``; a large JPEG at a reduced
    DCT scale), apply the model's eval transform, and keep the picture the class maps are drawn on.

    Args:
        image_size: the model's input side S.
        eval_transform: the model's eval preset (``resize``, ``center_crop``).
        max_decoded_bytes: refuse an image whose decode would hold more (413).
    """

    image_size: int
    eval_transform: str
    max_decoded_bytes: int

    @cached_property
    def transform(self) -> Any:
        return eval_transform(self.image_size, self.eval_transform)

    def __call__(self, data: bytes, name: str, maps: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Encoded bytes -> (the model input, uint8 (3, S, S); the overlay picture, uint8 (h, w, 3) or None)."""
        side = decode_size(self.eval_transform, self.image_size)
        pixels = decode_image(data, (side, side), name, self.max_decoded_bytes)  # (3, H, W)
        model_input = self.transform(pixels).contiguous().numpy()
        if not maps:
            return model_input, None
        picture = Image.fromarray(eval_view(pixels, self.eval_transform).permute(1, 2, 0).numpy())
        picture.thumbnail((OVERLAY_SIDE, OVERLAY_SIDE))
        return model_input, np.asarray(picture)


def decoder_main(conn: Any, preparer: ImagePreparer, http_process: int) -> None:
    """A decoder process: jobs ``(bytes, name, maps)`` in, ``("ok", result)`` or ``("error", status, message)`` out,
    until the HTTP process closes its end."""
    for signum in (signal.SIGINT, signal.SIGTERM):  # sent to the whole group: the HTTP process ends this one, once
        signal.signal(signum, signal.SIG_IGN)  # the request it is decoding has been answered or has run out of time
    exit_with_parent(parent=http_process)  # its HTTP process gone (however), a decoder mid-decode follows in 0.5 s
    torch.set_num_threads(1)
    while True:
        try:
            data, name, maps = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple = ("ok", preparer(data, name, maps))
        except ImageTooLargeError as err:
            reply = ("error", 413, str(err))
        except MemoryError:
            reply = ("error", 413, f"{name}: refused, decoding it ran out of memory")
        except ImageLoadError as err:
            reply = ("error", 400, str(err))
        conn.send(reply)


class Decoder:
    """One decoder process and the HTTP process's end of its pipe."""

    def __init__(self, context: Any, preparer: ImagePreparer) -> None:
        self.conn, child_end = context.Pipe()
        self.process = context.Process(target=decoder_main, args=(child_end, preparer, os.getpid()), daemon=True)
        self.process.start()
        child_end.close()

    async def run(self, job: tuple[bytes, str, bool], timeout: float) -> tuple[np.ndarray, np.ndarray | None]:
        """Send one job and wait at most ``timeout`` seconds for its answer (:class:`TimeoutError` past it)."""
        await asyncio.to_thread(self.conn.send, job)
        loop = asyncio.get_running_loop()
        ready = loop.create_future()
        loop.add_reader(self.conn.fileno(), lambda: ready.done() or ready.set_result(None))
        try:
            await asyncio.wait_for(ready, timeout)
        finally:
            loop.remove_reader(self.conn.fileno())
            os.set_blocking(self.conn.fileno(), True)  # uvloop's add_reader made it non-blocking
        reply = await asyncio.to_thread(self.conn.recv)  # EOFError if the process died mid-decode
        if reply[0] == "error":
            raise DecodeFailed(reply[2], reply[1])
        return reply[1]

    def kill(self) -> None:
        self.process.kill()
        self.process.join(5)
        self.conn.close()


class DecodePool:
    """Up to ``size`` decoder processes of one HTTP process, started on demand and replaced when killed.

    Args:
        preparer: what a decoder does with an upload.
        size: decoders at most (requests beyond wait for one).
    """

    def __init__(self, preparer: ImagePreparer, size: int) -> None:
        self.preparer, self.size = preparer, size
        self.context = multiprocessing.get_context("forkserver")
        self.context.set_forkserver_preload([__name__])  # the forkserver imports PyTorch once; decoders fork from it
        self.idle: list[Decoder] = []
        self.slots = asyncio.Semaphore(size)  # bound to the HTTP process's event loop on first use

    def warm_up(self) -> None:
        """Start the forkserver and one decoder now (seconds of imports), not on the first request."""
        self.idle.append(Decoder(self.context, self.preparer))

    async def prepare(self, data: bytes, name: str, maps: bool, timeout: float) -> tuple[np.ndarray, np.ndarray | None]:
        """One upload -> (model input, overlay picture); :class:`DecodeFailed` with the image's status otherwise."""
        async with self.slots:
            decoder = self.idle.pop() if self.idle else await asyncio.to_thread(Decoder, self.context, self.preparer)
            try:
                result = await decoder.run((data, name, maps), timeout)
            except DecodeFailed:  # the decoder answered: it is free again
                self.idle.append(decoder)
                raise
            except TimeoutError:
                decoder.kill()
                raise DecodeFailed(f"{name}: not decoded within the request's decode time; stopped", 503) from None
            except (EOFError, OSError) as err:
                decoder.kill()
                message = f"{name}: its decoder process ended while decoding it (killed: out of memory?); retry later"
                raise DecodeFailed(message, 503) from err
            except BaseException:  # cancelled (the client went away): the process may be mid-decode
                decoder.kill()
                raise
            self.idle.append(decoder)
            return result

    def close(self) -> None:
        decoders, self.idle = self.idle, []
        for decoder in decoders:
            decoder.kill()


def default_pool_size() -> int:
    """Decoders per HTTP process: twice the cores, at least 4 (a few costly uploads never take them all)."""
    return max(4, 2 * (os.cpu_count() or 1))


class DecodeInSubprocesses:
    """ASGI middleware: when an HTTP process starts (its lifespan) it gets its own :class:`DecodePool`, on
    ``app.state.decode_pool``, warmed up before the process serves (its first request finds a decoder ready)."""

    def __init__(self, app: Any, preparer: ImagePreparer, size: int) -> None:
        self.app, self.preparer, self.size = app, preparer, size
        self.pool: DecodePool | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and self.pool is None:
            self.pool = DecodePool(self.preparer, self.size)
            scope["app"].state.decode_pool = self.pool
            await asyncio.to_thread(self.pool.warm_up)
        await self.app(scope, receive, send)
