"""``labelgraph compare TRAIN.csv --methods ...``: methods compared on your own images.

By default every method is trained by ``labelgraph train``'s own rule, over several seeds where the held-out split is
small (:mod:`labelgraph.studies.train_comparison`), so the table predicts what ``train`` delivers; ``--protocol
frozen`` (the demo's quick tour: heads on the frozen backbone's cached features) and ``--protocol end-to-end`` (the
demo's protocol, fine-tuned) screen methods faster, labelled as such."""

from __future__ import annotations

import argparse
import sys

from labelgraph.cli._common import Parser, UsageError, positive_int
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
from labelgraph.studies.own_splits import OwnSplits

TOUR = "baseline,ml_gcn,add_gcn,query2label"
PROTOCOLS = ("train", "frozen", "end-to-end")


def compare_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="labelgraph compare",
        description="Train and compare methods on your labelled images. Default: each method as labelgraph train "
        "would train it (head, then the whole network, early-stopped, calibrated), over 3 seeds when the held-out "
        "split has fewer than 200 images, ties within the noise said as such. --protocol frozen / end-to-end: the "
        "demo's quicker protocol (same epochs for every method), for screening.",
    )
    split_arguments(p)
    p.add_argument("--methods", default=TOUR, help=f"comma-separated registered methods, or 'all' (default {TOUR})")
    weights_arguments(
        p,
        epochs="frozen/end-to-end: epochs per method (default 4); train: the most whole-network epochs",
        batch="default: 32 (frozen/end-to-end), min(32, training images) (train)",
    )
    p.add_argument(
        "--protocol",
        default=None,
        choices=PROTOCOLS,
        help="train: labelgraph train's rule for every method (default); frozen: the demo's heads on the "
        "frozen backbone's cached features (quick screening; the default of --labels studies); end-to-end: "
        "the demo's protocol fine-tuning everything",
    )
    p.add_argument(
        "--seeds",
        type=positive_int,
        default=None,
        help="train protocol: runs per method (default 3 when the held-out split has < 200 images, else 1)",
    )
    p.add_argument("--frozen-backbone", dest="protocol", action="store_const", const="frozen", help=argparse.SUPPRESS)
    p.add_argument(
        "--no-frozen-backbone", dest="protocol", action="store_const", const="end-to-end", help=argparse.SUPPRESS
    )
    label_study_arguments(p)
    run_arguments(p, "compare")
    return p


def run(argv: list[str]) -> int:
    args = compare_parser().parse_args(argv)
    study = label_study_options(args)
    out, splits = read_and_check(args, "compare", check=lambda: registered_methods(args.methods))
    methods = registered_methods(args.methods)
    protocol = args.protocol or ("frozen" if study else "train")
    if study and protocol == "train":
        raise UsageError("--labels studies run under the demo's protocol: --protocol frozen or end-to-end")
    if "test" not in splits:
        print("test: the validation split (no --test given)")
    backbone, weights = backbone_and_weights(args.weights, args.backbone)
    embeddings = label_embeddings(splits["train"].class_names, args.embeddings, args.classes)
    own = OwnSplits(splits, out, backbone, weights, embeddings, args.image_size or 224)
    progress = not args.no_progress and sys.stderr.isatty()
    if protocol == "train":
        return compare_by_train(args, own, methods, progress)
    epochs = args.epochs or 4
    print(
        f"methods: {', '.join(methods)}; backbone {backbone} ({weights}), {epochs} epochs, seed {args.seed}, "
        f"{'frozen backbone (cached features)' if protocol == 'frozen' else 'fine-tuned end to end'} (the demo's "
        f"protocol: quick screening, not what labelgraph train delivers); run folder {out}\n"
        "loading PyTorch and Lightning ...",
        flush=True,
    )
    from labelgraph.studies.own_comparison import compare_on_splits

    frozen = protocol == "frozen"
    compare_on_splits(own, methods, epochs, args.batch_size or 32, args.seed, frozen, progress, **study_step(study))
    return 0


def registered_methods(methods: str) -> list[str]:
    """``--methods`` as a list of registered methods (``all``: every one); an unknown name is refused."""
    from labelgraph.models import list_models

    names = list_models() if methods == "all" else methods.split(",")
    if unknown := [m for m in names if m not in list_models()]:
        raise InvalidInputError(f"--methods {unknown}: not registered; the methods: {', '.join(list_models())}")
    return names


def compare_by_train(args: argparse.Namespace, own: OwnSplits, methods: list[str], progress: bool) -> int:
    """The default protocol: every method by labelgraph train's rule, over seeds."""
    held = own.splits.get("test", own.splits["val"])
    print("loading PyTorch and Lightning ...", flush=True)
    from labelgraph.studies.train_comparison import compare_by_train_rule, default_seeds, refuse_composed

    refuse_composed(methods)  # before the line below announces a run that would not happen
    seeds = args.seeds or default_seeds(len(held))
    print(
        f"methods: {', '.join(methods)}; each by labelgraph train's rule, {seeds} seed(s) from {args.seed} "
        f"({len(held)} held-out images); backbone {own.backbone} ({own.weights}); run folder {own.out}",
        flush=True,
    )
    compare_by_train_rule(own, methods, seeds, args.seed, args.epochs, args.batch_size, progress)
    return 0
