"""Multi-label metrics with explicit modes: mAP, CP/CR/CF1, OP/OR/OF1 and their top-k variants.

The papers of this field measure differently (see ``shared/REFERENCES.md`` §1); every difference is a named mode:

- ``ap_mode="noninterp"`` (default): mean over the positives of the precision at their rank, *tie-aware*
  (tied scores form one operating point) -- identical to scikit-learn's ``average_precision_score``;
  the ML-GCN, ADD-GCN, LGLM and ASL evaluation code computes this (it equals sklearn when there are no ties).
- ``ap_mode="voc_interp"``: all-point interpolated AP (the precision envelope max_{r' >= r} P(r')), as
  SSGRL, Query2Label and SADCL evaluate. Ties are treated as one operating point here too, so the result does
  not depend on the sort order of tied scores (the official code's result does).
- ``cf1="harmonic"`` (default): CF1 = 2 CP CR / (CP + CR) (ML-GCN, ADD-GCN, LGLM); ``cf1="mean_f1"``: the mean of
  the per-class F1 (ASL's validate.py, SADCL).
- a label is predicted when its probability is ``>= threshold`` (``inclusive=True``, ML-GCN's ``logit >= 0``) or
  ``> threshold`` (``inclusive=False``: ASL, SADCL). Top-k metrics predict a label when it is among the image's
  k highest scores *and* passes the threshold.
- ``unknown="ignore"`` (default): entries with target -1 count neither as positive nor negative anywhere;
  ``unknown="negative"``: they count as negatives.

mAP is the mean over classes with at least one positive; classes without positives get AP = NaN and are listed
in ``excluded_classes``. Class-averaged metrics (CP, CR, CF1) average over the same classes; a class with no
predicted positive has precision 0. Overall metrics (OP, OR, OF1) pool all classes.
All values returned by :func:`evaluate` are percentages, as the papers' tables print them.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from torchmetrics import Metric

APMode = Literal["noninterp", "voc_interp"]
CF1Mode = Literal["harmonic", "mean_f1"]
UnknownPolicy = Literal["ignore", "negative"]

#: Settings that reproduce each paper's evaluation code (pass as ``evaluate(..., **METRIC_PRESETS[name])``).
METRIC_PRESETS: dict[str, dict[str, Any]] = {
    "ml_gcn": {"ap_mode": "noninterp", "cf1": "harmonic", "threshold": 0.5, "inclusive": True},
    "add_gcn": {"ap_mode": "noninterp", "cf1": "harmonic", "threshold": 0.5, "inclusive": True},
    "ssgrl": {"ap_mode": "voc_interp", "cf1": "harmonic", "threshold": 0.5, "inclusive": True},
    "query2label": {"ap_mode": "voc_interp", "cf1": "harmonic", "threshold": 0.5, "inclusive": True},
    "sadcl": {"ap_mode": "voc_interp", "cf1": "mean_f1", "threshold": 0.5, "inclusive": False},
    "asl": {"ap_mode": "noninterp", "cf1": "mean_f1", "threshold": 0.8, "inclusive": False},
}

SCALAR_KEYS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1")


def _to_numpy(x: Any, dtype: type) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().float().cpu().numpy() if dtype is np.float64 else x.detach().cpu().numpy()
    return np.asarray(x, dtype=dtype)


def _check(scores: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
    s = _to_numpy(scores, np.float64)
    t = _to_numpy(targets, np.int8)
    if s.ndim != 2 or s.shape != t.shape:
        raise ValueError(f"scores and targets must both be (N, C); got {s.shape} and {t.shape}")
    if not np.isfinite(s).all():
        raise ValueError("scores contain NaN or infinite values")
    bad = (t < -1) | (t > 1)
    if bad.any():
        raise ValueError(f"targets must be in {{1, 0, -1}}; found {np.unique(t[bad]).tolist()}")
    return s, t


def _pos_neg(t: np.ndarray, unknown: UnknownPolicy) -> tuple[np.ndarray, np.ndarray]:
    if unknown not in ("ignore", "negative"):
        raise ValueError(f"unknown={unknown!r}; use 'ignore' or 'negative'")
    pos = t == 1
    neg = (t == 0) if unknown == "ignore" else ~pos
    return pos, neg


def average_precision(
    scores: Any, targets: Any, mode: APMode = "noninterp", unknown: UnknownPolicy = "ignore"
) -> np.ndarray:
    """Per-class average precision in [0, 1]; NaN for a class without positives.

    Args:
        scores: (N, C) scores (probabilities or logits: AP only depends on their order).
        targets: (N, C) int in {1 present, 0 absent, -1 unknown}.
        mode: ``"noninterp"`` (= sklearn ``average_precision_score``) or ``"voc_interp"``.
        unknown: ``"ignore"`` or ``"negative"`` for -1 targets.

    Returns:
        (C,) float64 array.
    """
    s, t = _check(scores, targets)
    return _average_precision(s, t, mode, unknown)


def _average_precision(s: np.ndarray, t: np.ndarray, mode: APMode, unknown: UnknownPolicy) -> np.ndarray:
    if mode not in ("noninterp", "voc_interp"):
        raise ValueError(f"ap mode {mode!r}; use 'noninterp' or 'voc_interp'")
    pos, neg = _pos_neg(t, unknown)
    s, pos, neg = s.T, pos.T, neg.T  # (C, N): sort along the contiguous axis
    n = s.shape[1]
    order = np.argsort(-s, axis=1)  # any order within ties: each tie group is scored at its end below
    s_sorted = np.take_along_axis(s, order, axis=1)
    pos_sorted = np.take_along_axis(pos, order, axis=1)
    tp = np.cumsum(pos_sorted, axis=1, dtype=np.float64)
    fp = np.cumsum(np.take_along_axis(neg, order, axis=1), axis=1, dtype=np.float64)
    precision = tp / np.maximum(tp + fp, 1.0)  # (C, N), precision after each rank
    # Tied scores are one operating point: every rank takes the precision at the end of its tie group.
    group_end = np.ones_like(s_sorted, dtype=bool)
    group_end[:, :-1] = s_sorted[:, :-1] != s_sorted[:, 1:]
    end_index = np.where(group_end, np.arange(n), n)
    end_index = np.minimum.accumulate(end_index[:, ::-1], axis=1)[:, ::-1]  # next group end at or after each rank
    precision = np.take_along_axis(precision, end_index, axis=1)
    if mode == "voc_interp":
        precision = np.maximum.accumulate(precision[:, ::-1], axis=1)[:, ::-1]  # envelope: best precision to the right
    num_pos = pos_sorted.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = (precision * pos_sorted).sum(axis=1) / num_pos
    ap[num_pos == 0] = np.nan
    return ap


def _threshold_metrics(predicted: np.ndarray, t: np.ndarray, unknown: UnknownPolicy, cf1: CF1Mode) -> dict[str, float]:
    """CP, CR, CF1, OP, OR, OF1 (fractions) from a boolean prediction matrix (N, C)."""
    if cf1 not in ("harmonic", "mean_f1"):
        raise ValueError(f"cf1={cf1!r}; use 'harmonic' or 'mean_f1'")
    pos, neg = _pos_neg(t, unknown)
    predicted = predicted & (pos | neg)  # predictions on unknown entries are not counted
    n_correct = (predicted & pos).sum(axis=0).astype(np.float64)  # (C,)
    n_pred = predicted.sum(axis=0).astype(np.float64)
    n_gt = pos.sum(axis=0).astype(np.float64)
    evaluated = n_gt > 0
    prec_c = np.divide(n_correct, n_pred, out=np.zeros_like(n_correct), where=n_pred > 0)
    rec_c = np.divide(n_correct, n_gt, out=np.zeros_like(n_correct), where=evaluated)
    cp = float(prec_c[evaluated].mean()) if evaluated.any() else 0.0
    cr = float(rec_c[evaluated].mean()) if evaluated.any() else 0.0
    if cf1 == "harmonic":
        cf = _harmonic(cp, cr)
    else:
        f1_c = np.divide(2 * prec_c * rec_c, prec_c + rec_c, out=np.zeros_like(prec_c), where=prec_c + rec_c > 0)
        cf = float(f1_c[evaluated].mean()) if evaluated.any() else 0.0
    op = n_correct.sum() / n_pred.sum() if n_pred.sum() > 0 else 0.0
    orec = n_correct.sum() / n_gt.sum() if n_gt.sum() > 0 else 0.0
    return {"CP": cp, "CR": cr, "CF1": cf, "OP": float(op), "OR": float(orec), "OF1": _harmonic(op, orec)}


def _harmonic(p: float, r: float) -> float:
    return float(2 * p * r / (p + r)) if p + r > 0 else 0.0


def top_k_mask(scores: np.ndarray, k: int) -> np.ndarray:
    """(N, C) boolean mask of each row's k highest scores (all classes when k >= C)."""
    n, c = scores.shape
    if k >= c:
        return np.ones((n, c), dtype=bool)
    top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    mask = np.zeros((n, c), dtype=bool)
    np.put_along_axis(mask, top, True, axis=1)
    return mask


