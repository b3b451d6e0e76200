"""The ``labelgraph`` command.

Training and evaluation go through LightningCLI (``fit``, ``validate``, ``test``, ``predict`` with
``--config``); the data module's class list and label graph are linked into the model. Other sub-commands:

    labelgraph models                       the registered methods, one per line
    labelgraph demo [--methods a,b] ...     synthetic data -> train -> compare -> report
    labelgraph data demo --out DIR          only write the synthetic dataset (used by configs/demo.yaml)
    labelgraph data graph --train CSV --out G.safetensors [--embeddings onehot|glove:PATH|glove50|image:MODEL]
                                            label statistics + embeddings (+ --knowledge vg:PATH) from raw annotations
    labelgraph data stats --format F --root R --split S [--json]    label statistics of a split
    labelgraph data check --format F --root R --split S             open every image; exit 1 if any is bad
    labelgraph sadcl prototypes --model Q2L --split train.csv --out P.safetensors   SADCL's class prototypes
    labelgraph export CKPT --out MODEL [--onnx]            a checkpoint -> an exported model (+ checked ONNX)
    labelgraph predict MODEL PATH... [--out x.json|x.csv]  tag images, folders, globs; bad files listed, exit 1
    labelgraph calibrate MODEL --split val.csv             per-class F1-optimal thresholds, stored in the model
    labelgraph explain MODEL IMAGE... --out DIR            class-map / Grad-CAM overlays of the predicted labels
    labelgraph serve MODEL [--port 8000] [--api-key KEY]   HTTP API (POST /predict, /health, /metadata) + web page
    labelgraph models --details [--backbone B --size S]    parameters and FLOPs of every method
    labelgraph viz tsne|graph|pr ...                       t-SNE of classifiers/prototypes, label graph, PR curves
    labelgraph retrieve MODEL --index PATH... --query IMG  nearest images by the model's features
    labelgraph report RUN_DIR                              self-contained HTML report of a demo run
    labelgraph sweep [SWEEP.yaml] [--config C] [--grid model.model_args.tau=0.1,0.4] [--point I] [--collect]
                                                           train a grid; CSV + Markdown tables + plot
    labelgraph evaluate MODEL... --split test.csv [--corruptions]   metrics, and mAP under corruptions

A mistake in what you gave (a malformed annotation file, a missing file, a refused checkpoint, classes that do not
match) is printed as one line, exit status 2; --debug (or LABELGRAPH_DEBUG=1) shows the traceback as well.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from labelgraph.cli import data, figures, inference, models, serving, studies
from labelgraph.errors import LabelgraphError

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")

COMMANDS: dict[str, Callable[[list[str]], int]] = {
    "models": models.cmd_models,
    "demo": studies.cmd_demo,
    "data": data.cmd_data,
    "sadcl": inference.cmd_sadcl,
    "export": inference.cmd_export,
    "predict": inference.cmd_predict,
    "calibrate": inference.cmd_calibrate,
    "explain": inference.cmd_explain,
    "serve": serving.cmd_serve,
    "viz": figures.cmd_viz,
    "retrieve": figures.cmd_retrieve,
    "report": figures.cmd_report,
    "sweep": studies.cmd_sweep,
    "evaluate": studies.cmd_evaluate,
}

# What a user's mistake raises: labelgraph's own errors, and missing or unreadable files named by the OS.
USER_ERRORS = (LabelgraphError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def main(argv: list[str] | None = None) -> int:
    """Run one ``labelgraph`` command; a user's mistake becomes one line on stderr and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("LABELGRAPH_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    try:
        return run_command(argv)
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"labelgraph: error: {one_line(err)}", file=sys.stderr)
        return 2


def run_command(argv: list[str]) -> int:
    if argv and argv[0] in COMMANDS:
        return COMMANDS[argv[0]](argv[1:])
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        print("\nLightning sub-commands: " + ", ".join(LIGHTNING_COMMANDS) + " (labelgraph fit --help)")
        return 0
    from labelgraph.cli.lightning import make_cli

    make_cli(argv)
    return 0


def one_line(err: BaseException) -> str:
    """The error's message on one line (a missing file from the OS reads ``No such file or directory: 'x'``)."""
    if isinstance(err, OSError) and err.filename is not None and not isinstance(err, LabelgraphError):
        text = f"{err.strerror or err}: {err.filename!r}" if err.strerror else str(err)
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())
