"""Per-class decision thresholds calibrated on a validation split (``labelgraph calibrate``).

For each class the threshold that maximises that class's F1 on the given scores: a label is predicted at
``p >= t``; ``t`` is placed halfway between the lowest accepted and the highest rejected score, so it does not sit
on a validation score. Unknown (-1) targets are left out; a class without a positive keeps ``default``.
"""

from __future__ import annotations

import numpy as np


def f1_optimal_thresholds(scores: np.ndarray, targets: np.ndarray, default: float = 0.5) -> np.ndarray:
    """(N, C) probabilities and {1, 0, -1} targets -> (C,) thresholds maximising each class's F1.

    Ties are respected: a cut never separates equal scores.
    """
    scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets)
    thresholds = np.full(scores.shape[1], float(default))
    for c in range(scores.shape[1]):
        known = targets[:, c] >= 0
        s, y = scores[known, c], targets[known, c] == 1
        if not y.any():
            continue
        order = np.argsort(-s, kind="stable")
        s, y = s[order], y[order]
        last_of_tie = np.r_[s[1:] != s[:-1], True]  # cut only after the last of a run of equal scores
        tp = np.cumsum(y)[last_of_tie]
        predicted = np.arange(1, len(s) + 1)[last_of_tie]
        f1 = 2 * tp / (predicted + y.sum())
        k = np.flatnonzero(last_of_tie)[int(np.argmax(f1))]  # index of the lowest accepted score
        thresholds[c] = (s[k] + s[k + 1]) / 2 if k + 1 < len(s) else s[k]
    return thresholds
