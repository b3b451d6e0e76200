"""The ``labelgraph`` command.

Training and evaluation go through LightningCLI (``fit``, ``validate``, ``test``, ``predict`` with
``--config``); the data module's class list and label graph are linked into the model. Other sub-commands:

    labelgraph models                       the registered methods, one per line
    labelgraph demo [--methods a,b] ...     synthetic data -> train -> compare -> report
    labelgraph data demo --out DIR          only write the synthetic dataset (used by configs/demo.yaml)
    labelgraph data graph --train CSV --out G.safetensors [--embeddings onehot|glove:PATH|glove50|image:MODEL]
                                            label statistics + embeddings (+ --knowledge vg:PATH) from raw annotations
    labelgraph data stats --format F --root R --split S [--json]    label statistics of a split
    labelgraph data check --format F --root R --split S             open every image; exit 1 if any is bad
    labelgraph sadcl prototypes --model Q2L --split train.csv --out P.safetensors   SADCL's class prototypes
    labelgraph export CKPT --out MODEL [--onnx]            a checkpoint -> an exported model (+ checked ONNX)
    labelgraph predict MODEL PATH... [--out x.json|x.csv]  tag images, folders, globs; bad files listed, exit 1
    labelgraph calibrate MODEL --split val.csv             per-class F1-optimal thresholds, stored in the model
    labelgraph explain MODEL IMAGE... --out DIR            class-map / Grad-CAM overlays of the predicted labels
    labelgraph models --details [--backbone B --size S]    parameters and FLOPs of every method
    labelgraph viz tsne|graph|pr ...                       t-SNE of classifiers/prototypes, label graph, PR curves
    labelgraph retrieve MODEL --index PATH... --query IMG  nearest images by the model's features
    labelgraph report RUN_DIR                              self-contained HTML report of a demo run
    labelgraph sweep [SWEEP.yaml] [--config C] [--grid model.model_args.tau=0.1,0.4] [--point I] [--collect]
                                                           train a grid; CSV + Markdown tables + plot
    labelgraph evaluate MODEL... --split test.csv [--corruptions]   metrics, and mAP under corruptions
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from labelgraph import cli_figures, cli_inference, cli_studies
from labelgraph.checkpoint_io import SafeCheckpointIO
from labelgraph.data import MultiLabelDataModule
from labelgraph.task import MultiLabelTask

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


class LabelGraphCLI(LightningCLI):
    """LightningCLI that passes what only the data knows to the model."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.label_graph", "model.label_graph", apply_on="instantiate")


def make_cli(argv: list[str], run: bool = True) -> LabelGraphCLI:
    """The Lightning CLI of ``labelgraph fit|validate|test|predict`` (``run=False``: instantiate only)."""
    return LabelGraphCLI(
        MultiLabelTask,
        MultiLabelDataModule,
        args=argv,
        run=run,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"plugins": [SafeCheckpointIO()]},  # atomic checkpoint writes, weights_only reads
        parser_kwargs={"parser_mode": "omegaconf"} if _has_omegaconf() else {},
    )


def run_lightning(argv: list[str]) -> None:
    make_cli(argv)


def _has_omegaconf() -> bool:
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        return False
    return True


def cmd_models(argv: list[str]) -> int:
    if "--details" in argv:
        return cli_inference.cmd_models_details(argv)
    argparse.ArgumentParser(prog="labelgraph models", description="List the registered methods.").parse_args(argv)
    from labelgraph.registry import list_models

    print("\n".join(list_models()))
    return 0


