"""The requests of a dead inference worker are answered at once (503 + ``Retry-After``), not left waiting.

With ``restart_workers`` LitServe replaces a worker that died (killed, out of memory, a crash in native code), and a
worker that takes a request reports its id to the HTTP process before it decodes it. LitServe then fails the dead
worker's requests in the *main* process's response buffer only; its HTTP server runs in forked processes with buffers
of their own, so there those requests waited forever (measured: a client's 120 s timeout, then nothing). Here each
HTTP process watches the workers' setup status, and when a worker leaves ``READY`` (the monitor marks it ``STARTING``
as it restarts it) the requests that worker had taken are answered 503; requests still queued are served by the new
worker.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import HTTPException
from litserve.utils import LitAPIStatus, WorkerSetupStatus

log = logging.getLogger("labelgraph.serve")


class FailRequestsOfDeadWorkers:
    """ASGI middleware: when the HTTP process starts (its lifespan), it starts :meth:`watch` on its event loop.

    Args:
        server: the ``LitServer`` (the forked HTTP process holds its own copy, with its own response buffer).
        interval: seconds between two looks at the workers' status.
    """

    def __init__(self, app: Any, server: Any, interval: float = 0.25) -> None:
        self.app, self.server, self.interval = app, server, interval
        self.task: asyncio.Task | None = None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and self.task is None:
            self.task = asyncio.get_running_loop().create_task(self.watch())
        await self.app(scope, receive, send)

    async def watch(self) -> None:
        ready: set[str] = set()
        while True:
            await asyncio.sleep(self.interval)
            try:  # a manager dict: one round trip to LitServe's manager process, off the event loop
                status = await asyncio.to_thread(lambda: dict(self.server.workers_setup_status))
            except (OSError, EOFError):  # the manager is gone: the server is shutting down
                return
            now = {key for key, value in status.items() if value == WorkerSetupStatus.READY}
            for key in ready - now:
                self.fail_requests_of(int(key.rsplit("_", 1)[1]))
            ready = now

    def fail_requests_of(self, worker: int) -> None:
        """Answer 503 to every request of this process that ``worker`` had taken and not answered."""
        failed = 0
        for item in list(self.server.response_buffer.values()):
            if item.worker_id == worker and not item.event.is_set():
                detail = "the model worker stopped while handling this request and is being restarted; retry"
                item.response = (HTTPException(503, detail, headers={"Retry-After": "5"}), LitAPIStatus.ERROR)
                item.event.set()
                failed += 1
        log.warning("labelgraph serve: model worker %d stopped; %d request(s) it held answered 503", worker, failed)
