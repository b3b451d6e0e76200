"""``labelgraph train``: a user's splits -> a fine-tuned, calibrated, exported model, its metrics and a report.

The rule that adapts a method's recipe to the data (``docs/your_own_data.md`` says why):

1. **Head first.** The backbone is frozen and its feature maps are computed once (the feature cache); the method's
   head trains on them with the method's recipe scaled to a short run (:meth:`labelgraph.models.Recipe.scaled`) for
   about ``HEAD_STEPS`` optimiser steps (between ``HEAD_EPOCHS`` epochs): seconds, and the randomly initialised head
   no longer sends large gradients into the pretrained features when they are unfrozen. Its best epoch on validation
   is kept, not its last (the latest of equally good ones: a tiny validation split is often flat).
2. **Then everything**, from the head's best weights: the backbone at the recipe's fraction of the head's learning
   rate (0.1x for the graph methods), the head at half its first-stage rate, augmentation (flip), for at most
   ``FULL_STEPS`` steps (between ``FULL_EPOCHS`` epochs; ``--epochs`` sets the maximum), stopping early when the
   validation mAP has not improved for ``PATIENCE`` epochs -- never during a schedule's warm-up; the best epoch's
   weights are kept (with the recipe's EMA: the better of EMA and raw weights is what is monitored and kept).
3. **Calibrate** on the validation split (:mod:`labelgraph.apis.calibration`): Platt scaling, per-class thresholds
   shrunk toward one pooled threshold where a class has few validation positives, and a threshold with expected
   recall ``--recall`` (0.9) on new images; each measured where it was not fitted (the test split, else
   cross-fitted on validation), stored in the exported model. The validation (and test) labels are audited with the
   model, which never trained on them (:mod:`labelgraph.evaluation.label_audit`).

Batch: ``min(32, train images)``; image size: the pretrained weights' (224 for the packaged EfficientNet-Lite0).

**Incomplete labels.** A train split with unknown entries (``?name``, ``?*``) trains both stages with the
incomplete-label loss that the study of ``docs/incomplete_labels.md`` found best for its setting
(:data:`labelgraph.losses.RECOMMENDED_LOSSES`: one for single-positive labels, one for partial labels) instead of the
method's criterion; ``--loss`` chooses another. The setting and the loss are printed and recorded in the model. A
recommended loss is checked on the user's data before stage 2 (:mod:`labelgraph.studies.loss_check`): the head is
trained with the plain alternative too, and the one with the better validation mAP goes on; a loss that collapses to
zero is reported.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from labelgraph.apis.calibration import CalibrationSettings
from labelgraph.apis.export import save_model
from labelgraph.apis.predict import Predictor
from labelgraph.data.datamodule import MultiLabelDataModule
from labelgraph.data.formats import write_csv
from labelgraph.data.label_table import LabelTable
from labelgraph.engine.callbacks import (
    EarlyStoppingAfterWarmup,
    EpochLines,
    KeepBatchNormStatistics,
    LatestBestCheckpoint,
    MetricHistory,
)
from labelgraph.engine.recipes import describe_loss
from labelgraph.engine.task import MultiLabelTask
from labelgraph.evaluation.metrics import evaluate
from labelgraph.files import write_text
from labelgraph.losses.incomplete_registry import recommended_loss
from labelgraph.models import Recipe, get_recipe
from labelgraph.studies.demo import (
    DEMO_METRICS,
    DemoSettings,
    demo_datamodule,
    demo_trainer,
    make_task,
    quiet_lightning,
)
from labelgraph.studies.loss_check import choose_loss, plain_alternative
from labelgraph.studies.trust_record import trust_record
from labelgraph.visualization.html_report import write_html_report

HEAD_STEPS, HEAD_EPOCHS = 100, (3, 20)
FULL_STEPS, FULL_EPOCHS = 400, (3, 30)
PATIENCE = 4
ROW_KEYS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1_top3", "OF1_top3")


@dataclass
class TrainPlan:
    """What ``labelgraph train`` decided; each choice is printed before training starts."""

    method: str
    backbone: str
    weights: str
    image_size: int
    batch_size: int
    head_epochs: int
    full_epochs: int
    patience: int
    seed: int
    embeddings: str
    device: str
    num_workers: int
    label_setting: str = "full"
    loss: str | None = None  # an incomplete-label loss; None: the method's own criterion
    loss_given: bool = False  # --loss named it (it is then not checked against an alternative)
    calibration: CalibrationSettings = field(default_factory=lambda: CalibrationSettings(recall=0.9))

    def lines(self) -> list[str]:
        c = self.calibration
        recall = f", a threshold with expected recall {c.recall:g}" if c.recall is not None else ""
        return [
            f"method: {self.method} (its recipe: {get_recipe(self.method).source.split(';')[0]})",
            f"backbone: {self.backbone}, weights {self.weights}, {self.image_size} px, batch {self.batch_size}, "
            f"on {self.device}",
            f"stage 1: the head on the frozen backbone's cached features, {self.head_epochs} epochs (best kept)",
            f"stage 2: the whole network, backbone at the recipe's fraction of the head's rate, at most "
            f"{self.full_epochs} epochs, early stop after {self.patience} without a better validation mAP",
            f"label embeddings: {self.embeddings}",
            f"labels: {self.label_setting}; loss: {self.loss_reason()}",
            f"calibration on validation: {c.scaling.replace('_', ' ')} scaling, thresholds ({c.rule.short()}){recall}",
        ]

    def loss_reason(self) -> str:
        if self.loss is None:
            return "the method's own criterion"
        if self.loss_given:
            return f"{self.loss} (--loss)"
        return (
            f"{self.loss} (the best for {self.label_setting.split(':')[0]} labels in docs/incomplete_labels.md; "
            "checked on your validation split after stage 1)"
        )


def clamp_epochs(steps_wanted: int, steps_per_epoch: int, bounds: tuple[int, int]) -> int:
    return max(bounds[0], min(bounds[1], math.ceil(steps_wanted / max(steps_per_epoch, 1))))


def make_plan(
    train_images: int,
    method: str,
    backbone: str,
    weights: str,
    image_size: int,
    embeddings: str,
    seed: int,
    epochs: int | None = None,
    batch_size: int | None = None,
    label_setting: str = "full",
    loss: str | None = None,
    calibration: CalibrationSettings | None = None,
) -> TrainPlan:
    """The module's rule applied to a training split of ``train_images`` images whose labels are ``label_setting``
    (:func:`labelgraph.data.hide_labels.label_setting_of`); ``loss``: None picks the recommended one for incomplete
    labels, ``"own"`` keeps the method's criterion."""
    given = loss is not None
    if loss is None:
        loss = recommended_loss(label_setting)
    elif loss == "own":
        loss = None
    batch = batch_size or max(1, min(32, train_images))
    steps = math.ceil(train_images / batch)
    return TrainPlan(
        method=method,
        backbone=backbone,
        weights=weights,
        image_size=image_size,
        batch_size=batch,
        head_epochs=clamp_epochs(HEAD_STEPS, steps, HEAD_EPOCHS),
        full_epochs=epochs or clamp_epochs(FULL_STEPS, steps, FULL_EPOCHS),
        patience=PATIENCE,
        seed=seed,
        embeddings=embeddings,
        device="cuda" if torch.cuda.is_available() else "cpu",
        num_workers=0 if train_images < 512 else min(4, os.cpu_count() or 1),
        label_setting=label_setting,
        loss=loss,
        loss_given=given,
        calibration=calibration or CalibrationSettings(recall=0.9),
    )


