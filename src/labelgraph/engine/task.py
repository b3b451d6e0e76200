"""``MultiLabelTask``: the one training loop (a LightningModule) shared by every method."""

from __future__ import annotations

import math
import random
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
import torch.nn as nn
from lightning.pytorch.callbacks import EarlyStopping
from lightning.pytorch.cli import LRSchedulerCallable, OptimizerCallable
from timm.utils import ModelEmaV3

from labelgraph.data import MultiLabelDataModule
from labelgraph.data.classes import check_same_classes
from labelgraph.data.hide_labels import label_setting_of, reveal_labels
from labelgraph.engine.recipes import (
    build_aux_losses,
    build_criterion,
    check_loss_scale,
    describe_loss,
    optimizer_factory,
    scheduler_factory,
)
from labelgraph.engine.schedulers import planned_steps
from labelgraph.errors import InvalidInputError
from labelgraph.evaluation.metrics import METRIC_PRESETS, SCALAR_KEYS, MultiLabelMetrics
from labelgraph.graph import LabelGraph
from labelgraph.losses import AuxiliaryLoss
from labelgraph.losses.incomplete_labels import IncompleteLabelLoss
from labelgraph.losses.incomplete_registry import incomplete_label_loss
from labelgraph.models import ModelConfig, Recipe, create_model, get_recipe, initialise_from