def evaluate(
    scores: Any,
    targets: Any,
    threshold: float = 0.5,
    top_k: int = 3,
    cf1: CF1Mode = "harmonic",
    ap_mode: APMode = "noninterp",
    unknown: UnknownPolicy = "ignore",
    inclusive: bool = True,
) -> dict[str, Any]:
    """All metrics of the field's tables, in percent.

    Args:
        scores: (N, C) probabilities (numpy or torch).
        targets: (N, C) int8 in {1, 0, -1}.
        threshold: probability threshold of the threshold metrics.
        top_k: k of the top-k metrics (keys ``CP_top3`` etc. for k = 3); 0 disables them.
        cf1: ``"harmonic"`` or ``"mean_f1"``.
        ap_mode: ``"noninterp"`` or ``"voc_interp"``.
        unknown: ``"ignore"`` or ``"negative"``.
        inclusive: predict at ``p >= threshold`` (True) or ``p > threshold`` (False).

    Returns:
        ``{"mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CP_top3", ..., "OF1_top3"}`` as floats in percent,
        ``"AP"``: (C,) per-class AP in percent (NaN where a class has no positive), and ``"excluded_classes"``:
        the indices of those classes.
    """
    s, t = _check(scores, targets)
    ap = _average_precision(s, t, ap_mode, unknown)
    evaluated = ~np.isnan(ap)
    result: dict[str, Any] = {"mAP": float(100 * ap[evaluated].mean()) if evaluated.any() else float("nan")}
    passes = s >= threshold if inclusive else s > threshold
    result.update({k: 100 * v for k, v in _threshold_metrics(passes, t, unknown, cf1).items()})
    if top_k:
        topk = _threshold_metrics(passes & top_k_mask(s, top_k), t, unknown, cf1)
        result.update({f"{k}_top{top_k}": 100 * v for k, v in topk.items()})
    result["AP"] = 100 * ap
    result["excluded_classes"] = np.flatnonzero(~evaluated).tolist()
    return result


