"""``labelgraph fit|validate|test``: train and evaluate with a config, through LightningCLI (every option is
``--section.key``; ``labelgraph fit --help`` lists them)."""

from __future__ import annotations


def run(argv: list[str]) -> int:
    """``argv`` starts with the subcommand (``fit``, ``validate`` or ``test``)."""
    from labelgraph.engine.lightning_cli import make_cli

    make_cli(argv)
    return 0
