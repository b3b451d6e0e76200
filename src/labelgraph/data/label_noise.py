"""Plant label errors in a split, reproducibly, to measure how well an audit finds them (``labelgraph data
add-noise``).

The two errors annotators make: a present object left untagged (each known positive becomes 0 with probability
``drop``) and a tag that does not belong (``add`` times as many positives as the split has, placed at known negative
entries drawn uniformly without replacement). Unknown entries are left alone. Draws come from
``numpy.random.default_rng(seed)``: one seed gives one noisy split.
"""

from __future__ import annotations

import numpy as np

from labelgraph.data.label_table import LabelTable


def add_label_noise(
    table: LabelTable, drop: float = 0.10, add: float = 0.05, seed: int = 0
) -> tuple[LabelTable, np.ndarray]:
    """A copy of ``table`` with planted errors, and the (K, 2) (image, class) indices of every changed entry."""
    if not (0 <= drop <= 1 and add >= 0):
        raise ValueError(f"drop {drop} must be in [0, 1] and add {add} at least 0")
    rng = np.random.default_rng(seed)
    targets = table.targets.copy()
    positives = np.argwhere(targets == 1)
    dropped = positives[rng.random(len(positives)) < drop]
    negatives = np.argwhere(table.targets == 0)
    count = min(int(round(add * len(positives))), len(negatives))
    added = negatives[rng.choice(len(negatives), count, replace=False)] if count else np.zeros((0, 2), dtype=np.int64)
    targets[dropped[:, 0], dropped[:, 1]] = 0
    targets[added[:, 0], added[:, 1]] = 1
    changed = np.concatenate([dropped, added]).astype(np.int64)
    noisy = LabelTable(list(table.images), list(table.class_names), targets, table.root, table.source)
    return noisy, changed[np.lexsort((changed[:, 1], changed[:, 0]))]
