"""``labelgraph serve`` in a child process on a free loopback port, for tests, benchmarks and scripts.

    with ServerProcess("demo_out/add_gcn/model", "--max-batch-size", "8") as server:
        httpx.post(server.url + "/predict", files=[("images", open("dog.jpg", "rb"))])

The server is started in a new process group (LitServe runs its HTTP, inference and logger processes under it), is
ready when ``/health`` answers ``ok``, and the whole group is stopped on exit -- also when the block raises.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """A running ``labelgraph serve MODEL_DIR ARGS...``; ``url``, ``log()`` (its output so far), ``stop()``."""

    def __init__(self, model_dir: str | Path, *args: str, startup_timeout: float = 120.0, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = tempfile.NamedTemporaryFile("w+", prefix="labelgraph-serve-", suffix=".log", delete=False)
        command = [sys.executable, "-m", "labelgraph.cli", "serve", str(model_dir), "--port", str(self.port), *args]
        self.process = subprocess.Popen(
            command,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
        )
        self.wait_until_healthy(startup_timeout)

    def wait_until_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"labelgraph serve exited with {self.process.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"labelgraph serve did not become healthy within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        return Path(self.log_file.name).read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.process.pid, sig)
                    self.process.wait(wait)
                    break
                except (subprocess.TimeoutExpired, ProcessLookupError):
                    continue
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # LitServe's children, should any outlive the parent
        except ProcessLookupError:
            pass

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, kind: type | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
        self.log_file.close()
        os.unlink(self.log_file.name)