def write_splits(splits: dict[str, LabelTable], folder: Path) -> dict[str, str]:
    """Each split as a CSV of absolute image paths under ``folder`` (what the run trained on, to rerun it), and
    ``classes.txt``; returns the CSV paths by split name."""
    written = {}
    for name, table in splits.items():
        paths = [str(table.path(i).resolve()) for i in range(len(table))]
        write_csv(LabelTable(paths, table.class_names, table.targets, None, table.source), folder / f"{name}.csv")
        written[name] = str(folder / f"{name}.csv")
    write_text(folder / "classes.txt", "\n".join(next(iter(splits.values())).class_names) + "\n")
    return written


def monitored(scaled: Recipe) -> str:
    """The validation metric that picks the best epoch: with an EMA, the better of raw and EMA weights' mAP."""
    return "val_best/mAP" if scaled.ema_decay else "val/mAP"


def warmup_epochs(scaled: Recipe) -> int:
    """The epochs of a one-cycle warm-up (its ``pct_start`` of the run), during which early stopping does not watch."""
    if not scaled.warms_up:
        return 0
    return math.ceil(scaled.lr_scheduler.init_args.get("pct_start", 0.3) * scaled.epochs)


def best_checkpoint(out: Path, name: str, monitor: str) -> ModelCheckpoint:
    """The best epoch's weights (the latest of equally good epochs) in ``out/checkpoints/<name>.ckpt``."""
    return LatestBestCheckpoint(
        dirpath=out / "checkpoints",
        filename=name,
        monitor=monitor,
        mode="max",
        save_top_k=1,
        save_weights_only=True,
        enable_version_counter=False,
    )


