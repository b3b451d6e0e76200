"""Every shipped recipe parses and instantiates through the real CLI (tiny data and backbone substituted)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import torch
import yaml
from lightning.pytorch.callbacks import EarlyStopping

from labelgraph.data import MultiLabelDataModule
from labelgraph.engine.lightning_cli import LabelGraphCLI
from labelgraph.engine.recipes import component_class
from labelgraph.engine.schedulers import planned_steps
from labelgraph.engine.task import MultiLabelTask
from labelgraph.graph import KnowledgeGraph
from labelgraph.models import Component, Recipe, get_recipe, list_models

from . import fixtures
from .conftest import TINY_BACKBONE, TINY_SIZE

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.yaml"))
DATA_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "data").glob("*.yaml"))
FIXTURES = {
    "coco2014": fixtures.coco,
    "voc2007": fixtures.voc,
    "voc2012": lambda p: fixtures.voc(p, 2012),
    "nuswide": fixtures.nuswide,
    "nuswide_asl": fixtures.nuswide,
    "vg500": fixtures.vg500,
    "mirflickr": fixtures.mirflickr,
}


@pytest.fixture(scope="module")
def graph_file(tiny_dataset, tmp_path_factory) -> Path:
    """A graph file for recipes that expect one: image-style embeddings and a knowledge graph with extra nodes."""
    dm = MultiLabelDataModule(train=str(tiny_dataset / "train.csv"), classes=str(tiny_dataset / "classes.txt"))
    g = dm.label_graph
    g.embeddings, g.embedding_source = torch.randn(g.num_classes, 9), "image:test+pca9"
    k = g.num_classes + 3
    g.knowledge = KnowledgeGraph(g.class_names + ["x", "y", "z"], torch.rand(k, k), list(range(g.num_classes)))
    path = tmp_path_factory.mktemp("graph") / "graph.safetensors"
    g.save(path)
    return path


@pytest.mark.parametrize("config", CONFIGS, ids=[c.stem for c in CONFIGS])
def test_recipe_instantiates(config, tiny_dataset, graph_file, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["labelgraph"])
    recipe = yaml.safe_load(config.read_text())
    args = [
        "--config", str(config),
        "--data.train", str(tiny_dataset / "train.csv"), "--data.val", str(tiny_dataset / "val.csv"),
        "--data.classes", str(tiny_dataset / "classes.txt"), "--data.image_size", str(TINY_SIZE),
        "--model.backbone", TINY_BACKBONE, "--model.pretrained", "false",
    ]  # fmt: skip
    data = recipe.get("data", {})
    if "format_options" in data:  # the recipe's dataset options do not apply to the CSV stand-in
        args += ["--data.format_options", "{}"]
    if "embeddings" in data:  # the recipe's word-vector file is not here: one-hot stands in
        args += ["--data.embeddings", "onehot"]
    if "label_graph_file" in data:
        args += ["--data.label_graph_file", str(graph_file)]
    cli = LabelGraphCLI(MultiLabelTask, MultiLabelDataModule, args=args, run=False)
    assert cli.model.hparams.method == recipe["model"]["method"]
    assert cli.model(torch.rand(2, 3, TINY_SIZE, TINY_SIZE)).shape == (2, cli.datamodule.num_classes)
    with planned_steps(100):  # what the Trainer would plan for step-wise schedules (OneCycle)
        opt = cli.model.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    mult = recipe["model"].get("backbone_lr_mult", 1.0)  # (pretrained false here: the recipes' factors are for weights)
    lrs = {g["name"]: g["lr"] for g in opt.param_groups}
    assert lrs["backbone"] == pytest.approx(lrs["head"] * mult)


@pytest.mark.parametrize("method", list_models())
def test_fit_without_a_config_trains_and_evaluates_as_the_method_recipe_says(
    method, tiny_dataset, graph_file, monkeypatch, tmp_path
):
    """``labelgraph fit --model.method M`` with no YAML: M's image size, transforms, batch, epochs, clipping and
    early stopping (SSGRL: 576 px, centre crop, batch 4, 200 epochs); a field the user sets still wins."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["labelgraph"])
    args = [
        "--model.method", method, "--model.backbone", TINY_BACKBONE, "--data.train", str(tiny_dataset / "train.csv"),
        "--data.classes", str(tiny_dataset / "classes.txt"), "--data.label_graph_file", str(graph_file),
        "--data.num_workers", "0", "--trainer.logger", "false", "--trainer.enable_checkpointing", "false",
    ]  # fmt: skip
    recipe = get_recipe(method)
    cli = LabelGraphCLI(MultiLabelTask, MultiLabelDataModule, args=args, run=False)
    dm = cli.datamodule
    assert (dm.image_size, dm.train_transform_name, dm.eval_transform_name, dm.batch_size, dm.drop_last) == (
        recipe.image_size, recipe.train_transform, recipe.eval_transform, recipe.batch_size, recipe.drop_last
    )  # fmt: skip
    assert (cli.trainer.max_epochs, cli.trainer.gradient_clip_val) == (recipe.epochs, recipe.gradient_clip_val)
    assert (cli.model.model.image_size, cli.model.model.eval_transform) == (recipe.image_size, recipe.eval_transform)
    cli.trainer.strategy.connect(cli.model)
    cli.model.trainer = cli.trainer
    stops = [c.patience for c in cli.model.configure_callbacks() if isinstance(c, EarlyStopping)]
    assert stops == ([recipe.early_stopping_patience] if recipe.early_stopping_patience else [])
    cli = LabelGraphCLI(MultiLabelTask, MultiLabelDataModule, args=[*args, "--data.image_size", "40"], run=False)
    assert cli.datamodule.image_size == 40 and cli.datamodule.eval_transform_name == recipe.eval_transform


