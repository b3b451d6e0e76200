"""``OwnSplits``: what both protocols of ``labelgraph compare`` start from on a user's data (light: no torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from labelgraph.data.label_table import LabelTable


@dataclass(frozen=True)
class OwnSplits:
    """A comparison on a user's data: the splits (``train``, ``val``, optional ``test``), the run folder, and the
    backbone, weights, label embeddings and input size every method starts from."""

    splits: dict[str, LabelTable]
    out: Path
    backbone: str
    weights: str
    embeddings: str
    image_size: int = 224
