"""A method's recipe: everything it trains and evaluates with, declared once beside its builder.

Each method module registers its builder together with its recipe (``@register_model("ml_gcn", recipe=RECIPE)``);
:func:`labelgraph.models.get_recipe` returns it. The engine builds the task's criterion, auxiliary losses, optimiser,
schedule and EMA from it (:mod:`labelgraph.engine.recipes`); ``labelgraph fit`` takes its image size, transforms,
batch, epochs, clipping and early stopping as its defaults (:meth:`Recipe.fit_defaults`), so the shipped
``configs/<method>_*.yaml`` hold only the dataset, the paths and what departs from the recipe (a test refuses a
restated value); ``labelgraph demo`` trains every method from its recipe scaled to the demo (:meth:`Recipe.scaled`);
``create_model`` gives the model its recipe's input (``model.preprocessing``); model cards show it. Nothing else in
the package tests a method's name.

A recipe is plain data -- numbers, strings and :class:`Component` s (a class named by its import path with its
keyword arguments, as a LightningCLI config writes ``class_path`` / ``init_args``) -- so it can be printed, compared
with a YAML config and recorded in ``results.json`` and model cards without importing the classes it names.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Component:
    """A class and its keyword arguments: ``Component("torch.optim.SGD", {"lr": 0.1})``.

    The engine instantiates it (optimisers and schedulers receive their parameters / optimiser first).
    """

    class_path: str
    init_args: dict[str, Any] = field(default_factory=dict)

    def replace(self, **init_args: Any) -> Component:
        """The same class with some arguments changed."""
        return Component(self.class_path, {**self.init_args, **init_args})

    def describe(self) -> str:
        """``AdamW(lr 0.0001, weight_decay 0.01)``: the class name and its arguments, on one line."""
        args = ", ".join(f"{k} {v:g}" if isinstance(v, float) else f"{k} {v}" for k, v in self.init_args.items())
        return f"{self.class_path.rsplit('.', 1)[-1]}({args})"

    def to_config(self) -> dict[str, Any]:
        """As a LightningCLI config writes it."""
        return {"class_path": self.class_path, "init_args": dict(self.init_args)}


def asl(preset: dict[str, Any]) -> Component:
    """The asymmetric loss with the given arguments (``labelgraph.losses.ASL_PRESETS`` names the papers')."""
    return Component("labelgraph.losses.AsymmetricLoss", dict(preset))


MASKED_BCE = Component("labelgraph.losses.MaskedBCEWithLogitsLoss")
ONE_CYCLE = Component("labelgraph.engine.schedulers.OneCycleLR", {"pct_start": 0.2})


@dataclass(frozen=True)
class WarmStart:
    """The method starts from another method trained first with *this* recipe's loss and optimiser (SADCL's official
    two stages: Query2Label, then SADCL from its weights and its class prototypes).

    Args:
        method: the method trained first.
        share: its fraction of a run's epochs (the demo splits one budget between the stages).
        prototype_threshold: the probability a training image's label must exceed for its label feature to enter the
            class prototype (mean of confident positives).
    """

    method: str
    share: float = 0.5
    prototype_threshold: float = 0.85

    def first_epochs(self, epochs: int) -> int:
        """The epochs of the first stage within a run of ``epochs``."""
        return math.ceil(epochs * self.share)


@dataclass(frozen=True)
class ImageEmbeddings:
    """The method's label embeddings are the class means of a trained model's pooled image features, reduced by PCA
    (IML-GCN), instead of word vectors.

    Args:
        method: the method whose trained model provides the features (trained first when not trained already).
        pca: dimensions kept; None: C - 1, the most that PCA of C class means can give.
    """

    method: str = "baseline"
    pca: int | None = None


#: the short-run optimiser for recipes without a warm-up (see :meth:`Recipe.scaled`)
SHORT_RUN_LR = 1e-3
#: the short-run peak of recipes with a warm-up (Query2Label's paper peak; see :meth:`Recipe.scaled`)
SHORT_RUN_PEAK_LR = 1e-4


@dataclass(frozen=True)
class Recipe:
    """How a method trains and is evaluated, with the values of its paper (its official code where the paper is
    silent). Every field has the meaning of the ``labelgraph fit`` option of the same name.

    Args:
        source: where the values come from (paper, script, file).
        backbone: the backbone the paper trains (``torchvision/resnet101``: the ImageNet weights of the papers' code).
        model_args: builder arguments as the paper's configuration states them: the builder's defaults, which are the
            paper's (an ``"auto"`` default resolves to this value on pretrained weights; a test holds them equal).
        criterion: the classification loss.
        aux_losses: the method's own extra terms, computed from ``forward_train`` outputs, with their weights.
        aux_tied_to_criterion: the auxiliary weights were tuned against this criterion's scale (SADCL's 100 / 50 are
            relative to ASL's mean x 1000): pairing them with another criterion is warned about.
        optimizer: the optimiser; its ``lr`` is the head's, each parameter group gets ``lr x lr_mult``.
        backbone_lr_mult: the backbone's learning-rate factor (the graph papers: 0.1).
        lr_scheduler: the schedule, or None for a constant learning rate (a scheduler class with ``interval =
            "step"`` is stepped per batch).
        ema_decay: an exponential moving average of the weights, evaluated beside them; None: none.
        epochs, batch_size, drop_last, gradient_clip_val, early_stopping_patience: the run (``trainer`` and ``data``).
        image_size, train_transform, eval_transform: the input (presets of :mod:`labelgraph.data.transforms`).
        metrics: the preset of :data:`labelgraph.evaluation.metrics.METRIC_PRESETS` its paper evaluates with.
        staged_stage1_epochs: stage 1 of graphMLC's two-stage protocol (``StagedFineTuning`` with
            ``stage1_epochs: auto``): 10 for heads whose classifiers a GCN generates, 3 for the others.
        prerequisite: a model trained before this one that it needs (:class:`WarmStart`, :class:`ImageEmbeddings`).
        short_run_lr: the head's learning rate when the recipe is scaled to a short run (:meth:`scaled`) and does not
            warm up, where AdamW's usual 1e-3 is too fast for the head (C-Tran's transformer, which its paper trains
            at a constant 1e-5); None: 1e-3.
        label_mask_training: C-Tran's label-mask training: each training image reveals a random number of its labels,
            from none to this fraction of the classes, to a head that conditions on known labels (``forward_known``),
            and the loss counts only the entries not revealed; None: off.
    """

    source: str
    backbone: str = "torchvision/resnet101"
    model_args: dict[str, Any] = field(default_factory=dict)
    criterion: Component = MASKED_BCE
    aux_losses: tuple[Component, ...] = ()
    aux_tied_to_criterion: bool = False
    optimizer: Component = Component("torch.optim.SGD", {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4})
    backbone_lr_mult: float = 0.1
    lr_scheduler: Component | None = Component("torch.optim.lr_scheduler.StepLR", {"step_size": 40, "gamma": 0.1})
    ema_decay: float | None = None
    epochs: int = 100
    batch_size: int = 16
    drop_last: bool = False
    gradient_clip_val: float | None = 10.0
    early_stopping_patience: int | None = None
    image_size: int = 448
    train_transform: str = "ml_gcn"
    eval_transform: str = "resize"
    metrics: str = "ml_gcn"
    staged_stage1_epochs: int = 3
    prerequisite: WarmStart | ImageEmbeddings | None = None
    short_run_lr: float | None = None
    label_mask_training: float | None = None

    def replace(self, **changes: Any) -> Recipe:
        return dataclasses.replace(self, **changes)

    @property
    def warms_up(self) -> bool:
        """Whether its schedule starts with a warm-up (one-cycle): a recipe tuned to reach its peak learning rate
        gradually, from which a short run keeps its optimiser (:meth:`scaled`)."""
        return self.lr_scheduler is not None and self.lr_scheduler.class_path.endswith("OneCycleLR")

    def scaled(
        self,
        *,
        epochs: int,
        steps_per_epoch: int,
        batch_size: int,
        image_size: int,
        lr: float | None = None,
        peak_lr: float | None = None,
    ) -> Recipe:
        """This recipe scaled to a short run on small data (the demo's epochs, batch and size).

        - A recipe that warms up (one-cycle: Query2Label, SADCL, ML-Decoder) keeps its optimiser class, weight decay
          and schedule at a peak of ``peak_lr`` (default 1e-4, Query2Label's paper peak), its backbone factor, and its
          EMA with a horizon 1 / (1 - decay) of one epoch (the papers' 0.9997 spans ~2.6 COCO epochs; over a few short
          epochs it would average the first epochs' weights). Where its builder freezes BatchNorm statistics and early
          stages on pretrained weights (Query2Label's ResNet setting), they are re-estimated and trained instead: the
          statistics of the pretrained weights (the demo's stand-in: 48-px isolated items; ImageNet's photographs) are
          not those of a small dataset's images (frozen, Query2Label loses 3.3 mAP on the demo data).
        - Any other recipe (SGD or Adam with step or no decay, tuned for 40-200 epochs of COCO) trains with AdamW at
          ``lr`` (default ``short_run_lr``, else 1e-3), weight decay 1e-4, cosine decay over the run, the backbone at
          0.1x (the graph papers' factor) and no EMA.
        - The run: light augmentation (squash resize + flip), squash-resized evaluation, at ``image_size``, gradient
          norms clipped at 10.

        The criterion, auxiliary losses, metric preset and prerequisite are the recipe's.
        """
        data = {
            "epochs": epochs,
            "batch_size": batch_size,
            "image_size": image_size,
            "drop_last": False,
            "train_transform": "flip",
            "eval_transform": "resize",
            "early_stopping_patience": None,
            "gradient_clip_val": 10.0,
        }
        if not self.warms_up:
            return self.replace(
                **data,
                source=f"{self.source}; scaled to a short run",
                optimizer=Component("torch.optim.AdamW", {"lr": lr or self.short_run_rate, "weight_decay": 1e-4}),
                lr_scheduler=Component("torch.optim.lr_scheduler.CosineAnnealingLR", {"T_max": epochs}),
                backbone_lr_mult=0.1,
                ema_decay=None,
                model_args={},
            )
        decay = round(1.0 - 1.0 / max(steps_per_epoch, 2), 6) if self.ema_decay is not None else None
        return self.replace(
            **data,
            source=f"{self.source}; scaled to a short run",
            optimizer=self.optimizer.replace(lr=peak_lr or SHORT_RUN_PEAK_LR),
            ema_decay=decay,
            model_args={"frozen_batchnorm": False, "trainable_stages": None},
        )

    @property
    def short_run_rate(self) -> float:
        """The head's learning rate in a short run: a warm-up recipe's peak, else ``short_run_lr`` or 1e-3."""
        return SHORT_RUN_PEAK_LR if self.warms_up else (self.short_run_lr or SHORT_RUN_LR)

    def fit_defaults(self) -> dict[str, Any]:
        """The ``labelgraph fit`` options this recipe sets, by their dotted names: the defaults of the method's run
        (the task takes the loss, optimiser, schedule, backbone factor, EMA and metrics from the recipe itself)."""
        return {
            "trainer.max_epochs": self.epochs,
            "trainer.gradient_clip_val": self.gradient_clip_val,
            "model.early_stopping_patience": self.early_stopping_patience,
            **{f"data.{name}": value for name, value in self.data_options().items()},
        }

    def data_options(self) -> dict[str, Any]:
        """The data module's arguments this recipe sets (:class:`~labelgraph.data.MultiLabelDataModule`)."""
        return {
            "image_size": self.image_size,
            "train_transform": self.train_transform,
            "eval_transform": self.eval_transform,
            "batch_size": self.batch_size,
            "drop_last": self.drop_last,
        }

    def describe(self) -> dict[str, Any]:
        """The recipe in a few lines of JSON (``results.json``, model cards)."""
        return {
            "criterion": self.criterion.describe(),
            "aux_losses": [a.describe() for a in self.aux_losses],
            "optimizer": self.optimizer.describe(),
            "backbone_lr_mult": self.backbone_lr_mult,
            "schedule": self.lr_scheduler.describe() if self.lr_scheduler else "constant",
            "ema": self.ema_decay,
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "image_size": self.image_size,
            "transforms": f"{self.train_transform} / {self.eval_transform}",
            "metrics": self.metrics,
            "source": self.source,
        }
