"""The Lightning callbacks of labelgraph: what a run records (:class:`MetricHistory`), one line per epoch
(:class:`EpochLines`), the figures it logs at each validation (:class:`ValidationFigures`), and graphMLC's two-stage
fine-tuning protocol (:class:`StagedFineTuning`).

Configs name them by class path (``labelgraph.engine.callbacks.ValidationFigures``).

Staged fine-tuning is the two-stage protocol of graphMLC (T. Viel's re-implementations of GGNN, SSGRL and ML-GCN,
compared under one protocol), for any method. Stage 1 trains the heads on a frozen backbone (no gradients, BatchNorm
statistics frozen: the backbone stays in eval mode), stage 2 trains everything -- or only the last backbone stages, as
graphMLC does for its 101-layer networks. Each stage has its own cosine learning-rate decay (per epoch, from the
stage's peak at its first epoch to its floor at its last), and Adam starts afresh at stage 2 (graphMLC compiles a new
optimiser for each stage):

    stage 1: Adam, lr 1e-3 -> 1e-4, 3 epochs (GGNN) or 10 (GCN heads), batch 32
    stage 2: Adam, lr 1e-4 -> 1e-6, 5 epochs, all stages (ResNet-34) or layer4 only (ResNet-101, ResNeXt-101)

The callback owns the optimiser, the schedule, the backbone's learning-rate factor and the number of epochs: it
replaces the task's ``optimizer``, ``lr_scheduler`` and ``backbone_lr_mult`` and sets ``trainer.max_epochs`` to the sum
of the stages. Freezing is re-applied at every epoch
start from the epoch number alone, so a run resumed from a checkpoint is in the right stage with the right state.
"""

from __future__ import annotations

import time
import warnings
from functools import partial
from typing import Any

import lightning as L
import matplotlib.pyplot as plt
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn

from labelgraph.engine.schedulers import TwoStageCosineLR
from labelgraph.models import get_recipe
from labelgraph.visualization.plots import pr_curves_figure
from labelgraph.visualization.report import per_class_ap_figure


class MetricHistory(L.Callback):
    """What a run's metrics were, epoch by epoch.

    Attributes:
        epochs: after every training epoch, its logged scalars (train loss, the validation that ran in it, ...).
        val_map: the validation mAP after every validation (the sanity check left out).
    """

    def __init__(self) -> None:
        self.epochs: list[dict[str, float]] = []
        self.val_map: list[float] = []

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        row = {k: float(v) for k, v in trainer.callback_metrics.items() if v.numel() == 1}
        self.epochs.append({"epoch": trainer.current_epoch, **row})

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after the task's on_validation_epoch_end, which computed the metrics (callbacks' epoch-end hooks run first)
        if not trainer.sanity_checking and "val" in pl_module.results:
            self.val_map.append(float(pl_module.results["val"]["mAP"]))


