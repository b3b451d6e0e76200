"""Figures at every validation end, for the loggers that show images (TensorBoard): per-class AP and PR curves.

A Lightning callback the recipes list (``labelgraph.visualization.validation_figures.ValidationFigures``). The
scalars (mAP, CF1, OF1, ...) are logged by the task itself to every logger; these figures go where a figure can go:
TensorBoard's ``add_figure`` (the Images tab). Other loggers (CSV, W&B, MLflow) get the scalars only.
"""

from __future__ import annotations

import lightning as L
import matplotlib.pyplot as plt
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.loggers import TensorBoardLogger

from labelgraph.visualization.plots import pr_curves_figure
from labelgraph.visualization.report import per_class_ap_figure


class ValidationFigures(Callback):
    """Log ``{split}/per_class_AP`` (bars) and ``{split}/pr_curves`` of the last validation, every
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
