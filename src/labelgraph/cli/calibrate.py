"""``labelgraph calibrate``: the scaling of the logits (Platt or temperature scaling), per-class thresholds that hold
on new images and (``--recall``) a threshold with a recall guarantee, fitted on a split and stored in the exported
model (``docs/trust.md``)."""

from __future__ import annotations

import argparse
import json

from labelgraph.cli._common import (
    Parser,
    UsageError,
    dataset_arguments,
    load_split,
    non_negative_float,
    positive_int,
    probability,
    runtime_argument,
    scaling_argument,
)


def calibrate_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="labelgraph calibrate",
        description="Fit the logits' scaling (Platt by default), per-class thresholds (shrunk toward one pooled "
        "threshold where a class has few positives) and optionally a recall-guaranteed threshold on a split; store "
        "them in the exported model. Every number printed says where it was measured: on --eval-split, or "
        "cross-fitted on the split.",
    )
    p.add_argument("model", help="an exported model folder")
    dataset_arguments(p, "--split")
    p.add_argument("--eval-split", default=None, help="also measure on this split (held out; same format options)")
    p.add_argument(
        "--target", default="f1", help="what each class's threshold aims at: f1 (default), precision:0.9 or recall:0.8"
    )
    p.add_argument(
        "--prior-positives",
        type=non_negative_float,
        default=1.0,
        help="weight of the pooled threshold, in positives (default 1; 0: each class alone)",
    )
    scaling_argument(p, keep=True)
    p.add_argument(
        "--recall",
        type=probability,
        default=None,
        metavar="R",
        help="also fit a threshold with expected recall >= R on new images (conformal risk control); "
        "predict/serve use it with --threshold recall",
    )
    p.add_argument("--folds", type=positive_int, default=5, help="cross-fitting folds (default 5)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    runtime_argument(p)
    p.add_argument("--json", default=None, metavar="FILE", help="write the whole report to FILE")
    p.add_argument("--dry-run", action="store_true", help="report only; do not store anything")
    return p


def run(argv: list[str]) -> int:
    args = calibrate_parser().parse_args(argv)
    from labelgraph.apis.calibration import CalibrationSettings, calibrate_model, summary_lines
    from labelgraph.apis.predict import Predictor
    from labelgraph.evaluation.thresholds import ThresholdRule
    from labelgraph.files import write_text

    try:
        settings = CalibrationSettings(
            ThresholdRule.parse(args.target, args.prior_positives),
            args.scaling.replace("-", "_"),
            args.recall,
            args.folds,
        )
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.folds < 2:
        raise UsageError(f"--folds {args.folds}: 2 or more")
    predictor = Predictor.load(args.model, runtime=args.runtime)
    table = load_split(args, args.split, predictor.classes)
    eval_table = load_split(args, args.eval_split, predictor.classes) if args.eval_split else None
    names = (args.split, args.eval_split)
    report = calibrate_model(
        args.model, table, eval_table, settings, args.batch_size, not args.dry_run, predictor, names
    )
    print("\n".join(summary_lines(report)))
    if args.json:
        write_text(args.json, json.dumps(report, indent=1))
    print(f"stored in {report['stored_in']}" if "stored_in" in report else "(dry run: nothing stored)")
    return 0
