"""Cross-fitting: what a rule fitted on a split achieves on images it was not fitted on, from that split alone.

The split's images are dealt into ``folds`` folds by iterative stratification (every class's positives spread over
the folds); for each fold, the rule is fitted on the other folds and applied to this one. The outputs of all folds,
put back in row order, are each an out-of-sample output: metrics computed from them estimate how the rule, fitted on
a split of this size, does on new images -- without a second held-out split. (They estimate the rule fitted on
(folds - 1) / folds of the split, a little less data than the final fit uses: slightly pessimistic.)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from labelgraph.data.splitting import iterative_stratification

DEFAULT_FOLDS = 5


def fold_indices(targets: np.ndarray, folds: int = DEFAULT_FOLDS, seed: int = 0) -> list[np.ndarray]:
    """Row indices of ``folds`` folds of equal size (at most one per image), stratified on ``targets`` (N, C)."""
    n = len(targets)
    folds = min(folds, n)
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 images, got {n}")
    return [f for f in iterative_stratification(np.asarray(targets), [1 / folds] * folds, seed) if len(f)]


def cross_fit(
    scores: np.ndarray,
    targets: np.ndarray,
    fit_apply: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
) -> np.ndarray:
    """Out-of-fold outputs: row i gets ``fit_apply(fit_scores, fit_targets, scores_of_i's_fold)[its row]``, the rule
    fitted without the fold of row i.

    Args:
        scores: (N, C) scores (probabilities or logits, whatever ``fit_apply`` takes).
        targets: (N, C) in {1, 0, -1}.
        fit_apply: fits on ``(scores, targets)`` of the other folds, returns its output for the held-out rows
            (any array whose first axis is those rows).

    Returns:
        the outputs of all rows, in row order.
    """
    scores, targets = np.asarray(scores), np.asarray(targets)
    out = None
    for fold in fold_indices(targets, folds, seed):
        rest = np.setdiff1d(np.arange(len(scores)), fold)
        part = np.asarray(fit_apply(scores[rest], targets[rest], scores[fold]))
        if out is None:
            out = np.empty((len(scores), *part.shape[1:]), dtype=part.dtype)
        out[fold] = part
    return out