RECIPE_CONFIGS = [c for c in CONFIGS if c.stem != "demo"]  # configs/<method>_<backbone>_<dataset>-<size>.yaml


def resolved(component: dict | Component | None) -> tuple[str, dict] | None:
    """A class path and its arguments with the class's own defaults filled in (what would be instantiated)."""
    if component is None:
        return None
    if isinstance(component, dict):
        component = Component(component["class_path"], component.get("init_args", {}))
    parameters = inspect.signature(component_class(component)).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    return component.class_path.rsplit(".", 1)[-1], {**defaults, **component.init_args}


def config_recipe_fields(config: dict) -> dict:
    """The recipe fields a shipped config sets, by recipe field name, as training would use them."""
    model, data, trainer = config.get("model", {}), config.get("data") or {}, config.get("trainer") or {}
    callbacks = {c["class_path"].rsplit(".", 1)[-1]: c.get("init_args", {}) for c in trainer.get("callbacks", [])}
    fields = {
        "backbone": model.get("backbone"),
        "model_args": model.get("model_args"),
        **{name: resolved(model[name]) for name in ("criterion", "optimizer", "lr_scheduler") if name in model},
        "aux_losses": [resolved(a) for a in model["aux_losses"]] if "aux_losses" in model else None,
        **{name: model.get(name) for name in ("backbone_lr_mult", "ema_decay", "metrics")},
        "epochs": trainer.get("max_epochs"),
        "gradient_clip_val": trainer.get("gradient_clip_val"),
        "early_stopping_patience": callbacks.get("EarlyStopping", {}).get("patience"),
        **{name: data.get(name) for name in ("batch_size", "drop_last", "image_size", "train_transform")},
        "eval_transform": data.get("eval_transform"),
    }
    set_keys = {"gradient_clip_val": "gradient_clip_val" in trainer, "ema_decay": "ema_decay" in model}
    return {k: v for k, v in fields.items() if v is not None or set_keys.get(k, False)}


def recipe_value(recipe: Recipe, name: str):
    value = getattr(recipe, name)
    if name in ("criterion", "optimizer", "lr_scheduler"):
        return resolved(value)
    return [resolved(a) for a in value] if name == "aux_losses" else value


def restated(config: dict) -> dict:
    """The fields a config sets to the value its method's recipe already gives them."""
    recipe = get_recipe(config["model"]["method"])
    return {k: v for k, v in config_recipe_fields(config).items() if v == recipe_value(recipe, k)}


