"""Commands for studies: ``sweep`` (hyper-parameter grids) and ``evaluate`` (robustness under corruptions)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path


def cmd_sweep(argv: list[str]) -> int:
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
    args = p.parse_args(argv)

    from labelgraph.sweep import Sweep, parse_assignment

    try:
        grid = dict(parse_assignment(g, many=True) for g in args.grid)
        settings = dict(parse_assignment(s, many=False) for s in args.set)
        if args.sweep_file:
            sweep = Sweep.from_file(args.sweep_file, name=args.name, metric=args.metric)
            sweep = Sweep(
                sweep.configs + args.config,
                sweep.grids + ([grid] if grid else []),
                {**sweep.settings, **settings},
                name=sweep.name,
                metric=sweep.metric,
            )
        else:
            sweep = Sweep(args.config, [grid], settings, name=args.name or "sweep", metric=args.metric or "mAP")
    except (ValueError, KeyError, FileNotFoundError) as err:
        raise SystemExit(f"labelgraph sweep: {err}") from None
    out = Path(args.out or Path("sweeps") / sweep.name)
    points = sweep.points()
    if args.list:
        for i, values in enumerate(points):
            print(i, " ".join(f"{k}={v}" for k, v in values.items()))
        return 0
    point = args.point if args.point is not None else os.environ.get("LABELGRAPH_SWEEP_POINT")
    failed: list[int] = []
    if not args.collect:
        print(f"sweep {sweep.name}: {len(points)} points -> {out}")
        failed = sweep.run(out, point=None if point is None else int(point), in_process=args.in_process)
        if point is not None:  # one job of a cluster array: the tables are written by --collect
            return 1 if failed else 0
    files = sweep.write_tables(out)
    print(f"wrote {files['markdown']}, {files['csv'].name}, {files['plot'].name}")
    if failed:
        print(f"{len(failed)} point(s) failed: {failed}")
    return 1 if failed else 0


def cmd_evaluate(argv: list[str]) -> int:
    from labelgraph.cli import _dataset_arguments, _load_split
    from labelgraph.data.corruptions import CORRUPTIONS, SEVERITIES
    from labelgraph.metrics import METRIC_PRESETS

    p = argparse.ArgumentParser(
        prog="labelgraph evaluate",
        description="Metrics of trained models on a split, clean and (--corruptions) under image corruptions.",
    )
    p.add_argument("models", nargs="+", help="exported model folders or checkpoints of labelgraph fit")
    _dataset_arguments(p, "--split", "--data")
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
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--out", default=None, help="write every number to this JSON file")
    p.add_argument("--markdown", default=None, help="write the tables to this Markdown file")
    args = p.parse_args(argv)

    import json

    from labelgraph.classes import check_same_classes
    from labelgraph.export import load_trained_model
    from labelgraph.robustness import evaluate_models, robustness_table, severity_table

    loaded = [(path, *load_trained_model(path)) for path in args.models]
    class_names = loaded[0][2]["class_names"]
    table = _load_split(args, args.split, class_names)
    groups: dict[int, dict[str, object]] = {}
    for path, model, config in loaded:
        check_same_classes(config["class_names"], table.class_names, f"model {path}", f"split {table.source}")
        size = args.image_size or config["preprocessing"].get("image_size")
        if not size:
            raise SystemExit(f"{path}: the model does not record its resolution; pass --image-size")
        name = config["method"] if sum(c["method"] == config["method"] for _, _, c in loaded) == 1 else str(path)
        groups.setdefault(int(size), {})[name] = model
    corruptions = [] if args.corruptions is None else (args.corruptions or list(CORRUPTIONS))
    try:
        severities = [int(s) for s in args.severities.split(",")]
    except ValueError:
        raise SystemExit(
            f"--severities {args.severities!r}: expected comma-separated integers in {SEVERITIES}"
        ) from None
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
    if corruptions:
        text = [robustness_table(results)] + [severity_table(results, c) for c in corruptions]
    else:
        rows = ["| model | mAP | CF1 | OF1 | CF1 top-3 | OF1 top-3 |", "|---|---:|---:|---:|---:|---:|"]
        for name, r in results.items():
            values = [r["clean"][k] for k in ("mAP", "CF1", "OF1", "CF1_top3", "OF1_top3")]
            rows.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
        text = ["\n".join(rows)]
    print("\n\n".join(text))
    if args.markdown:
        Path(args.markdown).write_text("\n\n".join(text) + "\n")
    if args.out:
        payload = {"split": str(table.source), "class_names": table.class_names, "corruptions": corruptions,
                   "severities": severities, "metrics": args.metrics, "seed": args.seed, "models": results}  # fmt: skip
        Path(args.out).write_text(json.dumps(payload, indent=1) + "\n")
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
