"""``labelgraph predict``: tag images, folders and globs with an exported model."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from labelgraph.cli._common import Parser, UsageError, positive_int, runtime_argument, threshold_argument

if TYPE_CHECKING:
    import numpy as np

    from labelgraph.apis.predict import Predictor


def predict_parser() -> Parser:
    p = Parser(prog="labelgraph predict", description="Tag images with an exported model.")
    p.add_argument("model", help="an exported model folder (labelgraph export, or the demo's <method>/model)")
    p.add_argument("paths", nargs="+", help="images, folders (searched recursively) or glob patterns")
    p.add_argument("--out", default=None, help="x.json or x.csv (default: JSON on standard output)")
    labelling_tool_arguments(p)
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
        "with queries=embeddings)",
    )
    p.add_argument(
        "--known",
        default=None,
        metavar="CSV",
        help="labels already known of some images, in the CSV format (image,labels; 'cat|!dog|?*' = cat present, dog "
        "absent, the rest unknown): C-Tran scores the rest given them, other methods return them fixed",
    )
    p.add_argument(
        "--embeddings",
        default=None,
        help="with --classes: the label embeddings the model was trained with (minilm, glove50, glove:PATH; "
        "default: the ones it records); minilm embeds the descriptions the --classes file gives ('name: description')",
    )
    return p


def labelling_tool_arguments(p: Parser) -> None:
    """``--format --image-root --image-prefix``: what ``--out`` holds, and where the tools find the images."""
    p.add_argument(
        "--format",
        choices=("json", "csv", "label-studio", "cvat"),
        default=None,
        help="what --out holds (default: from its suffix): label-studio = tasks with the tags as pre-annotations "
        "(and OUT.label_config.xml beside them), cvat = a 'CVAT for images 1.1' annotation file with tags",
    )
    p.add_argument(
        "--image-root",
        default=".",
        help="label-studio/cvat: the folder the images are written relative to (Label Studio's local-files "
        "document root, the folder uploaded to CVAT; default: the current folder)",
    )
    p.add_argument(
        "--image-prefix",
        default=None,
        help="label-studio: put before each relative path (default /data/local-files/?d= ; or a URL prefix)",
    )


def run(argv: list[str]) -> int:
    args = predict_parser().parse_args(argv)
    tool = args.format in ("label-studio", "cvat")
    if tool and not args.out:
        raise UsageError(f"--format {args.format} needs --out (the file to import into the tool)")
    if args.image_prefix is not None and args.format != "label-studio":
        raise UsageError("--image-prefix is for --format label-studio")

    from labelgraph.apis.predict import Predictor, expand_paths, write_predictions

    predictor = Predictor.load(args.model, args.device, args.runtime)
    if args.classes:
        from labelgraph.data.formats import read_class_list

        predictor.score_classes(read_class_list(args.classes), zero_shot_source(args, predictor))
    paths, missing = expand_paths(args.paths)
    if tool:
        check_under_root(paths, args.image_root)
    known = known_labels(args.known, paths, predictor.classes) if args.known else None
    result = predictor.predict(
        paths, threshold=args.threshold, top_k=args.top_k, batch_size=args.batch_size, progress=True, known=known
    )
    result["errors"] = missing + result["errors"]
    if tool:
        write_tool_file(args, predictor, result)
    elif args.out:
        write_predictions(result, args.out, args.format)
        print(f"{len(result['predictions'])} image(s) predicted, {len(result['errors'])} error(s) -> {args.out}")
    else:
        print(json.dumps(result, indent=1))
    for error in result["errors"]:
        print(f"error: {error['image']}: {error['error']}", file=sys.stderr)
    return 1 if result["errors"] else 0


def known_labels(csv_path: str, paths: list, classes: list[str]) -> np.ndarray:
    """``--known``: each image's row of the CSV (matched by its resolved path), -1 (unknown) for images not in it."""
    import numpy as np

    from labelgraph.data.formats import read_csv

    table = read_csv(csv_path, class_names=classes)
    rows = {table.path(i).resolve(): table.targets[i] for i in range(len(table))}
    known = np.full((len(paths), len(classes)), -1, dtype=np.int8)
    matched = 0
    for i, path in enumerate(paths):
        row = rows.pop(Path(path).resolve(), None)
        if row is not None:
            known[i], matched = row, matched + 1
    print(f"known labels: {matched} of {len(paths)} image(s) in {csv_path}", file=sys.stderr)
    if rows:
        print(f"note: {len(rows)} image(s) of {csv_path} are not among the images to predict", file=sys.stderr)
    if matched and not (known[(known >= 0).any(1)] == -1).any():
        print("note: every class of those images is known; write ?* in a row to leave the others unknown",
              file=sys.stderr)  # fmt: skip
    return known


def zero_shot_source(args: argparse.Namespace, predictor: Predictor) -> str:
    """``--embeddings``, else the source the model records; MiniLM reads the --classes file's descriptions."""
    from labelgraph.graph.embeddings import source_of_record

    recorded = (predictor.config.label_graph or {}).get("embeddings")
    source = args.embeddings or source_of_record(recorded)
    if source is None:
        raise UsageError(f"--classes needs --embeddings: the model records {recorded!r}, no source to embed names with")
    return f"minilm:{args.classes}" if source == "minilm" else source


def check_under_root(paths: list, image_root: str) -> None:
    """Before any work: every image must have a path relative to ``--image-root`` to write into the tool's file."""
    from labelgraph.data.formats.prelabels import image_reference

    for path in paths:
        try:
            image_reference(path, image_root)
        except ValueError as err:
            raise UsageError(str(err)) from None


def write_tool_file(args: argparse.Namespace, predictor: Predictor, result: dict) -> None:
    """``--format label-studio|cvat``: the pre-labels for the tool, and what to do with them."""
    from labelgraph.apis.prelabel import model_version, write_prelabels
    from labelgraph.data.formats.prelabels import LOCAL_FILES_PREFIX
    from labelgraph.models.hub_source import model_folder

    version = model_version(model_folder(args.model), predictor.config)
    prefix = LOCAL_FILES_PREFIX if args.image_prefix is None else args.image_prefix
    written = write_prelabels(result, args.out, args.format, args.image_root, version, prefix)
    print(f"{len(result['predictions'])} image(s) pre-labelled by {version}, {len(result['errors'])} error(s) -> "
          + ", ".join(map(str, written)))  # fmt: skip