@pytest.mark.parametrize("config", RECIPE_CONFIGS, ids=[c.stem for c in RECIPE_CONFIGS])
def test_config_states_only_what_differs_from_its_method_recipe(config):
    """A shipped config holds the dataset, paths and what departs from its method's recipe (``models/<method>.py``),
    which ``labelgraph fit`` reads for everything else: a restated value would be a second copy to drift. The file's
    name says its backbone and size; another backbone than the recipe's is a like-for-like variant."""
    text = yaml.safe_load(config.read_text())
    method = text["model"]["method"]
    assert config.stem.startswith(f"{method}_"), f"{config.name} is named after another method than {method}"
    backbone_dataset, size = config.stem.removeprefix(f"{method}_").rsplit("-", 1)
    recipe = get_recipe(method)
    assert (
        text["model"].get("backbone", recipe.backbone).removeprefix("torchvision/")
        == backbone_dataset.rsplit("_", 1)[0]
    )
    assert int(size) == (text.get("data") or {}).get("image_size", recipe.image_size)
    assert restated(text) == {}, f"{config.name} restates {method}'s recipe: {restated(text)}"


def test_a_restating_config_is_caught():
    text = yaml.safe_load((CONFIGS[0].parent / "ssgrl_resnet101_voc2007-576.yaml").read_text())
    assert restated(text) == {}
    text["model"]["optimizer"] = {"class_path": "torch.optim.Adam", "init_args": {"lr": 1e-5}}
    text["data"]["eval_transform"] = "center_crop"
    text["data"]["batch_size"] = 8  # differs: kept
    text["trainer"]["gradient_clip_val"] = None
    assert set(restated(text)) == {"optimizer", "eval_transform", "gradient_clip_val"}


def test_every_shipped_config_names_a_registered_method():
    """A config is optional (``fit --model.method M`` reads M's recipe); one that is shipped trains a real method."""
    methods = {yaml.safe_load(c.read_text())["model"]["method"] for c in CONFIGS}
    assert methods <= set(list_models()), methods - set(list_models())


@pytest.mark.parametrize("config", DATA_CONFIGS, ids=[c.stem for c in DATA_CONFIGS])
def test_data_config_trains_one_step_on_its_fixture(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["labelgraph"])
    root = FIXTURES[config.stem](tmp_path / "data")
    args = [
        "fit", "--config", str(config), "--data.root", str(root), "--data.image_size", str(TINY_SIZE),
        "--data.batch_size", "2", "--data.num_workers", "0", "--model.backbone", TINY_BACKBONE,
        "--trainer.max_steps", "1", "--trainer.limit_val_batches", "1", "--trainer.logger", "false",
        "--trainer.enable_checkpointing", "false", "--trainer.enable_progress_bar", "false",
        "--trainer.enable_model_summary", "false", "--trainer.accelerator", "cpu",
    ]  # fmt: skip
    if config.stem == "mirflickr":
        args += ["--data.format_options", '{"num_images": 10}']
    cli = LabelGraphCLI(MultiLabelTask, MultiLabelDataModule, args=args)
    assert cli.trainer.global_step == 1
    assert cli.datamodule.format == yaml.safe_load(config.read_text())["data"]["format"]


STAGED_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "staged").glob("*.yaml"))


