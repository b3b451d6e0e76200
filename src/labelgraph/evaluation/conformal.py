"""Tag sets with a guaranteed recall: conformal risk control of the false-negative rate.

Angelopoulos, Bates, Fisch, Lei and Schuster, *Conformal Risk Control*, ICLR 2024 (https://arxiv.org/abs/2208.02814),
Theorem 1, with the loss of their multi-label example: an image's false-negative rate, the fraction of its true
labels that the tag set leaves out,

    L_i(t) = 1 - |Y_i ∩ {c : p_ic >= t}| / |Y_i|,

non-decreasing in the threshold t and bounded by B = 1. On n calibration images, the rule takes the largest t with

    n / (n + 1) * mean_i L_i(t) + 1 / (n + 1) <= alpha,        alpha = 1 - recall.

**Guarantee.** If the calibration images and a new image are exchangeable (drawn the same way: the same source, no
shift), the expected recall of the new image's tag set {c : p_c >= t} is at least ``recall``: E[L_new(t)] <= alpha.
The expectation is over both the calibration split and the new image (marginal, not for every calibration split nor
every image: some images get lower recall, and a particular calibration split may fall short by O(1/n)); it holds for
any model, calibrated or not. It concerns the images with at least one true label (an image without one has nothing
to recall), and it counts only known labels (unknown, -1, entries are neither recalled nor missed).

The search is exact: ``mean_i L_i(t)`` only changes at a positive's score, so the largest valid t is one of them (the
authors' code, and MAPIE's ``MultiLabelClassificationController``, search a grid of 1,500 or 100 thresholds instead,
which gives the largest grid point below this t). When ``n < 1/alpha - 1`` no threshold passes (even t = 0 has
1/(n+1) > alpha): the rule then predicts every label, which is the only set with the guarantee, and says so
(``attainable`` false).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class RecallRule:
    """A threshold under which a new image's tag set has at least ``recall`` of its true labels, in expectation.

    Args:
        recall: the target, 1 - alpha.
        threshold: predict class c when p_c >= threshold (the probabilities the rule was fitted on: the model's
            calibrated ones when it has a temperature).
        images: n, the calibration images with at least one known positive.
        calibration_recall: the mean per-image recall on those images at ``threshold``.
        mean_labels: the mean number of labels per calibration image at ``threshold``.
        attainable: false when n was too small for any threshold (the rule predicts every label).
    """

    recall: float
    threshold: float
    images: int
    calibration_recall: float
    mean_labels: float
    attainable: bool

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "guarantee": self.guarantee()}

    def guarantee(self) -> str:
        return (
            f"expected recall >= {self.recall:g} on new images exchangeable with the {self.images} calibration images "
            "(conformal risk control of the false-negative rate; marginal over calibration split and image, images "
            "with at least one true label)"
        )


def images_needed(recall: float) -> int:
    """The fewest calibration images with which some threshold can pass at ``recall``: n >= 1/alpha - 1."""
    return int(np.ceil(1.0 / (1.0 - recall) - 1.0 - 1e-9))


def image_recall(predicted: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, C) decisions and {1, 0, -1} targets -> (N,) each image's fraction of known positives predicted (NaN for an
    image without one)."""
    positive = np.asarray(targets) == 1
    counts = positive.sum(1)
    hits = (np.asarray(predicted, dtype=bool) & positive).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / counts, np.nan)


def conformal_recall_threshold(scores: np.ndarray, targets: np.ndarray, recall: float = 0.9) -> RecallRule:
    """The conformal-risk-control threshold for ``recall`` on (N, C) probabilities and {1, 0, -1} targets."""
    if not 0 < recall < 1:
        raise ValueError(f"recall {recall}: a fraction in (0, 1)")
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(targets) == 1
    labelled = positive.any(1)
    n = int(labelled.sum())
    if n == 0:
        raise ValueError("no image with a known positive label: no recall to calibrate")
    s, positive = scores[labelled], positive[labelled]
    weight = np.broadcast_to((1.0 / positive.sum(1))[:, None], positive.shape)[positive]  # each positive's share
    pos_scores = s[positive]
    order = np.argsort(pos_scores, kind="stable")
    pos_scores, missed = pos_scores[order], np.cumsum(weight[order])  # missed[k]: loss mass of scores <= pos_scores[k]
    candidates = np.unique(pos_scores)  # ascending
    below = np.searchsorted(pos_scores, candidates, side="left")  # positives scoring strictly below each candidate
    risk = np.where(below > 0, missed[np.maximum(below - 1, 0)], 0.0) / n  # mean_i L_i(t), non-decreasing
    alpha = 1.0 - recall
    passes = n / (n + 1) * risk + 1 / (n + 1) <= alpha + 1e-12
    attainable = bool(passes.any())
    threshold = float(candidates[np.flatnonzero(passes)[-1]]) if attainable else 0.0
    predicted = s >= threshold
    return RecallRule(
        recall=recall,
        threshold=threshold,
        images=n,
        calibration_recall=float(np.nanmean(image_recall(predicted, positive.astype(np.int8)))),
        mean_labels=float(predicted.sum(1).mean()),
        attainable=attainable,
    )
