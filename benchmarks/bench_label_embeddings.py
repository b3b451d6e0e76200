"""Label embeddings that embed phrases (all-MiniLM-L6-v2) against word vectors (GloVe 6B 50-d), where label
embeddings carry the method:

1. **zero-shot ML-Decoder** (:mod:`labelgraph.studies.zero_shot`): queries from the embeddings, trained on 20
   colour-shape classes, then 5 held-out names scored from their embeddings alone; held-out AP (chance: prevalence)
   and how much better each new name ranks its own pair than the other new names' pairs;
2. **ML-GCN on the demo scenes**: ``labelgraph demo --methods ml_gcn`` under the tour's settings (frozen stand-in
   backbone, 4 epochs), with ``--embeddings glove50`` and ``--embeddings minilm``: test mAP, the graph's input width.

    python -m benchmarks.bench_label_embeddings [--seeds 3] [--out FILE]

Every seed runs both embeddings (same scenes, same initialisation); the JSON keeps every run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, write

EMBEDDINGS = ("glove50", "minilm")
TINY_BACKBONE = "test_resnet"  # the zero-shot protocol's backbone (as in its test)


def embedder(source: str):
    from labelgraph.graph.embeddings import embeddings_from_source

    return lambda names: embeddings_from_source(source, names)[0]


def zero_shot(seeds: int) -> list[dict[str, Any]]:
    from labelgraph.studies.zero_shot import zero_shot_run

    rows = []
    for seed in range(seeds):
        for source in EMBEDDINGS:
            start = time.perf_counter()
            run = zero_shot_run(embedder(source), seed, TINY_BACKBONE)
            cross = run["cross"]
            own, other = np.diag(cross).mean(), cross[~np.eye(len(cross), dtype=bool)].mean()
            rows.append({"seed": seed, "embeddings": source, "held_out_AP": 100 * float(run["held_out_ap"].mean()),
                         "held_out_AP_per_class": [round(100 * float(a), 2) for a in run["held_out_ap"]],
                         "chance": 100 * float(run["prevalence"].mean()),
                         "seen_AP": 100 * float(np.nanmean(run["seen_ap"])),
                         "own_over_other": float(own / other), "seconds": time.perf_counter() - start})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


def demo_ml_gcn(seeds: int, work: Path) -> list[dict[str, Any]]:
    """``labelgraph demo --methods ml_gcn`` per seed and embedding, in a child process (one output folder per seed:
    its data and feature cache shared by the two embeddings)."""
    rows = []
    env = {**os.environ, "LABELGRAPH_CACHE": str(work / "cache")}
    for seed in range(seeds):
        out = work / f"seed{seed}"
        for source in EMBEDDINGS:
            argv = [sys.executable, "-m", "labelgraph.cli", "demo", "--methods", "ml_gcn", "--embeddings", source,
                    "--frozen-backbone", "--epochs", "4", "--pretrain-images", "3000", "--seed", str(seed),
                    "--out", str(out), "--no-progress"]  # fmt: skip
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            results = json.loads((out / "results.json").read_text())
            result, settings = results["methods"]["ml_gcn"], results["settings"]
            rows.append({"seed": seed, "embeddings": source, "mAP": result["mAP"], "CF1": result["CF1"],
                         "label_embeddings": settings["label_embeddings"]})  # fmt: skip
            print(json.dumps(rows[-1]), flush=True)
    return rows


def mean_std(rows: list[dict[str, Any]], key: str, source: str) -> str:
    values = [r[key] for r in rows if r["embeddings"] == source]
    return f"{np.mean(values):.1f} ± {np.std(values):.1f}"


def markdown(result: dict[str, Any]) -> str:
    zs, demo = result["zero_shot"], result["demo_ml_gcn"]
    lines = ["| embeddings | zero-shot held-out AP | chance | own / other pair | seen-class AP | ML-GCN mAP | CF1 |",
             "|---|---:|---:|---:|---:|---:|---:|"]  # fmt: skip
    for source in EMBEDDINGS:
        ratio = [r["own_over_other"] for r in zs if r["embeddings"] == source]
        lines.append(f"| {source} | {mean_std(zs, 'held_out_AP', source)} | {mean_std(zs, 'chance', source)} | "
                     f"{np.mean(ratio):.1f}x | {mean_std(zs, 'seen_AP', source)} | {mean_std(demo, 'mAP', source)} | "
                     f"{mean_std(demo, 'CF1', source)} |")  # fmt: skip
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", default=str(RESULTS / "label_embeddings.json"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = {
            "seeds": args.seeds,
            "zero_shot": zero_shot(args.seeds),
            "demo_ml_gcn": demo_ml_gcn(args.seeds, Path(tmp)),
        }
    write(result, args.out)
    print(markdown(result))


if __name__ == "__main__":
    main()
