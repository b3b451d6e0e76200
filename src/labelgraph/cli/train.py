"""``labelgraph train TRAIN.csv``: your images -> a fine-tuned, calibrated, exported model and a report, in one command.

Everything not given is chosen from the data and printed before training starts (``docs/your_own_data.md``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labelgraph.cli._common import Parser, UsageError, probability, scaling_argument
from labelgraph.cli.own_data import (
    backbone_and_weights,
    label_embeddings,
    read_and_check,
    run_arguments,
    split_arguments,
    weights_arguments,
)


def train_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="labelgraph train",
        description="Fine-tune a method on your labelled images: the head on the frozen backbone first, then the whole "
        "network, early-stopped on validation mAP; per-class thresholds calibrated on validation; the model exported "
        "with a report. Everything not given is chosen from the data and said before training.",
    )
    split_arguments(p)
    p.add_argument("--method", default="ml_gcn", help="a registered method (labelgraph models; default ml_gcn)")
    weights_arguments(p)
    p.add_argument(
        "--loss",
        default=None,
        help="for a train split with unknown entries: an incomplete-label loss (ignore, an, wan, "
        "partial_bce, epr, role, ll_r, ll_ct, ll_cp, hill, splc) or 'own' (the method's criterion); "
        "default: the one docs/incomplete_labels.md recommends for the split's setting",
    )
    p.add_argument(
        "--target",
        default="f1",
        help="what each class's threshold aims at on validation: f1 "
        "(default), precision:0.9 or recall:0.8 (docs/trust.md)",
    )
    p.add_argument(
        "--recall",
        type=probability,
        default=0.9,
        metavar="R",
        help="also store a threshold with expected recall >= R on new images (0.9; 0: none)",
    )
    scaling_argument(p)
    run_arguments(p, "train")
    return p


def run(argv: list[str]) -> int:
    args = train_parser().parse_args(argv)
    out, splits = read_and_check(args, "train", check=lambda: check_method(args.method))
    from labelgraph.data.hide_labels import label_setting_of

    label_setting = label_setting_of(splits["train"].targets)
    backbone, weights = backbone_and_weights(args.weights, args.backbone)
    print("loading PyTorch and Lightning ...", flush=True)
    from labelgraph.losses.incomplete_registry import INCOMPLETE_LABEL_LOSSES

    if args.loss not in (None, "own", *INCOMPLETE_LABEL_LOSSES):
        raise UsageError(f"--loss {args.loss!r}: use own or one of {', '.join(INCOMPLETE_LABEL_LOSSES)}")
    from labelgraph.studies.fine_tune import fine_tune, make_plan

    calibration = calibration_settings(args)
    embeddings = label_embeddings(splits["train"].class_names, args.embeddings, args.classes)
    plan = make_plan(
        len(splits["train"]),
        args.method,
        backbone,
        weights,
        args.image_size or 224,
        embeddings,
        args.seed,
        args.epochs,
        args.batch_size,
        label_setting,
        args.loss,
        calibration,
    )
    print("\n".join(plan.lines()), f"run folder: {out}", sep="\n", flush=True)
    metrics = fine_tune(splits, plan, out, progress=not args.no_progress and sys.stderr.isatty())
    held = "test" if "test" in metrics else "val"
    train_map = metrics["train_mAP"]
    fit = "n/a" if train_map is None else f"{train_map:.2f}"  # single-positive labels: no known negative to rank
    print(f"\nmAP: {metrics[held]['mAP']:.2f} on {held}, {fit} on the training images' known labels")
    measured = metrics["calibration"]["out_of_sample"]
    if measured is not None:
        print(
            f"CF1 at the calibrated thresholds: {measured['calibrated']['CF1']:.2f} on {measured['where']} (at 0.5: "
            f"{measured['threshold_0.5']['CF1']:.2f}); ECE {measured['ece_before']:.2f} -> "
            f"{measured['ece_after']:.2f} %"
        )
    print(next_commands(out, args.recall or None))
    return 0


def check_method(method: str) -> None:
    """A registered method that ``train`` can train on its own (no model trained first for its embeddings)."""
    from labelgraph.models import ImageEmbeddings, get_recipe, list_models

    if method not in list_models():
        raise UsageError(f"--method {method!r}: not registered; the methods: {', '.join(list_models())}")
    if isinstance(get_recipe(method).prerequisite, ImageEmbeddings):
        raise UsageError(
            f"--method {method}: its label embeddings come from another trained model, which labelgraph train does "
            "not compose; labelgraph compare --protocol frozen trains it with its prerequisite"
        )


def calibration_settings(args: argparse.Namespace) -> object:
    """``--target --recall --scaling`` as :class:`~labelgraph.apis.calibration.CalibrationSettings`."""
    from labelgraph.apis.calibration import CalibrationSettings
    from labelgraph.evaluation.thresholds import ThresholdRule

    try:
        return CalibrationSettings(
            ThresholdRule.parse(args.target), args.scaling.replace("-", "_"), args.recall or None, seed=args.seed
        )
    except ValueError as err:
        raise UsageError(f"--target/--recall: {err}") from None


def next_commands(out: Path, recall: float | None = None) -> str:
    model = out / "model"
    recall_line = f"  labelgraph predict {model} photos/ --threshold recall # tags keeping >= {recall or 0:.0%} of "
    lines = [
        f"wrote {model} (calibrated), {out / 'report.html'}, {out / 'metrics.json'}",
        "next:",
        f"  labelgraph predict {model} photos/ --out tags.csv     # tag new images",
        *([recall_line + "true labels (expected)"] if recall else []),
        f"  labelgraph serve {model}                             # an HTTP API and a web page",
        f"  labelgraph explain {model} photo.jpg --out maps/       # where each label is seen",
        f"  labelgraph export {model} --push-to-hub ORG/NAME      # share it",
    ]
    return "\n".join(lines)
