"""``labelgraph compare`` by ``labelgraph train``'s own rule: the table predicts what ``train`` delivers.

Each method is fine-tuned on the user's splits exactly as ``labelgraph train --method M`` would
(:func:`labelgraph.studies.fine_tune.fine_tune`: the head on cached features, then the whole network, early-stopped,
calibrated), once per seed. The seed changes the initialisation and the order of the batches, not the splits, so the
spread over seeds is the noise of training itself; where the held-out split is small (fewer than
:data:`FEW_HELD_OUT` images) a single run's difference would be mostly that noise, and three seeds are run by
default. Methods whose mean held-out mAP lies within the larger of their two standard deviations of the best one's are
reported as *tied with the best*, not ranked below it.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from labelgraph.apis.calibration import CalibrationSettings
from labelgraph.data.hide_labels import label_setting_of
from labelgraph.errors import InvalidInputError
from labelgraph.files import write_text
from labelgraph.models import get_recipe
from labelgraph.studies.fine_tune import fine_tune, make_plan
from labelgraph.studies.own_splits import OwnSplits

FEW_HELD_OUT = 200
KEYS = ("mAP", "CF1", "OF1")


def default_seeds(held_out_images: int) -> int:
    return 3 if held_out_images < FEW_HELD_OUT else 1


def refuse_composed(methods: list[str]) -> None:
    """Methods whose recipe starts from another trained model are not composed by ``labelgraph train`` yet."""
    composed = [m for m in methods if get_recipe(m).prerequisite is not None]
    if composed:
        raise InvalidInputError(
            f"{', '.join(composed)}: their recipes start from another trained model, which "
            "labelgraph train does not compose; compare them with --protocol frozen"
        )


def compare_by_train_rule(
    own: OwnSplits,
    methods: list[str],
    seeds: int = 1,
    first_seed: int = 0,
    epochs: int | None = None,
    batch_size: int | None = None,
    progress: bool = False,
) -> dict[str, Any]:
    """Fine-tune every method ``seeds`` times by train's rule; write ``OUT/comparison.json`` and
    ``OUT/comparison.md``, print the table. Each run is in ``OUT/<method>/seed<S>`` (model, report, metrics)."""
    splits, out = own.splits, own.out
    refuse_composed(methods)
    held = "test" if "test" in splits else "val"
    setting = label_setting_of(splits["train"].targets)
    runs: dict[str, list[dict[str, Any]]] = {}
    for method in methods:
        for seed in range(first_seed, first_seed + seeds):
            print(f"--- {method}, seed {seed} ---", flush=True)
            plan = make_plan(
                len(splits["train"]),
                method,
                own.backbone,
                own.weights,
                own.image_size,
                own.embeddings,
                seed,
                epochs,
                batch_size,
                setting,
                calibration=CalibrationSettings(),
            )
            metrics = fine_tune(splits, plan, out / method / f"seed{seed}", progress)
            out_of_sample = metrics["calibration"]["out_of_sample"]
            runs.setdefault(method, []).append(
                {
                    "seed": seed,
                    "mAP": metrics[held]["mAP"],
                    "seconds": metrics["seconds"],
                    "CF1": out_of_sample["calibrated"]["CF1"] if out_of_sample else math.nan,
                    "OF1": out_of_sample["calibrated"]["OF1"] if out_of_sample else math.nan,
                    "thresholds_measured_on": out_of_sample["where"] if out_of_sample else None,
                }
            )
    summary = summarise(runs)
    result = {
        "protocol": "labelgraph train's rule",
        "held_out": held,
        "held_out_images": len(splits[held]),
        "seeds": seeds,
        "methods": summary,
        "runs": runs,
    }
    table = comparison_table(summary, held, len(splits[held]), seeds)
    write_text(out / "comparison.json", json.dumps(result, indent=2))
    write_text(out / "comparison.md", table + "\n")
    print("\n" + table)
    return result


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Per method: mean and standard deviation (over seeds; 0 for one run) of each key, and whether its mAP is tied
    with the best method's (the gap within the larger of the two spreads)."""
    summary = {}
    for method, rows in runs.items():
        entry: dict[str, Any] = {"runs": len(rows), "seconds": round(float(np.mean([r["seconds"] for r in rows])), 1)}
        for key in KEYS:
            values = np.array([r[key] for r in rows], dtype=float)
            entry[key] = round(float(np.mean(values)), 2)
            entry[f"{key}_std"] = round(float(np.std(values, ddof=1)), 2) if len(values) > 1 else 0.0
        summary[method] = entry
    best = max(summary, key=lambda m: summary[m]["mAP"])
    for method, entry in summary.items():
        gap = summary[best]["mAP"] - entry["mAP"]
        noise = max(entry["mAP_std"], summary[best]["mAP_std"])
        entry["tied_with_best"] = method != best and gap <= noise
        entry["best"] = method == best
    return summary


def comparison_table(summary: dict[str, dict[str, Any]], held: str, images: int, seeds: int) -> str:
    spread = f"mean ± standard deviation over {seeds} seeds" if seeds > 1 else "one seed: no spread measured"
    lines = [
        f"labelgraph train's rule for every method; mAP on the {held} split ({images} images); CF1/OF1 at the "
        f"calibrated thresholds where they were not fitted; {spread}.",
        "",
        "| method | mAP | CF1 | OF1 | seconds per run | |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for method, e in sorted(summary.items(), key=lambda kv: -kv[1]["mAP"]):
        cells = [f"{e[k]:.2f} ± {e[f'{k}_std']:.2f}" if seeds > 1 else f"{e[k]:.2f}" for k in KEYS]
        note = "best" if e["best"] else ("tied with the best (within the noise)" if e["tied_with_best"] else "")
        lines.append(f"| {method} | {' | '.join(cells)} | {e['seconds']:.1f} | {note} |")
    return "\n".join(lines)
