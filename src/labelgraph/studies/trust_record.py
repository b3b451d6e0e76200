"""How far to trust a model ``labelgraph train`` just made: its calibration, fitted on the validation split and
measured where it was not fitted, and the labels of the held-out splits that the model doubts most.

The model never trained on the validation or test images (validation only picked the best epoch), so its scores of
them are what :mod:`labelgraph.evaluation.label_audit` needs: the audit of those splits comes at the cost of scoring
them once. (``labelgraph audit`` audits a whole dataset with out-of-fold models.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labelgraph.apis.calibration import (
    CalibrationSettings,
    calibrate_logits,
    split_logits,
    store_calibration,
    summary_lines,
)
from labelgraph.apis.predict import Predictor
from labelgraph.data.label_table import LabelTable
from labelgraph.evaluation.label_audit import audit_scores, neighbours, ranked_entries

#: the most suspect entries a run's report lists
REPORTED_SUSPECTS = 12


def trust_record(
    model_dir: Path, predictor: Predictor, val: LabelTable, test: LabelTable | None, settings: CalibrationSettings
) -> dict[str, Any]:
    """Calibrate the model on ``val`` (measured on ``test`` when given, and cross-fitted on ``val``), store it, print
    the summary, and audit the labels of ``val`` (and ``test``) with the calibrated model.

    Returns:
        ``calibration`` (the report of :func:`labelgraph.apis.calibration.calibrate_model`) and ``label_audit``
        (``how`` and the most suspect ``entries``).
    """
    held = {"val": val} | ({"test": test} if test is not None else {})
    logits = {split: split_logits(predictor, table, 32, model_dir) for split, table in held.items()}  # one pass each
    names = ("the validation split", None if test is None else "the test split")
    calibration, fit = calibrate_logits(logits["val"], val, logits.get("test"), test, settings, predictor, names)
    store_calibration(model_dir, fit, calibration, predictor)
    calibration["stored_in"] = str(model_dir / "config.json")
    print("\n".join(summary_lines(calibration)), flush=True)
    entries = []
    for split, table in held.items():
        if len(table):  # the calibrated model's probabilities: the scaling just fitted, on the same logits
            entries += suspects(fit.probabilities(logits[split]), table, split, predictor.classes)
    entries.sort(key=lambda e: -e["suspicion"])
    how = (
        "The calibrated model's scores of the held-out images (it never trained on them), combined with the label "
        "graph of the split itself; most suspect first"
    )
    return {"calibration": calibration, "label_audit": {"how": how, "entries": entries[:REPORTED_SUSPECTS]}}


def suspects(
    probs: np.ndarray, table: LabelTable, split: str, classes: list[str], count: int = REPORTED_SUSPECTS
) -> list[dict]:
    """The ``count`` most suspect (image, label) entries of ``table`` by the model's (N, C) probabilities ``probs``
    and the label graph."""
    audit = audit_scores(probs, table.targets)
    return [
        entry_record(table, probs, audit, int(i), int(c), split, classes)
        for i, c in ranked_entries(audit["suspicion"])[:count]
    ]


def entry_record(
    table: LabelTable, probs: np.ndarray, audit: dict[str, Any], i: int, c: int, split: str, classes: list[str]
) -> dict[str, Any]:
    """One audited entry as ``audit.csv`` and the reports show it."""
    return {
        "split": split,
        "image": str(table.path(i)),
        "label": classes[c],
        "kind": str(audit["kind"][i, c]),
        "given": int(table.targets[i, c]),
        "suspicion": round(float(audit["suspicion"][i, c]), 4),
        "probability": round(float(probs[i, c]), 4),
        "image_labels": [classes[j] for j in np.flatnonzero(table.targets[i] == 1)],
        "neighbours": [(classes[j], None if np.isnan(p) else round(p, 3)) for j, p in neighbours(table.targets, i, c)],
    }
