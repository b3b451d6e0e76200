"""``labelgraph evaluate``: metrics of trained models on a split, clean and under image corruptions."""

from __future__ import annotations

import argparse
import json
from typing import Any

from labelgraph.cli._common import (
    Parser,
    UsageError,
    dataset_arguments,
    default_device,
    load_split,
    non_negative_int,
    positive_int,
    runtime_argument,
)


def run(argv: list[str]) -> int:
    args = evaluate_parser().parse_args(argv)
    args.device = args.device or default_device()
    from labelgraph.data.classes import check_same_classes
    from labelgraph.evaluation.robustness import evaluate_models
    from labelgraph.models import load_trained_model

    loaded = [(path, *load_trained_model(path)) for path in args.models]
    loaded = [(path, runtime_of(path, model, config, args), config) for path, model, config in loaded]
    table = load_split(args, args.split, loaded[0][2].class_names)
    for path, _, config in loaded:
        check_same_classes(config.class_names, table.class_names, f"model {path}", f"split {table.source}")
    groups, scalings = models_by_input(loaded, args.image_size)
    corruptions, severities = corruption_settings(args)
    results = {}
    for (size, transform), models in groups.items():
        print(f"evaluating {', '.join(models)} on {len(table)} images of {table.source} at {size} px ({transform})")
        results.update(
            evaluate_models(
                models,
                table,
                size,
                corruptions,
                severities,
                metrics=args.metrics,
                seed=args.seed,
                batch_size=args.batch_size,
                num_workers=args.num_workers,
                device=args.device,
                progress=bool(corruptions),
                eval_transform=transform,
                scalings=scalings,
            )
        )
    write_outputs(args, table, results, corruptions, severities)
    return 0


def runtime_of(path: str, model: Any, config: Any, args: argparse.Namespace) -> Any:
    """The module that computes ``model``'s logits under ``--runtime`` (ONNX Runtime only for an exported folder at
    its own resolution: the graph's input size is fixed)."""
    from pathlib import Path

    from labelgraph.apis.onnx import choose_runtime
    from labelgraph.models.hub_source import model_folder

    folder = model_folder(path)
    own_size = args.image_size in (None, config.image_size)
    if args.runtime == "onnx" and not own_size:
        raise UsageError(f"--runtime onnx: {path}'s ONNX graph takes {config.image_size} px, not --image-size")
    exported = folder if Path(folder).is_dir() and own_size else None
    scorer, name = choose_runtime(exported, model, args.runtime, args.device)
    print(f"{path}: {name}")
    return scorer


def models_by_input(loaded: list[tuple], image_size: int | None) -> tuple[dict, dict]:
    """The models grouped by their input (one decoding pass per size and transform), each named by its method (its
    path where two share one), and each model's (temperature, bias), as predict applies them."""
    groups: dict[tuple[int, str], dict[str, object]] = {}
    scalings: dict[str, object] = {}
    for path, model, config in loaded:
        size = image_size or config.image_size
        if not size:
            raise UsageError(f"{path}: the model does not record its resolution; pass --image-size")
        name = config.method if sum(c.method == config.method for _, _, c in loaded) == 1 else str(path)
        groups.setdefault((int(size), config.eval_transform), {})[name] = model
        scalings[name] = (config.temperature, config.logit_bias)
    return groups, scalings


def write_outputs(args: argparse.Namespace, table: Any, results: dict, corruptions: list, severities: list) -> None:
    """The tables (printed, ``--markdown``), the reliability diagram (``--reliability``) and the JSON (``--out``)."""
    from labelgraph.files import write_text

    text = evaluation_tables(results, corruptions)
    print(text)
    if args.markdown:
        write_text(args.markdown, text + "\n")
    if args.reliability:
        from labelgraph.files import save_figure
        from labelgraph.visualization.trust import reliability_figure

        curves = {name: r["clean"]["reliability"] for name, r in results.items()}
        save_figure(reliability_figure(curves, f"{table.source}"), args.reliability)
        print(f"wrote {args.reliability} (reliability diagram: 15 equal-width probability bins)")
    if args.out:
        payload = {
            "split": str(table.source),
            "class_names": table.class_names,
            "corruptions": corruptions,
            "severities": severities,
            "metrics": args.metrics,
            "seed": args.seed,
            "models": results,
        }
        write_text(args.out, json.dumps(payload, indent=1) + "\n")


def evaluate_parser() -> argparse.ArgumentParser:
    p = Parser(
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
        help="evaluate under these corruptions (none named: all of them; docs/studies.md lists them)",
    )
    p.add_argument("--severities", default="1,2,3,4,5", help="comma-separated severities (1-5)")
    p.add_argument("--metrics", default="ml_gcn", help="metric preset (default ml_gcn; docs/metrics.md lists them)")
    p.add_argument("--image-size", type=positive_int, default=None, help="default: each model's training resolution")
    p.add_argument("--batch-size", type=positive_int, default=64)
    p.add_argument("--num-workers", type=non_negative_int, default=0)
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the corruptions' random draws")
    p.add_argument("--device", default=None, help="default: cuda when available, else cpu")
    runtime_argument(p)
    p.add_argument("--out", default=None, help="write every number to this JSON file")
    p.add_argument("--reliability", default=None, metavar="PNG", help="draw the models' reliability diagram here")
    p.add_argument("--markdown", default=None, help="write the tables to this Markdown file")
    return p


def corruption_settings(args: argparse.Namespace) -> tuple[list[str], list[int]]:
    """The corruptions (none without ``--corruptions``; all when it names none) and the severities."""
    from labelgraph.data.corruptions import CORRUPTIONS, SEVERITIES
    from labelgraph.evaluation.metrics import METRIC_PRESETS

    corruptions = [] if args.corruptions is None else (args.corruptions or list(CORRUPTIONS))
    if unknown := sorted(set(corruptions) - set(CORRUPTIONS)):
        raise UsageError(f"--corruptions {unknown}: unknown; the corruptions: {', '.join(CORRUPTIONS)}")
    if args.metrics not in METRIC_PRESETS:
        raise UsageError(f"--metrics {args.metrics!r}: unknown; the presets: {', '.join(METRIC_PRESETS)}")
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
    rows = ["| model | mAP | CF1 | OF1 | CF1 top-3 | OF1 top-3 | ECE |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in results.items():
        values = [r["clean"][k] for k in ("mAP", "CF1", "OF1", "CF1_top3", "OF1_top3", "ECE")]
        rows.append(f"| {name} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    note = (
        "\nPercent; CF1/OF1 at the metric preset's threshold; ECE: expected calibration error of the "
        "probabilities predict gives (scaled as calibrated), 15 equal-width bins, every known (image, "
        "class) entry."
    )
    return "\n".join(rows) + note