def cmd_demo(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph demo", description="Train and compare methods on synthetic scenes.")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: all registered)")
    p.add_argument("--epochs", type=int, default=6)
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument(
        "--data",
        choices=("auto", "fashion", "shapes"),
        default="auto",
        help="fashion outfits (needs Fashion-MNIST) or procedural shapes; auto picks fashion when found",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--images", type=int, default=2000, help="train images (val and test get a quarter each)")
    p.add_argument("--image-size", type=int, default=96)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--backbone", default="resnet10t")
    p.add_argument("--pretrain-images", type=int, default=6000, help="isolated items for backbone pretraining")
    p.add_argument(
        "--model-args", default=None, help='JSON builder arguments for the methods, e.g. \'{"fusion": "dot"}\''
    )
    p.add_argument("--lr", type=float, default=None, help="head learning rate (default 1e-3; backbone 0.1x)")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    args = p.parse_args(argv)
    from labelgraph.demo import run_demo

    run_demo(
        out=args.out,
        methods=args.methods.split(",") if args.methods else None,
        epochs=args.epochs,
        data=args.data,
        seed=args.seed,
        train_images=args.images,
        image_size=args.image_size,
        batch_size=args.batch_size,
        backbone=args.backbone,
        progress=not args.no_progress,
        pretrain_images=args.pretrain_images,
        model_args=json.loads(args.model_args) if args.model_args else None,
        lr=args.lr,
    )
    return 0


def _dataset_arguments(p: argparse.ArgumentParser, split_flag: str = "--split", *aliases: str) -> None:
    p.add_argument("--format", default="csv", help="csv, coco2014, voc2007, voc2012, nuswide, vg500, mirflickr")
    p.add_argument("--root", default=None, help="the folder the dataset's archive unpacks into")
    p.add_argument(split_flag, *aliases, required=True, help="split name (for csv: the CSV file)")
    p.add_argument("--classes", default=None, help="class list file (default: the dataset's own)")
    p.add_argument("--image-root", default=None)
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a format option, e.g. --option difficult=negative (repeatable)",
    )


def _format_options(pairs: list[str]) -> dict:
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--option {pair!r}: expected KEY=VALUE")
        options[key.strip()] = yaml.safe_load(value)
    return options


def _load_split(args: argparse.Namespace, split: str, default_classes: list[str] | None = None):
    """A split of the dataset named by the arguments, in ``--classes`` order, else ``default_classes`` (a model's
    output order), else the dataset's own order."""
    from labelgraph.data.formats import load_table, read_class_list

    names = read_class_list(args.classes) if args.classes else default_classes
    return load_table(
        args.format,
        split,
        root=args.root,
        class_names=names,
        image_root=args.image_root,
        **_format_options(args.option),
    )


