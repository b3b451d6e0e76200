"""A model's post-hoc calibration fitted as one piece -- the scaling of its logits, per-class thresholds, the recall
rule -- and measured where it was not fitted.

:func:`fit_posthoc` fits, in order, the scaling on the logits (:mod:`labelgraph.evaluation.calibration`: Platt or
temperature scaling), the per-class thresholds on the scaled probabilities (:mod:`labelgraph.evaluation.thresholds`)
and, when
asked, the conformal recall threshold on the same probabilities (:mod:`labelgraph.evaluation.conformal`).
:func:`measure_posthoc` reports what a fit does on a split; :func:`cross_fitted_measures` what the whole procedure,
fitted on (folds - 1) / folds of the calibration split, does on the fold it did not see, fold by fold: the honest
numbers when no second split is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from labelgraph.evaluation.calibration import (
    LogitScaling,
    calibration_error,
    fit_scaling,
    reliability_bins,
    scaled_sigmoid,
)
from labelgraph.evaluation.conformal import RecallRule, conformal_recall_threshold, image_recall
from labelgraph.evaluation.cross_fitting import DEFAULT_FOLDS, cross_fit
from labelgraph.evaluation.metrics import decision_metrics
from labelgraph.evaluation.thresholds import ThresholdFit, ThresholdRule

THRESHOLD_KEYS = ("CP", "CR", "CF1", "OP", "OR", "OF1")
#: fewer calibration images than this: no cross-fitting (a fold would hold one image)
MIN_CROSS_FIT_IMAGES = 4


@dataclass(frozen=True)
class PosthocFit:
    """The logits' scaling, the thresholds and the recall rule, fitted on one split."""

    scaling: LogitScaling
    thresholds: ThresholdFit
    recall: RecallRule | None

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        return self.scaling.apply(logits)

    def outputs(self, logits: np.ndarray) -> np.ndarray:
        """(N, C, 3): calibrated probability, the thresholds' decision, the recall rule's decision (0 without one)."""
        p = self.probabilities(logits)
        recall = p >= self.recall.threshold if self.recall is not None else np.zeros_like(p, dtype=bool)
        return np.stack([p, p >= self.thresholds.thresholds, recall], axis=-1)


def fit_posthoc(
    logits: np.ndarray,
    targets: np.ndarray,
    rule: ThresholdRule,
    scaling: str | LogitScaling = "platt",
    recall: float | None = None,
) -> PosthocFit:
    """Fit the three parts on (N, C) logits and {1, 0, -1} targets. ``scaling``: a mode of
    :data:`labelgraph.evaluation.calibration.SCALING_MODES`, or a fixed :class:`LogitScaling` (a model's stored one,
    kept)."""
    z, t = np.asarray(logits, dtype=np.float64), np.asarray(targets)
    fitted = fit_scaling(z, t, scaling) if isinstance(scaling, str) else scaling
    p = fitted.apply(z)
    labelled = (t == 1).any(1).any()
    recall_rule = conformal_recall_threshold(p, t, recall) if recall is not None and labelled else None
    return PosthocFit(fitted, rule.fit(p, t), recall_rule)


def measure_posthoc(raw: np.ndarray, outputs: np.ndarray, targets: np.ndarray, with_recall: bool) -> dict[str, Any]:
    """What a fit's ``outputs`` (:meth:`PosthocFit.outputs`, or their cross-fitted assembly) do against ``targets``.

    Args:
        raw: (N, C) the model's own probabilities (temperature 1), for the before/after comparison.

    Returns:
        percent: ``threshold_0.5`` and ``calibrated`` (CP..OF1 at 0.5 and at the thresholds), ``ece_before`` /
        ``ece_after`` (pooled ECE of the raw and the calibrated probabilities), ``reliability`` (the reliability
        diagram's bins of both: ``edges``, and ``before`` / ``after`` with ``count``, ``confidence``, ``frequency``;
        None for an empty bin) and, ``with_recall``, ``recall_rule``: the mean per-image recall and labels per
        image.
    """
    t = np.asarray(targets)
    probs, decided, recall_decided = outputs[..., 0], outputs[..., 1] > 0, outputs[..., 2] > 0
    out: dict[str, Any] = {"images": len(t)}
    for name, decisions in (("threshold_0.5", raw >= 0.5), ("calibrated", decided)):
        m = decision_metrics(decisions, t)
        out[name] = {k: round(m[k], 2) for k in THRESHOLD_KEYS}
    out["ece_before"] = round(calibration_error(raw, t)["overall"], 2)
    out["ece_after"] = round(calibration_error(probs, t)["overall"], 2)
    out["reliability"] = reliability_json(raw, probs, t)
    if with_recall:
        per_image = image_recall(recall_decided, t)
        mean = round(float(np.nanmean(per_image)), 4) if np.isfinite(per_image).any() else None
        out["recall_rule"] = {"recall": mean, "labels_per_image": round(float(recall_decided.sum(1).mean()), 2)}
    return out


def reliability_json(raw: np.ndarray, calibrated: np.ndarray, targets: np.ndarray) -> dict[str, Any]:
    """The reliability bins of the raw and the calibrated probabilities, as JSON (NaN -> None)."""

    def plain(values: np.ndarray) -> list[float | None]:
        return [None if not np.isfinite(v) else round(float(v), 5) for v in values]

    out: dict[str, Any] = {}
    for name, probs in (("before", raw), ("after", calibrated)):
        bins = reliability_bins(probs, targets)
        out["edges"] = plain(bins["edges"])
        out[name] = {k: plain(bins[k]) for k in ("count", "confidence", "frequency")}
    return out


def cross_fitted_measures(
    logits: np.ndarray,
    targets: np.ndarray,
    rule: ThresholdRule,
    scaling: str | LogitScaling = "platt",
    recall: float | None = None,
    folds: int = DEFAULT_FOLDS,
    seed: int = 0,
    split: str = "the calibration split",
) -> dict[str, Any] | None:
    """:func:`measure_posthoc` of the procedure cross-fitted on the calibration split (``split``: what to call it);
    None when it has fewer than :data:`MIN_CROSS_FIT_IMAGES` images."""
    z, t = np.asarray(logits, dtype=np.float64), np.asarray(targets)
    if len(z) < MIN_CROSS_FIT_IMAGES:
        return None

    def fit_apply(fit_z: np.ndarray, fit_t: np.ndarray, held: np.ndarray) -> np.ndarray:
        return fit_posthoc(fit_z, fit_t, rule, scaling, recall).outputs(held)

    outputs = cross_fit(z, t, fit_apply, folds, seed)
    folds_used = min(folds, len(z))
    return {
        "where": f"{split}, {folds_used}-fold cross-fitted (each fold scored by a fit without it)",
        **measure_posthoc(scaled_sigmoid(z), outputs, t, recall is not None),
    }
