"""``labelgraph export``: a checkpoint of ``labelgraph fit`` -> an exported model folder (+ checked ONNX, + the Hub)."""

from __future__ import annotations

import sys
from pathlib import Path

from labelgraph.cli._common import Parser, UsageError, positive_int


def run(argv: list[str]) -> int:
    p = Parser(prog="labelgraph export", description="A checkpoint -> an exported model folder.")
    p.add_argument("checkpoint", help="a checkpoint written by labelgraph fit (.ckpt), or an exported model folder")
    p.add_argument(
        "--out",
        default=None,
        help="output folder (model.safetensors + config.json); without it, an exported folder given as the source "
        "gets its model.onnx (--onnx) or is pushed as it is",
    )
    p.add_argument("--image-size", type=positive_int, default=None, help="default: the training image size it records")
    onnx = p.add_mutually_exclusive_group()
    onnx.add_argument(
        "--onnx",
        action="store_true",
        help="write model.onnx and check it against PyTorch, or fail (default: written where the onnx extra is "
        "installed and the model exports; predict, serve, evaluate and calibrate then run it on ONNX Runtime)",
    )
    onnx.add_argument("--no-onnx", action="store_true", help="do not write model.onnx")
    p.add_argument(
        "--push-to-hub",
        metavar="ORG/NAME",
        default=None,
        help="upload the folder with a generated model card to the Hugging Face Hub (HF_TOKEN)",
    )
    p.add_argument("--private", action="store_true", help="with --push-to-hub: create the repository private")
    args = p.parse_args(argv)
    if args.out is None and not ((args.push_to_hub or args.onnx) and Path(args.checkpoint).is_dir()):
        raise UsageError("--out is required (it may be left out for an exported folder, to add --onnx or to push it)")

    from labelgraph.apis.export import export_checkpoint

    out = Path(args.checkpoint)
    if args.out is not None:
        out = export_checkpoint(args.checkpoint, args.out, image_size=args.image_size)
        print(f"exported {args.checkpoint} to {out}")
    wanted = args.onnx or (args.out is not None and not args.no_onnx)  # a folder pushed as it is stays as it is
    if wanted and export_and_check_onnx(out, required=args.onnx) != 0:
        return 1
    if args.push_to_hub:
        from labelgraph.apis.hub import push_to_hub

        url = push_to_hub(out, args.push_to_hub, private=args.private)
        print(f"pushed {out} (with its model card, README.md) to {args.push_to_hub}: {url}")
    return 0


def export_and_check_onnx(out: Path, required: bool = True) -> int:
    """Write ``model.onnx`` beside the weights and compare it with PyTorch on random images. Not ``required``: a
    missing ``onnx`` extra or a model the exporter cannot trace is a note, and the folder stays as it is."""
    from labelgraph.apis.onnx import OnnxMismatchError, export_folder_onnx, onnx_available
    from labelgraph.models.weights import read_model_config

    if not onnx_available():
        if required:
            raise UsageError("--onnx needs the onnx extra: pip install 'labelgraph[onnx]'")
        print("note: no model.onnx written (the onnx extra is not installed); predict and serve run PyTorch")
        return 0
    try:
        path, diff = export_folder_onnx(out)
    except OnnxMismatchError as err:
        print(err, file=sys.stderr)
        return 1
    except Exception as err:  # the exporter's errors have no common type
        if required:
            raise
        method = read_model_config(out).method
        print(f"note: no model.onnx written ({method} did not export: {str(err).splitlines()[0][:200]})")
        return 0
    config = read_model_config(out)
    scaled = "" if (config.temperature, config.logit_bias) == (1.0, 0.0) else " (logits scaled as calibrated)"
    print(f"wrote {path}{scaled}; max |logit difference| to PyTorch on 4 images: {diff:.2e}")
    return 0
