"""Checkpoint files that are never half-written and never run code when read.

``SafeCheckpointIO`` (the plugin of every trainer: ``fit``, ``train``, ``compare``, ``demo``) writes to a temporary
file in the same folder and renames it over the target, so a run killed mid-save, or a full disk, leaves the previous
checkpoint intact (a full disk is one line, :class:`DiskFullError`); it reads with ``weights_only=True``, so a file
carrying pickled code is refused without executing it, and a truncated or corrupt file is refused with its name.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from labelgraph.errors import LabelgraphError
from labelgraph.models import read_checkpoint


class DiskFullError(LabelgraphError, OSError):
    """A checkpoint that could not be written for want of space (one line; the previous checkpoint is kept)."""


class SafeCheckpointIO(TorchCheckpointIO):
    """Atomic writes (temporary file + rename) and ``weights_only`` reads."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path: str | Path, storage_options: Any = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            torch.save(checkpoint, tmp)
            os.replace(tmp, path)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            kept = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
            raise DiskFullError(f"{path}: cannot save the checkpoint, the disk is full; {kept}") from err
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return read_checkpoint(path, map_location=map_location if map_location is not None else "cpu")
