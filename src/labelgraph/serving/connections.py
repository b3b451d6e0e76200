"""What a connection may cost the HTTP process: time to send its request, and memory while its upload is held.

- :func:`deadline_protocol`: uvicorn's HTTP protocol (httptools) with **progress deadlines**. uvicorn times out idle
  keep-alive connections but not a client that sends its headers or body slowly -- 200 such connections stay open
  forever, one byte a second each -- nor one whose headers never end (100 MB of header held an HTTP process for
  20 s). Here a request's line and headers must arrive within ``read_timeout`` seconds and hold at most 64 KB (else
  431), and its body must keep a minimum pace over every ``read_timeout`` window (else 408, one log line): a stalled
  upload is dropped, an honest slow one (a phone on a poor link) finishes however long it takes.
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


MAX_HEADER_BYTES = 64 * 1024  # a request's line and headers at most (nginx's default buffers hold 32 KB)


def deadline_protocol(read_timeout: float, min_rate: float = 32 * 1024) -> type[HttpToolsProtocol]:
    """An ``HttpToolsProtocol`` class whose requests must keep arriving: the request line and headers (at most
    :data:`MAX_HEADER_BYTES`, else 431) within ``read_timeout`` seconds, then the body at ``min_rate`` bytes a second or
    more over every ``read_timeout`` window; a request that falls behind is answered 408 and its connection closed."""
    return type("DeadlineProtocol", (PacedProtocol,), {"read_timeout": read_timeout, "min_rate": min_rate})


class PacedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, timing each request by its progress (:func:`deadline_protocol` sets the pace)."""

    read_timeout: float = 30.0
    min_rate: float = 32 * 1024
    deadline: asyncio.TimerHandle | None = None
    received = header_bytes = 0
    headers_done = False

    def arm(self) -> None:
        if self.deadline is None:
            self.received = 0
            self.deadline = self.loop.call_later(self.read_timeout, self.check_progress)

    def disarm(self) -> None:
        if self.deadline is not None:
            self.deadline.cancel()
            self.deadline = None

    def connection_made(self, transport: Any) -> None:  # a client that connects and sends nothing
        super().connection_made(transport)
        self.arm()

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing():  # refused already: what is still in flight is dropped
            return
        self.received += len(data)
        reading_headers = not self.headers_done
        super().data_received(data)  # one socket read at most (a few hundred KB): what the parser holds is bounded
        if reading_headers and not self.headers_done:
            self.header_bytes += len(data)
            if self.header_bytes > MAX_HEADER_BYTES and not self.transport.is_closing():
                self.refuse(431, f"request line and headers over {MAX_HEADER_BYTES // 1024} KB")

    def on_message_begin(self) -> None:  # each request on a keep-alive connection is timed on its own
        super().on_message_begin()
        self.headers_done, self.header_bytes = False, 0
        self.arm()

    def on_headers_complete(self) -> None:
        self.headers_done = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.disarm()
        super().on_message_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.disarm()
        super().connection_lost(exc)

    def check_progress(self) -> None:
        """Every ``read_timeout`` seconds while a request is arriving: headers whole, the body keeping its pace."""
        self.deadline = None
        if self.flow.read_paused:  # the server stopped reading (the app is behind), not the client
            return self.arm()
        if self.headers_done and self.received >= self.min_rate * self.read_timeout:
            return self.arm()
        what = "its body" if self.headers_done else "its request line and headers"
        client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        pace = f"{self.received} bytes in {self.read_timeout:g} s"
        log.warning("labelgraph serve: %s sent %s too slowly (%s); closed", client, what, pace)
        pace = f"at least {self.min_rate / 1024:g} KB/s over {self.read_timeout:g} s"
        self.refuse(408, f"{what} arrived too slowly: {pace}")

    def refuse(self, status: int, detail: str) -> None:
        """Answer ``status`` (unless a response has begun) and close the connection."""
        if self.cycle is None or not self.cycle.response_started:
            body = json.dumps({"detail": detail}).encode()
            reason = {408: "Request Timeout", 431: "Request Header Fields Too Large"}[status]
            head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
            head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            self.transport.write(head.encode() + body)
        if self.cycle is not None:
            self.cycle.disconnected = True  # the app's receive() learns the client is gone
            self.cycle.message_event.set()
        self.transport.close()


def default_inflight_bytes() -> int:
    """An eighth of the machine's memory, between 256 MB and 4 GB."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = 8 << 30
    return min(max(memory // 8, 256 << 20), 4 << 30)


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
        if size > self.budget:  # would never fit, however long the client waited
            message = (
                f"this upload would hold {size / 2**20:.0f} MB while parsed, more than the server's budget of "
                f"{self.budget / 2**20:.0f} MB; send fewer or smaller images per request"
            )
            return await answer(send, 413, message)
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
