"""``labelgraph calibrate``: per-class F1-optimal thresholds on a split, stored in the exported model."""

from __future__ import annotations

import argparse
import json

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

    from labelgraph.apis.calibration import calibrate_model
    from labelgraph.apis.predict import Predictor

    predictor = Predictor.load(args.model)
    table = load_split(args, args.split, predictor.classes)
    eval_table = load_split(args, args.eval_split, predictor.classes) if args.eval_split else None
    names = (args.split, args.eval_split or args.split)
    report = calibrate_model(args.model, table, eval_table, args.batch_size, not args.dry_run, predictor, names)
    print(json.dumps(report, indent=1))
    return 0
