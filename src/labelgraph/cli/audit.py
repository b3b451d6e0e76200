"""``labelgraph audit DATA.csv --out DIR``: the labels of a split most likely wrong, from out-of-fold models and the
label graph (``docs/trust.md``)."""

from __future__ import annotations

import argparse
import sys

from labelgraph.cli._common import Parser, UsageError, positive_int, source_arguments
from labelgraph.cli.own_data import backbone_and_weights, label_embeddings, run_arguments, weights_arguments


def audit_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="labelgraph audit",
        description="Rank the (image, label) entries of a labelled split by how likely they are wrong -- a positive "
        "the annotator missed, a tag that does not belong -- from models that never trained on the image they score "
        "(k-fold labelgraph train, or --model trained elsewhere), combined with the split's label graph. Writes "
        "OUT/audit.csv (most suspect first), audit.json and audit.html.",
    )
    p.add_argument("data", help="the labelled split (for csv: the CSV file)")
    source_arguments(p)
    p.add_argument(
        "--model",
        default=None,
        help="score with this exported model (one not trained on DATA) instead of training k models",
    )
    p.add_argument("--folds", type=positive_int, default=5, help="out-of-fold models to train (default 5)")
    p.add_argument(
        "--protocol",
        default="train",
        choices=("train", "head"),
        help="train: each fold by labelgraph train's rule (default); head: only its first stage, the head "
        "on the frozen backbone's cached features (quick)",
    )
    p.add_argument("--method", default="ml_gcn", help="the method the folds train (default ml_gcn)")
    weights_arguments(p)
    p.add_argument("--top", type=positive_int, default=1000, help="entries written to audit.csv (default 1000)")
    run_arguments(p, "audit")
    return p


def run(argv: list[str]) -> int:
    args = audit_parser().parse_args(argv)
    if args.folds < 2:
        raise UsageError(f"--folds {args.folds}: 2 or more")
    print(f"labelgraph audit: reading {args.data} ...", flush=True)
    from labelgraph.cli._common import load_split
    from labelgraph.cli.own_data import run_folder

    out = run_folder(args.out, "audit")
    table = load_split(args, args.data)
    if len(table) < 2 * args.folds:
        raise UsageError(f"{args.data}: {len(table)} images are too few for {args.folds} folds")
    print("loading PyTorch ...", flush=True)
    from labelgraph.studies.audit import model_scores, out_of_fold_scores, write_audit

    if args.model:
        probs = model_scores(args.model, table)
        how = f"Scores of {args.model} (a model that must not have trained on these images) and the label graph"
    else:
        probs = out_of_fold_scores(
            table, fold_plan(args, table), out, args.folds, args.protocol, not args.no_progress and sys.stderr.isatty()
        )
        how = (
            f"Out-of-fold scores of {args.folds} {args.method} models ({args.protocol} protocol: each scored the "
            "images it did not train on) and the label graph"
        )
    summary = write_audit(table, probs, out, how, args.top)
    likely = summary["more_likely_wrong_than_right"]
    print(
        f"{summary['entries_audited']} entries audited: {likely['missing']} look like missed positives and "
        f"{likely['spurious']} like wrong tags (score >= 0.5)\nwrote {out / 'audit.csv'}, {out / 'audit.html'}"
    )
    review = summary["review"]
    if review["written"]:
        print(f"for review in the labelling tools ({review['images']} images, relative to {review['image_root']}): "
              f"{out / 'review.label-studio.json'} (+ review.label_config.xml), {out / 'review.cvat.xml'}")  # fmt: skip
    else:
        print(f"no files for the labelling tools: {review['why']}")
    return 0


def fold_plan(args: argparse.Namespace, table: object) -> object:
    """``labelgraph train``'s plan for a fold of ``table`` (four fifths of it, a fifth of that held out)."""
    from labelgraph.data.hide_labels import label_setting_of
    from labelgraph.models import list_models
    from labelgraph.studies.audit import audit_plan
    from labelgraph.studies.fine_tune import make_plan

    if args.method not in list_models():
        raise UsageError(f"--method {args.method!r}: not registered; the methods: {', '.join(list_models())}")
    backbone, weights = backbone_and_weights(args.weights, args.backbone)
    fold_images = int(len(table) * (1 - 1 / args.folds) * 0.8)
    plan = make_plan(
        fold_images,
        args.method,
        backbone,
        weights,
        args.image_size or 224,
        label_embeddings(table.class_names, args.embeddings),
        args.seed,
        args.epochs,
        args.batch_size,
        label_setting_of(table.targets),
    )
    return audit_plan(plan, args.protocol)