class EpochLines(L.Callback):
    """One line per training epoch on standard output: ``stage 2 epoch 3/20: loss 0.1234, val mAP 81.20 (4.1 s)``
    (the validation that ran in the epoch, with the EMA's when there is one). Epochs shorter than a second (a head on
    cached features) are summed up in about ten lines: every k-th epoch and the last."""

    def __init__(self, name: str, epochs: int | None = None) -> None:
        self.name, self.epochs, self.started = name, epochs, 0.0  # epochs None: the trainer's max_epochs

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.epochs is None:
            self.epochs = trainer.max_epochs

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.started = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        seen = trainer.callback_metrics
        parts = [f"loss {float(seen['train/loss_epoch']):.4g}"] if "train/loss_epoch" in seen else []
        parts += [
            f"{key.split('/')[0].replace('_', ' ')} mAP {float(seen[key]):.2f}"
            for key in ("val/mAP", "val_ema/mAP")
            if key in seen
        ]
        took = time.perf_counter() - self.started
        epoch, every = trainer.current_epoch + 1, max(1, self.epochs // 10)
        if took < 1.0 and epoch % every and epoch != self.epochs and not trainer.should_stop:
            return
        print(
            f"{self.name} epoch {trainer.current_epoch + 1}/{self.epochs}: {', '.join(parts)} ({took:.1f} s)",
            flush=True,
        )


class EarlyStoppingAfterWarmup(EarlyStopping):
    """Lightning's early stopping that starts watching only once the learning-rate warm-up is over: during a one-cycle
    warm-up the rate is still climbing and the validation metric may stall or drop for a few epochs, which is not a
    sign that training is done. Epochs before ``start_epoch`` (0-based) neither count toward the patience nor set the
    best score."""

    def __init__(self, *args: Any, start_epoch: int = 0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.start_epoch = start_epoch

    def _run_early_stopping_check(self, trainer: L.Trainer) -> None:
        if trainer.current_epoch < self.start_epoch:
            return
        super()._run_early_stopping_check(trainer)


class LatestBestCheckpoint(ModelCheckpoint):
    """Lightning's checkpoint of the best epoch (``save_top_k=1``), taking the latest epoch among equally good ones:
    on a small validation split the metric is often flat for many epochs (three photos: the same mAP from the first
    epoch to the last), and the first of them is the least trained. (Lightning keeps the first: it replaces the best
    only on a strict improvement.)"""

    def check_monitor_top_k(self, trainer: L.Trainer, current: torch.Tensor | None = None) -> bool:
        if current is None or self.save_top_k != 1 or not self.best_k_models:
            return super().check_monitor_top_k(trainer, current)
        at_least = {"min": torch.le, "max": torch.ge}[self.mode]
        decision = at_least(current, self.best_k_models[self.kth_best_model_path])
        return trainer.strategy.reduce_boolean_decision(bool(decision))


class KeepBatchNormStatistics(L.Callback):
    """The backbone's BatchNorm layers normalise with their pretrained statistics throughout training (eval mode; their
    scale and shift still learn). A head trained on features computed with those statistics (``labelgraph train``'s
    first stage) sees the same features when the backbone is unfrozen, and a small batch's noisy statistics never
    replace ImageNet's."""

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        for module in pl_module.model.backbone.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


class ValidationFigures(L.Callback):
    """Figures at every validation end, for the loggers that show images (TensorBoard): log ``{split}/per_class_AP``
    (bars) and ``{split}/pr_curves`` of the last validation, every
    ``every_n_epochs`` epochs, from rank 0 (the scores are those of every process: the metric syncs them).

    Args:
        every_n_epochs: how often (the figures of a large dataset take a second or two to draw).
        splits: which evaluations: ``val`` and, with an EMA, ``val_ema``.
    """

    def __init__(self, every_n_epochs: int = 1, splits: tuple[str, ...] = ("val", "val_ema")) -> None:
        self.every_n_epochs = every_n_epochs
        self.splits = tuple(splits)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # after the task's on_validation_epoch_end, which computed the metrics (callbacks' epoch-end hooks run first)
        if trainer.sanity_checking or not trainer.is_global_zero or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        writers = [logger.experiment for logger in trainer.loggers if isinstance(logger, TensorBoardLogger)]
        if not writers:
            return
        names = list(pl_module.class_names)
        step = max(trainer.global_step - 1, 0)  # the step Lightning logs the epoch's validation scalars at
        for split in self.splits:
            if split not in pl_module.eval_inputs:
                continue
            scores, targets = (t.cpu().numpy() for t in pl_module.eval_inputs[split])
            ap = [float(v) for v in pl_module.results[split]["AP"]]
            epoch = f"epoch {trainer.current_epoch}"
            figures = {
                f"{split}/per_class_AP": per_class_ap_figure({split: ap}, names, f"Per-class AP, {split}, {epoch}"),
                f"{split}/pr_curves": pr_curves_figure(scores, targets, names, f"Precision-recall, {split}, {epoch}"),
            }
            for tag, figure in figures.items():
                for writer in writers:
                    writer.add_figure(tag, figure, global_step=step, close=False)
                plt.close(figure)


class StagedFineTuning(L.Callback):
    """Two-stage fine-tuning of any method (see the module docstring for the protocol).

    Args:
        stage1_epochs: epochs with the backbone frozen; ``"auto"`` (default): the method's recipe's
            (``Recipe.staged_stage1_epochs``, graphMLC's: 10 for heads whose classifiers a GCN generates, 3 for GGNN
            and the others).
        stage2_epochs: epochs with the backbone trainable (graphMLC: 5).
        stage1_lr, stage1_min_lr: stage 1's cosine from peak to floor (1e-3 -> 1e-4).
        stage2_lr, stage2_min_lr: stage 2's (1e-4 -> 1e-6).
        stage2_trainable_stages: backbone stages trained in stage 2, counted from the deepest (1 = ResNet layer4, as
            graphMLC for ResNet-101/ResNeXt-101); None trains every stage the method itself trains (a method's own
            frozen stages, e.g. SSGRL's conv1..layer3, are never unfrozen).
        weight_decay: Adam's (L2) weight decay (graphMLC: none).
        backbone_lr_mult: the backbone's learning-rate factor in both stages (graphMLC: 1, one rate for all).
    """

    def __init__(
        self,
        stage1_epochs: int | str = "auto",
        stage2_epochs: int = 5,
        stage1_lr: float = 1e-3,
        stage1_min_lr: float = 1e-4,
        stage2_lr: float = 1e-4,
        stage2_min_lr: float = 1e-6,
        stage2_trainable_stages: int | None = None,
        weight_decay: float = 0.0,
        backbone_lr_mult: float = 1.0,
    ) -> None:
        if stage1_epochs != "auto" and (not isinstance(stage1_epochs, int) or stage1_epochs < 1) or stage2_epochs < 0:
            raise ValueError(
                f"stage1_epochs must be 'auto' or >= 1 and stage2_epochs >= 0, got {stage1_epochs!r}, {stage2_epochs}"
            )
        self.stage1_setting = stage1_epochs
        self.stage1_epochs = 3 if stage1_epochs == "auto" else stage1_epochs
        self.stage2_epochs = int(stage2_epochs)
        self.peaks, self.floors = (stage1_lr, stage2_lr), (stage1_min_lr, stage2_min_lr)
        self.stage2_trainable_stages = stage2_trainable_stages
        self.weight_decay = weight_decay
        self.backbone_lr_mult = backbone_lr_mult
        self._stage2: int | None = None  # the backbone's trainable stages in stage 2 (set in setup)

    @property
    def total_epochs(self) -> int:
        return self.stage1_epochs + self.stage2_epochs

    def stage(self, epoch: int) -> int:
        """1 or 2: the stage epoch ``epoch`` (0-based) belongs to."""
        return 1 if epoch < self.stage1_epochs else 2

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if getattr(trainer.datamodule, "feature_cache", None):
            raise ValueError(
                "StagedFineTuning trains the backbone in stage 2, which a feature cache cannot: train stage 1 on the "
                "cache (a frozen backbone) and stage 2 from images with init_from"
            )
        ddp_kwargs = getattr(trainer.strategy, "_ddp_kwargs", {}) or {}
        if isinstance(trainer.strategy, DDPStrategy) and not ddp_kwargs.get("find_unused_parameters"):
            rank_zero_warn(
                "StagedFineTuning freezes the backbone after DDP has wrapped the model: use the strategy "
                "'ddp_find_unused_parameters_true', or DDP stops at the first stage-1 step"
            )
        if self.stage1_setting == "auto":
            self.stage1_epochs = get_recipe(pl_module.model.config["method"]).staged_stage1_epochs
        backbone = pl_module.model.backbone
        own = backbone.trainable_stages
        wanted = self.stage2_trainable_stages
        # the optimiser is built from the stage-2 trainable parameters; stage 1 freezes the rest of them
        self._stage2 = own if wanted is None else (wanted if own is None else min(own, wanted))
        backbone.set_trainable_stages(self._stage2)
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
        if trainer.max_epochs != self.total_epochs:
            rank_zero_info(
                f"StagedFineTuning: max_epochs set to {self.total_epochs} ({self.stage1_epochs} + {self.stage2_epochs})"
            )
            trainer.fit_loop.max_epochs = self.total_epochs
        pl_module.optimizer_factory = partial(torch.optim.Adam, lr=self.peaks[0], weight_decay=self.weight_decay)
        pl_module.backbone_lr_mult = self.backbone_lr_mult
        pl_module.scheduler_factory = partial(
            TwoStageCosineLR,
            epochs=(self.stage1_epochs, max(self.stage2_epochs, 1)),
            peaks=self.peaks,
            floors=self.floors,
        )

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        backbone = pl_module.model.backbone
        if self.stage(epoch) == 1:
            backbone.set_trainable_stages(0)  # no gradients, BatchNorm statistics frozen
            return
        backbone.set_trainable_stages(self._stage2)
        if epoch == self.stage1_epochs:  # a fresh Adam for stage 2
            for optimizer in trainer.optimizers:
                optimizer.state.clear()
            rank_zero_info(f"StagedFineTuning: stage 2 from epoch {epoch}, backbone stages trained: {self._stage2}")

    def state_dict(self) -> dict[str, Any]:
        return {"stage1_epochs": self.stage1_epochs, "stage2_epochs": self.stage2_epochs}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = (state_dict.get("stage1_epochs"), state_dict.get("stage2_epochs"))
        if saved != (self.stage1_epochs, self.stage2_epochs):
            raise ValueError(
                f"the checkpoint was trained with stages {saved}, this run is configured with "
                f"{(self.stage1_epochs, self.stage2_epochs)}"
            )
