"""Commands that use a trained model: ``export``, ``predict``, ``calibrate``, ``explain``, ``sadcl prototypes``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from labelgraph.cli._common import UsageError, dataset_arguments, load_split


def cmd_export(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph export", description="A checkpoint -> an exported model folder.")
    p.add_argument("checkpoint", help="a checkpoint written by labelgraph fit (.ckpt), or an exported model folder")
    p.add_argument("--out", default=None, help="output folder (model.safetensors + config.json); a folder given as "
                   "the source is pushed as it is when --out is left out")  # fmt: skip
    p.add_argument("--image-size", type=int, default=None, help="default: the training image size it records")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx and check it against PyTorch")
    p.add_argument("--push-to-hub", metavar="ORG/NAME", default=None,
                   help="upload the folder with a generated model card to the Hugging Face Hub (HF_TOKEN)")  # fmt: skip
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repository private")
    args = p.parse_args(argv)
    if args.out is None and not (args.push_to_hub and Path(args.checkpoint).is_dir()):
        raise UsageError("--out is required (it may be left out only to push an exported folder as it is)")

    from labelgraph.apis.export import export_checkpoint

    out = Path(args.checkpoint)
    if args.out is not None:
        out = export_checkpoint(args.checkpoint, args.out, image_size=args.image_size)
        print(f"exported {args.checkpoint} to {out}")
    if args.onnx and export_and_check_onnx(out) != 0:
        return 1
    if args.push_to_hub:
        from labelgraph.apis.hub import push_to_hub

        url = push_to_hub(out, args.push_to_hub, private=args.private)
        print(f"pushed {out} (with its model card, README.md) to {args.push_to_hub}: {url}")
    return 0


def export_and_check_onnx(out: Path) -> int:
    """``--onnx``: write ``model.onnx`` beside the weights and compare it with PyTorch on random images."""
    import torch

    from labelgraph.apis.onnx import check_onnx, export_onnx
    from labelgraph.models import load_model

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
    p.add_argument("--classes", default=None, metavar="FILE",
                   help="zero-shot: score these class names (one per line) instead of the trained ones (ml_decoder "
                   "with queries=embeddings); needs --embeddings")  # fmt: skip
    p.add_argument("--embeddings", default=None, help="with --classes: the word vectors the model was trained with "
                   "(glove50, glove:PATH)")  # fmt: skip
    args = p.parse_args(argv)

    from labelgraph.apis.predict import Predictor, expand_paths, write_predictions

    predictor = Predictor.load(args.model, args.device)
    if args.classes:
        if not args.embeddings:
            raise UsageError("--classes needs --embeddings (the word vectors the model was trained with)")
        from labelgraph.data.formats import read_class_list

        predictor.score_classes(read_class_list(args.classes), args.embeddings)
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
    p = argparse.ArgumentParser(
        prog="labelgraph calibrate",
        description="Per-class thresholds maximising each class's F1 on a split, stored in the exported model.",
    )
    p.add_argument("model", help="an exported model folder")
    dataset_arguments(p, "--split")
    p.add_argument("--eval-split", default=None, help="report CF1/OF1 on this split (default: the calibration one)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dry-run", action="store_true", help="report only; do not store the thresholds")
    args = p.parse_args(argv)

    import numpy as np

    from labelgraph.apis.export import update_config
    from labelgraph.apis.predict import Predictor
    from labelgraph.data.classes import check_same_classes
    from labelgraph.evaluation.calibration import f1_optimal_thresholds
    from labelgraph.evaluation.metrics import evaluate
    from labelgraph.evaluation.scoring import split_scores

    predictor = Predictor.load(args.model)

    def scores_of(split: str) -> tuple[np.ndarray, np.ndarray]:
        table = load_split(args, split, predictor.classes)
        check_same_classes(predictor.classes, table.class_names, f"model {args.model}", f"split {table.source}")
        return split_scores(predictor.scores, predictor.transform, table, args.batch_size), table.targets

    scores, targets = scores_of(args.split)
    thresholds = f1_optimal_thresholds(scores, targets)
    eval_scores, eval_targets = scores_of(args.eval_split) if args.eval_split else (scores, targets)
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

    from labelgraph.apis.predict import Predictor
    from labelgraph.data.image_io import ImageLoadError, load_image
    from labelgraph.visualization.explain import overlays

    predictor = Predictor.load(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = args.classes.split(",") if args.classes else None
    unknown = [c for c in wanted or [] if c not in predictor.classes]
    if unknown:
        raise UsageError(f"--classes: unknown {unknown}; the model's: {', '.join(predictor.classes)}")
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
        drawn, kind = overlays(predictor.model, x, image, [predictor.classes.index(n) for n in names])
        for name, picture in zip(names, drawn, strict=True):
            target = out / f"{Path(path).stem}_{name.replace('/', '_').replace(' ', '_')}.png"
            picture.save(target)
            print(f"{target}  ({kind}, p={scores[name]:.3f})")
    return 1 if failed else 0


def cmd_sadcl(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="labelgraph sadcl", description="SADCL's two-stage recipe.")
    sub = p.add_subparsers(dest="action", required=True)
    proto = sub.add_parser(
        "prototypes", help="class prototypes from a trained Query2Label model (SADCL's second stage starts from them)"
    )
    proto.add_argument("--model", required=True, help="an exported model folder or a checkpoint of labelgraph fit")
    dataset_arguments(proto, "--split")
    proto.add_argument("--out", required=True, help="output .safetensors file")
    proto.add_argument("--threshold", type=float, default=0.85, help="probability a positive must exceed (0.85)")
    proto.add_argument("--image-size", type=int, default=None, help="default: the exported model's")
    proto.add_argument("--batch-size", type=int, default=32)
    proto.add_argument("--num-workers", type=int, default=0)
    args = p.parse_args(argv)

    from safetensors.torch import save_file
    from torch.utils.data import DataLoader

    from labelgraph.apis.prototypes import class_prototypes
    from labelgraph.data.classes import check_same_classes
    from labelgraph.data.dataset import collate_skipping_bad, eval_dataset
    from labelgraph.models import load_trained_model

    model, config = load_trained_model(args.model)
    table = load_split(args, args.split, config["class_names"])
    check_same_classes(config["class_names"], table.class_names, f"model {args.model}", f"split {table.source}")
    size = args.image_size or config["preprocessing"].get("image_size")
    if not size:
        raise UsageError(f"{args.model}: the checkpoint does not record its training resolution; pass --image-size")
    loader = DataLoader(
        eval_dataset(table, size),
        batch_size=args.batch_size,
        num_workers=args.num_workers,
        collate_fn=collate_skipping_bad,
    )
    prototypes, counts = class_prototypes(model, loader, table.num_classes, args.threshold)
    metadata = {"class_names": json.dumps(table.class_names), "threshold": str(args.threshold), "model": args.model}
    save_file({"prototypes": prototypes.contiguous(), "counts": counts}, args.out, metadata=metadata)
    print(f"wrote {tuple(prototypes.shape)} prototypes to {args.out} ({int(counts.sum())} label features averaged)")
    return 0