def train_head(plan: TrainPlan, settings: DemoSettings, out: Path, name: str = "stage1") -> tuple[Path, list]:
    """Stage 1: the head on cached features; its best validation epoch exported to ``out/<name>`` (stage 2 starts
    from it). ``settings.loss``: the incomplete-label loss it trains with."""
    dm = demo_datamodule(
        out / "splits", plan.image_size, plan.batch_size, out / "feature_cache", plan.embeddings, plan.num_workers
    )
    steps = math.ceil(len(dm.train_table) / plan.batch_size)
    scaled = get_recipe(plan.method).scaled(
        epochs=plan.head_epochs, steps_per_epoch=steps, batch_size=plan.batch_size, image_size=plan.image_size
    )
    L.seed_everything(plan.seed, workers=True, verbose=False)
    if name == "stage1" and (note := dm.label_graph.pair_note()):
        print(note, flush=True)
    task = make_task(plan.method, dm, dm.label_graph, settings, scaled)
    history = MetricHistory()
    best = best_checkpoint(out, f"{name}_best", monitored(scaled))
    callbacks = [
        history,
        best,
        EpochLines("stage 1" if name == "stage1" else f"stage 1 ({settings.loss})", plan.head_epochs),
    ]
    trainer = demo_trainer(plan.head_epochs, settings.progress, callbacks, scaled.gradient_clip_val, steps)
    trainer.fit(task, dm)
    trainer.validate(task, dm, ckpt_path="best", verbose=False)  # the best epoch's weights, EMA-or-raw chosen again
    Path(best.best_model_path).unlink(missing_ok=True)  # exported below; the checkpoint was only the way back to it
    folder = out / name
    save_model(
        task.better_network(),
        folder,
        class_names=dm.class_names,
        image_size=plan.image_size,
        eval_transform=dm.eval_transform_name,
        label_graph=dm.label_graph,
    )
    return folder, history.epochs


def train_whole(
    files: dict[str, str], plan: TrainPlan, settings: DemoSettings, out: Path, init_from: Path
) -> tuple[MultiLabelTask, MultiLabelDataModule, list, dict[str, Any]]:
    """Stage 2: the whole network from the head's weights, early-stopped on validation mAP (not during a warm-up);
    the best epoch kept."""
    dm = demo_datamodule(out / "splits", plan.image_size, plan.batch_size, None, plan.embeddings, plan.num_workers)
    steps = math.ceil(len(dm.train_table) / plan.batch_size)
    recipe = get_recipe(plan.method)
    head_rate = recipe.short_run_rate  # the rate stage 1 trained the head at
    scaled = recipe.scaled(
        epochs=plan.full_epochs,
        steps_per_epoch=steps,
        batch_size=plan.batch_size,
        image_size=plan.image_size,
        lr=head_rate / 2,
        peak_lr=head_rate / 2,
    )
    L.seed_everything(plan.seed, workers=True, verbose=False)
    task = make_task(plan.method, dm, dm.label_graph, settings, scaled, init_from=str(init_from))
    monitor = monitored(scaled)
    history = MetricHistory()
    stop = EarlyStoppingAfterWarmup(monitor, patience=plan.patience, mode="max", start_epoch=warmup_epochs(scaled))
    callbacks = [
        history,
        best_checkpoint(out, "best", monitor),
        stop,
        KeepBatchNormStatistics(),
        EpochLines("stage 2", plan.full_epochs),
    ]
    trainer = demo_trainer(plan.full_epochs, settings.progress, callbacks, scaled.gradient_clip_val, steps)
    trainer.fit(task, dm)
    trainer.validate(task, dm, ckpt_path="best", verbose=False)  # the best epoch's weights, and its EMA-or-raw choice
    if "test" in files:
        trainer.test(task, dm, ckpt_path="best", verbose=False)
    return task, dm, history.epochs, scaled.describe() | {"criterion": describe_loss(task.criterion)}


