"""``labelgraph audit DATA``: rank the (image, label) entries of a labelled split by how likely they are wrong.

The scores come from models that never trained on the image they score: ``folds`` models, each trained by
``labelgraph train``'s rule (:func:`labelgraph.studies.fine_tune.fine_tune`, or only its first stage on cached
features with ``protocol="head"``: minutes instead of hours) on the other folds with a validation split held out of
them, each scoring its own fold (out-of-fold); or one given model trained elsewhere. The ranking combines them with
the split's label graph (:func:`labelgraph.evaluation.label_audit.audit_scores`). Writes ``audit.csv`` (most suspect
first), ``audit.json`` (what was done, the counts) and ``audit.html`` (the top suspects as thumbnails).
"""

from __future__ import annotations

import csv
import dataclasses
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from labelgraph.apis.predict import Predictor
from labelgraph.data.classes import check_same_classes
from labelgraph.data.formats.prelabels import (
    cvat_annotations,
    label_studio_config,
    label_studio_json,
    label_studio_tasks,
)
from labelgraph.data.image_io import ImageLoadError, upright_size
from labelgraph.data.label_table import LabelTable
from labelgraph.data.splitting import hold_out
from labelgraph.evaluation.cross_fitting import fold_indices
from labelgraph.evaluation.label_audit import KINDS, audit_scores, ranked_entries
from labelgraph.files import write_text
from labelgraph.studies.demo import DemoSettings, quiet_lightning
from labelgraph.studies.fine_tune import TrainPlan, fine_tune, pretrained_argument, train_head, write_splits
from labelgraph.studies.trust_record import entry_record
from labelgraph.visualization.trust import suspects_html

PROTOCOLS = ("train", "head")
SHOWN = 60  # suspects on the HTML page


def model_scores(model_dir: str | Path, table: LabelTable) -> np.ndarray:
    """(N, C) probabilities of an exported model (its logits scaled as calibrated) on ``table``, in its order."""
    predictor = Predictor.load(model_dir)
    check_same_classes(predictor.classes, table.class_names, f"model {model_dir}", f"split {table.source}")
    return predictor.table_scores(table)


def out_of_fold_scores(
    table: LabelTable, plan: TrainPlan, out: Path, folds: int = 5, protocol: str = "train", progress: bool = False
) -> np.ndarray:
    """Every image scored by a model trained on the other folds (a fifth of them held out for validation)."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol {protocol!r}: one of {', '.join(PROTOCOLS)}")
    quiet_lightning()
    probs = np.zeros(table.targets.shape, dtype=np.float64)
    parts = fold_indices(table.targets, folds, plan.seed)
    for k, fold in enumerate(parts):
        print(
            f"fold {k + 1}/{len(parts)}: training on {len(table) - len(fold)} images, scoring {len(fold)}", flush=True
        )
        rest = np.setdiff1d(np.arange(len(table)), fold)
        train, val = hold_out(table.subset(rest), 0.2, plan.seed)
        folder = out / "folds" / f"fold{k + 1}"
        if protocol == "train":
            fine_tune({"train": train, "val": val}, plan, folder, progress)
            model_dir = folder / "model"
        else:
            write_splits({"train": train, "val": val}, folder / "splits")
            settings = DemoSettings(
                plan.head_epochs, plan.seed, plan.backbone, pretrained_argument(plan.weights), progress, loss=plan.loss
            )
            model_dir, _ = train_head(plan, settings, folder)
        probs[fold] = model_scores(model_dir, table.subset(fold))
    return probs


def write_audit(table: LabelTable, probs: np.ndarray, out: Path, how: str, top: int = 1000) -> dict[str, Any]:
    """Audit ``table`` with ``probs`` (scores of models that did not train on each image) and write the three files;
    returns ``audit.json``'s content."""
    audit = audit_scores(probs, table.targets)
    ranked = ranked_entries(audit["suspicion"])
    entries = [entry_record(table, probs, audit, int(i), int(c), "", table.class_names) for i, c in ranked[:top]]
    for entry, (i, c) in zip(entries, ranked, strict=False):
        entry["confident_learning"] = bool(audit["confident_learning"][i, c])
    likely = audit["suspicion"] >= 0.5
    summary = {
        "data": str(table.source),
        "images": len(table),
        "entries_audited": int(np.isfinite(audit["suspicion"]).sum()),
        "how": how,
        "more_likely_wrong_than_right": {kind: int((likely & (audit["kind"] == kind)).sum()) for kind in KINDS},
        "confident_learning_flags": int(audit["confident_learning"].sum()),
        "written": len(entries),
    }
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "audit.csv", audit_csv(entries))
    write_text(out / "audit.html", audit_page(summary, entries))
    summary["review"] = write_review(table, probs, entries, out)
    write_text(out / "audit.json", json.dumps(summary, indent=1))
    return summary


