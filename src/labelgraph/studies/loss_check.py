"""``labelgraph train`` checks the incomplete-label loss it chose on the user's own data, before the long stage.

The recommended loss of each label setting (:data:`labelgraph.losses.RECOMMENDED_LOSSES`) won the study of
``docs/incomplete_labels.md`` on the demo's scenes; on other data it can lose, or collapse (SPLC was seen driving its
loss to exactly 0 by the eighth epoch of the head and ending far below plain AN). So stage 1 -- seconds, on cached
features -- is also trained with the setting's plain loss (:data:`PLAIN_LOSSES`: AN for single-positive labels,
ignoring the unknown entries for partial ones), both heads are scored on the validation split, and the better one
goes on to stage 2. A loss whose training value reaches 0 is reported either way.

A validation split with unknown entries cannot rank the heads by its known entries alone when a class has no known
negative (single-positive labels: every known entry is a positive, and any scores give an AP of 100); there the
unknown entries count as absent, the assumption AN makes, and the printed line says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from labelgraph.apis.predict import Predictor
from labelgraph.data.label_table import LabelTable
from labelgraph.evaluation.metrics import evaluate

PLAIN_LOSSES = {"single-positive": "an", "partial": "ignore"}
#: a training loss at or below this is taken for a collapse (nothing left to learn from the labels)
COLLAPSED = 1e-6


def plain_alternative(label_setting: str, loss: str) -> str | None:
    """The plain loss to check ``loss`` against, or None when it is the plain one."""
    plain = PLAIN_LOSSES["single-positive" if label_setting == "single-positive" else "partial"]
    return None if loss == plain else plain


def collapse_epoch(history: list[dict[str, float]]) -> int | None:
    """The first epoch (1-based) whose training loss is at most :data:`COLLAPSED`, or None."""
    for row in history:
        if row.get("train/loss_epoch", 1.0) <= COLLAPSED:
            return int(row["epoch"]) + 1
    return None


def validation_map(model_dir: Path, table: LabelTable) -> tuple[float, bool]:
    """mAP of an exported model on ``table``; and whether its unknown entries had to count as absent (a class with
    positives but no known negative)."""
    predictor = Predictor.load(model_dir)
    scores = predictor.table_scores(table)
    t = table.targets
    unranked = bool(((t == 1).any(0) & ~(t == 0).any(0)).any())
    result = evaluate(scores, t, unknown="negative" if unranked else "ignore")["mAP"]
    return (float("nan") if np.isnan(result) else round(float(result), 2)), unranked


def choose_loss(candidates: dict[str, tuple[Path, list[dict[str, float]]]], val: LabelTable) -> dict[str, Any]:
    """Score each stage-1 head (``{loss: (exported folder, history)}``, the recommended one first) on ``val``, keep
    the better (the first on a tie), print what was found.

    Returns:
        ``chosen``, ``folder`` and ``history`` of the kept head, ``val_mAP`` by loss, ``collapsed`` (loss -> epoch),
        ``unknown_as_absent``.
    """
    scores, collapsed, unknown_as_absent = {}, {}, False
    for loss, (folder, history) in candidates.items():
        scores[loss], unknown_as_absent = validation_map(folder, val)
        if (epoch := collapse_epoch(history)) is not None:
            collapsed[loss] = epoch
            print(
                f"warning: the {loss} loss reached 0 at stage-1 epoch {epoch}: it no longer learns from the labels",
                flush=True,
            )
    chosen = max(candidates, key=lambda loss: np.nan_to_num(scores[loss], nan=-1.0))  # a tie keeps the first
    if len(candidates) > 1:
        how = " (unknown entries counted as absent: the split has no known negative for some class)" * unknown_as_absent
        found = ", ".join(f"{loss} {scores[loss]:.2f}" for loss in candidates)
        print(f"loss check, stage-1 validation mAP{how}: {found} -> {chosen} goes on", flush=True)
    folder, history = candidates[chosen]
    return {
        "chosen": chosen,
        "folder": folder,
        "history": history,
        "val_mAP": scores,
        "collapsed": collapsed,
        "unknown_as_absent": unknown_as_absent,
    }
