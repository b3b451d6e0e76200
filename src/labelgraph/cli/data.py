"""``labelgraph data demo|graph|stats|check|hide-labels|add-noise``: datasets and label graphs."""

from __future__ import annotations

import argparse
import json

from labelgraph.cli._common import (
    Parser,
    UsageError,
    dataset_arguments,
    format_options,
    load_split,
    non_negative_float,
    non_negative_int,
    positive_int,
    probability,
    source_arguments,
)


def run(argv: list[str]) -> int:
    p = Parser(prog="labelgraph data", description="Datasets and label graphs.")
    sub = p.add_subparsers(dest="action", required=True)
    demo = sub.add_parser("demo", help="write the synthetic demo dataset (images + CSV)")
    demo.add_argument("--out", default="demo_data")
    demo.add_argument("--data", choices=("auto", "fashion", "shapes"), default="auto")
    demo.add_argument("--seed", type=non_negative_int, default=0)
    demo.add_argument("--images", type=positive_int, default=2000)
    graph = sub.add_parser("graph", help="build a label graph file from the train split's annotations")
    dataset_arguments(graph, "--train")
    graph.add_argument("--out", required=True, help="output .safetensors file")
    graph.add_argument("--embeddings", default=None, help="onehot | glove:PATH | glove50 | image:MODEL_DIR")
    graph.add_argument("--pca", type=positive_int, default=None, help="PCA dimension of image embeddings (<= C - 1)")
    graph.add_argument("--knowledge", default=None, help="vg:relationships.json, or a graph file (CSV/JSON)")
    stats = sub.add_parser("stats", help="label statistics of a split")
    dataset_arguments(stats)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    check = sub.add_parser("check", help="open every image of a split and report the bad ones")
    dataset_arguments(check)
    hide_labels_parser(sub)
    noise = sub.add_parser(
        "add-noise",
        help="plant label errors (missed and wrong tags) to test an audit",
        description="Plant label errors in a split, reproducibly: each known positive dropped with "
        "probability --drop, and --add times as many wrong positives at known negative entries. "
        "Writes the noisy CSV and NEW.noise.json listing every changed entry.",
    )
    noise.add_argument("split", help="the split (for csv: the CSV file)")
    noise.add_argument("--drop", type=probability, default=0.10, help="probability of dropping a positive (0.10)")
    noise.add_argument(
        "--add", type=non_negative_float, default=0.05, help="wrong positives, as a fraction of the positives (0.05)"
    )
    noise.add_argument("--seed", type=non_negative_int, default=0)
    noise.add_argument("--out", required=True, help="the new CSV file")
    source_arguments(noise)
    args = p.parse_args(argv)
    actions = {
        "demo": data_demo,
        "graph": data_graph,
        "stats": data_stats,
        "check": data_check,
        "hide-labels": data_hide_labels,
        "add-noise": data_add_noise,
    }
    return actions[args.action](args)


