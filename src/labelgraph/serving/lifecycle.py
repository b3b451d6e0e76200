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
    down as on Ctrl-C. A forked child inherits the handler. There SIGTERM is ignored: sent to the whole process
    group (``kill -- -PGID``, a container runtime), it killed LitServe's manager process at once, and the shutdown
    the main process orders then failed with three tracebacks; the main process ends every child in order instead
    (uvicorn's HTTP processes install their own handler and finish their requests first). Ctrl-C keeps its default
    meaning there."""
    main = os.getpid()

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != main:
            if signum == signal.SIGTERM:
                return
            signal.signal(signum, signal.default_int_handler)
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


def exit_with_parent(interval: float = 0.5, parent: int | None = None) -> None:
    """In a child process: exit as soon as the parent is gone (re-parented to init or a subreaper); ``parent``: watch
    that process instead (a decoder forked by a forkserver watches its HTTP process)."""
    watched = parent or os.getppid()

    def alive() -> bool:
        if parent is None:
            return os.getppid() == watched
        try:
            os.kill(watched, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def watch() -> None:
        while alive():
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


class AnswerWhenStopping:
    """ASGI middleware: when the HTTP process is told to stop (SIGTERM), the requests still unanswered ``grace``
    seconds later are answered 503 with ``Retry-After`` -- before uvicorn's own graceful timeout cancels them and
    their clients get a closed connection and no answer (a request waiting on a worker the same signal ended)."""

    def __init__(self, app: Any, grace: float = 4.0) -> None:
        self.app, self.grace = app, grace
        self.unanswered: dict[int, tuple[dict[str, bool], Any]] = {}
        self.watching = False

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan" and not self.watching:
            self.watching = True
            self.watch_sigterm()
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        state = {"started": False, "ours": False}

        async def guarded(message: dict[str, Any]) -> None:
            if state["ours"]:  # answered 503 already: the app's late answer has no one to go to
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        self.unanswered[id(state)] = (state, send)
        try:
            await self.app(scope, receive, guarded)
        finally:
            self.unanswered.pop(id(state), None)

    def watch_sigterm(self) -> None:
        """Wrap the SIGTERM handler uvicorn installed (this runs inside its ``capture_signals``)."""
        import asyncio

        loop, previous = asyncio.get_running_loop(), signal.getsignal(signal.SIGTERM)

        def stopping(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(loop.call_later, self.grace, lambda: loop.create_task(self.answer_all()))
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, stopping)

    async def answer_all(self) -> None:
        from labelgraph.serving.connections import answer

        for state, send in list(self.unanswered.values()):
            if not state["started"] and not state["ours"]:  # (a second SIGTERM schedules this again)
                state["ours"] = True
                message = "the server is shutting down; retry in a moment (another instance may take it)"
                await answer(send, 503, message, [(b"retry-after", b"1")])
