"""Which (image, label) entries of a labelled split are most likely wrong: a positive the annotator missed, a tag that
does not belong.

Two kinds of evidence, from scores that the model gave each image without having trained on it (out-of-fold, or a
model trained elsewhere):

- **the model**: a label given as present whose probability is low, or given as absent whose probability is high.
  Alone, ranked by *self-confidence* (1 - p for a given positive, p for a given negative), this is the per-class
  confident learning of Northcutt, Jiang and Chuang, *Confident Learning: Estimating Uncertainty in Dataset Labels*,
  JAIR 2021 (https://arxiv.org/abs/1911.00068), each class a binary task, as cleanlab's multi-label functions do:
  :func:`confident_learning` (the off-diagonal of each class's confident joint, with its per-class thresholds).
- **the label graph**: how the entry fits the image's *other* labels. From the split's own co-occurrence counts,
  leaving the image out, P(c | j) for each other label j of the image: a missed positive usually comes with labels
  that imply it, a stray tag with labels it rarely goes with. The context of entry (i, c) is the mean and the
  maximum over the image's other labels of logit P(c | j) - logit P(c).

:func:`audit_scores` combines them in a noise model fitted to the split itself. Each entry has a true state
(present or absent) that the given label reports with two error rates, P(given 0 | present) (missed) and P(given 1 |
absent) (added); the probability that the class is present is a logistic regression on the entry's evidence -- the
model's logit, the two context features, the class's prior log-odds and whether the image has other labels. EM fits
the regression and the two rates together from the given labels (the label-noise-robust logistic regression of
Bootkrajang and Kabán, ECML PKDD 2012), cross-fitted over images: an entry is scored by a fit that did not see its
image. The suspicion of an entry is then the posterior probability that its given label is wrong,
P(absent | evidence, given 1) or P(present | evidence, given 0): one scale for both kinds of error, so that "more
likely wrong than right" (suspicion >= 0.5) means what it says under the model. Unknown (-1) entries are not audited
and count as absent in the co-occurrence statistics.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np

from labelgraph.evaluation.calibration import logit
from labelgraph.evaluation.cross_fitting import cross_fit

#: pseudo-images of the class's prior added to every conditional P(c | j) (a pair seen in 2 images is not certain)
SMOOTHING = 1.0
KINDS = ("missing", "spurious")  # a given 0 that looks present, a given 1 that looks absent
#: the noise rates EM starts from: P(given 0 | present), P(given 1 | absent)
START_RATES = (0.05, 0.01)
EM_ITERATIONS = 15
MAX_RATE = 0.45  # a rate above one half would swap the meaning of the labels


def self_confidence_suspicion(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, C) suspicion of the model alone: 1 - p for a given positive, p for a given negative, NaN where unknown."""
    p, t = np.asarray(probs, dtype=np.float64), np.asarray(targets)
    return np.where(t == 1, 1 - p, np.where(t == 0, p, np.nan))


