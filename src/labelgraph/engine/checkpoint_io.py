"""Checkpoint files that are never half-written and never run code when read.

``SafeCheckpointIO`` (the CLI's default) writes to a temporary file in the same folder and renames it over the
target, so a run killed mid-save leaves the previous checkpoint intact; it reads with ``weights_only=True``, so a
file carrying pickled code is refused without executing it, and a truncated or corrupt file is refused with its
name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from labelgraph.models import read_checkpoint


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
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    def load_checkpoint(self, path: str | Path, map_location: Any = None, weights_only: bool | None = None) -> dict:
        return read_checkpoint(path, map_location=map_location if map_location is not None else "cpu")
