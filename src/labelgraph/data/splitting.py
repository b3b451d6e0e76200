"""Holding out a validation split that keeps every class's share: iterative stratification.

Sechidis, Tsoumakas and Vlahavas, "On the Stratification of Multi-label Data", ECML PKDD 2011
(https://link.springer.com/chapter/10.1007/978-3-642-23808-6_15), Algorithm 1. A random split of a small multi-label
dataset easily leaves a rare class without a single validation positive (its AP is then undefined and a threshold
cannot be calibrated for it); the algorithm deals the rarest class's images first, each to the fold that still wants
most of that class, so every class with two or more positives reaches both sides when the fractions allow it.

Only known positives (target 1) count; unknown (-1) entries are treated as not present. Ties between folds are broken
by the fold that still wants most images, then at random from ``seed``: the same table and seed give the same split.
"""

from __future__ import annotations

import numpy as np

from labelgraph.data.label_table import LabelTable


def iterative_stratification(targets: np.ndarray, fractions: list[float], seed: int = 0) -> list[np.ndarray]:
    """Split the rows of ``targets`` (N, C) into folds of the given ``fractions`` (summing to 1).

    Returns:
        one sorted index array per fold; together they hold every row once.
    """
    rng = np.random.default_rng(seed)
    positive = np.asarray(targets) == 1  # (N, C)
    n, c = positive.shape
    ratios = np.asarray(fractions, dtype=np.float64)
    if ratios.ndim != 1 or len(ratios) < 2 or np.any(ratios <= 0) or not np.isclose(ratios.sum(), 1.0):
        raise ValueError(f"fractions {fractions}: two or more positive numbers summing to 1")
    wanted_rows = ratios * n  # (F,) images each fold still wants
    wanted = ratios[:, None] * positive.sum(axis=0)[None, :]  # (F, C) positives of each class each fold still wants
    fold_of = np.full(n, -1, dtype=np.int64)
    left = positive.copy()  # (N, C) positives of the rows not yet dealt
    while left.any():
        counts = left.sum(axis=0)
        rarest = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
        for row in rng.permutation(np.flatnonzero(left[:, rarest])):
            fold = pick_fold(wanted[:, rarest], wanted_rows, rng)
            fold_of[row] = fold
            wanted[fold] -= positive[row]
            wanted_rows[fold] -= 1
            left[row] = False
    for row in rng.permutation(np.flatnonzero(fold_of < 0)):  # rows without a positive: by images wanted
        fold = pick_fold(wanted_rows, wanted_rows, rng)
        fold_of[row] = fold
        wanted_rows[fold] -= 1
    return [np.flatnonzero(fold_of == f) for f in range(len(ratios))]


def pick_fold(first: np.ndarray, then: np.ndarray, rng: np.random.Generator) -> int:
    """The fold with the largest ``first``, ties broken by the largest ``then``, then at random."""
    best = np.flatnonzero(first == first.max())
    if len(best) > 1:
        best = best[then[best] == then[best].max()]
    return int(best[0] if len(best) == 1 else rng.choice(best))


def hold_out(table: LabelTable, fraction: float, seed: int = 0) -> tuple[LabelTable, LabelTable]:
    """``(train, val)``: ``fraction`` of ``table``'s images held out by :func:`iterative_stratification`."""
    if not 0 < fraction < 1:
        raise ValueError(f"held-out fraction {fraction}: between 0 and 1")
    train_idx, val_idx = iterative_stratification(table.targets, [1 - fraction, fraction], seed)
    return table.subset(train_idx), table.subset(val_idx)
