"""How the server's processes start and stop together.

LitServe runs one main process, its HTTP server process(es) (forked) and its inference worker(s) (spawned). By
default a ``SIGTERM`` to the main process -- what ``kill``, systemd, Docker and Kubernetes send -- killed it alone and
left the others holding the port and answering ``/health``. Here:

- the main process turns ``SIGTERM`` into the same graceful shutdown as Ctrl-C (:func:`stop_on_sigterm`), which
  stops the HTTP processes (finishing or failing their requests within a few seconds) and the workers, and then any
  child still alive is killed (:func:`end_children`);
- every child watches its parent (:func:`exit_with_parent`): if the main process dies without a shutdown (SIGKILL,
  OOM killer), the children exit within a second instead of serving on as orphans;
- a dead inference worker is restarted by LitServe's monitor (checked every half second); ``/health`` answers 503
  until the new worker has loaded the model, and the requests the dead worker held are answered 503 at once
  (:mod:`labelgraph.serving.worker_watch`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any


def stop_on_sigterm(before: Callable[[], None] | None = None) -> None:
    """In the main process: SIGTERM (and Ctrl-C) call ``before`` and raise ``KeyboardInterrupt``, so LitServe shuts
    down as on Ctrl-C. A forked child inherits the handler; there the signal keeps its default meaning (uvicorn
    re-raises the signal it stopped on)."""
    main = os.getpid()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main:
            signal.signal(signum, signal.SIG_DFL if signum == signal.SIGTERM else signal.default_int_handler)
            os.kill(os.getpid(), signum)
            return
        if before is not None:
            before()
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)


def stop_worker_monitor(server: Any) -> None:
    """Tell LitServe's worker monitor that the server is shutting down. On Ctrl-C LitServe never sets its shutdown
    event, so the monitor thread goes on through the shutdown: it restarts the workers being terminated and dies with a
    traceback when the manager is gone. The event is a manager proxy and the main thread is blocked in its ``wait()``
    on its own connection: the ``set()`` goes from a thread of its own (a connection of its own)."""
    event = getattr(server, "_shutdown_event", None)  # LitServe's, created by run()
    if event is not None:
        threading.Thread(target=event.set, daemon=True, name="labelgraph-stop-monitor").start()


def end_children(wait: float = 3.0) -> None:
    """Terminate, then kill, any child process still alive after the shutdown."""
    children = multiprocessing.active_children()
    for child in children:
        child.terminate()
    deadline = time.monotonic() + wait
    for child in children:
        child.join(max(deadline - time.monotonic(), 0))
        if child.is_alive():
            child.kill()


def exit_with_parent(interval: float = 0.5) -> None:
    """In a child process: exit as soon as the parent is gone (re-parented to init or a subreaper)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(1)

    threading.Thread(target=watch, name="labelgraph-parent-watch", daemon=True).start()


class ExitWithParent:
    """ASGI middleware: when the HTTP process starts (its lifespan), it starts :func:`exit_with_parent`."""

    def __init__(self, app: Any) -> None:
        self.app, self.watching = app, False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and not self.watching:
            self.watching = True
            exit_with_parent()
        await self.app(scope, receive, send)
