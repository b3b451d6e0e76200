"""``labelgraph retrieve``: the nearest images of a query by a model's features."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from labelgraph.cli._common import Parser, UsageError, positive_int


def run(argv: list[str]) -> int:
    p = Parser(prog="labelgraph retrieve", description="Nearest images by the model's features (cosine similarity).")
    p.add_argument("model", help="an exported model folder")
    p.add_argument("--index", nargs="+", required=True, help="images, folders or globs to search")
    p.add_argument("--query", nargs="+", required=True, help="query image(s)")
    p.add_argument("-k", type=positive_int, default=5, help="neighbours per query (5)")
    p.add_argument("--out", default=None, help="folder for one PNG per query (query + neighbours)")
    args = p.parse_args(argv)

    from labelgraph.apis.predict import Predictor, expand_paths
    from labelgraph.apis.retrieve import embed, nearest, plot_results

    predictor = Predictor.load(args.model)
    index_paths, missing = expand_paths(args.index)
    index, kept, errors = embed(predictor, index_paths)
    queries, query_kept, query_errors = embed(predictor, [Path(q) for q in args.query])
    errors = missing + errors + query_errors
    if not kept:
        raise UsageError(f"--index {' '.join(args.index)}: no readable image")
    sims, idx = nearest(queries, index, args.k)
    report = []
    for q, (row_sims, row_idx) in enumerate(zip(sims.tolist(), idx.tolist(), strict=True)):
        hits = [(kept[i], s) for i, s in zip(row_idx, row_sims, strict=True)]
        report.append(
            {"query": str(query_kept[q]), "neighbours": [{"image": str(h), "cosine": round(s, 4)} for h, s in hits]}
        )
        if args.out:
            Path(args.out).mkdir(parents=True, exist_ok=True)
            plot_results(query_kept[q], hits, Path(args.out) / f"{query_kept[q].stem}_neighbours.png")
    print(json.dumps({"results": report, "errors": errors}, indent=1))
    for e in errors:
        print(f"error: {e['image']}: {e['error']}", file=sys.stderr)
    return 1 if errors else 0
