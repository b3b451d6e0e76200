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
        help="output folder (model.safetensors + config.json); a folder given as "
        "the source is pushed as it is when --out is left out",
    )
    p.add_argument("--image-size", type=positive_int, default=None, help="default: the training image size it records")
    p.add_argument("--onnx", action="store_true", help="also write model.onnx and check it against PyTorch")
    p.add_argument(
        "--push-to-hub",
        metavar="ORG/NAME",
        default=None,
        help="upload the folder with a generated model card to the Hugging Face Hub (HF_TOKEN)",
    )
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
    size = config.image_size
    scaling = (config.temperature, config.logit_bias)
    path = export_onnx(model, size, out / "model.onnx", *scaling)
    diff = check_onnx(model, path, torch.rand(4, 3, size, size), *scaling)
    scaled = "" if scaling == (1.0, 0.0) else " (logits scaled as calibrated: logit / temperature + bias)"
    print(f"wrote {path}{scaled}; max |logit difference| to PyTorch on 4 images: {diff:.2e}")
    if diff > 1e-3:
        print("the ONNX model disagrees with PyTorch", file=sys.stderr)
        return 1
    return 0
