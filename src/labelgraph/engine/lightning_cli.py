"""LightningCLI over the task and the data module: what ``labelgraph fit|validate|test`` and a sweep's points run."""

from __future__ import annotations

import warnings

from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

from labelgraph.data import MultiLabelDataModule
from labelgraph.engine.checkpoint_io import SafeCheckpointIO
from labelgraph.engine.task import MultiLabelTask


class LabelGraphCLI(LightningCLI):
    """LightningCLI that passes what only the data knows to the model."""

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.label_graph", "model.label_graph", apply_on="instantiate")


def make_cli(argv: list[str], run: bool = True) -> LabelGraphCLI:
    """The Lightning CLI of ``labelgraph fit|validate|test`` (``run=False``: instantiate only)."""
    # ``labelgraph fit ...`` hands its own argv over; Lightning's caution about args beside sys.argv is not for it
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended to run from within Python")
    return LabelGraphCLI(
        MultiLabelTask,
        MultiLabelDataModule,
        args=argv,
        run=run,
        save_config_kwargs={"overwrite": True},
        trainer_defaults={"plugins": [SafeCheckpointIO()]},  # atomic checkpoint writes, weights_only reads
        parser_kwargs={"prog": "labelgraph", **({"parser_mode": "omegaconf"} if has_omegaconf() else {})},
    )


def has_omegaconf() -> bool:
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        return False
    return True
