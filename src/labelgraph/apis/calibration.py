"""Per-class thresholds of an exported model, calibrated on a split and stored in its ``config.json``
(``labelgraph calibrate``, and the last step of ``labelgraph train``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labelgraph.apis.export import update_config
from labelgraph.apis.predict import Predictor
from labelgraph.data.classes import check_same_classes
from labelgraph.data.label_table import LabelTable
from labelgraph.evaluation.calibration import f1_optimal_thresholds
from labelgraph.evaluation.metrics import evaluate
from labelgraph.evaluation.scoring import split_scores


def calibrate_model(
    model_dir: str | Path,
    table: LabelTable,
    eval_table: LabelTable | None = None,
    batch_size: int = 32,
    store: bool = True,
    predictor: Predictor | None = None,
    names: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Each class's F1-optimal threshold on ``table`` (:func:`labelgraph.evaluation.calibration.f1_optimal_thresholds`),
    stored in the model unless ``store`` is false. ``predictor``: the model, already loaded from ``model_dir``;
    ``names``: what to call the two splits in the report and the config (default: their annotation files).

    Returns:
        ``calibrated_on``, ``evaluated_on`` (``eval_table``, default ``table``), CP/CR/CF1/OP/OR/OF1 there at 0.5
        (``threshold_0.5``) and with the thresholds (``calibrated``), the ``thresholds`` by class and, when stored,
        ``stored_in``.
    """
    predictor = predictor or Predictor.load(model_dir)

    def scores_of(split: LabelTable) -> Any:
        check_same_classes(predictor.classes, split.class_names, f"model {model_dir}", f"split {split.source}")
        return split_scores(predictor.scores, predictor.transform, split, batch_size)

    scores = scores_of(table)
    thresholds = f1_optimal_thresholds(scores, table.targets)
    evaluated = eval_table if eval_table is not None else table
    eval_scores = scores_of(eval_table) if eval_table is not None else scores
    calibrated_on, evaluated_on = names or (table.source, evaluated.source)
    report: dict[str, Any] = {"calibrated_on": calibrated_on, "evaluated_on": evaluated_on}
    for name, t in (("threshold_0.5", 0.5), ("calibrated", thresholds)):
        m = evaluate(eval_scores, evaluated.targets, threshold=t)
        report[name] = {k: round(m[k], 2) for k in ("CP", "CR", "CF1", "OP", "OR", "OF1")}
    report["thresholds"] = {c: round(float(t), 4) for c, t in zip(predictor.classes, thresholds, strict=True)}
    if store:
        calibration = {"rule": "per class, the threshold of best F1", "split": calibrated_on,
                       "evaluated_on": report["evaluated_on"], "CF1": report["calibrated"]["CF1"]}  # fmt: skip
        update_config(model_dir, thresholds=[float(t) for t in thresholds], calibration=calibration)
        report["stored_in"] = str(Path(model_dir) / "config.json")
    return report
