"""``labelgraph viz tsne|graph|pr``: figures of a trained model."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from labelgraph.cli._common import Parser, UsageError, dataset_arguments, load_split, probability


def run(argv: list[str]) -> int:
    p = Parser(prog="labelgraph viz", description="Figures of a trained model.")
    sub = p.add_subparsers(dest="what", required=True)
    tsne = sub.add_parser("tsne", help="t-SNE of per-class vectors (classifiers, prototypes or label embeddings)")
    tsne.add_argument("model", help="an exported model folder")
    tsne.add_argument("--vectors", choices=("classifiers", "prototypes", "embeddings"), default="classifiers")
    tsne.add_argument("--groups", default=None, help='JSON file {"class": "group"} to colour by (e.g. supercategory)')
    tsne.add_argument("--out", required=True, help="output PNG")
    graph = sub.add_parser("graph", help="the label graph (co-occurrence) of a model or a graph file")
    graph.add_argument("source", help="an exported model folder or a .safetensors graph file")
    graph.add_argument("--tau", type=probability, default=0.4, help="draw i -> j where P(j | i) >= tau (0.4)")
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
    title = f"t-SNE of {config.method} {args.vectors} ({len(vectors)} classes)"
    plot_tsne(vectors.numpy(), config.class_names, args.out, groups=groups, title=title)


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
    from labelgraph.visualization.plots import plot_pr_curves
    from labelgraph.visualization.report import plot_per_class_ap

    predictor = Predictor.load(args.model)
    table = load_split(args, args.split, predictor.classes)
    scores = predictor.table_scores(table)
    plot_pr_curves(scores, table.targets, predictor.classes, args.out)
    result = evaluate(scores, table.targets)
    ap_path = Path(args.out).with_name(Path(args.out).stem + "_ap.png")
    plot_per_class_ap({"model": list(result["AP"])}, predictor.classes, ap_path)
    print(f"mAP {result['mAP']:.2f}; per-class AP bars: {ap_path}")
