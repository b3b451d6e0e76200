"""``LabelTable``: what every dataset format parses into."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class LabelTable:
    """Image paths, class names and int8 targets of one split.

    Attributes:
        images: N image paths, absolute or relative to ``root``.
        class_names: the C class names; their order is the model's output order.
        targets: (N, C) int8 in {1 present, 0 absent, -1 unknown}.
        root: the folder relative paths are resolved against.
        source: the annotation file(s) this came from (used in error messages).
    """

    images: list[str]
    class_names: list[str]
    targets: np.ndarray
    root: Path | None = None
    source: str = "<memory>"

    def __post_init__(self) -> None:
        self.targets = np.asarray(self.targets, dtype=np.int8)
        n, c = len(self.images), len(self.class_names)
        if self.targets.shape != (n, c):
            raise ValueError(f"{self.source}: targets have shape {self.targets.shape}, expected ({n}, {c})")
        if len(set(self.class_names)) != c:
            dupes = sorted({x for x in self.class_names if self.class_names.count(x) > 1})
            raise ValueError(f"{self.source}: duplicate class names {dupes}")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def path(self, index: int) -> Path:
        p = Path(self.images[index])
        return p if p.is_absolute() or self.root is None else self.root / p

    def subset(self, indices: np.ndarray | list[int]) -> LabelTable:
        idx = np.asarray(indices, dtype=np.int64)
        return LabelTable([self.images[i] for i in idx], self.class_names, self.targets[idx], self.root, self.source)

    def missing_files(self) -> list[Path]:
        """Paths that do not exist on disk."""
        return [p for p in map(self.path, range(len(self))) if not p.is_file()]
