"""Commands that draw: ``viz``, ``retrieve`` and ``report``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from labelgraph.cli._common import UsageError, dataset_arguments, load_split


def cmd_viz(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph viz", description="Figures of a trained model.")
    sub = p.add_subparsers(dest="what", required=True)
    tsne = sub.add_parser("tsne", help="t-SNE of per-class vectors (classifiers, prototypes or label embeddings)")
    tsne.add_argument("model", help="an exported model folder")
    tsne.add_argument("--vectors", choices=("classifiers", "prototypes", "embeddings"), default="classifiers")
    tsne.add_argument("--groups", default=None, help='JSON file {"class": "group"} to colour by (e.g. supercategory)')
    tsne.add_argument("--out", required=True, help="output PNG")
    graph = sub.add_parser("graph", help="the label graph (co-occurrence) of a model or a graph file")
    graph.add_argument("source", help="an exported model folder or a .safetensors graph file")
    graph.add_argument("--tau", type=float, default=0.4, help="draw i -> j where P(j | i) >= tau (0.4)")
    graph.add_argument("--out", required=True, help="output PNG")
    pr = sub.add_parser("pr", help="precision-recall curves and per-class AP of a model on a split")
    pr.add_argument("model", help="an exported model folder")
    dataset_arguments(pr, "--split")
    pr.add_argument("--out", required=True, help="output PNG of the curves (the AP bars go next to it)")
    args = p.parse_args(argv)
    {"tsne": viz_tsne, "graph": viz_graph, "pr": viz_pr}[args.what](args)
    print(f"wrote {args.out}")
    return 0


def viz_tsne(args: argparse.Namespace) -> None:
    from labelgraph.models import load_model
    from labelgraph.visualization.plots import class_vectors, plot_tsne

    model, config = load_model(args.model)
    groups = json.loads(Path(args.groups).read_text()) if args.groups else None
    vectors = class_vectors(model, args.vectors)
    title = f"t-SNE of {config['method']} {args.vectors} ({len(vectors)} classes)"
    plot_tsne(vectors.numpy(), config["class_names"], args.out, groups=groups, title=title)


def viz_graph(args: argparse.Namespace) -> None:
    from labelgraph.graph import LabelGraph
    from labelgraph.visualization.plots import plot_label_graph

    source = Path(args.source)
    graph_file = source / "label_graph.safetensors" if source.is_dir() else source
    if not graph_file.is_file():
        raise UsageError(f"{args.source}: no label graph (graph methods export one; or pass a graph file)")
    edges = plot_label_graph(LabelGraph.load(graph_file), args.out, tau=args.tau)
    print(f"{edges} edges")


def viz_pr(args: argparse.Namespace) -> None:
    from labelgraph.apis.predict import Predictor
    from labelgraph.evaluation.metrics import evaluate
    from labelgraph.evaluation.scoring import split_scores
    from labelgraph.visualization.plots import plot_pr_curves
    from labelgraph.visualization.report import plot_per_class_ap

    predictor = Predictor.load(args.model)
    table = load_split(args, args.split, predictor.classes)
    scores = split_scores(predictor.scores, predictor.transform, table)
    plot_pr_curves(scores, table.targets, predictor.classes, args.out)
    result = evaluate(scores, table.targets)
    ap_path = Path(args.out).with_name(Path(args.out).stem + "_ap.png")
    plot_per_class_ap({"model": list(result["AP"])}, predictor.classes, ap_path)
    print(f"mAP {result['mAP']:.2f}; per-class AP bars: {ap_path}")


def cmd_retrieve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="labelgraph retrieve", description="Nearest images by the model's features (cosine similarity)."
    )
    p.add_argument("model", help="an exported model folder")
    p.add_argument("--index", nargs="+", required=True, help="images, folders or globs to search")
    p.add_argument("--query", nargs="+", required=True, help="query image(s)")
    p.add_argument("-k", type=int, default=5, help="neighbours per query (5)")
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


def cmd_report(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph report", description="A self-contained HTML report of a run.")
    p.add_argument("run_dir", help="a folder written by labelgraph demo (results.json, <method>/model, data/)")
    p.add_argument("--examples", type=int, default=6, help="example test predictions to show (6)")
    args = p.parse_args(argv)

    from labelgraph.visualization.html_report import write_html_report

    print(f"wrote {write_html_report(args.run_dir, args.examples)}")
    return 0
