"""A method carries its own training defaults: ``labelgraph fit --model.method X`` with no other option trains X as
its paper defines it (loss, auxiliary weights, optimiser, schedule), and Query2Label and SADCL do not collapse."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from labelgraph.data import load_table
from labelgraph.data.synthetic import SceneConfig, generate_dataset
from labelgraph.engine.lightning_cli import make_cli
from labelgraph.engine.schedulers import OneCycleLR
from labelgraph.engine.task import MultiLabelTask
from labelgraph.losses import AsymmetricLoss, MaskedBCEWithLogitsLoss
from labelgraph.models import Backbone, list_models

from .conftest import TINY_BACKBONE

EPOCHS = "5"
DEMO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"


def test_task_defaults_are_the_methods_own(tmp_path):
    q2l = MultiLabelTask(method="query2label", backbone=TINY_BACKBONE, num_classes=3)
    assert isinstance(q2l.criterion, AsymmetricLoss) and q2l.criterion.gamma_neg == 2.0
    params = [torch.nn.Parameter(torch.zeros(2))]
    optimizer = q2l.optimizer_factory(params)
    assert isinstance(optimizer, torch.optim.AdamW)
    assert optimizer.defaults["lr"] == 1e-4 and optimizer.defaults["weight_decay"] == 1e-2
    assert isinstance(q2l.scheduler_factory(optimizer, total_steps=10), OneCycleLR)
    assert q2l.ema is not None and q2l.ema.decay == 0.9997 and q2l.backbone_lr_mult == 1.0
    assert q2l.metric_kwargs["ap_mode"] == "voc_interp"  # Query2Label evaluates with interpolated AP
    assert MultiLabelTask(method="query2label", backbone=TINY_BACKBONE, num_classes=3, ema_decay=None).ema is None
    sadcl = MultiLabelTask(method="sadcl", backbone=TINY_BACKBONE, num_classes=3, model_args={"dim_feedforward": 8})
    assert isinstance(sadcl.criterion, AsymmetricLoss) and sadcl.criterion.gamma_neg == 4.0
    assert [a.weight for a in sadcl.aux_losses] == [100.0, 50.0]
    weights = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in Backbone(TINY_BACKBONE).body.state_dict().items()}, str(weights))
    graph = MultiLabelTask(method="baseline", backbone=TINY_BACKBONE, num_classes=3, pretrained=str(weights))
    assert isinstance(graph.criterion, MaskedBCEWithLogitsLoss) and graph.ema is None
    assert isinstance(graph.optimizer_factory(params), torch.optim.SGD) and graph.backbone_lr_mult == 0.1
    assert isinstance(graph.scheduler_factory(torch.optim.SGD(params, lr=0.1)), torch.optim.lr_scheduler.StepLR)
    default = MultiLabelTask(method="baseline", num_classes=3)
    assert default.model.config["kwargs"]["backbone"] == "torchvision/resnet101"  # the recipe's backbone
    assert default.backbone_lr_mult == 1.0  # the recipe's 0.1 is for pretrained weights


@pytest.mark.parametrize("method", list_models())
def test_every_recipe_names_what_exists(method):
    """Each recipe's classes import and build, its presets exist, its builder takes its arguments."""
    import inspect

    from labelgraph.data.transforms import EVAL_PRESETS, TRAIN_PRESETS
    from labelgraph.engine.recipes import build_aux_losses, build_criterion, optimizer_factory, scheduler_factory
    from labelgraph.evaluation.metrics import METRIC_PRESETS
    from labelgraph.models import get_model_builder, get_recipe

    recipe = get_recipe(method)
    assert isinstance(build_criterion(recipe), torch.nn.Module)
    assert all(a.weight > 0 for a in build_aux_losses(recipe))
    optimizer = optimizer_factory(recipe)([{"params": [torch.nn.Parameter(torch.zeros(2, 2))], "lr_mult": 1.0}])
    schedule = scheduler_factory(recipe)
    if schedule is not None:
        assert schedule(optimizer, total_steps=10) if recipe.warms_up else schedule(optimizer)
    assert recipe.train_transform in TRAIN_PRESETS and recipe.eval_transform in EVAL_PRESETS
    assert recipe.metrics in METRIC_PRESETS
    accepted = inspect.signature(get_model_builder(method)).parameters
    assert set(recipe.model_args) <= set(accepted), set(recipe.model_args) - set(accepted)
    # the builder's defaults are the recipe's model_args (fit passes none): equal, or resolved by the builder from
    # the backbone and its weights ("auto" freezing; None: Query2Label's FFN of 4 x the backbone width)
    defaults = {k: accepted[k].default for k in recipe.model_args}
    drift = {k: (v, defaults[k]) for k, v in recipe.model_args.items() if defaults[k] not in (v, "auto")}
    assert all(default is None for _, default in drift.values()), drift
    if recipe.prerequisite is not None:
        get_model_builder(recipe.prerequisite.method)


def test_sadcl_with_another_criterion_is_warned_about():
    with pytest.warns(UserWarning, match="sadcl: the auxiliary weights"):
        MultiLabelTask(method="sadcl", backbone=TINY_BACKBONE, num_classes=3, criterion=MaskedBCEWithLogitsLoss())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        MultiLabelTask(method="sadcl", backbone=TINY_BACKBONE, num_classes=3, criterion=MaskedBCEWithLogitsLoss(),
                       aux_losses=[])  # fmt: skip  # the user's own (no) weights: nothing to warn about


