"""Per-class decision thresholds that hold on images not used to choose them.

A class's own best threshold on a validation split is an estimate from that class's validation positives alone: with
one or two positives it is noise (the F1-optimal threshold of a class whose single positive scored lowest is its
lowest score, "predict this class on every image"). :class:`ThresholdRule` therefore **shrinks** each class's own
threshold toward one **global** threshold chosen on every class at once, in proportion to how little evidence the
class has:

    t_c = (n_c own_c + k global) / (n_c + k)

``n_c`` is the number of the class's known validation positives and ``k`` (``prior_positives``, default 1) the weight
of the global threshold counted in positives: a class with one positive goes halfway from the global threshold to its
own, one with 4 four fifths, one without positives takes the global one.

The default was measured (``benchmarks/bench_trust.py``, ``docs/trust.md``): on the demo's scenes, classes with a few
validation positives each, every k > 0 costs a little CF1 on the test split (a class's own optimum transfers well when
its scores are ranked well), and k = 1 already removes most of the classes that the own optimum leaves predicted on
almost every test image when 10 images choose the thresholds; a larger k costs more and removes no more. The average
is taken on probabilities, not log-odds: an own threshold at a score near 0 (the degenerate case) would otherwise drag
the mean to near 0 as well.

What is optimised (``objective``):

- ``"f1"`` (default): each class's F1 (``own_c``) and the pooled F1 over all known entries of all classes (the
  global threshold, the one that maximises OF1);
- ``"precision"`` with a ``level``: the lowest threshold at which the precision reaches the level (the most recall
  that precision allows), per class and pooled; where the level is never reached, the highest score (nothing else
  predicted);
- ``"recall"`` with a ``level``: the highest threshold at which the recall reaches the level.

A label is predicted at ``p >= t``. Every cut is placed between two distinct scores (halfway between the lowest
accepted and the highest rejected one), never through a run of equal scores. Unknown (-1) targets are left out.
How far the thresholds hold on new images is measured by cross-fitting (:mod:`labelgraph.evaluation.cross_fitting`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Objective = Literal["f1", "precision", "recall"]
#: a class with fewer known validation positives than this is flagged: its threshold is mostly the global one
FEW_POSITIVES = 5
#: k, the global threshold's weight in positives (module docstring)
DEFAULT_PRIOR_POSITIVES = 1.0


@dataclass(frozen=True)
class ThresholdFit:
    """The thresholds a rule chose on one split, with the evidence behind each.

    Shapes: every array is (C,).
    """

    thresholds: np.ndarray  # what predict uses
    own: np.ndarray  # each class's own optimum (NaN for a class without a known positive)
    global_threshold: float  # the one threshold chosen on all classes pooled
    positives: np.ndarray  # known positives behind each class's threshold
    negatives: np.ndarray  # known negatives
    weight: np.ndarray  # n_c / (n_c + k): how much of the threshold is the class's own

    def few(self) -> np.ndarray:
        """(C,) bool: classes with fewer than :data:`FEW_POSITIVES` known positives."""
        return self.positives < FEW_POSITIVES


@dataclass(frozen=True)
class ThresholdRule:
    """How per-class thresholds are chosen from validation scores (see the module docstring).

    Args:
        objective: ``"f1"``, ``"precision"`` or ``"recall"``.
        level: the precision or recall to reach (``objective`` other than f1), in (0, 1].
        prior_positives: k, the global threshold's weight counted in positives; 0 gives each class its own optimum
            (the rule of labelgraph before this one), ``inf`` one global threshold for every class.
    """

    objective: Objective = "f1"
    level: float | None = None
    prior_positives: float = DEFAULT_PRIOR_POSITIVES

    def __post_init__(self) -> None:
        if self.objective not in ("f1", "precision", "recall"):
            raise ValueError(f"threshold objective {self.objective!r}: f1, precision or recall")
        if (self.objective == "f1") != (self.level is None):
            raise ValueError("a level goes with a precision or recall objective, and only with one")
        if self.level is not None and not 0 < self.level <= 1:
            raise ValueError(f"level {self.level}: a fraction in (0, 1]")
        if not self.prior_positives >= 0:
            raise ValueError(f"prior_positives {self.prior_positives}: 0 or more")

    @classmethod
    def parse(cls, target: str | None, prior_positives: float = DEFAULT_PRIOR_POSITIVES) -> ThresholdRule:
        """``None``/``"f1"`` -> best F1; ``"precision:0.9"`` / ``"recall:0.8"`` -> that target per class."""
        if target in (None, "f1"):
            return cls(prior_positives=prior_positives)
        kind, _, level = str(target).partition(":")
        try:
            return cls(kind, float(level), prior_positives)  # type: ignore[arg-type]
        except ValueError:
            raise ValueError(
                f"threshold target {target!r}: f1, precision:LEVEL or recall:LEVEL (LEVEL in (0, 1])"
            ) from None

    def describe(self) -> str:
        what = "best F1" if self.objective == "f1" else f"{self.objective} {self.level:g}"
        if self.prior_positives == 0:
            return f"per class, the threshold of {what}"
        k = f"{self.prior_positives:g}"
        return (
            f"per class, the threshold of {what}, shrunk toward the one pooled threshold of {what} with the weight of "
            f"{k} positive{'s' * (k != '1')}: (n own + {k} pooled) / (n + {k}), n the class's known validation "
            "positives"
        )

    def short(self) -> str:
        """The rule in a few words (``describe`` has the formula)."""
        what = "best F1" if self.objective == "f1" else f"{self.objective} {self.level:g}"
        if self.prior_positives == 0:
            return f"{what} per class"
        k = self.prior_positives
        return f"{what} per class, shrunk toward one pooled threshold (weighing as {k:g} positive{'s' * (k != 1)})"

    def to_dict(self) -> dict[str, Any]:
        return {"objective": self.objective, "level": self.level, "prior_positives": self.prior_positives}

    def fit(self, scores: np.ndarray, targets: np.ndarray) -> ThresholdFit:
        """(N, C) probabilities and {1, 0, -1} targets -> the thresholds and their evidence."""
        scores, targets = np.asarray(scores, dtype=np.float64), np.asarray(targets)
        known = targets >= 0
        positives, negatives = (targets == 1).sum(0), (targets == 0).sum(0)
        own = np.array(
            [self.optimum(scores[known[:, c], c], targets[known[:, c], c] == 1) for c in range(scores.shape[1])]
        )
        pooled = self.optimum(scores[known], targets[known] == 1)
        global_threshold = 0.5 if np.isnan(pooled) else float(pooled)
        k = self.prior_positives
        with np.errstate(invalid="ignore"):  # k = 0 and no positive: 0 / 0, taken care of below
            weight = positives / (positives + k) if np.isfinite(k) else np.zeros(len(own))
        weight = np.where(np.isnan(own), 0.0, np.nan_to_num(weight, nan=1.0))  # k = 0 and no positive: global
        mixed = weight * np.nan_to_num(own, nan=0.5) + (1 - weight) * global_threshold
        return ThresholdFit(mixed, own, global_threshold, positives, negatives, weight)

    def optimum(self, scores: np.ndarray, positive: np.ndarray) -> float:
        """The best threshold for one set of (score, is-positive) pairs; NaN without a positive."""
        if not positive.any():
            return float("nan")
        order = np.argsort(-scores, kind="stable")
        s, y = scores[order], positive[order]
        last_of_tie = np.r_[s[1:] != s[:-1], True]  # cut only after the last of a run of equal scores
        cut = np.flatnonzero(last_of_tie)  # index of the lowest accepted score of each candidate cut
        tp = np.cumsum(y)[cut]
        predicted = cut + 1
        if self.objective == "f1":
            k = cut[int(np.argmax(2 * tp / (predicted + y.sum())))]
        elif self.objective == "precision":
            reached = np.flatnonzero(tp / predicted >= self.level - 1e-12)
            if not len(reached):
                return float(np.nextafter(s[0], 2.0))  # never reached: just above the highest score, nothing predicted
            k = cut[reached[-1]]
        else:
            k = cut[np.flatnonzero(tp / y.sum() >= self.level - 1e-12)[0]]
        return float((s[k] + s[k + 1]) / 2 if k + 1 < len(s) else s[k])


def f1_optimal_thresholds(scores: np.ndarray, targets: np.ndarray, default: float = 0.5) -> np.ndarray:
    """(N, C) probabilities and {1, 0, -1} targets -> (C,) thresholds maximising each class's own F1 (no shrinkage;
    a class without a known positive keeps ``default``)."""
    own = ThresholdRule(prior_positives=0).fit(scores, targets).own
    return np.where(np.isnan(own), float(default), own)
