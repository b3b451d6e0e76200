"""Metric computation on a COCO-val-sized matrix (40,504 x 80): labelgraph vs one sort, scikit-learn, torchmetrics.

    python -m benchmarks.bench_metrics [--out benchmarks/results/metrics.json] [--repeats 5]

float32 scores (what a model outputs). Times, interleaved (each repeat runs every contender once; medians):
``evaluate`` (all 13 figures: mAP, CP/CR/CF1/OP/OR/OF1 and their top-3 variants), labelgraph's per-class AP alone,
one ``np.argsort`` of the matrix (of its contiguous (C, N) copy -- the stricter reference -- and as given, along
axis 0), scikit-learn's ``average_precision_score`` per class, and torchmetrics' ``multilabel_average_precision``.
The largest per-class AP difference to both references is reported for these scores and for scores rounded to
two decimals (many ties).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from sklearn.metrics import average_precision_score
from torchmetrics.functional.classification import multilabel_average_precision

from benchmarks.common import RESULTS, interleaved, write
from labelgraph.evaluation.metrics import average_precision, evaluate


def reference_aps(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sklearn = np.array([average_precision_score(targets[:, k], scores[:, k]) for k in range(scores.shape[1])])
    tm = multilabel_average_precision(
        torch.from_numpy(scores), torch.from_numpy(targets).long(), num_labels=scores.shape[1], average=None
    )
    return sklearn, tm.numpy()


def run(repeats: int = 5) -> dict:
    rng = np.random.default_rng(0)
    n, c = 40504, 80
    targets = (rng.random((n, c)) < 0.036).astype(np.int8)  # ~2.9 labels per image, as COCO
    scores = (1 / (1 + np.exp(-(rng.normal(size=(n, c)) + 2 * targets - 3)))).astype(np.float32)
    contiguous = np.ascontiguousarray(scores.T)
    scores_t, targets_t = torch.from_numpy(scores), torch.from_numpy(targets).long()
    seconds = interleaved(
        {
            "evaluate": lambda: evaluate(scores, targets),
            "labelgraph_ap": lambda: average_precision(scores, targets),
            "argsort_contiguous": lambda: np.argsort(contiguous, axis=1),
            "argsort_as_given": lambda: np.argsort(scores, axis=0),
            "sklearn_ap": lambda: [average_precision_score(targets[:, k], scores[:, k]) for k in range(c)],
            "torchmetrics_ap": lambda: multilabel_average_precision(scores_t, targets_t, num_labels=c, average=None),
        },
        repeats,
    )
    result = {"benchmark": "metrics", "shape": [n, c], "dtype": "float32", "repeats": repeats}
    result.update({f"{name}_seconds": value for name, value in seconds.items()})
    result["evaluate_over_argsort_contiguous"] = seconds["evaluate"] / seconds["argsort_contiguous"]
    result["evaluate_over_argsort_as_given"] = seconds["evaluate"] / seconds["argsort_as_given"]
    result["ap_speedup_vs_sklearn"] = seconds["sklearn_ap"] / seconds["labelgraph_ap"]
    result["evaluate_speedup_vs_torchmetrics_ap"] = seconds["torchmetrics_ap"] / seconds["evaluate"]
    result["evaluate_speedup_vs_sklearn_ap"] = seconds["sklearn_ap"] / seconds["evaluate"]
    for name, s in (("continuous", scores), ("tied", np.round(scores, 2))):
        sk, tm = reference_aps(s, targets)
        ours = average_precision(s, targets)
        result[f"max_abs_ap_difference_sklearn_{name}"] = float(np.max(np.abs(sk - ours)))
        result[f"max_abs_ap_difference_torchmetrics_{name}"] = float(np.max(np.abs(tm - ours)))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "metrics.json"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(write(run(args.repeats), args.out), indent=2))


if __name__ == "__main__":
    main()
