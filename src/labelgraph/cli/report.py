"""``labelgraph report``: a self-contained HTML report of a demo run."""

from __future__ import annotations

import argparse


def run(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph report", description="A self-contained HTML report of a run.")
    p.add_argument("run_dir", help="a folder written by labelgraph demo (results.json, <method>/model, data/)")
    p.add_argument("--examples", type=int, default=6, help="example test predictions to show (6)")
    args = p.parse_args(argv)

    from labelgraph.visualization.html_report import write_html_report

    print(f"wrote {write_html_report(args.run_dir, args.examples)}")
    return 0