def data_demo(args: argparse.Namespace) -> int:
    from labelgraph.data.synthetic import generate_dataset

    n = args.images
    info = generate_dataset(args.out, kind=args.data, seed=args.seed, sizes={"train": n, "val": n // 4, "test": n // 4})
    sizes = ", ".join(f"{k} {info[k]['num_images']}" for k in info["sizes"])
    print(f"wrote {info['kind']} scenes to {args.out}: {sizes}")
    return 0


def data_graph(args: argparse.Namespace) -> int:
    from labelgraph.data.graph_build import build_label_graph

    g = build_label_graph(
        args.train,
        args.out,
        format=args.format,
        root=args.root,
        format_options=format_options(args.option),
        classes=args.classes,
        image_root=args.image_root,
        embeddings=args.embeddings,
        pca=args.pca,
        knowledge=args.knowledge,
    )
    emb = "none" if g.embeddings is None else f"{g.embedding_source} {tuple(g.embeddings.shape)}"
    kg = "" if g.knowledge is None else f", knowledge graph of {len(g.knowledge.node_names)} nodes"
    print(f"wrote {args.out}: {g.num_classes} classes over {g.num_images} images, embeddings {emb}{kg}")
    return 0


def data_stats(args: argparse.Namespace) -> int:
    from labelgraph.data.split_stats import split_statistics

    stats = split_statistics(load_split(args, args.split))
    if args.json:
        print(json.dumps(stats))
    else:
        for key, value in stats.items():
            print(f"{key}: {value}")
    return 0


def data_check(args: argparse.Namespace) -> int:
    from labelgraph.data.split_stats import check_images

    table = load_split(args, args.split)
    problems = check_images(table)
    for path, error in problems:
        print(f"{path}: {error}")
    print(f"checked {len(table)} images of {table.source}: {len(problems)} problem(s)")
    return 1 if problems else 0


def hide_labels_parser(sub: argparse._SubParsersAction) -> None:
    hide = sub.add_parser(
        "hide-labels",
        help="make a fully labelled split incomplete: partial (--keep F) or single-positive labels",
        description="Hide labels of a fully labelled split, reproducibly: --keep F keeps each (image, class) entry "
        "with probability F (partial labels, Durand et al. 2019); --single-positive keeps one positive per image "
        "(Cole et al. 2021). Unknown entries are written in the CSV format's compact form (?* / !name). Keep the "
        "validation and test splits fully labelled.",
    )
    hide.add_argument("split", help="the split (for csv: the CSV file)")
    setting = hide.add_mutually_exclusive_group(required=True)
    setting.add_argument("--keep", type=probability, default=None, metavar="F", help="probability of keeping an entry")
    setting.add_argument("--single-positive", action="store_true", help="one known positive per image")
    hide.add_argument("--seed", type=non_negative_int, default=0)
    hide.add_argument("--out", required=True, help="the new CSV file")
    source_arguments(hide)


def data_hide_labels(args: argparse.Namespace) -> int:
    from pathlib import Path

    from labelgraph.data.formats import write_csv
    from labelgraph.data.hide_labels import LabelSetting, hidden_counts, hide_labels
    from labelgraph.files import write_text

    try:
        setting = LabelSetting.parse("single-positive" if args.single_positive else f"keep:{args.keep}")
    except ValueError as err:
        raise UsageError(f"--keep {args.keep}: {err}") from err
    out = Path(args.out)
    table = load_split(args, args.split)
    if (table.targets == -1).any():
        print(f"note: {args.split} already has unknown entries; they stay unknown")
    hidden = hide_labels(table, setting, args.seed)
    write_csv(hidden, out, rebase=True)
    counts = hidden_counts(table, hidden)
    report = out.with_name(out.stem + ".hidden.json")
    summary = {"source": str(args.split), "setting": setting.name, "seed": args.seed, "classes": counts}
    write_text(report, json.dumps(summary, indent=2) + "\n")
    print(hidden_table(counts))
    if lost := [n for n, c in counts.items() if c["positives"] and c["positives"] == c["positives_hidden"]]:
        print(f"warning: {len(lost)} class(es) have no known positive left: {', '.join(lost)} (train refuses them)")
    known = float((hidden.targets != -1).mean())
    print(
        f"wrote {out} ({len(hidden)} images, {setting.name}, seed {args.seed}: {100 * known:.1f}% of the entries "
        f"known) and {report}"
    )
    return 0


def hidden_table(counts: dict[str, dict[str, int]]) -> str:
    """Per class: positives kept of all, negatives kept of all."""
    width = max(len("class"), *(len(n) for n in counts))
    lines = [f"{'class':<{width}}  positives kept  negatives kept"]
    for name, c in counts.items():
        pos = f"{c['positives'] - c['positives_hidden']}/{c['positives']}"
        neg = f"{c['negatives'] - c['negatives_hidden']}/{c['negatives']}"
        lines.append(f"{name:<{width}}  {pos:>14}  {neg:>14}")
    return "\n".join(lines)


def data_add_noise(args: argparse.Namespace) -> int:
    from pathlib import Path

    from labelgraph.data.formats import write_csv
    from labelgraph.data.label_noise import add_label_noise
    from labelgraph.files import write_text

    table = load_split(args, args.split)
    try:
        noisy, changed = add_label_noise(table, args.drop, args.add, args.seed)
    except ValueError as err:
        raise UsageError(str(err)) from None
    out = Path(args.out)
    write_csv(noisy, out, rebase=True)
    entries = [
        {
            "image": table.images[i],
            "label": table.class_names[c],
            "kind": "missing" if table.targets[i, c] == 1 else "spurious",
        }
        for i, c in changed
    ]
    record = out.with_name(out.stem + ".noise.json")
    summary = {"source": str(args.split), "drop": args.drop, "add": args.add, "seed": args.seed, "changed": entries}
    write_text(record, json.dumps(summary, indent=1) + "\n")
    missing = sum(e["kind"] == "missing" for e in entries)
    print(
        f"wrote {out}: {missing} positives dropped, {len(entries) - missing} wrong positives added "
        f"(seed {args.seed}); the changed entries in {record}"
    )
    return 0
