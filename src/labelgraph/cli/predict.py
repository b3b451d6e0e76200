"""``labelgraph predict``: tag images, folders and globs with an exported model."""

from __future__ import annotations

import json
import sys

from labelgraph.cli._common import Parser, UsageError, positive_int, runtime_argument, threshold_argument


def run(argv: list[str]) -> int:
    p = Parser(prog="labelgraph predict", description="Tag images with an exported model.")
    p.add_argument("model", help="an exported model folder (labelgraph export, or the demo's <method>/model)")
    p.add_argument("paths", nargs="+", help="images, folders (searched recursively) or glob patterns")
    p.add_argument("--out", default=None, help="x.json or x.csv (default: JSON on standard output)")
    threshold_argument(p)
    p.add_argument("--top-k", type=positive_int, default=None, help="at most K labels per image")
    p.add_argument("--batch-size", type=positive_int, default=16)
    p.add_argument("--device", default="cpu")
    runtime_argument(p)
    p.add_argument(
        "--classes",
        default=None,
        metavar="FILE",
        help="zero-shot: score these class names (one per line) instead of the trained ones (ml_decoder "
        "with queries=embeddings); needs --embeddings",
    )
    p.add_argument(
        "--embeddings",
        default=None,
        help="with --classes: the word vectors the model was trained with (glove50, glove:PATH)",
    )
    args = p.parse_args(argv)

    from labelgraph.apis.predict import Predictor, expand_paths, write_predictions

    predictor = Predictor.load(args.model, args.device, args.runtime)
    if args.classes:
        if not args.embeddings:
            raise UsageError("--classes needs --embeddings (the word vectors the model was trained with)")
        from labelgraph.data.formats import read_class_list

        predictor.score_classes(read_class_list(args.classes), args.embeddings)
    paths, missing = expand_paths(args.paths)
    result = predictor.predict(
        paths, threshold=args.threshold, top_k=args.top_k, batch_size=args.batch_size, progress=True
    )
    result["errors"] = missing + result["errors"]
    if args.out:
        write_predictions(result, args.out)
        print(f"{len(result['predictions'])} image(s) predicted, {len(result['errors'])} error(s) -> {args.out}")
    else:
        print(json.dumps(result, indent=1))
    for error in result["errors"]:
        print(f"error: {error['image']}: {error['error']}", file=sys.stderr)
    return 1 if result["errors"] else 0
