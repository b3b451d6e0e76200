"""The incomplete-label study: the demo's (or ``compare``'s) method comparison with the train split's labels hidden.

For each label setting (``full``, ``keep:F``, ``single-positive``) the train split is hidden with the run's seed
(:func:`labelgraph.data.hide_labels.hide_labels`; validation and test stay fully labelled), and each method is trained
with each incomplete-label loss under the one protocol of :func:`labelgraph.studies.demo.compare_methods`; with full
labels (no unknown entry) each method keeps its own criterion. Every run writes its own folder
(``OUT/<setting>/<loss>/``: results, report, models); ``OUT/study.json`` and ``OUT/study.md`` hold the table: test mAP
on the fully labelled test split.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from labelgraph.data.formats import read_class_list, read_csv, write_csv
from labelgraph.data.hide_labels import LabelSetting, hide_labels
from labelgraph.files import write_text
from labelgraph.studies.demo import Comparison, compare_methods, demo_datamodule

OWN_CRITERION = "own"  # the loss column of a full-label run: each method's own criterion
#: the losses of the study in docs/incomplete_labels.md (one of each family)
STUDY_LOSSES = ["ignore", "an", "partial_bce", "ll_r", "role", "splc"]


def setting_folder(setting: LabelSetting) -> str:
    return setting.name.replace(":", "-")


def hidden_split_folder(data: Path, folder: Path, setting: LabelSetting, seed: int) -> Path:
    """``data``'s splits with the train split hidden as ``setting`` says, written to ``folder`` (paths re-rooted)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = read_class_list(data / "classes.txt")
    shutil.copyfile(data / "classes.txt", folder / "classes.txt")
    for split in ("train", "val", "test"):
        if not (data / f"{split}.csv").is_file():
            continue
        table = read_csv(data / f"{split}.csv", class_names=names)
        if split == "train":
            table = hide_labels(table, setting, seed)
        write_csv(table, folder / f"{split}.csv", rebase=True)
    return folder


def label_study(label_settings: list[str], losses: list[str] | None = None) -> Callable[..., dict[str, Any]]:
    """The study as the ``compare`` step of ``run_demo`` and ``compare_on_splits``: :func:`run_label_study` with the
    settings and losses bound, taking :func:`~labelgraph.studies.demo.compare_methods`'s arguments."""
    return functools.partial(run_label_study, [LabelSetting.parse(s) for s in label_settings], losses or STUDY_LOSSES)


def run_label_study(
    label_settings: list[LabelSetting], losses: list[str], methods: list[str], run: Comparison
) -> dict[str, Any]:
    """Train and test ``methods`` for every label setting x loss on ``run.dm``'s splits (its data folder, image size,
    batch and embeddings); returns (and writes) the study's rows."""
    parsed, dm, out, settings = label_settings, run.dm, run.out, run.settings
    data = Path(dm.train_source).parent
    cache = out / "feature_cache" if run.frozen_backbone else None
    study: dict[str, Any] = {"complete": False, "seed": settings.seed, "epochs": settings.epochs, "rows": []}
    for setting in parsed:
        folder = out / setting_folder(setting)
        split_dir = hidden_split_folder(data, folder / "data", setting, settings.seed)
        dm = demo_datamodule(split_dir, dm.image_size, dm.batch_size, cache, dm.embeddings)
        known = float((dm.train_table.targets >= 0).mean())
        print(f"\n== labels {setting.name}: {100 * known:.1f}% of the train entries known ==")
        if note := dm.label_graph.pair_note():
            print(note)
        incomplete = known < 1.0  # "full" of a split that came with unknown entries compares the losses too
        for loss in losses if incomplete else [OWN_CRITERION]:
            print(f"-- loss {loss}")
            with_loss = dataclasses.replace(settings, loss=None if loss == OWN_CRITERION else loss)
            results = compare_methods(methods, dataclasses.replace(run, dm=dm, out=folder / loss, settings=with_loss))
            for method, row in results["methods"].items():
                study["rows"].append(
                    {
                        "method": method,
                        "labels": setting.name,
                        "loss": loss,
                        "criterion": row["recipe"]["criterion"],
                        **{k: row[k] for k in ("mAP", "CF1", "OF1", "seconds")},
                    }
                )
            write_text(out / "study.json", json.dumps(study, indent=2))
    study["complete"] = True
    write_text(out / "study.json", json.dumps(study, indent=2))
    table = study_table(study["rows"], [s.name for s in parsed], methods)
    write_text(out / "study.md", table + "\n")
    print("\n" + table + f"\n\nwrote {out / 'study.json'} and {out / 'study.md'}")
    return study


def study_table(rows: list[dict[str, Any]], label_settings: list[str], methods: list[str]) -> str:
    """Markdown: one line per method and loss, one column per label setting (test mAP, percent)."""
    cells = {(r["method"], r["loss"], r["labels"]): r["mAP"] for r in rows}
    losses = list(dict.fromkeys(r["loss"] for r in rows))
    lines = ["| method | loss | " + " | ".join(label_settings) + " |", "|---|---|" + "---:|" * len(label_settings)]
    for method in methods:
        for loss in losses:
            values = [cells.get((method, loss, s)) for s in label_settings]
            if all(v is None for v in values):
                continue
            shown = ["" if v is None else f"{v:.2f}" for v in values]
            lines.append(f"| {method} | {loss} | " + " | ".join(shown) + " |")
    return "\n".join(lines)