def cmd_data(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph data", description="Datasets and label graphs.")
    sub = p.add_subparsers(dest="action", required=True)
    demo = sub.add_parser("demo", help="write the synthetic demo dataset (images + CSV)")
    demo.add_argument("--out", default="demo_data")
    demo.add_argument("--data", choices=("auto", "fashion", "shapes"), default="auto")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--images", type=int, default=2000)
    graph = sub.add_parser("graph", help="build a label graph file from the train split's annotations")
    _dataset_arguments(graph, "--train")
    graph.add_argument("--out", required=True, help="output .safetensors file")
    graph.add_argument("--embeddings", default=None, help="onehot | glove:PATH | glove50 | image:MODEL_DIR")
    graph.add_argument("--pca", type=int, default=None, help="PCA dimension of image embeddings (<= C - 1)")
    graph.add_argument("--knowledge", default=None, help="vg:relationships.json, or a graph file (CSV/JSON)")
    stats = sub.add_parser("stats", help="label statistics of a split")
    _dataset_arguments(stats)
    stats.add_argument("--json", action="store_true", help="print one JSON object")
    check = sub.add_parser("check", help="open every image of a split and report the bad ones")
    _dataset_arguments(check)
    args = p.parse_args(argv)
    if args.action == "graph":
        from labelgraph.graph.build import build_label_graph

        g = build_label_graph(
            args.train,
            args.out,
            format=args.format,
            root=args.root,
            format_options=_format_options(args.option),
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
    if args.action == "stats":
        from labelgraph.data.inspect import split_statistics

        stats_ = split_statistics(_load_split(args, args.split))
        if args.json:
            print(json.dumps(stats_))
        else:
            for key, value in stats_.items():
                print(f"{key}: {value}")
        return 0
    if args.action == "check":
        from labelgraph.data.inspect import check_images

        table = _load_split(args, args.split)
        problems = check_images(table)
        for path, error in problems:
            print(f"{path}: {error}")
        print(f"checked {len(table)} images of {table.source}: {len(problems)} problem(s)")
        return 1 if problems else 0
    from labelgraph.data.synthetic import generate_dataset

    n = args.images
    info = generate_dataset(args.out, kind=args.data, seed=args.seed, sizes={"train": n, "val": n // 4, "test": n // 4})
    print(
        f"wrote {info['kind']} scenes to {args.out}: "
        + ", ".join(f"{k} {info[k]['num_images']}" for k in info["sizes"])
    )
    return 0


def cmd_sadcl(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph sadcl", description="SADCL's two-stage recipe.")
    sub = p.add_subparsers(dest="action", required=True)
    proto = sub.add_parser(
        "prototypes", help="class prototypes from a trained Query2Label model (SADCL's second stage starts from them)"
    )
    proto.add_argument("--model", required=True, help="an exported model folder or a checkpoint of labelgraph fit")
    _dataset_arguments(proto, "--split")
    proto.add_argument("--out", required=True, help="output .safetensors file")
    proto.add_argument("--threshold", type=float, default=0.85, help="probability a positive must exceed (0.85)")
    proto.add_argument("--image-size", type=int, default=None, help="default: the exported model's")
    proto.add_argument("--batch-size", type=int, default=32)
    proto.add_argument("--num-workers", type=int, default=0)
    args = p.parse_args(argv)

    from safetensors.torch import save_file
    from torch.utils.data import DataLoader

    from labelgraph.classes import check_same_classes
    from labelgraph.data.dataset import MultiLabelDataset, collate_skipping_bad
    from labelgraph.data.transforms import eval_transform
    from labelgraph.export import load_trained_model
    from labelgraph.prototypes import class_prototypes

    model, config = load_trained_model(args.model)
    table = _load_split(args, args.split, config["class_names"])
    check_same_classes(config["class_names"], table.class_names, f"model {args.model}", f"split {table.source}")
    size = args.image_size or config["preprocessing"].get("image_size")
    if not size:
        raise SystemExit("--image-size is needed: the checkpoint does not record the training resolution")
    loader = DataLoader(
        MultiLabelDataset(table, eval_transform(size)),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        collate_fn=collate_skipping_bad,
    )
    prototypes, counts = class_prototypes(model, loader, table.num_classes, args.threshold)
    metadata = {"class_names": json.dumps(table.class_names), "threshold": str(args.threshold), "model": args.model}
    save_file({"prototypes": prototypes.contiguous(), "counts": counts}, args.out, metadata=metadata)
    print(f"wrote {tuple(prototypes.shape)} prototypes to {args.out} ({int(counts.sum())} label features averaged)")
    return 0


EXTRA_COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "models": cmd_models,
    "demo": cmd_demo,
    "data": cmd_data,
    "sadcl": cmd_sadcl,
    "export": cli_inference.cmd_export,
    "predict": cli_inference.cmd_predict,
    "calibrate": cli_inference.cmd_calibrate,
    "explain": cli_inference.cmd_explain,
    "viz": cli_figures.cmd_viz,
    "retrieve": cli_figures.cmd_retrieve,
    "report": cli_figures.cmd_report,
    "sweep": cli_studies.cmd_sweep,
    "evaluate": cli_studies.cmd_evaluate,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in EXTRA_COMMANDS:
        return EXTRA_COMMANDS[argv[0]](argv[1:])
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nLightning sub-commands: " + ", ".join(LIGHTNING_COMMANDS) + " (labelgraph fit --help)")
        return 0
    run_lightning(argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
