"""Are the probabilities probabilities? Expected calibration error, reliability bins and temperature scaling.

**Binning.** A multi-label model makes one binary prediction per (image, class): the probability p that the class is
present. Each entry with a known label (unknown, -1, entries are left out) falls into one of ``bins`` (default 15)
equal-width bins of p on [0, 1] (a bin holds p in [b, b + 1/bins), the last one includes 1). A bin's *confidence* is
the mean p of its entries, its *frequency* the fraction of them that are present; ECE is the mean over the entries of
|confidence - frequency| of their bin (the L1 ECE of Guo et al. 2017 for binary predictions, as torchmetrics'
``BinaryCalibrationError`` computes it, which the values here are checked against). It is reported pooled over every
known entry of every class (``overall``) and for each class alone (``per_class``), where a class's value rests on its
own, often few, entries.

**Temperature scaling** (Guo et al., *On Calibration of Modern Neural Networks*, ICML 2017,
https://arxiv.org/abs/1706.04599) divides the logits by a temperature T fitted by maximum likelihood on a validation
split: ``p = sigmoid(z / T)``. One T for every class (``per_class=False``) or one per class; it changes no ranking
(mAP stays), only how far the probabilities are from 0 and 1. The fit is a logistic regression of the known labels on
the logit without intercept (scikit-learn's, no penalty): its coefficient is 1/T. A per-class T is fitted only for a
class with at least :data:`MIN_PER_CLASS` known positives and as many negatives; the others take the global T.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ECE_BINS = 15
#: known positives and negatives a class needs for a temperature of its own
MIN_PER_CLASS = 10
#: fitted temperatures are kept in this range (a degenerate fit -- labels unrelated to the logits -- would run away)
TEMPERATURE_RANGE = (0.05, 20.0)


def binning_text(bins: int = ECE_BINS) -> str:
    return f"{bins} equal-width bins of the predicted probability on [0, 1], every known (image, class) entry once"


def reliability_bins(probs: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS) -> dict[str, np.ndarray]:
    """The reliability diagram's numbers over the known entries of ``probs``/``targets`` (any equal shapes).

    Returns:
        ``edges`` (bins + 1,), and per bin ``count``, ``confidence`` (mean p) and ``frequency`` (fraction present),
        NaN for an empty bin.
    """
    p, t = np.asarray(probs, dtype=np.float64).ravel(), np.asarray(targets).ravel()
    known = t >= 0
    p, y = p[known], (t[known] == 1).astype(np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, bins - 1)
    count = np.bincount(which, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        confidence = np.bincount(which, weights=p, minlength=bins) / count
        frequency = np.bincount(which, weights=y, minlength=bins) / count
    return {"edges": edges, "count": count, "confidence": confidence, "frequency": frequency}


def ece_of_bins(b: dict[str, np.ndarray]) -> float:
    """ECE of :func:`reliability_bins`' output (NaN without a known entry)."""
    total = b["count"].sum()
    if total == 0:
        return float("nan")
    used = b["count"] > 0
    return float((b["count"][used] * np.abs(b["confidence"][used] - b["frequency"][used])).sum() / total)


def calibration_error(probs: np.ndarray, targets: np.ndarray, bins: int = ECE_BINS) -> dict[str, Any]:
    """ECE of (N, C) probabilities against {1, 0, -1} targets, in percent.

    Returns:
        ``overall`` (every known entry pooled), ``per_class`` (C,) (NaN for a class without known entries),
        ``class_mean`` (their mean over classes with entries), ``bins`` and ``binning`` (in words).
    """
    probs, targets = np.asarray(probs, dtype=np.float64), np.asarray(targets)
    per_class = np.array([ece_of_bins(reliability_bins(probs[:, c], targets[:, c], bins))
                          for c in range(probs.shape[1])])  # fmt: skip
    return {
        "overall": 100 * ece_of_bins(reliability_bins(probs, targets, bins)),
        "per_class": 100 * per_class,
        "class_mean": float(100 * np.nanmean(per_class)) if np.isfinite(per_class).any() else float("nan"),
        "bins": bins,
        "binning": binning_text(bins),
    }


def fit_temperature(logits: np.ndarray, targets: np.ndarray, per_class: bool = False) -> np.ndarray:
    """(N, C) logits and {1, 0, -1} targets -> (C,) temperatures (all equal unless ``per_class``).

    Without both a known positive and a known negative there is nothing to fit: T = 1.
    """
    z, t = np.asarray(logits, dtype=np.float64), np.asarray(targets)
    known = t >= 0
    overall = one_temperature(z[known], t[known] == 1)
    temperatures = np.full(z.shape[1], overall)
    if per_class:
        for c in range(z.shape[1]):
            k = known[:, c]
            y = t[k, c] == 1
            if min(y.sum(), (~y).sum()) >= MIN_PER_CLASS:
                temperatures[c] = one_temperature(z[k, c], y)
    return temperatures


def one_temperature(z: np.ndarray, y: np.ndarray) -> float:
    """The maximum-likelihood T of ``sigmoid(z / T)`` for labels ``y``: 1 / the slope of a logistic regression of y
    on z without intercept or penalty (scikit-learn)."""
    if y.all() or not y.any():
        return 1.0
    import warnings

    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():  # separable labels: lbfgs stops at its iteration cap; the clip below takes it
        warnings.simplefilter("ignore")
        slope = float(LogisticRegression(C=np.inf, fit_intercept=False).fit(z.reshape(-1, 1), y).coef_[0, 0])
    if slope <= 0:  # scores no better than chance on these labels: leave them as they are
        return 1.0
    return float(np.clip(1.0 / slope, *TEMPERATURE_RANGE))


def apply_temperature(logits: np.ndarray, temperatures: np.ndarray | float) -> np.ndarray:
    """``sigmoid(logits / T)``; ``temperatures`` (C,) or one number."""
    z = np.asarray(logits, dtype=np.float64) / np.asarray(temperatures, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-z))