def random_states() -> dict[str, Any]:
    """Python's and torch's (CPU and CUDA) random states, in types ``torch.load(weights_only=True)`` accepts."""
    version, internal, gauss = random.getstate()
    states: dict[str, Any] = {"python": [version, list(internal), gauss], "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_random_states(states: dict[str, Any]) -> None:
    version, internal, gauss = states["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available() and len(states["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(states["cuda"])


def classification_criterion(recipe: Recipe, criterion: nn.Module | None, loss: str | None) -> nn.Module:
    """``criterion``, else the incomplete-label loss ``loss`` at the scale of the recipe's criterion, else that."""
    if loss is not None and criterion is not None:
        raise ValueError("give criterion or loss, not both")
    if loss is not None:
        return incomplete_label_loss(loss, scale=float(getattr(build_criterion(recipe), "scale", 1.0)))
    return criterion if criterion is not None else build_criterion(recipe)


class MultiLabelTask(L.LightningModule):
    """Train, validate and test any registered method.

    The network is built from its registry name and arguments; what only the data knows (``num_classes``,
    ``class_names``, ``label_graph``) is linked in from the data module by the CLI, or passed by the caller. Whatever
    is left unset is the method's recipe (:func:`labelgraph.models.get_recipe`: its paper's loss, auxiliary terms,
    optimiser, schedule, backbone learning-rate factor, EMA and metrics); whatever is set wins.

    Args:
        method: a registered method (``labelgraph models`` lists them).
        backbone: timm name or ``torchvision/<name>``; None: the recipe's.
        pretrained: backbone weights: False, True (hub) or a local file.
        model_args: further keyword arguments of the method's builder (its paper defaults otherwise).
        num_classes: number of classes (linked from the data).
        class_names: class names in output order (linked from the data; stored in checkpoints and checked on load).
        label_graph: label statistics of the train split (linked from the data).
        criterion: classification loss on ``(logits, targets)``; None: the recipe's (ASL for Query2Label, SADCL,
            ML-Decoder and IML-GCN, else BCE that ignores unknown targets). A criterion of another scale than the one
            the recipe's auxiliary weights assume is warned about.
        loss: an incomplete-label loss by name (``labelgraph.losses.INCOMPLETE_LABEL_LOSSES``: ``ignore``, ``an``,
            ``wan``, ``partial_bce``, ``epr``, ``role``, ``ll_r``, ``ll_ct``, ``ll_cp``, ``hill``, ``splc``) in place of
            the recipe's criterion, at that criterion's ``scale`` (so the recipe's auxiliary weights keep their
            balance). It is prepared from the data module's train (and validation) split before training and told
            the epoch; ROLE and LL-Cp get each batch's row numbers from the data module's train set.
        aux_losses: method-specific terms computed from ``forward_train`` outputs; None: the recipe's (A-GCN/LGLM's
            graph sparsity, SADCL's contrastive terms), [] none.
        optimizer: a callable building the optimizer from parameter groups; None: the recipe's.
        lr_scheduler: a callable building the scheduler from the optimizer; None: the recipe's (which may be none);
            stepped per epoch, or per batch when the scheduler says ``interval = "step"``
            (``labelgraph.engine.schedulers.OneCycleLR``, whose total steps the task plans from the trainer).
        backbone_lr_mult: learning-rate factor of the backbone; None: the recipe's (the graph papers: 0.1) when the
            backbone starts from pretrained weights, 1 from random ones.
        ema_decay: keep an exponential moving average of the weights with this decay and evaluate it alongside the
            raw weights (logged under ``val_ema/``); ``"recipe"`` (default): the recipe's (Query2Label: 0.9997);
            None: no EMA.
        metrics: a preset of ``labelgraph.evaluation.metrics.METRIC_PRESETS``; None: the recipe's.
        threshold: override the preset's probability threshold.
        init_from: start from the weights of a trained model (an exported model folder or a Lightning checkpoint):
            every tensor whose name and shape match is copied, the rest keep their initialisation (SADCL's second
            stage from a Query2Label run; a VOC run from a COCO model). The copied/skipped counts are logged.
        early_stopping_patience: stop after this many validation epochs without a better mAP (of the better of the
            raw and EMA weights when there is an EMA); None: never. ``labelgraph fit`` defaults it to the recipe's
            (Query2Label and SADCL: 8). A trainer given its own ``EarlyStopping`` callback keeps that one.
    """

    def __init__(
        self,
        method: str = "baseline",
        backbone: str | None = None,
        pretrained: bool | str = False,
        model_args: dict[str, Any] | None = None,
        num_classes: int = 0,
        class_names: list[str] | None = None,
        label_graph: LabelGraph | None = None,
        criterion: nn.Module | None = None,
        loss: str | None = None,
        aux_losses: list[AuxiliaryLoss] | None = None,
        optimizer: OptimizerCallable | None = None,
        lr_scheduler: LRSchedulerCallable | None = None,
        backbone_lr_mult: float | None = None,
        ema_decay: float | Literal["recipe"] | None = "recipe",
        metrics: str | None = None,
        threshold: float | None = None,
        init_from: str | None = None,
        early_stopping_patience: int | None = None,
    ) -> None:
        super().__init__()
        if num_classes <= 0:
            raise ValueError("num_classes must be positive (the CLI links it from the data module)")
        if class_names is not None and len(class_names) != num_classes:
            raise ValueError(f"{len(class_names)} class names for num_classes={num_classes}")
        recipe = get_recipe(method)
        metrics = metrics or recipe.metrics
        if metrics not in METRIC_PRESETS:
            raise InvalidInputError(f"unknown metrics preset {metrics!r}; available: {', '.join(METRIC_PRESETS)}")
        self.save_hyperparameters(ignore=["label_graph", "criterion", "aux_losses", "optimizer", "lr_scheduler"])
        self.recipe, self.metrics_preset = recipe, metrics
        self.class_names = list(class_names) if class_names is not None else [str(i) for i in range(num_classes)]
        self.label_graph = label_graph
        self.model = create_model(
            method,
            num_classes=num_classes,
            label_graph=label_graph,
            backbone=backbone or recipe.backbone,
            pretrained=pretrained,
            **(model_args or {}),
        )
        if getattr(self.model.backbone, "frozen", None):  # frozen stages stay in eval mode on purpose
            warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
        if init_from:
            initialise_from(self.model, init_from)
        self.criterion = classification_criterion(recipe, criterion, loss)
        self.label_setting: str | None = None  # what the train split's targets look like (set when fitting)
        self.aux_losses = nn.ModuleList(build_aux_losses(recipe) if aux_losses is None else aux_losses)
        if aux_losses is None and loss is None:  # the paper's weights, tied to the paper's criterion
            check_loss_scale(method, recipe, self.criterion, list(self.aux_losses))
        self.optimizer_factory = optimizer if optimizer is not None else optimizer_factory(recipe)
        self.scheduler_factory = lr_scheduler if lr_scheduler is not None else scheduler_factory(recipe)
        if backbone_lr_mult is None:  # the recipe's factor is for pretrained weights; random ones train at full rate
            backbone_lr_mult = recipe.backbone_lr_mult if pretrained else 1.0
        self.backbone_lr_mult = backbone_lr_mult
        self.ema: ModelEmaV3 | None = None
        decay = recipe.ema_decay if ema_decay == "recipe" else ema_decay
        if decay is not None:
            self.ema = ModelEmaV3(self.model, decay=decay)
            self.ema.requires_grad_(False)
        metric_kwargs = dict(METRIC_PRESETS[metrics])
        if threshold is not None:
            metric_kwargs["threshold"] = threshold
        self.metric_kwargs = metric_kwargs
        self.eval_metrics = nn.ModuleDict({name: MultiLabelMetrics(**metric_kwargs) for name in ("val", "test")})
        self.ema_metrics = nn.ModuleDict({name: MultiLabelMetrics(**metric_kwargs) for name in ("val", "test")})
        self.results: dict[str, dict[str, Any]] = {}  # last computed metrics per stage (incl. per-class AP)
        self.eval_inputs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}  # the scores/targets behind them

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.model(images)

    # -- training ---------------------------------------------------------------------------------------------
    def setup(self, stage: str) -> None:
        """Before fitting: note the train split's label setting, prepare an incomplete-label loss from the splits'
        targets, and ask the train set for each sample's row number when the loss keeps per-sample state."""
        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        if isinstance(datamodule, MultiLabelDataModule):  # the network evaluates as the data module does
            for network in (self.model, *([self.ema.module] if self.ema is not None else [])):
                network.image_size, network.eval_transform = datamodule.image_size, datamodule.eval_transform_name
        train_table = getattr(datamodule, "train_table", None)
        if stage != "fit" or train_table is None:
            return
        self.label_setting = label_setting_of(train_table.targets)
        if not isinstance(self.criterion, IncompleteLabelLoss):
            return
        val_table = getattr(datamodule, "val_table", None)
        self.criterion.prepare(train_table.targets, None if val_table is None else val_table.targets)
        if self.criterion.needs_sample_index:
            datamodule.train_set.return_index = True

    def configure_callbacks(self) -> list[L.Callback]:
        """The early stopping the task was given, unless the trainer has its own (Lightning would replace it)."""
        patience = self.hparams.get("early_stopping_patience")
        if patience is None or any(isinstance(c, EarlyStopping) for c in self.trainer.callbacks):
            return []
        monitor = "val_best/mAP" if self.ema is not None else "val/mAP"
        return [EarlyStopping(monitor=monitor, mode="max", patience=patience)]

    def on_train_epoch_start(self) -> None:
        if isinstance(self.criterion, IncompleteLabelLoss):
            self.criterion.set_epoch(self.current_epoch)

    def classification_loss(self, logits: torch.Tensor, targets: torch.Tensor, index: torch.Tensor | None) -> Any:
        if not isinstance(self.criterion, IncompleteLabelLoss):
            return self.criterion(logits, targets)
        if self.criterion.needs_sample_index and index is None:
            raise InvalidInputError(
                f"{type(self.criterion).__name__} keeps per-sample state and needs each batch's row numbers in the "
                "train split: train with a MultiLabelDataModule (the task asks its train set for them)"
            )
        return self.criterion(logits, targets, index)

    def training_step(self, batch: tuple[torch.Tensor, ...] | None, batch_idx: int) -> torch.Tensor | None:
        if batch is None:  # every image of the batch was unreadable and skipped
            return None
        images, targets, *rest = batch  # images: (B, 3, H, W), or a list of feature maps from a feature cache
        index = rest[0] if rest else None  # (B,) row numbers in the train split, when the loss asked for them
        outputs, loss_targets = self.train_outputs(images, targets)
        loss = self.classification_loss(outputs["logits"], loss_targets, index)
        self.log("train/cls_loss", loss, on_step=True, on_epoch=True, batch_size=len(targets))
        for aux in self.aux_losses:
            term = aux(outputs, targets)
            self.log(f"train/{aux.name}", term, batch_size=len(targets))
            loss = loss + term
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss ({loss.item()}) at global step {self.global_step} (epoch {self.current_epoch}, "
                f"batch {batch_idx}); lower the learning rate or enable gradient clipping. Checkpoints written so far "
                "are intact."
            )
        self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=True, batch_size=len(targets))
        self.model.head.after_loss(outputs, targets)  # e.g. SADCL's memory bank takes this batch's confident positives
        return loss

    def train_outputs(self, images: Any, targets: torch.Tensor) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """``forward_train``'s outputs and the targets the loss reads. Under label-mask training (the recipe's
        ``label_mask_training``, C-Tran) the head is shown a random share of each image's labels and the loss
        counts only the others: the shown entries become unknown (-1) to a criterion that ignores unknowns
        (an incomplete-label loss, which gives unknowns a meaning of its own, reads the targets as they are)."""
        fraction = self.recipe.label_mask_training
        if fraction is None or not self.model.head.provides("forward_known"):
            return self.model.forward_train(images), targets
        known = reveal_labels(targets, fraction)
        logits = self.model.forward_known(images, known)
        if isinstance(self.criterion, IncompleteLabelLoss):
            return {"logits": logits}, targets
        return {"logits": logits}, targets.masked_fill(known >= 0, -1)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self.ema is not None:
            self.ema.update(self.model, step=self.global_step)

    # -- evaluation ---------------------------------------------------------------------------------------------
    def _eval_step(self, stage: str, batch: tuple[torch.Tensor, torch.Tensor] | None) -> None:
        if batch is None:
            return
        images, targets, *_ = batch
        logits = self.model(images)
        self.log(f"{stage}/loss", self.criterion(logits, targets), batch_size=len(targets), sync_dist=True)
        self.eval_metrics[stage].update(torch.sigmoid(logits.float()), targets)
        if self.ema is not None:
            self.ema_metrics[stage].update(torch.sigmoid(self.ema.module(images).float()), targets)

    def _eval_epoch_end(self, stage: str) -> None:
        for prefix, metric in ((stage, self.eval_metrics[stage]), (f"{stage}_ema", self.ema_metrics[stage])):
            if prefix.endswith("_ema") and self.ema is None:
                continue
            if not metric.update_called:
                continue
            result = metric.compute()
            self.eval_inputs[prefix] = metric.computed_inputs  # (N, C) scores and targets, for the figures
            metric.reset()
            self.results[prefix] = result
            scalars = {f"{prefix}/{k}": v for k, v in scalar_metrics(result).items()}
            scalars = {k: (0.0 if math.isnan(v) else v) for k, v in scalars.items()}
            main = f"{prefix}/mAP"
            self.log(main, scalars.pop(main), prog_bar=True)
            self.log_dict(scalars)
        if self.ema is not None and stage == "val" and {"val", "val_ema"} <= set(self.results):
            # what a run that keeps the better of raw and EMA weights should monitor: the better one's mAP
            best = max(self.results["val"]["mAP"], self.results["val_ema"]["mAP"])
            self.log("val_best/mAP", 0.0 if math.isnan(best) else best)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    # -- optimisation -------------------------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        groups = self.model.parameter_groups(self.backbone_lr_mult)
        aux_params = [p for p in self.aux_losses.parameters() if p.requires_grad]
        if aux_params:
            groups.append({"name": "aux_losses", "params": aux_params, "lr_mult": 1.0})
        criterion_params = [p for p in self.criterion.parameters() if p.requires_grad]
        if criterion_params:  # ROLE's label estimates: their own rate, no weight decay
            lr_mult = getattr(self.criterion, "lr_mult", 1.0)
            groups.append({"name": "criterion", "params": criterion_params, "lr_mult": lr_mult, "weight_decay": 0.0})
        optimizer = self.optimizer_factory(groups)
        for group in optimizer.param_groups:  # per-group learning rates relative to the configured one
            group["lr"] = group["lr"] * group.get("lr_mult", 1.0)
        if self.scheduler_factory is None:
            return optimizer
        if self._trainer is not None:
            with planned_steps(self._planned_total_steps):
                scheduler = self.scheduler_factory(optimizer)
        else:  # outside a Trainer (a caller may plan the steps itself with labelgraph.engine.schedulers.planned_steps)
            scheduler = self.scheduler_factory(optimizer)
        interval = getattr(scheduler, "interval", "epoch")
        config = {"scheduler": scheduler, "interval": interval}
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):  # C-Tran: on the validation loss
            config["monitor"] = "val/loss"
        return {"optimizer": optimizer, "lr_scheduler": config}

    def _planned_total_steps(self) -> int:
        """Optimisation steps of the whole run, for schedules that need them (one-cycle).

        Counted from the data module's train set where there is one: ``trainer.estimated_stepping_batches`` would
        build the train loader before a checkpoint's loop state is restored, so loader workers would prefetch a
        resumed run's first batches in epoch 0's order.
        """
        trainer = self.trainer
        if trainer.max_steps is not None and trainer.max_steps > 0:
            return trainer.max_steps
        datamodule = getattr(trainer, "datamodule", None)
        train_set = getattr(datamodule, "train_set", None)
        if train_set is None or trainer.max_epochs is None or trainer.max_epochs < 0:
            return int(trainer.estimated_stepping_batches)
        per_rank = math.ceil(len(train_set) / trainer.world_size)
        batch = datamodule.batch_size
        batches = per_rank // batch if datamodule.drop_last else math.ceil(per_rank / batch)
        limit = trainer.limit_train_batches
        batches = int(batches * limit) if isinstance(limit, float) else min(batches, int(limit))
        return max(1, math.ceil(batches / trainer.accumulate_grad_batches)) * trainer.max_epochs

    def better_weights(self) -> str:
        """``"ema"`` when the EMA scored at least as well as the raw weights in the last validation, else
        ``"model"`` -- the weights the official Query2Label/SADCL code keeps, and the ones export, ``init_from`` and
        ``labelgraph prototypes`` read from a checkpoint."""
        if self.ema is None or "val_ema" not in self.results or "val" not in self.results:
            return "model"
        return "ema" if self.results["val_ema"]["mAP"] >= self.results["val"]["mAP"] else "model"

    def better_network(self) -> nn.Module:
        """The network of :meth:`better_weights`."""
        return self.ema.module if self.better_weights() == "ema" else self.model

    # -- checkpoints ------------------------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Record what ``labelgraph export`` needs to rebuild and use the model without the data: its
        :class:`~labelgraph.models.ModelConfig` (method and arguments, classes, input size and eval transform of the
        data module, what it was trained with, the last metrics, the command line) and the label graph."""
        config = ModelConfig.for_model(
            self.model,
            class_names=self.class_names,
            image_size=self.model.image_size,
            eval_transform=self.model.eval_transform,
            label_graph=self.label_graph,
            recipe=self.trained_with(),
            metrics=self.scalar_results() or None,
            command=shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        )
        checkpoint["labelgraph"] = {
            "config": config.to_dict(),
            "weights": self.better_weights(),  # which of model.* / ema.module.* trained and exported models read
            "rng": random_states(),  # so a resumed run draws what the uninterrupted one did
        }
        if self.label_graph is not None:
            tensors, meta = self.label_graph.to_tensors()
            checkpoint["labelgraph"]["label_graph"] = {"tensors": tensors, "metadata": meta}

    def trained_with(self) -> dict[str, Any]:
        """What this task trains with, for the model's config: the recipe it starts from and the values in use."""
        return {
            "recipe": self.hparams.method,
            "criterion": describe_loss(self.criterion),
            "incomplete_label_loss": self.hparams.loss,
            "label_setting": self.label_setting,
            "aux_losses": [f"{describe_loss(a)} x {a.weight:g}" for a in self.aux_losses],
            "backbone_lr_mult": self.backbone_lr_mult,
            "ema_decay": None if self.ema is None else self.ema.decay,
            "metrics": self.metrics_preset,
        }

    def scalar_results(self) -> dict[str, dict[str, float | None]]:
        """The last computed metrics of each split (``val``, ``val_ema``, ``test``), scalars only, with the epoch."""
        out = {}
        for prefix, result in self.results.items():
            scalars = {k: float(v) for k, v in scalar_metrics(result).items()}
            out[prefix] = {k: None if math.isnan(v) else round(v, 4) for k, v in scalars.items()}
            out[prefix]["epoch"] = int(self.current_epoch)
        return out

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        info = checkpoint.get("labelgraph", {})
        saved = info.get("config", {}).get("class_names", info.get("class_names"))  # (before format 2: top level)
        if saved is not None:
            check_same_classes(saved, self.class_names, "checkpoint", "dataset")
        if "rng" in info:
            restore_random_states(info["rng"])


def scalar_metrics(result: dict[str, Any]) -> dict[str, Any]:
    """The one-number entries of an evaluation (mAP, CP, ..., the top-k variants), without per-class AP."""
    return {k: v for k, v in result.items() if k in SCALAR_KEYS or "_top" in k}
