"""Callbacks of the fault tests: SIGKILL at a given step; wait at a given step for the test's signal."""

from __future__ import annotations

import os
import signal
import time

from lightning.pytorch.callbacks import Callback


class KillAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no checkpoint: as a crash or an OOM kill


class WaitForSignalAtStep(Callback):
    """At a given global step, write ``marker`` and wait (at most ``timeout`` s) for the test to signal this process:
    the signal then arrives at a known point of training, as SLURM's pre-emption signal would at any."""

    def __init__(self, step: int, marker: str, timeout: float = 120.0) -> None:
        self.step, self.marker, self.timeout = step, marker, timeout

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if trainer.global_step != self.step:
            return
        with open(self.marker, "w") as f:
            f.write(str(os.getpid()))
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            time.sleep(0.05)  # the signal handler runs between these sleeps
