"""Calibrate an exported model on a split and store the result in its ``config.json`` (``labelgraph calibrate``, and
the last step of ``labelgraph train``): the scaling of its logits (Platt or temperature scaling), per-class thresholds
that hold on new images, and optionally a threshold with a recall guarantee -- each number reported with where it was
measured.

What it measures (``docs/trust.md`` explains each number):

- ``held_out``: on ``eval_table``, a split the calibration never saw, when one is given;
- ``cross_fitted``: on the calibration split itself, each fold scored by a calibration fitted without it
  (:func:`labelgraph.evaluation.posthoc.cross_fitted_measures`), when no other split is given -- or beside it;
- ``in_sample``: the calibration split scored by the calibration fitted on it, which flatters the thresholds: kept,
  and labelled so, for comparison only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from labelgraph.apis.export import update_config
from labelgraph.apis.predict import Predictor
from labelgraph.data.classes import check_same_classes
from labelgraph.data.label_table import LabelTable
from labelgraph.evaluation.calibration import SCALING_MODES, LogitScaling, scaled_sigmoid, scaling_formula
from labelgraph.evaluation.conformal import images_needed
from labelgraph.evaluation.cross_fitting import DEFAULT_FOLDS
from labelgraph.evaluation.posthoc import PosthocFit, cross_fitted_measures, fit_posthoc, measure_posthoc
from labelgraph.evaluation.thresholds import FEW_POSITIVES, ThresholdRule

KEEP = "keep"  # the scaling the model already has
IN_SAMPLE = "the calibration split itself: in-sample, flatters the thresholds (for comparison only)"


@dataclass(frozen=True)
class CalibrationSettings:
    """What ``labelgraph calibrate`` fits.

    Args:
        rule: how the per-class thresholds are chosen.
        scaling: how the logits are scaled, a mode of :data:`labelgraph.evaluation.calibration.SCALING_MODES`
            (``platt``: one slope and bias for every class, the default; ``temperature``: a slope only;
            ``*_per_class``; ``none``) or ``keep`` (the model's stored scaling).
        recall: fit the conformal recall rule for this target (None: none).
        folds, seed: the cross-fitting.
    """

    rule: ThresholdRule = field(default_factory=ThresholdRule)
    scaling: str = "platt"
    recall: float | None = None
    folds: int = DEFAULT_FOLDS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scaling not in (*SCALING_MODES, KEEP):
            raise ValueError(f"scaling {self.scaling!r}: one of {', '.join((*SCALING_MODES, KEEP))}")
        if self.recall is not None and not 0 < self.recall < 1:
            raise ValueError(f"recall {self.recall}: a fraction in (0, 1)")


def calibrate_model(
    model_dir: str | Path,
    table: LabelTable,
    eval_table: LabelTable | None = None,
    settings: CalibrationSettings | None = None,
    batch_size: int = 32,
    store: bool = True,
    predictor: Predictor | None = None,
    names: tuple[str, str | None] | None = None,
) -> dict[str, Any]:
    """Fit the calibration on ``table``, measure it (module docstring), store it in the model unless ``store`` is
    false. ``predictor``: the model, already loaded from ``model_dir``; ``names``: what to call the two splits
    (default: their annotation files).

    Returns:
        the report: ``calibrated_on``, ``images``, ``rule``, ``scaling``, ``thresholds`` and ``support`` by class,
        ``few_positives``, ``recall_rule``, ``held_out`` / ``cross_fitted`` / ``in_sample`` measures (percent), and
        ``out_of_sample``: the held-out measures if any, else the cross-fitted ones.
    """
    settings = settings or CalibrationSettings()
    predictor = predictor or Predictor.load(model_dir)
    z = split_logits(predictor, table, batch_size, model_dir)
    z_eval = split_logits(predictor, eval_table, batch_size, model_dir) if eval_table is not None else None
    report, fit = calibrate_logits(z, table, z_eval, eval_table, settings, predictor, names)
    if store:
        store_calibration(model_dir, fit, report, predictor)
        report["stored_in"] = str(Path(model_dir) / "config.json")
    return report


def calibrate_logits(
    z: np.ndarray,
    table: LabelTable,
    z_eval: np.ndarray | None,
    eval_table: LabelTable | None,
    settings: CalibrationSettings,
    predictor: Predictor,
    names: tuple[str, str | None] | None = None,
) -> tuple[dict[str, Any], PosthocFit]:
    """:func:`calibrate_model` on logits already computed (``z`` of ``table``, ``z_eval`` of ``eval_table``): the
    report and the fit, nothing stored."""
    calibrated_on, evaluated_on = names or (table.source, eval_table.source if eval_table is not None else None)
    scaling = stored_scaling(predictor) if settings.scaling == KEEP else settings.scaling
    fit = fit_posthoc(z, table.targets, settings.rule, scaling, settings.recall)
    report = describe_fit(fit, predictor.classes, settings, calibrated_on, len(table))
    with_recall = fit.recall is not None
    report["in_sample"] = {"where": IN_SAMPLE, **measure_posthoc(raw(z), fit.outputs(z), table.targets, with_recall)}
    report["cross_fitted"] = cross_fitted_measures(
        z, table.targets, settings.rule, scaling, settings.recall, settings.folds, settings.seed, calibrated_on
    )
    report["held_out"] = None
    if eval_table is not None:
        measured = measure_posthoc(raw(z_eval), fit.outputs(z_eval), eval_table.targets, with_recall)
        report["held_out"] = {"where": f"{evaluated_on}, held out (not used to calibrate)", **measured}
    report["out_of_sample"] = report["held_out"] or report["cross_fitted"]
    return report, fit


def split_logits(predictor: Predictor, table: LabelTable, batch_size: int, model_dir: str | Path) -> np.ndarray:
    """(N, C) logits of every image of ``table``, in its order, with the model's preprocessing."""
    check_same_classes(predictor.classes, table.class_names, f"model {model_dir}", f"split {table.source}")
    return predictor.table_scores(table, batch_size, logits=True).astype(np.float64)


def raw(logits: np.ndarray) -> np.ndarray:
    return scaled_sigmoid(logits)


def stored_scaling(predictor: Predictor) -> LogitScaling:
    return LogitScaling(predictor.temperature.astype(np.float64), predictor.logit_bias.astype(np.float64))


def describe_fit(
    fit: PosthocFit, classes: list[str], settings: CalibrationSettings, split: str, images: int
) -> dict[str, Any]:
    """The fitted values, with the evidence behind each threshold."""
    t = fit.thresholds
    support = {
        name: {
            "positives": int(t.positives[c]),
            "negatives": int(t.negatives[c]),
            "own": None if np.isnan(t.own[c]) else round(float(t.own[c]), 4),
            "weight": round(float(t.weight[c]), 3),
        }
        for c, name in enumerate(classes)
    }
    scaling = {
        "mode": settings.scaling,
        "temperature": [round(float(v), 4) for v in fit.scaling.temperature],
        "bias": [round(float(v), 4) for v in fit.scaling.bias],
    }
    return {
        "calibrated_on": split,
        "images": images,
        "rule": settings.rule.describe(),
        "rule_short": settings.rule.short(),
        "rule_settings": settings.rule.to_dict(),
        "global_threshold": round(t.global_threshold, 4),
        "scaling": scaling,
        "thresholds": {name: round(float(v), 4) for name, v in zip(classes, t.thresholds, strict=True)},
        "support": support,
        "few_positives": [name for name, few in zip(classes, t.few(), strict=True) if few],
        "recall_rule": fit.recall.to_dict() if fit.recall is not None else None,
    }


def store_calibration(model_dir: str | Path, fit: PosthocFit, report: dict[str, Any], predictor: Predictor) -> None:
    """Thresholds, scaling, recall rule and a summary of how they were fitted and how they did, in the config. A
    stored recall rule fitted on other probabilities (another scaling) is dropped."""
    temperature, bias = (one_or_each(v) for v in (fit.scaling.temperature, fit.scaling.bias))
    recall_rule = fit.recall.to_dict() if fit.recall is not None else None
    kept = stored_scaling(predictor)
    if (
        recall_rule is None
        and np.allclose(kept.temperature, fit.scaling.temperature)
        and np.allclose(kept.bias, fit.scaling.bias)
    ):
        recall_rule = predictor.recall_rule  # still valid on the same probabilities
    measured = report["out_of_sample"]
    calibration = {
        "rule": report["rule"],
        "rule_settings": report["rule_settings"],
        "split": report["calibrated_on"],
        "images": report["images"],
        "positives": [s["positives"] for s in report["support"].values()],
        "few_positives": report["few_positives"],
        "scaling": report["scaling"]["mode"],
        "out_of_sample": None
        if measured is None
        else {
            "where": measured["where"],
            "CF1": measured["calibrated"]["CF1"],
            "OF1": measured["calibrated"]["OF1"],
            "CF1_at_0.5": measured["threshold_0.5"]["CF1"],
            "ece_before": measured["ece_before"],
            "ece_after": measured["ece_after"],
        },
    }
    update_config(
        model_dir,
        thresholds=[float(v) for v in fit.thresholds.thresholds],
        calibration=calibration,
        temperature=temperature,
        logit_bias=bias,
        recall_rule=recall_rule,
    )


def one_or_each(values: np.ndarray) -> float | list[float]:
    """One number when every class has the same, else one per class (as the config stores them)."""
    plain = [float(v) for v in values]
    return plain[0] if len(set(plain)) == 1 else plain


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The report in a few lines a person reads: every calibrated number with where it was measured."""
    lines = [f"thresholds: {report['rule_short']} (docs/trust.md)"]
    few = report["few_positives"]
    if few:
        counts = ", ".join(f"{n} ({report['support'][n]['positives']})" for n in few)
        pooled = report["global_threshold"]
        lines.append(
            f"  warning: fewer than {FEW_POSITIVES} positives in {report['calibrated_on']}: {counts}; their "
            f"thresholds rest on few positives (pulled toward the pooled one, {pooled:.3g}); label more of "
            "them"
        )
    lines.append(f"probabilities: {scaling_text(report['scaling'])}")
    for key in ("held_out", "cross_fitted"):
        m = report[key]
        if m is not None:
            cf1, at_half = m["calibrated"]["CF1"], m["threshold_0.5"]["CF1"]
            lines.append(
                f"{m['where']}, {m['images']} images: CF1 {cf1:.2f} at the thresholds ({at_half:.2f} at "
                f"0.5), OF1 {m['calibrated']['OF1']:.2f}; ECE {m['ece_before']:.2f} -> {m['ece_after']:.2f} %"
            )
    if report["cross_fitted"] is None and report["held_out"] is None:
        cf1 = report["in_sample"]["calibrated"]["CF1"]
        lines.append(
            f"  (too few images to measure out of sample; the in-sample CF1 {cf1:.2f} flatters the thresholds)"
        )
    if report["recall_rule"] is not None:
        rule = report["recall_rule"]
        lines.append(f"recall rule: p >= {rule['threshold']:.4g}: {rule['guarantee']}")
        if not rule["attainable"]:
            lines.append(
                f"  warning: {rule['images']} calibration images are too few for recall {rule['recall']:g} "
                f"(needs {images_needed(rule['recall'])}): the rule predicts every label"
            )
        m = report["out_of_sample"]
        if m is not None and "recall_rule" in m:
            lines.append(
                f"  {m['where']}: mean recall {m['recall_rule']['recall']}, "
                f"{m['recall_rule']['labels_per_image']} labels per image"
            )
    return lines


def scaling_text(scaling: dict[str, Any]) -> str:
    """The scaling's formula (:func:`~labelgraph.evaluation.calibration.scaling_formula`) and how it was fitted."""
    formula = scaling_formula(scaling["temperature"], scaling["bias"])
    if formula.endswith("the network's own"):
        return formula
    mode = scaling["mode"]
    names = {"platt": "Platt scaling", "temperature": "temperature scaling", "keep": "the model's stored scaling"}
    name = names[mode.removesuffix("_per_class")]
    return f"{formula} ({name}{' per class' if mode.endswith('per_class') else ''})"
