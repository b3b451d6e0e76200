"""``labelgraph explain``: overlays of the class maps of the predicted labels (the method's own, else Grad-CAM)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from labelgraph.cli._common import Parser, UsageError, positive_int, threshold_argument


def explain_parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="labelgraph explain",
        description="Overlays of the class maps of the predicted labels: the method's own maps, else Grad-CAM.",
    )
    p.add_argument("model", help="an exported model folder")
    p.add_argument("images", nargs="+", help="image files")
    p.add_argument("--out", required=True, help="output folder for the PNG overlays")
    p.add_argument("--classes", default=None, help="comma-separated classes to explain (default: the predicted)")
    p.add_argument("--top-k", type=positive_int, default=3, help="explain at most K predicted labels (default 3)")
    threshold_argument(p)
    return p


def run(argv: list[str]) -> int:
    args = explain_parser().parse_args(argv)

    from PIL import Image

    from labelgraph.apis.predict import Predictor
    from labelgraph.data.image_io import ImageLoadError
    from labelgraph.data.transforms import eval_view
    from labelgraph.files import atomic_path
    from labelgraph.visualization.explain import overlays

    predictor = Predictor.load(args.model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wanted = args.classes.split(",") if args.classes else None
    unknown = [c for c in wanted or [] if c not in predictor.classes]
    if unknown:
        raise UsageError(f"--classes: unknown {unknown}; the model's: {', '.join(predictor.classes)}")
    thresholds = predictor.resolve_thresholds(args.threshold)
    failed = 0
    for path in args.images:
        try:
            pixels = predictor.read(path)  # decoded as labelgraph predict decodes it: the same probabilities
        except ImageLoadError as err:
            print(f"error: {err}", file=sys.stderr)
            failed += 1
            continue
        x = predictor.transform(pixels)[None]
        result = predictor.tag(predictor.scores(x)[0], thresholds, args.top_k)
        scores = result["scores"]
        names = wanted or result["labels"] or [max(scores, key=scores.get)]  # at least the most likely class
        seen = Image.fromarray(eval_view(pixels, predictor.config.eval_transform).permute(1, 2, 0).numpy())
        captions = [f"{n}  p={scores[n]:.3f}" for n in names]
        drawn, kind = overlays(predictor.model, x, seen, [predictor.classes.index(n) for n in names], captions)
        for name, picture in zip(names, drawn, strict=True):
            target = out / f"{Path(path).stem}_{name.replace('/', '_').replace(' ', '_')}.png"
            with atomic_path(target) as tmp:
                picture.save(tmp)
            print(f"{target}  ({kind}, p={scores[name]:.3f})")
    return 1 if failed else 0
