"""The training task: a real (tiny) training run, EMA, non-finite loss, checkpoints and class checks."""

from __future__ import annotations

import lightning as L
import pytest
import torch

from labelgraph.data import MultiLabelDataModule, MultiLabelDataset
from labelgraph.data.classes import class_mismatch_message
from labelgraph.data.transforms import eval_transform
from labelgraph.engine.task import MultiLabelTask

from .conftest import TINY_BACKBONE, TINY_SIZE


def datamodule(root, **kw) -> MultiLabelDataModule:
    settings = dict(image_size=TINY_SIZE, train_transform="flip", batch_size=16, num_workers=0) | kw
    return MultiLabelDataModule(
        train=str(root / "train.csv"),
        val=str(root / "val.csv"),
        test=str(root / "test.csv"),
        classes=str(root / "classes.txt"),
        **settings,
    )


def task_for(dm: MultiLabelDataModule, **kw) -> MultiLabelTask:
    return MultiLabelTask(
        backbone=TINY_BACKBONE,
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        label_graph=dm.label_graph,
        optimizer=lambda p: torch.optim.AdamW(p, lr=3e-3),
        **kw,
    )


def trainer(tmp_path, epochs=2, **kw) -> L.Trainer:
    return L.Trainer(
        max_epochs=epochs,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        deterministic=True,
        default_root_dir=tmp_path,
        **kw,
    )


def test_training_lowers_the_loss_and_reports_every_metric(tiny_dataset, tmp_path):
    L.seed_everything(0)
    dm = datamodule(tiny_dataset)
    task = task_for(dm)
    train_set = MultiLabelDataset(dm.train_table, eval_transform(TINY_SIZE))
    images, targets = next(iter(torch.utils.data.DataLoader(train_set, batch_size=len(train_set))))
    with torch.no_grad():
        before = task.criterion(task.model.eval()(images), targets).item()
    task.model.train()
    trainer(tmp_path, epochs=4, enable_checkpointing=False).fit(task, dm)
    with torch.no_grad():
        after = task.criterion(task.model.eval()(images), targets).item()
    assert after < before
    trainer(tmp_path, enable_checkpointing=False).test(task, dm, verbose=False)
    test = task.results["test"]
    for key in ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1_top3", "OF1_top3"):
        assert 0 <= test[key] <= 100
    assert len(test["AP"]) == dm.num_classes


def test_ema_is_evaluated_alongside_raw_weights(tiny_dataset, tmp_path):
    dm = datamodule(tiny_dataset)
    task = task_for(dm, ema_decay=0.5)

    class Weights(L.Callback):  # the raw weights after every optimisation step
        def __init__(self):
            self.steps: list[dict[str, torch.Tensor]] = []

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            self.steps.append({k: v.detach().clone() for k, v in pl_module.model.named_parameters()})

    weights = Weights()
    t = trainer(tmp_path, epochs=1, enable_checkpointing=False, limit_train_batches=3, callbacks=[weights])
    t.fit(task, dm)
    assert "val/mAP" in t.callback_metrics and "val_ema/mAP" in t.callback_metrics
    # timm's ModelEmaV3 copies the weights at the first step, then ema <- 0.5 ema + 0.5 w at each later one
    expected = dict(weights.steps[0])
    for step in weights.steps[1:]:
        expected = {k: 0.5 * v + 0.5 * step[k] for k, v in expected.items()}
    ema = dict(task.ema.module.named_parameters())
    assert len(weights.steps) == 3
    for name, value in expected.items():
        assert torch.allclose(ema[name], value, atol=1e-6), name
    raw = dict(task.model.named_parameters())
    assert any(not torch.equal(raw[k], ema[k]) for k in raw if raw[k].requires_grad)
    # the EMA is not trained by the optimizer
    opt_params = {id(p) for g in t.optimizers[0].param_groups for p in g["params"]}
    assert not any(id(p) in opt_params for p in task.ema.parameters())


def test_non_finite_loss_stops_with_the_step(tiny_dataset, tmp_path):
    class NaNLoss(torch.nn.Module):
        def forward(self, logits, targets):
            return logits.sum() * float("nan")

    dm = datamodule(tiny_dataset)
    with pytest.raises(FloatingPointError, match="global step 0"):
        trainer(tmp_path, epochs=1, enable_checkpointing=False).fit(task_for(dm, criterion=NaNLoss()), dm)


def test_checkpoint_is_pickle_free_and_refuses_other_classes(tiny_dataset, tmp_path):
    dm = datamodule(tiny_dataset)
    t = trainer(tmp_path, epochs=1)
    t.fit(task_for(dm), dm)
    ckpt = t.checkpoint_callback.best_model_path or t.checkpoint_callback.last_model_path
    state = torch.load(ckpt, weights_only=True)  # no custom objects inside
    assert state["labelgraph"]["config"]["class_names"] == dm.class_names
    other = MultiLabelTask(backbone=TINY_BACKBONE, num_classes=dm.num_classes, class_names=dm.class_names[::-1])
    with pytest.raises(ValueError, match="different order"):
        other.on_load_checkpoint(state)


def test_class_mismatch_messages():
    assert "3 classes in the a, 2 in the b (only in the a: ['z']" in class_mismatch_message(
        ["x", "y", "z"], ["x", "y"], "a", "b"
    )
    assert "only in the a: ['z']" in class_mismatch_message(["x", "z"], ["x", "y"], "a", "b")
    assert "position 0" in class_mismatch_message(["x", "y"], ["y", "x"], "a", "b")


def test_task_validates_its_arguments():
    with pytest.raises(ValueError, match="num_classes"):
        MultiLabelTask(backbone=TINY_BACKBONE, num_classes=0)
    with pytest.raises(ValueError, match="metrics preset"):
        MultiLabelTask(backbone=TINY_BACKBONE, num_classes=3, metrics="mine")


def test_checkpoints_hand_on_the_better_of_ema_and_raw_weights(tiny_dataset, tmp_path):
    """export, init_from and labelgraph prototypes read the weights the checkpoint records as better on validation."""
    from labelgraph.models import initialise_from, load_trained_model, trained_state_dict

    dm = datamodule(tiny_dataset)
    task = task_for(dm, ema_decay=0.5)
    t = trainer(tmp_path, epochs=1, enable_checkpointing=False, limit_train_batches=3)
    t.fit(task, dm)
    raw = {k: v.clone() for k, v in task.model.state_dict().items()}
    ema = {k: v.clone() for k, v in task.ema.module.state_dict().items()}
    assert any(not torch.equal(raw[k], ema[k]) for k in raw)
    for better, expected in (("ema", ema), ("model", raw)):
        # the last validation decides: make the wanted one score higher
        task.results["val"]["mAP"], task.results["val_ema"]["mAP"] = (10.0, 20.0) if better == "ema" else (20.0, 10.0)
        path = tmp_path / f"{better}.ckpt"
        t.save_checkpoint(path)
        assert torch.load(path, weights_only=True)["labelgraph"]["weights"] == better
        weights = trained_state_dict(path)
        assert all(torch.equal(weights[k], expected[k]) for k in expected)
        model, _ = load_trained_model(path)  # export and labelgraph prototypes load this way
        assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())
        fresh = task_for(dm).model
        initialise_from(fresh, path)
        assert all(torch.equal(v, expected[k]) for k, v in fresh.state_dict().items())
