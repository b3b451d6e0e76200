"""``labelgraph compare TRAIN.csv --methods ...``: the demo's method comparison on your own images."""

from __future__ import annotations

import argparse
import sys

from labelgraph.cli.demo import label_study_arguments, label_study_options, study_step
from labelgraph.cli.own_data import (
    backbone_and_weights,
    label_embeddings,
    read_and_check,
    run_arguments,
    split_arguments,
    weights_arguments,
)
from labelgraph.errors import InvalidInputError

TOUR = "baseline,ml_gcn,add_gcn,query2label"


def compare_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="labelgraph compare",
        description="Train and compare methods on your labelled images with the demo's protocol: same images, epochs "
        "and seed, each method's own recipe; by default the heads on the frozen pretrained backbone's cached features "
        "(--no-frozen-backbone: every method fine-tuned end to end). Writes a table, results.json and report.html.",
    )
    split_arguments(p)
    p.add_argument("--methods", default=TOUR, help=f"comma-separated registered methods, or 'all' (default {TOUR})")
    weights_arguments(p)
    p.add_argument("--epochs", type=int, default=4, help="epochs per method (default 4)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--frozen-backbone", action=argparse.BooleanOptionalAction, default=True,
                   help="heads on the frozen backbone's cached features (default), or all fine-tuned")  # fmt: skip
    label_study_arguments(p)
    run_arguments(p, "compare")
    return p


def run(argv: list[str]) -> int:
    args = compare_parser().parse_args(argv)
    study = label_study_options(args)
    out, splits = read_and_check(args, "compare")
    from labelgraph.models import list_models

    methods = list_models() if args.methods == "all" else args.methods.split(",")
    if unknown := [m for m in methods if m not in list_models()]:
        raise InvalidInputError(f"--methods {unknown}: not registered; the methods: {', '.join(list_models())}")
    if "test" not in splits:
        print("test: the validation split (no --test given)")
    backbone, weights = backbone_and_weights(args.weights, args.backbone)
    embeddings = label_embeddings(splits["train"].class_names)
    print(f"methods: {', '.join(methods)}; backbone {backbone} ({weights}), {args.epochs} epochs, seed {args.seed}, "
          f"{'frozen backbone (cached features)' if args.frozen_backbone else 'fine-tuned end to end'}; "
          f"run folder {out}\nloading PyTorch and Lightning ...", flush=True)  # fmt: skip
    from labelgraph.studies.own_comparison import compare_on_splits

    progress = not args.no_progress and sys.stderr.isatty()
    compare_on_splits(splits, methods, out, backbone, weights, embeddings, args.image_size or 224, args.epochs,
                      args.batch_size, args.seed, args.frozen_backbone, progress, **study_step(study))  # fmt: skip
    return 0