class MultiLabelMetrics(Metric):
    """Streaming accumulator for validation loops: collects (scores, targets), evaluates once at the end.

    Under DDP, ``compute()`` gathers every rank's rows (uneven counts are fine). Samples are counted once as long
    as the evaluation sampler does not pad (``labelgraph.data.UnpaddedDistributedSampler``, which the data module
    uses under DDP; Lightning's default sampler repeats samples to even out ranks).

    Example:
        >>> metric = MultiLabelMetrics(ap_mode="voc_interp")
        >>> metric.update(torch.sigmoid(logits), targets)  # per batch
        >>> metric.compute()["mAP"]
    """

    full_state_update = False

    def __init__(self, **evaluate_kwargs: Any) -> None:
        super().__init__()
        self.evaluate_kwargs = evaluate_kwargs
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("targets", default=[], dist_reduce_fx="cat")

    def update(self, scores: torch.Tensor, targets: torch.Tensor) -> None:  # type: ignore[override]
        self.scores.append(scores.detach().float())
        self.targets.append(targets.detach().to(torch.int8))

    def compute(self) -> dict[str, Any]:  # type: ignore[override]
        scores = self.scores if isinstance(self.scores, torch.Tensor) else torch.cat(self.scores)
        targets = self.targets if isinstance(self.targets, torch.Tensor) else torch.cat(self.targets)
        return evaluate(scores, targets, **self.evaluate_kwargs)
