"""Prediction given the labels already known, on the demo scenes: C-Tran's test protocol (its ``--test_known``) with
the demo's methods. Each test image reveals a fixed random 50 % or 25 % of its labels (present and absent alike); the
mAP is over the entries still hidden, for each method with and without the revealed labels given to ``predict``.

    python -m benchmarks.bench_known_labels [--seeds 3] [--out FILE]

Per seed, ``labelgraph demo --methods ml_gcn,query2label,c_tran`` under the tour's settings (frozen stand-in
backbone, 4 epochs) trains the three methods on one set of scenes; then each exported model scores the test split
through :meth:`labelgraph.apis.Predictor.scores` with the revealed labels as ``known`` and without. ML-GCN and
Query2Label return the known labels fixed and their other scores unchanged, so their two numbers are equal by
construction; C-Tran conditions on them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, write

METHODS = ("ml_gcn", "query2label", "c_tran")
REVEALED = (0.5, 0.25)


def revealed_mask(num_images: int, num_classes: int, fraction: float, seed: int) -> np.ndarray:
    """(N, C) bool: round(fraction x C) entries of each image, drawn uniformly (the same draw for every method)."""
    rng = np.random.default_rng(seed)
    k = round(fraction * num_classes)
    mask = np.zeros((num_images, num_classes), dtype=bool)
    for row in mask:
        row[rng.choice(num_classes, size=k, replace=False)] = True
    return mask


def test_scores(model_dir: Path, test_csv: Path, known: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of the test split, with ``known`` (N, C) or without; and its targets."""
    from labelgraph.apis import Predictor
    from labelgraph.data.dataset import stack_images
    from labelgraph.data.formats import read_csv

    predictor = Predictor.load(model_dir, runtime="torch")
    table = read_csv(test_csv, class_names=predictor.classes)
    probs = []
    for start in range(0, len(table), 64):
        rows = range(start, min(start + 64, len(table)))
        images = stack_images([predictor.transform(predictor.read(table.path(i))) for i in rows])
        probs.append(predictor.scores(images, None if known is None else known[start : start + len(rows)]))
    return np.concatenate(probs), table.targets


def hidden_map(probs: np.ndarray, targets: np.ndarray, revealed: np.ndarray) -> float:
    """mAP over the entries not revealed (the revealed ones count as unknown: ignored)."""
    from labelgraph.evaluation.metrics import average_precision

    hidden = np.where(revealed, -1, targets)
    return 100 * float(np.nanmean(average_precision(probs, hidden)))


def run_seed(seed: int, work: Path) -> list[dict[str, Any]]:
    out = work / f"seed{seed}"
    argv = [sys.executable, "-m", "labelgraph.cli", "demo", "--methods", ",".join(METHODS), "--frozen-backbone",
            "--epochs", "4", "--pretrain-images", "3000", "--seed", str(seed), "--out", str(out),
            "--no-progress"]  # fmt: skip
    env = {**os.environ, "LABELGRAPH_CACHE": str(work / "cache")}
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    rows = []
    for method in METHODS:
        plain, targets = test_scores(out / method / "model", out / "data" / "test.csv", None)
        nothing = hidden_map(plain, targets, np.zeros_like(targets, bool))
        row: dict[str, Any] = {"seed": seed, "method": method, "mAP_all_hidden": nothing}
        for fraction in REVEALED:
            revealed = revealed_mask(*targets.shape, fraction, seed=1000 + seed)
            known = np.where(revealed, targets, -1).astype(np.int8)
            given, _ = test_scores(out / method / "model", out / "data" / "test.csv", known)
            row[f"hidden_mAP_{fraction:.0%}_without"] = hidden_map(plain, targets, revealed)
            row[f"hidden_mAP_{fraction:.0%}_with"] = hidden_map(given, targets, revealed)
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def markdown(result: dict[str, Any]) -> str:
    rows = result["rows"]
    lines = [
        "| method | nothing known: mAP | 50 % known: hidden mAP without / with | gain | 25 %: without / with | gain |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for method in METHODS:
        mine = [r for r in rows if r["method"] == method]

        def mean(key: str, mine: list[dict[str, Any]] = mine) -> float:
            return float(np.mean([r[key] for r in mine]))

        cells = [f"`{method}`", f"{mean('mAP_all_hidden'):.2f}"]
        for fraction in REVEALED:
            without, with_ = mean(f"hidden_mAP_{fraction:.0%}_without"), mean(f"hidden_mAP_{fraction:.0%}_with")
            gains = [r[f"hidden_mAP_{fraction:.0%}_with"] - r[f"hidden_mAP_{fraction:.0%}_without"] for r in mine]
            cells += [f"{without:.2f} / {with_:.2f}", f"{np.mean(gains):+.2f} ({min(gains):+.2f} .. {max(gains):+.2f})"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "known_labels.json"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [row for seed in range(args.seeds) for row in run_seed(seed, Path(tmp))]
    result = write({"seeds": args.seeds, "rows": rows}, args.out)
    print(markdown(result))


if __name__ == "__main__":
    main()
