"""LightningCLI over the task and the data module: what ``labelgraph fit|validate|test`` and a sweep's points run."""

from __future__ import annotations

import sys
import warnings

from lightning.pytorch.cli import ArgsType, LightningArgumentParser, LightningCLI

from labelgraph.data import MultiLabelDataModule
from labelgraph.engine.callbacks import EpochLines
from labelgraph.engine.checkpoint_io import SafeCheckpointIO
from labelgraph.engine.task import MultiLabelTask
from labelgraph.models import get_recipe


class LabelGraphCLI(LightningCLI):
    """LightningCLI that passes what only the data knows to the model, and whose defaults are the method's recipe.

    ``labelgraph fit --model.method ssgrl`` with no config trains and evaluates as SSGRL's recipe says (576 px, its
    random crop for training and centre crop for evaluation, batch 4, 200 epochs, no clipping): the arguments are
    read once to learn the method, its recipe's :meth:`~labelgraph.models.Recipe.fit_defaults` become the parser's
    defaults, and the arguments are read again, so whatever a config file or the command line sets still wins.
    """

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.link_arguments("data.num_classes", "model.num_classes", apply_on="instantiate")
        parser.link_arguments("data.class_names", "model.class_names", apply_on="instantiate")
        parser.link_arguments("data.label_graph", "model.label_graph", apply_on="instantiate")

    def parse_arguments(self, parser: LightningArgumentParser, args: ArgsType) -> None:
        first = sys.argv[1:] if args is None else args  # (a dict or Namespace of settings is read as given)
        if isinstance(first, list):  # the first reading only learns the method: it must not print and exit
            first = [a for a in first if not a.startswith("--print_config")]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
            super().parse_arguments(parser, first)
        subcommand = self.config.get("subcommand")
        method = (self.config[subcommand] if subcommand else self.config).model.method
        self._parser(subcommand).set_defaults(get_recipe(method).fit_defaults())
        super().parse_arguments(parser, args)


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
        trainer_defaults=trainer_defaults(),
        parser_kwargs={"prog": "labelgraph", **({"parser_mode": "omegaconf"} if has_omegaconf() else {})},
    )


def trainer_defaults() -> dict:
    """Atomic checkpoint writes and ``weights_only`` reads; when standard error is not a terminal (CI, ``| tee``,
    ``nohup``), no progress bar -- its carriage returns make a log file unreadable -- but one line an epoch."""
    defaults: dict = {"plugins": [SafeCheckpointIO()]}
    if not sys.stderr.isatty():
        defaults |= {"enable_progress_bar": False, "callbacks": [EpochLines("fit")]}
    return defaults


def has_omegaconf() -> bool:
    try:
        import omegaconf  # noqa: F401
    except ImportError:
        return False
    return True