def held_out_row(task: MultiLabelTask, split: str) -> dict[str, Any]:
    """The metrics of the exported weights (EMA or raw) on ``split`` (``test`` or ``val``), percent."""
    result = task.results[f"{split}_ema" if task.better_weights() == "ema" else split]
    row = {k: float(result[k]) for k in ROW_KEYS}
    row["per_class_AP"] = [round(float(v), 4) for v in result["AP"]]
    return row


def training_set_map(predictor: Predictor, table: LabelTable) -> float | None:
    """mAP of the exported model on its own (un-augmented) training images over their known labels: does it fit
    what it was shown. None when no class has both a known positive and a known negative (single-positive labels:
    every known entry is a positive, so any scores would give 100)."""
    if not ((table.targets == 1).any(0) & (table.targets == 0).any(0)).any():
        return None
    scores = predictor.table_scores(table)
    return round(float(evaluate(scores, table.targets)["mAP"]), 2)


def pretrained_argument(weights: str) -> bool | str:
    """``--weights`` as the backbone takes it: ``none`` -> random init, ``hf-hub:`` -> timm's hub, else the source."""
    if weights == "none":
        return False
    return True if weights.startswith("hf-hub:") else weights


def fine_tune(splits: dict[str, LabelTable], plan: TrainPlan, out: Path, progress: bool = True) -> dict[str, Any]:
    """Train by the module's rule on ``splits`` (``train``, ``val``, optional ``test``), export to ``out/model``
    with its calibration, write ``out/metrics.json``, ``out/results.json`` and ``out/report.html``."""
    quiet_lightning()
    files = write_splits(splits, out / "splits")
    settings = DemoSettings(
        plan.full_epochs, plan.seed, plan.backbone, pretrained_argument(plan.weights), progress, loss=plan.loss
    )
    start = time.perf_counter()
    plan, settings, stage1, history1, loss_checked = checked_head(plan, settings, out, splits["val"])
    task, dm, history2, recipe = train_whole(files, plan, settings, out, stage1)
    history2 = [{**h, "epoch": h["epoch"] + len(history1)} for h in history2]  # one axis over both stages
    seconds = time.perf_counter() - start
    held = "test" if "test" in files else "val"
    row = held_out_row(task, held)
    per_class = row.pop("per_class_AP")
    model_dir = out / "model"
    recipe = export_trained(task, dm, plan, recipe, model_dir, {held: row}, files["train"])
    export_runtime_graph(model_dir)
    print("calibrating on the validation split ...", flush=True)
    predictor = Predictor.load(model_dir)
    trust = trust_record(
        model_dir, predictor, dm.val_table, dm.test_table if "test" in files else None, plan.calibration
    )
    metrics = {
        "train_mAP": training_set_map(predictor, dm.train_table),
        "val_mAP": round(held_out_row(task, "val")["mAP"], 2),
        f"{held}": {k: round(v, 2) for k, v in row.items()},
        "per_class_AP": {n: None if math.isnan(v) else v for n, v in zip(dm.class_names, per_class, strict=True)},
        "prevalence": dict(zip(dm.class_names, (dm.train_table.targets == 1).mean(0).round(4).tolist(), strict=True)),
        "calibration": trust["calibration"],
        "label_audit": trust["label_audit"],
        "loss_check": loss_checked,
        "seconds": round(seconds, 1),
        "splits": files,
    }
    write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    row |= {"params": sum(p.numel() for p in task.model.parameters()), "seconds": seconds, "recipe": recipe}
    results = report_results(splits, plan, files, held, row, per_class, history1 + history2)
    results["trust"] = trust
    write_text(out / "results.json", json.dumps(results, indent=2))
    print("writing the report ...", flush=True)
    write_html_report(out)
    return metrics


def export_runtime_graph(model_dir: Path) -> None:
    """``model.onnx`` beside the weights, so that predict, serve and the calibration below run ONNX Runtime; a model
    the exporter cannot trace (or a machine without the onnx extra) keeps PyTorch, said in one line."""
    from labelgraph.apis.onnx import export_folder_onnx, onnx_available

    if not onnx_available():
        return
    print("exporting to ONNX ...", flush=True)
    try:
        export_folder_onnx(model_dir)
    except Exception as err:  # the exporter's errors have no common type
        print(f"note: no model.onnx ({str(err).splitlines()[0][:200]}); predict and serve will run PyTorch")


