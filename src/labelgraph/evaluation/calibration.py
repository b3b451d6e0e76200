"""Are the probabilities probabilities? Expected calibration error, reliability bins and temperature scaling.

**Binning.** A multi-label model makes one binary prediction per (image, class): the probability p that the class is
present. Each entry with a known label (unknown, -1, entries are left out) falls into one of ``bins`` (default 15)
equal-width bins of p on [0, 1] (a bin holds p in [b, b + 1/bins), the last one includes 1). A bin's *confidence* is
the mean p of its entries, its *frequency* the fraction of them that are present; ECE is the mean over the entries of
|confidence - frequency| of their bin (the L1 ECE of Guo et al. 2017 for binary predictions, as torchmetrics'
``BinaryCalibrationError`` computes it, which the values here are checked against). It is reported pooled over every
known entry of every class (``overall``) and for each class alone (``per_class``), where a class's value rests on its
own, often few, entries.

**Scaling the logits** (:func:`fit_scaling`): ``p = sigmoid(z / T + b)`` with T and b fitted by maximum likelihood on
a validation split. *Temperature scaling* (Guo et al., *On Calibration of Modern Neural Networks*, ICML 2017,
https://arxiv.org/abs/1706.04599) fits T alone (b = 0): it changes how far the probabilities are from 0 and 1. *Platt
scaling* (Platt 1999) fits both: the bias also moves them, which a loss that shifts the logits needs -- the asymmetric
loss of Query2Label, SADCL, ML-Decoder and IML-GCN pushes negatives down harder than positives, and their
probabilities sit far from the observed frequencies in a way no temperature fixes (on the demo's scenes, Query2Label's
ECE 21.8 % -> 20.7 % with a temperature, 1.9 % with Platt scaling). Neither changes a class's ranking (mAP stays). One
pair for every class, or one per class; the fit is a logistic regression of the known labels on the logit
(scikit-learn's, no penalty; without intercept for temperature scaling): its slope is 1/T, its intercept b. A class
gets its own pair only with at least :data:`MIN_PER_CLASS` known positives and as many negatives; the others take the
global one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ECE_BINS = 15
#: known positives and negatives a class needs for a temperature of its own
MIN_PER_CLASS = 10
#: fitted temperatures are kept in this range (a degenerate fit -- labels unrelated to the logits -- would run away)
TEMPERATURE_RANGE = (0.05, 20.0)
BIAS_LIMIT = 20.0
SCALING_MODES = ("platt", "platt_per_class", "temperature", "temperature_per_class", "none")


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
    per_class = np.array(
        [ece_of_bins(reliability_bins(probs[:, c], targets[:, c], bins)) for c in range(probs.shape[1])]
    )
    return {
        "overall": 100 * ece_of_bins(reliability_bins(probs, targets, bins)),
        "per_class": 100 * per_class,
        "class_mean": float(100 * np.nanmean(per_class)) if np.isfinite(per_class).any() else float("nan"),
        "bins": bins,
        "binning": binning_text(bins),
    }


@dataclass(frozen=True)
class LogitScaling:
    """``p = sigmoid(logit / temperature + bias)``; ``temperature`` and ``bias`` are (C,) (equal entries when one
    value serves every class)."""

    temperature: np.ndarray
    bias: np.ndarray

    @classmethod
    def identity(cls, num_classes: int) -> LogitScaling:
        return cls(np.ones(num_classes), np.zeros(num_classes))

    def apply(self, logits: np.ndarray) -> np.ndarray:
        return scaled_sigmoid(logits, self.temperature, self.bias)


def fit_scaling(logits: np.ndarray, targets: np.ndarray, mode: str = "platt") -> LogitScaling:
    """(N, C) logits and {1, 0, -1} targets -> the :class:`LogitScaling` of ``mode`` (:data:`SCALING_MODES`).

    ``platt``: one slope and one bias for every class; ``temperature``: one slope, no bias; ``*_per_class``: one per
    class with at least :data:`MIN_PER_CLASS` known positives and negatives, the global fit for the others; ``none``:
    the identity. Without both a known positive and a known negative there is nothing to fit: the identity.
    """
    if mode not in SCALING_MODES:
        raise ValueError(f"scaling {mode!r}: one of {', '.join(SCALING_MODES)}")
    z, t = np.asarray(logits, dtype=np.float64), np.asarray(targets)
    if mode == "none":
        return LogitScaling.identity(z.shape[1])
    with_bias = mode.startswith("platt")
    known = t >= 0
    temperature, bias = one_scaling(z[known], t[known] == 1, with_bias)
    temps, biases = np.full(z.shape[1], temperature), np.full(z.shape[1], bias)
    if mode.endswith("per_class"):
        for c in range(z.shape[1]):
            k = known[:, c]
            y = t[k, c] == 1
            if min(y.sum(), (~y).sum()) >= MIN_PER_CLASS:
                temps[c], biases[c] = one_scaling(z[k, c], y, with_bias)
    return LogitScaling(temps, biases)


def fit_temperature(logits: np.ndarray, targets: np.ndarray, per_class: bool = False) -> np.ndarray:
    """(N, C) logits and {1, 0, -1} targets -> (C,) temperatures of temperature scaling (no bias)."""
    return fit_scaling(logits, targets, "temperature_per_class" if per_class else "temperature").temperature


def one_scaling(z: np.ndarray, y: np.ndarray, with_bias: bool) -> tuple[float, float]:
    """The maximum-likelihood ``(T, b)`` of ``sigmoid(z / T + b)`` for labels ``y`` (b = 0 unless ``with_bias``): a
    logistic regression of y on z without penalty (scikit-learn); T = 1 / its slope."""
    if y.all() or not y.any():
        return 1.0, 0.0
    import warnings

    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():  # separable labels: lbfgs stops at its iteration cap; the clip below takes it
        warnings.simplefilter("ignore")
        fitted = LogisticRegression(C=np.inf, fit_intercept=with_bias).fit(z.reshape(-1, 1), y)
    slope, bias = float(fitted.coef_[0, 0]), float(fitted.intercept_[0]) if with_bias else 0.0
    if slope <= 0:  # scores no better than chance on these labels: leave them as they are
        return 1.0, 0.0
    return float(np.clip(1.0 / slope, *TEMPERATURE_RANGE)), float(np.clip(bias, -BIAS_LIMIT, BIAS_LIMIT))


def scaled_sigmoid(
    logits: np.ndarray, temperature: np.ndarray | float = 1.0, bias: np.ndarray | float = 0.0
) -> np.ndarray:
    """``sigmoid(logits / T + b)`` (the plain sigmoid with the defaults); ``temperature`` and ``bias`` (C,) or one
    number."""
    z = np.asarray(logits, dtype=np.float64) / np.asarray(temperature, dtype=np.float64)
    return 1.0 / (1.0 + np.exp(-(z + np.asarray(bias, dtype=np.float64))))


def logit(p: np.ndarray | float) -> np.ndarray:
    """The log-odds of probabilities, kept inside (1e-6, 1 - 1e-6) so that they stay finite."""
    p = np.clip(np.asarray(p, dtype=np.float64), 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def scaling_formula(temperature: list[float], bias: list[float]) -> str:
    """``sigmoid(logit / 1.21 - 0.35)``, the ranges when the classes have their own, or the plain sigmoid."""
    if set(temperature) == {1.0} and set(bias) == {0.0}:
        return "sigmoid(logit): the network's own"
    if len(set(temperature)) == 1 and len(set(bias)) == 1:
        t, b = temperature[0], bias[0]
        return f"sigmoid(logit / {t:.3g} {'-' if b < 0 else '+'} {abs(b):.3g})"
    return (
        f"sigmoid(logit / T + b), T {min(temperature):.3g}..{max(temperature):.3g}, b {min(bias):.3g}.."
        f"{max(bias):.3g} by class"
    )
