"""Make a fully labelled split incomplete, reproducibly: the two standard settings of learning with missing labels.

- **Partial labels** (Durand et al., CVPR 2019, https://arxiv.org/abs/1902.09720): every (image, class) entry is kept
  with probability ``keep`` and otherwise becomes unknown (-1), positives and negatives alike.
- **Single positive** (Cole et al., CVPR 2021, https://arxiv.org/abs/2106.09708; their ``generate_observed_labels``):
  one of each image's positives, drawn uniformly, stays known; every other entry becomes unknown. An image with no
  positive keeps no known entry.

Entries are only ever hidden: a positive is never invented, a known negative never turned positive. The draws come
from ``numpy.random.default_rng(seed)`` in the table's row order, so one seed gives one split.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from labelgraph.data.label_table import LabelTable


@dataclass(frozen=True)
class LabelSetting:
    """How much of the train split is annotated: ``full``, ``keep:F`` (partial) or ``single-positive``."""

    name: str
    keep: float | None = None

    @classmethod
    def parse(cls, text: str) -> LabelSetting:
        if text in ("full", "single-positive"):
            return cls(text)
        if text.startswith("keep:"):
            try:
                keep = float(text.split(":", 1)[1])
            except ValueError:
                keep = -1.0
            if 0.0 < keep <= 1.0:
                return cls(text, keep)
        raise ValueError(f"label setting {text!r}: use full, keep:F with 0 < F <= 1 (e.g. keep:0.5) or single-positive")

    @property
    def incomplete(self) -> bool:
        return self.name != "full" and self.keep != 1.0


def hide_labels(table: LabelTable, setting: LabelSetting, seed: int = 0) -> LabelTable:
    """A copy of ``table`` with entries hidden (-1) as ``setting`` says; entries already unknown stay unknown."""
    rng = np.random.default_rng(seed)
    targets = table.targets.copy()
    if setting.name == "single-positive":
        kept = np.array([rng.choice(np.flatnonzero(row == 1)) if (row == 1).any() else -1 for row in targets])
        targets = np.full_like(targets, -1)
        rows = np.flatnonzero(kept >= 0)
        targets[rows, keep_every_class(table.targets, kept)[rows]] = 1
    elif setting.keep is not None:
        targets[rng.random(targets.shape) >= setting.keep] = -1
    return LabelTable(list(table.images), list(table.class_names), targets, table.root, table.source)


def keep_every_class(targets: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """``kept`` (the positive each image keeps, -1 for none) changed where needed so that every class with a positive
    keeps one: a class left without is given the image of its first positive whose kept class is kept elsewhere too.
    Drawn at random, a rare class that always appears beside common ones would otherwise lose every known positive,
    and nothing could be learnt of it."""
    kept = kept.copy()
    for c in np.flatnonzero((targets == 1).any(axis=0)):
        if (kept == c).any():
            continue
        counts = np.bincount(kept[kept >= 0], minlength=targets.shape[1])
        donors = [r for r in np.flatnonzero(targets[:, c] == 1) if counts[kept[r]] > 1]
        if donors:
            kept[donors[0]] = c
    return kept


def hidden_counts(before: LabelTable, after: LabelTable) -> dict[str, dict[str, int]]:
    """Per class: positives and negatives before, and how many of each are now unknown."""
    counts = {}
    for c, name in enumerate(before.class_names):
        was, now = before.targets[:, c], after.targets[:, c]
        counts[name] = {
            "positives": int((was == 1).sum()),
            "positives_hidden": int(((was == 1) & (now == -1)).sum()),
            "negatives": int((was == 0).sum()),
            "negatives_hidden": int(((was == 0) & (now == -1)).sum()),
        }
    return counts


def label_setting_of(targets: np.ndarray) -> str:
    """What a split's targets look like: ``full`` (no unknown entry), ``single-positive`` (every image with a known
    positive has exactly one and no known negative) or ``partial:F`` (F the known fraction, two decimals)."""
    unknown = targets == -1
    if not unknown.any():
        return "full"
    positives, negatives = (targets == 1).sum(1), (targets == 0).sum(1)
    if not negatives.any() and positives.max(initial=0) <= 1:
        return "single-positive"
    return f"partial:{1.0 - float(unknown.mean()):.2f}"


def reveal_labels(targets: torch.Tensor, max_fraction: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """C-Tran's label-mask training draw (its ``get_unk_mask_indices``): each image reveals k of its C entries, k
    uniform in 0 .. floor(max_fraction x C), the entries drawn uniformly; a revealed entry is its target (1 or 0),
    every other one -1 (unknown). An entry the split does not know (-1) stays unknown when drawn.

    Shapes:
        targets (B, C) -> known (B, C), int8 in {1, 0, -1}.
    """
    b, c = targets.shape
    counts = torch.randint(0, int(max_fraction * c) + 1, (b, 1), generator=generator, device=targets.device)
    ranks = torch.rand(b, c, generator=generator, device=targets.device).argsort(dim=1).argsort(dim=1)  # a permutation
    revealed = ranks < counts
    return torch.where(revealed, targets.to(torch.int8), torch.full_like(targets, -1, dtype=torch.int8))
