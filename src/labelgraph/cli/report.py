"""``labelgraph report``: a self-contained HTML report of a demo run."""

from __future__ import annotations

from labelgraph.cli._common import Parser, positive_int


def run(argv: list[str]) -> int:
    p = Parser(prog="labelgraph report", description="A self-contained HTML report of a run.")
    p.add_argument("run_dir", help="a folder written by labelgraph demo (results.json, <method>/model, data/)")
    p.add_argument("--examples", type=positive_int, default=6, help="example test predictions to show (6)")
    args = p.parse_args(argv)

    from labelgraph.visualization.html_report import write_html_report

    print(f"wrote {write_html_report(args.run_dir, args.examples)}")
    return 0
