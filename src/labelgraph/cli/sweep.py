"""``labelgraph sweep``: train a grid of configurations and tabulate their test metrics."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from labelgraph.cli._common import Parser, UsageError, non_negative_int


def run(argv: list[str]) -> int:
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
        from labelgraph.studies.sweep_point import fit_and_test

        point_module = "labelgraph.studies.sweep_point"
        runner = in_process_runner(fit_and_test) if args.in_process else subprocess_runner(point_module)
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
    p = Parser(
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
        type=non_negative_int,
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
