"""How each method trains in ``labelgraph demo``: its own paper's recipe, scaled to the demo's size.

Every method sees the same images for the same number of epochs. The label-graph methods keep the demo's recipe (AdamW
1e-3, weight decay 1e-4, cosine over the epochs, the pretrained backbone at 0.1x: the graph papers fine-tune the
backbone at a tenth of the head's rate). Query2Label, SADCL and ML-Decoder train as their papers do
(:mod:`labelgraph.engine.recipes` and :mod:`labelgraph.losses.method_losses`): AdamW (ML-Decoder: Adam) with their
weight decay, one learning rate for every parameter, a one-cycle schedule with 20 % warm-up stepped per batch, ASL,
and an EMA of the weights of which the better (EMA or raw, by validation mAP) is kept, at the paper's peak learning
rate 1e-4. Two things differ from the papers, both because the demo's backbone is a stand-in: the EMA decay, whose
horizon 1 / (1 - decay) is one epoch of the demo (the official 0.9997 is ~2.6 COCO epochs at batch 64; on the demo's
~60 steps per epoch it would average the first epochs' weights), and BatchNorm, which is re-estimated on the scenes as
it is for every other method instead of frozen (the papers freeze ImageNet statistics; the demo's weights carry the
statistics of 48-px isolated items: frozen, Query2Label loses 3.3 mAP on the demo data -- README, "The demo").
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from labelgraph.engine.recipes import METHOD_RECIPES

DEMO_LR = 1e-3
DEMO_TRANSFORMER_LR = 1e-4  # the peak of Query2Label's and SADCL's one-cycle schedule in the demo: the paper's
# the demo's stand-in weights are not ImageNet's: their BatchNorm statistics are re-estimated (see the docstring)
LIVE_BATCHNORM = {"frozen_batchnorm": False, "trainable_stages": None}


def demo_optimizer(params: Any, lr: float = DEMO_LR) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)


@dataclass
class DemoRecipe:
    """The optimisation of one method in the demo (the losses are the method's own, from the task)."""

    optimizer: Callable[[Any], torch.optim.Optimizer]
    lr_scheduler: Callable[[torch.optim.Optimizer], Any]
    backbone_lr_mult: float
    ema_decay: float | None
    description: dict[str, Any]
    model_args: dict[str, Any] = field(default_factory=dict)  # builder arguments of the recipe (a caller's win)


def demo_recipe(
    method: str, epochs: int, steps_per_epoch: int, lr: float | None = None, transformer_lr: float | None = None
) -> DemoRecipe:
    """The demo's recipe of ``method`` (see the module docstring)."""
    if method not in METHOD_RECIPES:
        head_lr = lr or DEMO_LR
        return DemoRecipe(
            functools.partial(demo_optimizer, lr=head_lr),
            functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=epochs),
            0.1,
            None,
            {"optimizer": f"AdamW lr {head_lr:g} wd 1e-4", "schedule": f"cosine over {epochs} epochs",
             "backbone_lr_mult": 0.1, "ema": None},
        )  # fmt: skip
    recipe = METHOD_RECIPES[method]
    peak = transformer_lr or DEMO_TRANSFORMER_LR
    decay = 1.0 - 1.0 / max(steps_per_epoch, 2)
    weight_decay = recipe.optimizer.keywords["weight_decay"]
    return DemoRecipe(
        functools.partial(recipe.optimizer, lr=peak),
        recipe.lr_scheduler,
        1.0,
        round(decay, 6),
        {"optimizer": f"{getattr(recipe.optimizer.func, '__name__', 'optimizer')} lr {peak:g} wd {weight_decay:g} "
                      f"(paper: {recipe.source})",
         "schedule": "one-cycle, 20 % warm-up, per batch", "backbone_lr_mult": 1.0,
         "ema": f"{decay:.4f} (horizon one epoch), better of EMA/raw by val mAP",
         "batchnorm": "re-estimated, all stages trained (the stand-in weights are not ImageNet's)"},
        dict(LIVE_BATCHNORM),
    )  # fmt: skip
