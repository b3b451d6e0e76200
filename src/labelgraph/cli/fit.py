"""``labelgraph fit|validate|test``: train and evaluate with a config, through LightningCLI (every option is
``--section.key``; ``labelgraph fit --help`` lists them)."""

from __future__ import annotations

import sys
from pathlib import Path

LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry", "null", "none")  # resolved by Lightning, not files


def run(argv: list[str]) -> int:
    """``argv`` starts with the subcommand (``fit``, ``validate`` or ``test``)."""
    if sys.stderr.isatty():  # a first line within a second for a person; nothing extra in a captured log
        print(f"labelgraph {argv[0]}: loading PyTorch and Lightning ...", file=sys.stderr, flush=True)
    from labelgraph.engine.lightning_cli import make_cli

    check_ckpt_path(argv)
    make_cli(argv)
    return 0


def check_ckpt_path(argv: list[str]) -> None:
    """A ``--ckpt_path`` file is read here first (``weights_only``): an empty, truncated or pickled checkpoint is
    one line naming it, not Lightning's traceback."""
    from labelgraph.models import read_checkpoint

    for i, arg in enumerate(argv):
        if arg == "--ckpt_path" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith("--ckpt_path="):
            value = arg.partition("=")[2]
        else:
            continue
        if value.lower() in LIGHTNING_CKPT_NAMES or value.startswith("registry:") or "://" in value:
            continue
        if not Path(value).is_file():
            raise FileNotFoundError(f"--ckpt_path {value!r}: no such checkpoint file")
        read_checkpoint(value)
