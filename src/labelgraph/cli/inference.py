"""Commands that use a trained model: ``export``, ``predict``, ``calibrate``, ``explain`` (see ``labelgraph.cli``)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_export(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph export", description="A checkpoint -> an exported model folder.")
    p.add_argument("checkpoint", help="a checkpoint written by labelgraph fit (.ckpt)")
    p.add_argument("--out", required=True, help="output folder (model.safetensors + config.json)")
    p.add_argument("--image-size", type=int, default=None, help="default: the training image size it records")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx and check it against PyTorch")
    args = p.parse_args(argv)

    from labelgraph.export import export_checkpoint, load_model

    out = export_checkpoint(args.checkpoint, args.out, image_size=args.image_size)
    print(f"exported {args.checkpoint} to {out}")
    if args.onnx:
        import torch

        from labelgraph.onnx_export import check_onnx, export_onnx

        model, config = load_model(out)
        size = config["preprocessing"]["image_size"]
        path = export_onnx(model, size, out / "model.onnx")
        diff = check_onnx(model, path, torch.rand(4, 3, size, size))
        print(f"wrote {path}; max |logit difference| to PyTorch on 4 images: {diff:.2e}")
        if diff > 1e-3:
            print("the ONNX model disagrees with PyTorch", file=sys.stderr)
            return 1
    return 0


def cmd_predict(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph predict", description="Tag images with an exported model.")
    p.add_argument("model", help="an exported model folder (labelgraph export, or the demo's <method>/model)")
    p.add_argument("paths", nargs="+", help="images, folders (searched recursively) or glob patterns")
    p.add_argument("--out", default=None, help="x.json or x.csv (default: JSON on standard output)")
    p.add_argument("--threshold", default=None, help="a probability, or 'calibrated' (default: the model's)")
    p.add_argument("--top-k", type=int, default=None, help="at most K labels per image")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    from labelgraph.predict import Predictor, expand_paths, write_predictions

    predictor = Predictor.load(args.model, args.device)
    paths, missing = expand_paths(args.paths)
    threshold = args.threshold if args.threshold in (None, "calibrated") else float(args.threshold)
    result = predictor.predict(paths, threshold=threshold, top_k=args.top_k, batch_size=args.batch_size, progress=True)
    result["errors"] = missing + result["errors"]
    if args.out:
        write_predictions(result, args.out)
        print(f"{len(result['predictions'])} image(s) predicted, {len(result['errors'])} error(s) -> {args.out}")
    else:
        print(json.dumps(result, indent=1))
    for error in result["errors"]:
        print(f"error: {error['image']}: {error['error']}", file=sys.stderr)
    return 1 if result["errors"] else 0


def cmd_calibrate(argv: list[str]) -> int:
    from labelgraph.cli import _dataset_arguments, _load_split

    p = argparse.ArgumentParser(
        prog="labelgraph calibrate",
        description="Per-class thresholds maximising each class's F1 on a split, stored in the exported model.",
    )
    p.add_argument("model", help="an exported model folder")
    _dataset_arguments(p, "--split")
    p.add_argument("--eval-split", default=None, help="report CF1/OF1 on this split (default: the calibration one)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dry-run", action="store_true", help="report only; do not store the thresholds")
    args = p.parse_args(argv)

    import numpy as np

    from labelgraph.calibration import f1_optimal_thresholds
    from labelgraph.classes import check_same_classes
    from labelgraph.export import update_config
    from labelgraph.metrics import evaluate
    from labelgraph.predict import Predictor

    predictor = Predictor.load(args.model)

    def split_scores(split: str) -> tuple[np.ndarray, np.ndarray]:
        table = _load_split(args, split, predictor.classes)
        check_same_classes(predictor.classes, table.class_names, f"model {args.model}", f"split {table.source}")
        return _table_scores(predictor, table, args.batch_size), table.targets

    scores, targets = split_scores(args.split)
    thresholds = f1_optimal_thresholds(scores, targets)
    eval_scores, eval_targets = split_scores(args.eval_split) if args.eval_split else (scores, targets)
    report = {"calibrated_on": args.split, "evaluated_on": args.eval_split or args.split}
    for name, t in (("threshold_0.5", 0.5), ("calibrated", thresholds)):
        m = evaluate(eval_scores, eval_targets, threshold=t)
        report[name] = {k: round(m[k], 2) for k in ("CP", "CR", "CF1", "OP", "OR", "OF1")}
    report["thresholds"] = {c: round(float(t), 4) for c, t in zip(predictor.classes, thresholds, strict=True)}
    if not args.dry_run:
        update_config(args.model, thresholds=[float(t) for t in thresholds])
        report["stored_in"] = str(Path(args.model) / "config.json")
    print(json.dumps(report, indent=1))
    return 0


def _table_scores(predictor, table, batch_size: int):  # noqa: ANN001, ANN202
    import numpy as np
    from torch.utils.data import DataLoader

    from labelgraph.data.dataset import MultiLabelDataset

    # an unreadable image stops here, naming the file: skipping it would misalign scores and targets
    loader = DataLoader(MultiLabelDataset(table, predictor.transform), batch_size=batch_size, shuffle=False)
    return np.concatenate([predictor.scores(images) for images, _ in loader])


def cmd_explain(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="labelgraph explain",
        description="Overlays of the class maps of the predicted labels: the method's own maps, else Grad-CAM.",
    )
    p.add_argument("model", help="an exported model folder")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", required=True, help="output folder for the PNG overlays")
    p.add_argument("--classes", default=None, help="comma-separated classes to explain (default: the predicted)")
    p.add_argument("--top-k", type=int, default=3, help="explain at most K predicted labels (default 3)")
    p.add_argument("--threshold", default=None, help="a probability, or 'calibrated' (default: the model's)")
    args = p.parse_args(argv)

    from labelgraph.data.image_io import ImageLoadError, load_image
    from labelgraph.explain import explain, overlay
    from labelgraph.predict import Predictor

    predictor = Predictor.load(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = args.classes.split(",") if args.classes else None
    unknown = [c for c in wanted or [] if c not in predictor.classes]
    if unknown:
        raise SystemExit(f"unknown classes {unknown}; the model's: {', '.join(predictor.classes)}")
    threshold = args.threshold if args.threshold in (None, "calibrated") else float(args.threshold)
    failed = 0
    for path in args.images:
        try:
            image = load_image(path)
        except ImageLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        result = predictor.predict([image], threshold=threshold, top_k=args.top_k)["predictions"][0]
        scores = result["scores"]
        names = wanted or result["labels"] or [max(scores, key=scores.get)]  # at least the most likely class
        x = predictor.transform(image)[None]
        maps, kind = explain(predictor.model, x, [predictor.classes.index(n) for n in names])
        for name, heat in zip(names, maps, strict=True):
            target = out / f"{Path(path).stem}_{name.replace('/', '_').replace(' ', '_')}.png"
            overlay(image, heat.cpu().numpy()).save(target)
            print(f"{target}  ({kind}, p={scores[name]:.3f})")
    return 1 if failed else 0


def cmd_models_details(argv: list[str]) -> int:
    """``labelgraph models --details``: parameters and forward FLOPs of every method at one input size."""
    p = argparse.ArgumentParser(prog="labelgraph models --details")
    p.add_argument("--details", action="store_true")
    p.add_argument("--backbone", default="resnet101")
    p.add_argument("--size", type=int, default=448)
    p.add_argument("--classes", type=int, default=80)
    args = p.parse_args(argv)

    import numpy as np
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from labelgraph import LabelGraph, create_model, list_models

    rng = np.random.default_rng(0)
    graph = LabelGraph.from_targets(
        (rng.random((500, args.classes)) < 0.05).astype(np.int8), [str(c) for c in range(args.classes)]
    )
    graph.embeddings, graph.embedding_source = torch.randn(args.classes, 300), "image:random"
    print(
        f"{'method':<12} {'params (M)':>11} {'GFLOPs':>9}   ({args.backbone}, {args.size} px, {args.classes} classes)"
    )
    for name in list_models():
        model = create_model(name, num_classes=args.classes, label_graph=graph, backbone=args.backbone).eval()
        params = sum(p.numel() for p in model.parameters()) / 1e6
        with FlopCounterMode(display=False) as counter:  # (under no_grad its hooks trip on frozen stages)
            model(torch.rand(1, 3, args.size, args.size))
        print(f"{name:<12} {params:>11.2f} {counter.get_total_flops() / 1e9:>9.2f}")
    return 0
