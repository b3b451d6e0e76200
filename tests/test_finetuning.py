"""Staged fine-tuning (graphMLC's two-stage protocol) on every registered method."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

from labelgraph import list_models
from labelgraph.engine.callbacks import StagedFineTuning
from labelgraph.engine.schedulers import TwoStageCosineLR
from labelgraph.engine.task import MultiLabelTask
from labelgraph.models import Backbone

from .conftest import TINY_BACKBONE
from .test_task import datamodule, trainer


def _graph_with_embeddings(dm):
    graph = dm.label_graph
    graph.embeddings = torch.randn(dm.num_classes, 16, generator=torch.Generator().manual_seed(0))
    graph.embedding_source = "image:test"  # every graph method accepts it (IML-GCN only accepts image embeddings)
    return graph


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _changed(before: dict[str, torch.Tensor], after: dict[str, torch.Tensor]) -> set[str]:
    """Names of the floating-point tensors (weights and BatchNorm statistics) that differ."""
    return {k for k, v in after.items() if v.dtype.is_floating_point and not torch.equal(before[k], v)}


class _StageProbe(L.Callback):
    """Records the backbone's and head's state at the end of stage 1 and the learning rates of each epoch."""

    def __init__(self, stage1_epochs: int) -> None:
        self.stage1_epochs, self.lrs, self.modes = stage1_epochs, [], []

    def on_train_epoch_start(self, trainer, pl_module):
        self.lrs.append([g["lr"] for g in trainer.optimizers[0].param_groups])
        self.modes.append(
            pl_module.model.backbone.body.training
            and any(m.training for m in pl_module.model.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d))
        )

    def on_train_epoch_end(self, trainer, pl_module):
        if trainer.current_epoch == self.stage1_epochs - 1:
            self.stage1 = (_snapshot(pl_module.model.backbone), _snapshot(pl_module.model.head))


@pytest.mark.parametrize("method", list_models())
def test_every_method_trains_with_the_staged_recipe(method, tiny_dataset, tmp_path):
    dm = datamodule(tiny_dataset)
    task = MultiLabelTask(
        method=method,
        backbone=TINY_BACKBONE,
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        label_graph=_graph_with_embeddings(dm),
    )
    start_backbone, start_head = _snapshot(task.model.backbone), _snapshot(task.model.head)
    staged = StagedFineTuning(stage1_epochs=1, stage2_epochs=1, stage2_lr=1e-3)
    probe = _StageProbe(1)
    run = trainer(  # max_epochs 5: the callback owns the number of epochs
        tmp_path,
        epochs=5,
        enable_checkpointing=False,
        limit_train_batches=2,
        limit_val_batches=1,
        callbacks=[staged, probe],
    )
    run.fit(task, datamodule=dm)
    assert run.current_epoch == 2
    assert isinstance(run.optimizers[0], torch.optim.Adam)
    backbone1, head1 = probe.stage1
    # stage 1: the backbone is untouched -- weights and BatchNorm statistics -- while the head trains
    assert not _changed(start_backbone, backbone1)
    assert _changed(start_head, head1)
    # BatchNorm in train mode only in stage 2 (on random weights no method freezes its BatchNorm by itself)
    assert probe.modes == [False, True]
    # stage 2: the backbone's trainable stages move
    assert _changed(backbone1, _snapshot(task.model.backbone))
    assert math.isclose(probe.lrs[0][0], 1e-3 * run.optimizers[0].param_groups[0].get("lr_mult", 1.0))


def test_stage_two_trains_only_the_requested_stages_and_restarts_adam(tiny_dataset, tmp_path):
    dm = datamodule(tiny_dataset)
    task = MultiLabelTask(
        method="baseline", backbone=TINY_BACKBONE, num_classes=dm.num_classes, class_names=dm.class_names
    )
    before = _snapshot(task.model.backbone)
    staged = StagedFineTuning(stage1_epochs=1, stage2_epochs=1, stage2_trainable_stages=1)
    cleared = []

    class _Spy(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            cleared.append(len(trainer.optimizers[0].state))

    run = trainer(
        tmp_path,
        epochs=2,
        enable_checkpointing=False,
        limit_train_batches=2,
        limit_val_batches=0,
        callbacks=[staged, _Spy()],
    )
    run.fit(task, datamodule=dm)
    changed = _changed(before, _snapshot(task.model.backbone))
    last = task.model.backbone._stage_children()[-1]
    assert changed and all(k.startswith(f"body.{last}.") for k in changed), sorted(changed)[:5]
    assert cleared == [0, 0]  # Adam's moments were dropped at the stage boundary (stage 1 had filled them)


def test_two_stage_cosine_schedule_values():
    params = [torch.nn.Parameter(torch.zeros(1))]
    opt = torch.optim.Adam(
        [{"params": params, "lr_mult": 1.0}, {"params": [torch.nn.Parameter(torch.zeros(1))], "lr_mult": 0.1}], lr=1e-3
    )
    sched = TwoStageCosineLR(opt, epochs=(3, 5), peaks=(1e-3, 1e-4), floors=(1e-4, 1e-6))
    seen = []
    for _ in range(8):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [1e-3, 1e-4 + 0.9e-3 / 2, 1e-4] + [1e-6 + 99e-6 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)]
    assert seen == pytest.approx(expected, rel=1e-9)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * sched.stage_lr(8), rel=1e-9)  # lr_mult applies


def test_backbone_set_trainable_stages_unfreezes_and_refreezes():
    backbone = Backbone(TINY_BACKBONE, trainable_stages=1)
    trainable = {n for n, p in backbone.named_parameters() if p.requires_grad}
    backbone.set_trainable_stages(0)
    assert not any(p.requires_grad for p in backbone.parameters())
    backbone.train()
    assert not any(m.training for m in backbone.body.children())
    backbone.set_trainable_stages(None)
    assert all(p.requires_grad for p in backbone.parameters())
    backbone.set_trainable_stages(1)
    assert {n for n, p in backbone.named_parameters() if p.requires_grad} == trainable


def test_invalid_stages_are_refused():
    with pytest.raises(ValueError, match="stage1_epochs"):
        StagedFineTuning(stage1_epochs=0)