def confident_learning(probs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """(N, C) bool: the entries per-class confident learning calls label issues.

    For each class as a binary task: t1 = the mean p over its given positives, t0 = the mean 1 - p over its given
    negatives; an entry is confidently present when p >= t1, confidently absent when 1 - p >= t0 (both: the larger of
    p and 1 - p decides); an issue when that confident label differs from the given one.
    """
    p, t = np.asarray(probs, dtype=np.float64), np.asarray(targets)
    pos, neg = t == 1, t == 0
    with np.errstate(invalid="ignore", divide="ignore"):  # a class without given positives: NaN threshold
        t1 = np.where(pos, p, 0).sum(0) / pos.sum(0)  # (C,)
        t0 = np.where(neg, 1 - p, 0).sum(0) / neg.sum(0)
    present, absent = p >= t1, (1 - p) >= t0  # NaN thresholds (no given positive / negative) compare False
    confident_present = present & (~absent | (p >= 0.5))
    confident_absent = absent & (~present | (p < 0.5))
    return (neg & confident_present) | (pos & confident_absent)


def context_features(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """How each entry fits the image's other labels, from the split's co-occurrences without the image itself.

    Returns:
        ``mean``, ``max`` (N, C): over the image's other positive labels j, logit P(c | j) - logit P(c) (0 for an
        image without other labels), and ``alone`` (N, C) bool: the image has no other label.
    """
    y = (np.asarray(targets) == 1).astype(np.float64)  # (N, C)
    n = len(y)
    count = y.sum(0)  # (C,)
    pair = y.T @ y  # (C, C): images holding both
    prior = np.clip(count / max(n, 1), 1e-3, 1 - 1e-3)  # (C,)
    base = logit(prior)[None, :]  # (1, C)
    means, maxes = np.zeros_like(y), np.zeros_like(y)
    others = y.sum(1, keepdims=True) - y  # (N, C): the image's other labels, for each c
    chunk = max(1, 2_000_000 // y.shape[1] ** 2)  # images per (B, C, C) block: a few tens of MB
    for start in range(0, n, chunk):
        yb = y[start : start + chunk]  # (B, C)
        # leave the image out: j is one of its labels, so N_j drops by 1 and N_cj by y_ic
        joint = pair[None, :, :] - yb[:, :, None] * yb[:, None, :]  # (B, C_c, C_j)
        given = (count[None, None, :] - 1 + SMOOTHING).clip(min=SMOOTHING)  # (1, 1, C_j)
        cond = (joint + SMOOTHING * prior[None, :, None]) / given  # P(c | j), (B, C_c, C_j)
        lift = logit(cond) - base[:, :, None]  # (B, C_c, C_j)
        use = yb[:, None, :] * (1 - np.eye(y.shape[1]))[None]  # other labels j of the image, j != c
        total = use.sum(2)
        means[start : start + chunk] = np.where(total > 0, (lift * use).sum(2) / np.maximum(total, 1), 0.0)
        maxes[start : start + chunk] = np.where(total > 0, np.where(use > 0, lift, -np.inf).max(2), 0.0)
    return means, maxes, others == 0


def entry_features(probs: np.ndarray, targets: np.ndarray, use_graph: bool = True) -> np.ndarray:
    """(N, C, F) features of every entry: model logit, context mean and max, class prior log-odds, alone (F = 5);
    without ``use_graph`` only the model logit and the class prior (F = 2)."""
    t = np.asarray(targets)
    model = logit(np.asarray(probs, dtype=np.float64))
    prior = np.broadcast_to(logit(np.clip((t == 1).mean(0), 1e-3, 1 - 1e-3)), t.shape)
    if not use_graph:
        return np.stack([model, prior], axis=-1)
    mean, high, alone = context_features(t)
    return np.stack([model, mean, high, prior, alone.astype(np.float64)], axis=-1)


def audit_scores(
    probs: np.ndarray, targets: np.ndarray, use_graph: bool = True, folds: int = 5, seed: int = 0
) -> dict[str, Any]:
    """Suspicion of every known entry (see the module docstring).

    Args:
        probs: (N, C) probabilities of a model that did not train on these images (out-of-fold).
        targets: (N, C) the given labels, {1, 0, -1}.
        use_graph: False: the same noise model on the model's evidence alone (with the class prior), for comparison.

    Returns:
        ``suspicion`` (N, C): the probability that the given label is wrong (NaN where unknown); ``kind`` (N, C) of
        :data:`KINDS` ('' where unknown); ``present`` (N, C): the fitted probability that the class is truly present;
        ``noise_rates``: the fitted P(given 0 | present) and P(given 1 | absent), averaged over the folds; and
        ``confident_learning`` (N, C): the entries per-class confident learning flags.
    """
    p, t = np.asarray(probs, dtype=np.float64), np.asarray(targets)
    if p.shape != t.shape or p.ndim != 2:
        raise ValueError(f"probabilities and labels must both be (N, C); got {p.shape} and {t.shape}")
    features = entry_features(p, t, use_graph)
    rates: list[tuple[float, float]] = []
    if len(t) >= 4 and (t == 1).any() and (t == 0).any():
        out = cross_fit(features, t, partial(fit_apply, rates=rates), min(folds, len(t)), seed)
    else:  # too little to fit anything: the model's probability, with the starting noise rates
        out = np.stack(posteriors(p, *START_RATES), axis=-1)
    present, if_given_present, if_given_absent = out[..., 0], out[..., 1], out[..., 2]
    suspicion = np.where(t == 1, 1 - if_given_present, np.where(t == 0, if_given_absent, np.nan))
    kind = np.where(t == 1, KINDS[1], np.where(t == 0, KINDS[0], ""))
    missed, added = np.mean(rates, axis=0) if rates else START_RATES
    return {
        "suspicion": suspicion,
        "kind": kind,
        "present": present,
        "confident_learning": confident_learning(p, t),
        "noise_rates": {"given_absent_if_present": float(missed), "given_present_if_absent": float(added)},
    }


def posteriors(present: np.ndarray, missed: float, added: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(P(present), P(present | given 1), P(present | given 0))`` from the prior probability that the class is
    present and the noise rates ``missed`` = P(given 0 | present), ``added`` = P(given 1 | absent)."""
    kept = (1 - missed) * present
    given_present = kept / np.maximum(kept + added * (1 - present), 1e-12)
    lost = missed * present
    given_absent = lost / np.maximum(lost + (1 - added) * (1 - present), 1e-12)
    return present, given_present, given_absent


def fit_apply(
    features: np.ndarray, targets: np.ndarray, held_out: np.ndarray, rates: list[tuple[float, float]] | None = None
) -> np.ndarray:
    """The noise model fitted by EM on the known entries of some images, applied to others: (B, C, F) -> (B, C, 3),
    :func:`posteriors` of each entry. ``rates`` collects each fit's noise rates."""
    import warnings

    from sklearn.linear_model import LogisticRegression

    known = targets >= 0
    x, given = features[known], (targets[known] == 1).astype(np.float64)
    missed, added = START_RATES
    model = LogisticRegression(C=1.0, max_iter=500)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lbfgs' iteration cap on separable folds
        model.fit(x, given)
        for _ in range(EM_ITERATIONS):
            _, if_1, if_0 = posteriors(model.predict_proba(x)[:, 1], missed, added)
            truly = np.where(given == 1, if_1, if_0)  # E-step: P(present | features, given label)
            model.fit(
                np.concatenate([x, x]), np.r_[np.ones(len(x)), np.zeros(len(x))], sample_weight=np.r_[truly, 1 - truly]
            )  # M-step: the soft labels
            missed = min(MAX_RATE, float((truly * (1 - given)).sum() / max(truly.sum(), 1e-12)))
            added = min(MAX_RATE, float(((1 - truly) * given).sum() / max((1 - truly).sum(), 1e-12)))
    if rates is not None:
        rates.append((missed, added))
    present = model.predict_proba(held_out.reshape(-1, held_out.shape[-1]))[:, 1].reshape(held_out.shape[:-1])
    return np.stack(posteriors(present, missed, added), axis=-1)


def ranked_entries(suspicion: np.ndarray) -> np.ndarray:
    """(K, 2) (image, class) indices of the known entries, most suspect first (ties: image order, then class)."""
    rows, cols = np.nonzero(np.isfinite(suspicion))
    order = np.lexsort((cols, rows, -suspicion[rows, cols]))
    return np.stack([rows[order], cols[order]], axis=1)


def neighbours(targets: np.ndarray, image: int, cls: int, count: int = 3) -> list[tuple[int, float]]:
    """The image's other labels j that say most about class ``cls`` -- the highest P(cls | j), leaving the image out
    -- as ``(j, P(cls | j))``, at most ``count``."""
    y = np.asarray(targets) == 1
    others = [j for j in np.flatnonzero(y[image]) if j != cls]
    rest = np.ones(len(y), dtype=bool)
    rest[image] = False
    found = []
    for j in others:
        with_j = y[rest, j]
        found.append((int(j), float(y[rest, cls][with_j].mean()) if with_j.any() else float("nan")))
    return sorted(found, key=lambda kv: -np.nan_to_num(kv[1], nan=-1.0))[:count]
