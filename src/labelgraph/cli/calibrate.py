"""``labelgraph calibrate``: per-class F1-optimal thresholds on a split, stored in the exported model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labelgraph.cli._common import dataset_arguments, load_split


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="labelgraph calibrate",
        description="Per-class thresholds maximising each class's F1 on a split, stored in the exported model.",
    )
    p.add_argument("model", help="an exported model folder")
    dataset_arguments(p, "--split")
    p.add_argument("--eval-split", default=None, help="report CF1/OF1 on this split (default: the calibration one)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dry-run", action="store_true", help="report only; do not store the thresholds")
    args = p.parse_args(argv)

    import numpy as np

    from labelgraph.apis.export import update_config
    from labelgraph.apis.predict import Predictor
    from labelgraph.data.classes import check_same_classes
    from labelgraph.evaluation.calibration import f1_optimal_thresholds
    from labelgraph.evaluation.metrics import evaluate
    from labelgraph.evaluation.scoring import split_scores

    predictor = Predictor.load(args.model)

    def scores_of(split: str) -> tuple[np.ndarray, np.ndarray]:
        table = load_split(args, split, predictor.classes)
        check_same_classes(predictor.classes, table.class_names, f"model {args.model}", f"split {table.source}")
        return split_scores(predictor.scores, predictor.transform, table, args.batch_size), table.targets

    scores, targets = scores_of(args.split)
    thresholds = f1_optimal_thresholds(scores, targets)
    eval_scores, eval_targets = scores_of(args.eval_split) if args.eval_split else (scores, targets)
    report = {"calibrated_on": args.split, "evaluated_on": args.eval_split or args.split}
    for name, t in (("threshold_0.5", 0.5), ("calibrated", thresholds)):
        m = evaluate(eval_scores, eval_targets, threshold=t)
        report[name] = {k: round(m[k], 2) for k in ("CP", "CR", "CF1", "OP", "OR", "OF1")}
    report["thresholds"] = {c: round(float(t), 4) for c, t in zip(predictor.classes, thresholds, strict=True)}
    if not args.dry_run:
        calibration = {"rule": "per class, the threshold of best F1", "split": args.split,
                       "evaluated_on": report["evaluated_on"], "CF1": report["calibrated"]["CF1"]}  # fmt: skip
        update_config(args.model, thresholds=[float(t) for t in thresholds], calibration=calibration)
        report["stored_in"] = str(Path(args.model) / "config.json")
    print(json.dumps(report, indent=1))
    return 0