@pytest.fixture(scope="module")
def shapes(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("shapes")
    generate_dataset(out, kind="shapes", seed=0, sizes={"train": 240, "val": 60, "test": 120},
                     config=SceneConfig(grid=2, cell=16))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def pretrained(shapes, tmp_path_factory) -> str:
    from labelgraph.studies.demo import pretrain_backbone

    folder = tmp_path_factory.mktemp("pretrained")
    return str(pretrain_backbone("shapes", TINY_BACKBONE, folder / "w.safetensors", 0, images=600, epochs=2, size=32))


def fit_and_test(data: Path, method: str, pretrained: str | None, tmp_path: Path) -> dict[str, float]:
    """``labelgraph fit --config configs/demo.yaml --model.method METHOD`` (sized down), then test."""
    argv = ["--config", str(DEMO_CONFIG), "--model.method", method, "--model.backbone", TINY_BACKBONE,
            "--trainer.max_epochs", EPOCHS, "--model.lr_scheduler.init_args.T_max", EPOCHS,
            "--trainer.default_root_dir", str(tmp_path), "--trainer.logger", "false", "--trainer.callbacks", "[]",
            "--trainer.enable_checkpointing", "false", "--trainer.enable_progress_bar", "false",
            "--data.train", str(data / "train.csv"), "--data.val", str(data / "val.csv"),
            "--data.test", str(data / "test.csv"), "--data.classes", str(data / "classes.txt"),
            "--data.image_size", "32", "--data.batch_size", "16", "--data.num_workers", "0"]  # fmt: skip
    if pretrained:
        argv += ["--model.pretrained", pretrained]
    if method in ("query2label", "sadcl"):
        argv += ["--model.model_args", '{"nhead": 4, "dim_feedforward": null}']
    cli = make_cli(argv, run=False)
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    return cli.model.results["test"]


@pytest.mark.slow
@pytest.mark.parametrize("weights", ["random", "pretrained"])
def test_query2label_and_sadcl_do_not_collapse_through_the_cli(shapes, pretrained, weights, tmp_path):
    source = pretrained if weights == "pretrained" else None
    baseline = fit_and_test(shapes, "baseline", source, tmp_path / "baseline")
    table = load_table("csv", str(shapes / "test.csv"))
    chance = 100 * float(np.mean((table.targets == 1).mean(0)))  # the AP of random scores: each class's frequency
    assert baseline["mAP"] > chance + 10, (baseline["mAP"], chance)  # the baseline learns: the bar is meaningful
    for method in ("query2label", "sadcl"):
        result = fit_and_test(shapes, method, source, tmp_path / method)
        halfway = chance + (baseline["mAP"] - chance) / 2
        assert result["CF1"] > 0, (method, result["CF1"])
        assert result["mAP"] >= halfway, (method, result["mAP"], halfway, baseline["mAP"], chance)


def test_demo_model_args_reach_only_the_methods_that_take_them():
    from labelgraph.errors import InvalidInputError
    from labelgraph.studies.demo import check_model_args, method_model_args

    args = {"fusion": "dot"}
    assert method_model_args("lglm", args) == {"fusion": "dot"}
    assert method_model_args("baseline", args) is None  # was passed to the baseline too, which refused it
    check_model_args(["baseline", "lglm"], args)
    assert method_model_args("sadcl", {"nhead": 2, "tau": 0.4}) == {"nhead": 2}  # **transformer options pass
    with pytest.raises(InvalidInputError, match=r"\['fuson'\]: accepted by none of baseline, lglm"):
        check_model_args(["baseline", "lglm"], {"fuson": "dot"})


def test_demo_recipes_are_the_methods_own_scaled_to_the_demo():
    from labelgraph.engine.recipes import optimizer_factory, scheduler_factory
    from labelgraph.models import get_recipe

    size = {"epochs": 6, "steps_per_epoch": 63, "batch_size": 32, "image_size": 96}
    graph = get_recipe("ml_gcn").scaled(**size)
    assert graph.backbone_lr_mult == 0.1 and graph.ema_decay is None and graph.epochs == 6
    assert isinstance(optimizer_factory(graph)([torch.nn.Parameter(torch.zeros(1))]), torch.optim.AdamW)
    assert graph.lr_scheduler.init_args == {"T_max": 6} and graph.train_transform == "flip"
    for method, weight_decay in (("query2label", 1e-2), ("sadcl", 5e-3)):
        recipe = get_recipe(method).scaled(**size)
        optimizer = optimizer_factory(recipe)([torch.nn.Parameter(torch.zeros(1))])
        assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["weight_decay"] == weight_decay
        assert optimizer.defaults["lr"] == 1e-4  # the short-run peak: Query2Label's paper peak
        assert recipe.backbone_lr_mult == 1.0  # one learning rate for every parameter, as the official code
        assert recipe.ema_decay == pytest.approx(1 - 1 / 63)  # a horizon of one demo epoch
        assert isinstance(scheduler_factory(recipe)(optimizer, total_steps=10), OneCycleLR)
        assert recipe.criterion == get_recipe(method).criterion and recipe.aux_losses == get_recipe(method).aux_losses
    assert get_recipe("ml_decoder").scaled(**size, peak_lr=3e-4).optimizer.init_args["lr"] == 3e-4
    assert get_recipe("ml_gcn").scaled(**size, lr=5e-3).optimizer.init_args["lr"] == 5e-3
