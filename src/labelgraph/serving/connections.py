"""What a connection may cost the HTTP process: time to send its request, and memory while its upload is held.

- :func:`deadline_protocol`: uvicorn's HTTP protocol (httptools) with a **read deadline**. uvicorn times out idle
  keep-alive connections but not a client that sends its headers or body slowly -- 200 such connections stay open
  forever, one byte a second each. Here every request must arrive whole within ``read_timeout`` seconds of its first
  byte (or of the connection, for a client that sends nothing); past it the connection is closed with one log line.
- :class:`InflightBudget`: an ASGI middleware that admits an upload only while the memory of all uploads being held
  stays within a server-wide budget; beyond it the request is answered ``503`` with ``Retry-After`` before its body is
  read. A request must say its size (``Content-Length``): a chunked upload of unknown size is refused (411). An upload
  is counted at :data:`HELD_PER_BYTE` times its size, what the server's processes hold for it at their peak: the HTTP
  process about 3.4 times (the multipart parser's buffers, the bytes read out of them, the pickle for the inference
  worker; measured: three concurrent 16.5 MB uploads raised its peak resident memory by 167 MB) and LitServe's queue
  process about once more (the pickle in transit).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("labelgraph.serve")
HELD_PER_BYTE = 5  # memory per byte of an upload in flight (see the module docstring)


def deadline_protocol(read_timeout: float) -> type[HttpToolsProtocol]:
    """An ``HttpToolsProtocol`` class whose requests must be fully received within ``read_timeout`` seconds."""

    class DeadlineProtocol(HttpToolsProtocol):
        deadline: asyncio.TimerHandle | None = None

        def arm(self) -> None:
            if self.deadline is None:
                self.deadline = self.loop.call_later(read_timeout, self.read_timed_out)

        def disarm(self) -> None:
            if self.deadline is not None:
                self.deadline.cancel()
                self.deadline = None

        def connection_made(self, transport: Any) -> None:  # a client that connects and sends nothing
            super().connection_made(transport)
            self.arm()

        def on_message_begin(self) -> None:  # each request on a keep-alive connection gets its own deadline
            super().on_message_begin()
            self.arm()

        def on_message_complete(self) -> None:
            self.disarm()
            super().on_message_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self.disarm()
            super().connection_lost(exc)

        def read_timed_out(self) -> None:
            self.deadline = None
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.warning("labelgraph serve: %s did not send its request within %g s; closed", client, read_timeout)
            self.transport.close()

    return DeadlineProtocol


def default_inflight_bytes(max_request_bytes: int) -> int:
    """An eighth of the machine's memory, between 256 MB and 4 GB, and at least what one largest request needs."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    return max(min(max(memory // 8, 256 << 20), 4 << 30), HELD_PER_BYTE * max_request_bytes)


class InflightBudget:
    """Admit ``POST`` bodies while the memory held for admitted requests (:data:`HELD_PER_BYTE` x their sizes) stays
    within ``budget`` (per HTTP process).

    Args:
        app: the ASGI application.
        budget: bytes of memory this process may spend on request bodies at once.
        retry_after: seconds a refused client is told to wait (``Retry-After``).
    """

    def __init__(self, app: Any, budget: int, retry_after: int = 1) -> None:
        self.app, self.budget, self.retry_after = app, budget, retry_after
        self.held = 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if b"content-length" not in headers:
            return await answer(send, 411, "send the upload's size (Content-Length); chunked uploads are refused")
        try:
            size = HELD_PER_BYTE * int(headers[b"content-length"])
        except ValueError:
            return await answer(send, 400, "Content-Length is not a number")
        if self.held + size > self.budget:
            message = (
                f"busy: {self.held / 2**20:.0f} MB of uploads in progress, the budget is "
                f"{self.budget / 2**20:.0f} MB; retry in {self.retry_after} s"
            )
            return await answer(send, 503, message, [(b"retry-after", str(self.retry_after).encode())])
        self.held += size
        try:
            await self.app(scope, receive, send)
        finally:
            self.held -= size


async def answer(send: Any, status: int, detail: str, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    """A JSON error response sent straight from a middleware (``{"detail": ...}``, as the routes' errors)."""
    body = json.dumps({"detail": detail}).encode()
    base = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": base + (headers or [])})
    await send({"type": "http.response.body", "body": body})