@pytest.mark.parametrize("config", STAGED_CONFIGS, ids=[c.stem for c in STAGED_CONFIGS])
def test_staged_protocol_config_trains_through_the_cli(config, tiny_dataset, monkeypatch, tmp_path):
    """graphMLC's protocol configs run both stages through ``labelgraph fit`` (one batch per epoch)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.argv", ["labelgraph"])
    args = [
        "fit", "--config", str(config), "--model.method", "ggnn",
        "--data.train", str(tiny_dataset / "train.csv"), "--data.val", str(tiny_dataset / "val.csv"),
        "--data.classes", str(tiny_dataset / "classes.txt"), "--data.image_size", str(TINY_SIZE),
        "--data.format_options", "{}", "--data.embeddings", "onehot", "--data.num_workers", "0",
        "--model.backbone", TINY_BACKBONE, "--model.pretrained", "false", "--trainer.accelerator", "cpu",
        "--trainer.limit_train_batches", "1", "--trainer.limit_val_batches", "1", "--trainer.logger", "false",
        "--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false",
        "--trainer.default_root_dir", str(tmp_path),
    ]  # fmt: skip
    cli = LabelGraphCLI(MultiLabelTask, MultiLabelDataModule, args=args)
    assert cli.trainer.current_epoch == 3 + 5  # GGNN: 3 epochs frozen, 5 trainable
    assert isinstance(cli.trainer.optimizers[0], torch.optim.Adam)
    assert cli.trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-6, rel=1e-6)
    assert cli.datamodule.train_transform_name == "graphmlc"


SWEEP_FILES = sorted((Path(__file__).resolve().parents[1] / "configs" / "sweeps").glob("*.yaml"))


@pytest.mark.parametrize("sweep_file", [f for f in SWEEP_FILES if "grid" in yaml.safe_load(f.read_text())],
                         ids=lambda f: f.stem)  # fmt: skip
def test_every_point_of_every_shipped_sweep_instantiates(sweep_file, tiny_dataset, monkeypatch, tmp_path):
    """Each point's merged config builds through the CLI (tiny data and backbone substituted, no training)."""
    from labelgraph.studies.sweep import Sweep, set_dotted

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)  # sweep files name their base configs relative to the repository
    sweep = Sweep.from_file(sweep_file)
    settings = {tuple((k, v) for k, v in p.items() if k != "seed_everything"): p for p in sweep.points()}
    for values in settings.values():  # once per setting (seeds repeat a setting)
        config = sweep.config(values)
        for key, value in {
            "data.train": str(tiny_dataset / "train.csv"), "data.val": str(tiny_dataset / "val.csv"),
            "data.test": str(tiny_dataset / "test.csv"), "data.classes": str(tiny_dataset / "classes.txt"),
            "data.image_size": TINY_SIZE, "data.embeddings": "onehot", "data.num_workers": 0,
            "model.backbone": TINY_BACKBONE, "model.pretrained": False,
        }.items():  # fmt: skip
            set_dotted(config, key, value)
        config["data"].pop("feature_cache", None)
        path = tmp_path / "point.yaml"
        path.write_text(yaml.safe_dump(config))
        monkeypatch.setattr("sys.argv", ["labelgraph"])
        cli = LabelGraphCLI(MultiLabelTask, MultiLabelDataModule, args=["--config", str(path)], run=False)
        assert cli.model.hparams.method == config["model"]["method"]
        for key, value in values.items():
            if key.startswith("model.model_args."):
                assert cli.model.hparams.model_args[key.rsplit(".", 1)[1]] == value


def test_the_recipe_defaults_hold_from_sys_argv_and_in_print_config(tiny_dataset, graph_file, monkeypatch, capsys):
    """Lightning's own entry point (no ``args``: the command line) and ``--print_config`` show the recipe's values
    too: the first reading, which only learns the method, must neither print nor exit."""
    from labelgraph.cli import main as cli_main

    data = ["--data.train", str(tiny_dataset / "train.csv"), "--data.classes", str(tiny_dataset / "classes.txt")]
    monkeypatch.setattr(
        "sys.argv", ["labelgraph", "--model.method", "ssgrl", "--model.backbone", TINY_BACKBONE, *data,
                     "--data.label_graph_file", str(graph_file), "--data.num_workers", "0"],
    )  # fmt: skip
    cli = LabelGraphCLI(MultiLabelTask, MultiLabelDataModule, run=False)
    assert (cli.datamodule.image_size, cli.datamodule.eval_transform_name) == (576, "center_crop")
    monkeypatch.setattr("sys.argv", ["labelgraph"])
    with pytest.raises(SystemExit) as stop:
        cli_main(["fit", "--model.method", "ssgrl", *data, "--print_config"])
    printed = yaml.safe_load(capsys.readouterr().out)
    assert stop.value.code == 0 and printed["data"]["eval_transform"] == "center_crop"
    assert (printed["data"]["image_size"], printed["trainer"]["max_epochs"]) == (576, 200)
