"""Metric computation on a COCO-val-sized matrix (40,504 x 80): labelgraph vs scikit-learn, side by side.

    python -m benchmarks.bench_metrics [--out benchmarks/results/metrics.json] [--repeats 5]

Reports the median wall time of each, their ratio (scikit-learn / labelgraph, > 1 means labelgraph is faster),
and the largest per-class AP difference (must be ~1e-16: both compute the same tie-aware AP).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from sklearn.metrics import average_precision_score

from benchmarks.common import RESULTS, timed, write
from labelgraph.evaluation.metrics import average_precision, evaluate


def run(repeats: int = 5) -> dict:
    rng = np.random.default_rng(0)
    n, c = 40504, 80
    targets = (rng.random((n, c)) < 0.036).astype(np.int8)  # ~2.9 labels per image, as COCO
    scores = (1 / (1 + np.exp(-(rng.normal(size=(n, c)) + 2 * targets - 3)))).astype(np.float32)

    t_sklearn, sk_ap = timed(lambda: [average_precision_score(targets[:, k], scores[:, k]) for k in range(c)], repeats)
    t_ap, ap = timed(lambda: average_precision(scores, targets), repeats)
    t_eval, _ = timed(lambda: evaluate(scores, targets), repeats)
    return {
        "benchmark": "metrics",
        "shape": [n, c],
        "sklearn_ap_seconds": t_sklearn,
        "labelgraph_ap_seconds": t_ap,
        "labelgraph_evaluate_seconds": t_eval,
        "ap_speedup_vs_sklearn": t_sklearn / t_ap,
        "evaluate_all_metrics_vs_sklearn_ap_only": t_sklearn / t_eval,
        "max_abs_ap_difference": float(np.max(np.abs(np.asarray(sk_ap) - ap))),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "metrics.json"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(write(run(args.repeats), args.out), indent=2))


if __name__ == "__main__":
    main()