def review_rows(table: LabelTable, probs: np.ndarray, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per image with an entry more likely wrong than right (score >= 0.5), most suspect first: its labels
    with those entries flipped (what a reviewer accepts or reverts), every class's probability, the given labels and
    the suspects in words."""
    by_image: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        if e["suspicion"] >= 0.5:
            by_image.setdefault(e["image"], []).append(e)
    index = {str(table.path(i)): i for i in range(len(table))}
    rows = []
    for image, suspects in by_image.items():  # entries are ranked: the first image is the most suspect
        i = index[image]
        flipped = {e["label"] for e in suspects}
        given = [table.class_names[j] for j in np.flatnonzero(table.targets[i] == 1)]
        labels = [c for c in table.class_names if (c in given) != (c in flipped)]
        said = "; ".join(f"{e['label']}: {'tagged' if e['given'] == 1 else 'not tagged'}, model {e['probability']:.2f}"
                         f" (score {e['suspicion']:.2f})" for e in suspects)  # fmt: skip
        scores = {c: round(float(p), 6) for c, p in zip(table.class_names, probs[i], strict=True)}
        rows.append({"image": image, "labels": labels, "scores": scores, "given": given, "suspects": said,
                     "suspicion": max(e["suspicion"] for e in suspects)})  # fmt: skip
    return rows


def write_review(table: LabelTable, probs: np.ndarray, entries: list[dict[str, Any]], out: Path) -> dict[str, Any]:
    """The suspect images as the labelling tools' import files (``review.label-studio.json`` with its labelling
    config, ``review.cvat.xml``), relative to the table's image root; written only when every image is under it."""
    rows = review_rows(table, probs, entries)
    root = table.root or Path.cwd()
    try:
        tasks = label_studio_tasks(rows, root, f"labelgraph audit of {Path(table.source).name}")
        sizes = [upright_size(r["image"]) for r in rows]
    except (ValueError, ImageLoadError) as err:
        return {"images": len(rows), "written": False, "why": str(err)}
    for task, row in zip(tasks, rows, strict=True):
        task["data"].update(given=row["given"], suspects=row["suspects"])
        task["predictions"][0]["score"] = round(1.0 - row["suspicion"], 4)  # ascending: the most suspect first
    write_text(out / "review.label-studio.json", label_studio_json(tasks))
    write_text(out / "review.label_config.xml", label_studio_config(table.class_names))
    write_text(out / "review.cvat.xml", cvat_annotations(rows, table.class_names, root, sizes))
    return {"images": len(rows), "written": True, "image_root": str(root)}


def audit_csv(entries: list[dict[str, Any]]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(["image", "label", "kind", "given", "score", "probability", "confident_learning", "bearing"])
    for e in entries:
        bearing = ";".join(f"{n}:{'' if p is None else p}" for n, p in e["neighbours"])
        writer.writerow(
            [
                e["image"],
                e["label"],
                e["kind"],
                e["given"],
                e["suspicion"],
                e["probability"],
                int(e["confident_learning"]),
                bearing,
            ]
        )
    return buffer.getvalue()


def audit_page(summary: dict[str, Any], entries: list[dict[str, Any]]) -> str:
    likely = summary["more_likely_wrong_than_right"]
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:auto}.card{display:inline-block;width:250px;"
        "vertical-align:top;margin:4px;font-size:13px}"
    )
    body = f"""<h1>labelgraph audit</h1>
<p>{html.escape(summary["data"])}: {summary["images"]} images, {summary["entries_audited"]} (image, label) entries
audited. {html.escape(summary["how"])}.</p>
<p>More likely wrong than right (score &ge; 0.5): {likely["missing"]} missed positive(s), {likely["spurious"]} wrong
tag(s). Per-class confident learning alone flags {summary["confident_learning_flags"]}. The full ranking is in
<code>audit.csv</code>.</p>
<h2>The {min(SHOWN, len(entries))} most suspect entries</h2>{suspects_html(entries, SHOWN)}"""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>labelgraph audit</title><style>{style}</style>"
        f"</head><body>{body}</body></html>"
    )


def audit_plan(plan: TrainPlan, protocol: str) -> TrainPlan:
    """The plan each fold trains with (no recall rule: the folds' models only score)."""
    calibration = dataclasses.replace(plan.calibration, recall=None)
    return dataclasses.replace(plan, calibration=calibration) if protocol == "train" else plan