def export_trained(
    task: MultiLabelTask,
    dm: MultiLabelDataModule,
    plan: TrainPlan,
    recipe: dict[str, Any],
    model_dir: Path,
    held_out: dict[str, dict[str, float]],
    trained_on: str,
) -> dict[str, Any]:
    """Export the better of the raw and EMA weights to ``model_dir`` (the input it was trained for, its label graph,
    what it was trained with, its held-out mAP/CF1/OF1); returns the recipe record, completed."""
    recipe = recipe | {
        "weights": task.better_weights(),
        "metrics": DEMO_METRICS,
        "label_setting": plan.label_setting,
        "incomplete_label_loss": plan.loss,
        "plan": plan_record(plan),
    }
    metrics = {split: {k: round(row[k], 2) for k in ("mAP", "CF1", "OF1")} for split, row in held_out.items()}
    save_model(
        task.better_network(),
        model_dir,
        class_names=dm.class_names,
        label_graph=dm.label_graph,
        recipe=recipe,
        command="labelgraph train",
        metrics=metrics,
        extra={"trained_on": trained_on, "seed": plan.seed},
    )
    return recipe


def checked_head(
    plan: TrainPlan, settings: DemoSettings, out: Path, val: LabelTable
) -> tuple[TrainPlan, DemoSettings, Path, list, dict[str, Any] | None]:
    """Stage 1; with an incomplete-label loss that ``--loss`` did not name, also with the plain one, the better on
    validation kept (:mod:`labelgraph.studies.loss_check`). Returns the plan and settings with the kept loss, the
    stage-1 model and history, and what the check found (None without an incomplete-label loss)."""
    stage1, history1 = train_head(plan, settings, out)
    if plan.loss is None:
        return plan, settings, stage1, history1, None
    candidates = {plan.loss: (stage1, history1)}
    plain = None if plan.loss_given else plain_alternative(plan.label_setting, plan.loss)
    if plain is not None:
        candidates[plain] = train_head(plan, dataclasses.replace(settings, loss=plain), out, f"stage1_{plain}")
    found = choose_loss(candidates, val)
    plan = dataclasses.replace(plan, loss=found["chosen"])
    record = {k: v for k, v in found.items() if k not in ("folder", "history")}
    return plan, dataclasses.replace(settings, loss=plan.loss), found["folder"], found["history"], record


def plan_record(plan: TrainPlan) -> dict[str, Any]:
    """The plan as JSON (the calibration settings spelled out)."""
    record = {k: v for k, v in asdict(plan).items() if k != "calibration"}
    c = plan.calibration
    record["calibration"] = {"rule": c.rule.to_dict(), "scaling": c.scaling, "recall": c.recall, "folds": c.folds}
    return record


def report_results(
    splits: dict[str, LabelTable],
    plan: TrainPlan,
    files: dict[str, str],
    held: str,
    row: dict,
    per_class: list,
    history: list,
) -> dict[str, Any]:
    """The run in the schema of the demo's ``results.json`` (what the HTML report reads)."""
    train = splits["train"]
    head_epochs = sum(1 for h in history if h["epoch"] < plan.head_epochs)
    return {
        "complete": True,
        "dataset": {
            "kind": "your data",
            "description": train.source,
            "classes": train.class_names,
            **{name: {"num_images": len(table)} for name, table in splits.items()},
            "examples": {"split": f"splits/{Path(files[held]).name}", "model": "model"},  # in the run folder
            "held_out": held,
        },
        "methods": {plan.method: row},
        "per_class_AP": {plan.method: per_class},
        "settings": {
            "epochs": plan.head_epochs + plan.full_epochs,
            "epochs_run": len(history),
            "stages": f"stage 1 (head on cached features): {head_epochs} epochs; stage 2 (whole network): "
            f"{len(history) - head_epochs} of at most {plan.full_epochs} epochs",
            "backbone": plan.backbone,
            "image_size": plan.image_size,
            "device": plan.device,
            "seed": plan.seed,
        },
        "history": {plan.method: history},
    }
