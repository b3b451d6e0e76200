"""The ``labelgraph`` command: one module per command (``labelgraph.cli.<module>.run``), imported only when its
command runs.

A mistake in what you gave (a malformed annotation file, a missing file, a refused checkpoint or model config, classes
that do not match) is printed as one line, exit status 2; --debug (or LABELGRAPH_DEBUG=1) shows the traceback as well.
SIGTERM (what ``kill``, systemd, Docker and Kubernetes send) and Ctrl-C stop a command where it is: what it completed
stays (checkpoints, the demo's finished methods, a sweep's finished points; every file is written whole or not at
all) and the exit status is 143 or 130, never 0 (``labelgraph serve`` shuts its processes down and exits 0).

Lightning's own ``predict`` subcommand is not offered: ``labelgraph predict`` tags images with an exported model (the
model carries its classes and preprocessing) and writes every class's probability for every image to a JSON or CSV
file, which is what batch prediction over a dataset needs; Lightning's needed the training config and a data module
with a prediction split, and wrote nothing.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from types import FrameType

from labelgraph.errors import LabelgraphError, Terminated

#: name -> (module of ``labelgraph.cli``, what it does); ``labelgraph --help`` lists them in this order
COMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("demo", "synthetic scenes -> train and compare methods -> report (the quick tour; --methods all)"),
    "train": ("train", "your labelled images -> a fine-tuned, calibrated model, its report and metrics (one command)"),
    "compare": ("compare", "the demo's method comparison on your labelled images: table, results.json, report"),
    "models": ("models", "the registered methods; --details: parameters and FLOPs"),
    "data": ("data", "write the demo data, build a label graph file, statistics of a split, check its images"),
    "fit": ("fit", "train from a config (LightningCLI: every option is --section.key)"),
    "validate": ("fit", "validate a checkpoint with a config"),
    "test": ("fit", "test a checkpoint with a config"),
    "export": ("export", "a checkpoint -> an exported model folder (+ checked ONNX, + the Hugging Face Hub)"),
    "predict": ("predict", "tag images, folders and globs with a model; JSON or CSV of every class's probability"),
    "calibrate": (
        "calibrate",
        "calibrated probabilities, thresholds that hold on new images, a recall-guaranteed rule",
    ),
    "audit": ("audit", "the labels of a split most likely wrong (missed or wrong tags), from out-of-fold models"),
    "explain": ("explain", "overlays of the class maps of the predicted labels (the method's own, else Grad-CAM)"),
    "serve": ("serve", "an HTTP API (POST /predict, /health, /metadata) and a web page for a model"),
    "retrieve": ("retrieve", "the nearest images of a query by a model's features"),
    "evaluate": ("evaluate", "metrics of models on a split, clean and under image corruptions"),
    "prototypes": ("prototypes", "class prototypes of a label-query model (SADCL's second stage starts from them)"),
    "viz": ("viz", "t-SNE of classifiers or prototypes, the label graph, precision-recall curves"),
    "report": ("report", "a self-contained HTML report of a demo run"),
    "sweep": ("sweep", "train a grid of configurations; CSV + Markdown tables + plot"),
}
LIGHTNING_COMMANDS = ("fit", "validate", "test")  # their module receives the command name too

# What a user's mistake raises: labelgraph's own errors, and missing or unreadable files named by the OS.
USER_ERRORS = (LabelgraphError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"  {name:<{width}}  {summary}" for name, (_, summary) in COMMANDS.items()]
    return "\n".join(
        [
            "usage: labelgraph COMMAND [options]",
            "",
            "Multi-label image classification with label graphs and label queries.",
            "",
            "commands:",
            *lines,
            "",
            "labelgraph COMMAND --help shows a command's options; --debug shows the traceback of an error.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Run one ``labelgraph`` command; a user's mistake becomes one line on stderr and exit status 2."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("LABELGRAPH_DEBUG", "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    signal.signal(signal.SIGTERM, terminate)
    try:
        return run_command(argv)
    except BaseException as err:
        if Terminated.requested is not None:  # whatever the signal interrupted raised, the process was told to stop
            print("labelgraph: stopped by SIGTERM; what was completed was kept", file=sys.stderr)
            return 143
        if isinstance(err, BrokenPipeError):  # the reader went away (``labelgraph predict ... | head``)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit's flush
            return 0
        if isinstance(err, KeyboardInterrupt):
            print("labelgraph: interrupted; what was completed was kept", file=sys.stderr)
            return 130
        if not isinstance(err, USER_ERRORS) or debug:
            raise
        print(f"labelgraph: error: {one_line(err)}", file=sys.stderr)
        return 2


def terminate(signum: int, frame: FrameType | None) -> None:
    """SIGTERM: stop the command where it is (see the module docstring)."""
    Terminated.requested = signum
    raise Terminated(f"signal {signum}")


def run_command(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(usage(), file=sys.stderr)
        raise LabelgraphError(f"unknown command {name!r}; the commands: {', '.join(COMMANDS)}")
    module = importlib.import_module(f"labelgraph.cli.{COMMANDS[name][0]}")
    return module.run(argv if name in LIGHTNING_COMMANDS else rest)


def one_line(err: BaseException) -> str:
    """The error's message on one line (a missing file from the OS reads ``No such file or directory: 'x'``)."""
    if isinstance(err, OSError) and err.filename is not None and not isinstance(err, LabelgraphError):
        text = f"{err.strerror or err}: {err.filename!r}" if err.strerror else str(err)
    else:
        text = str(err) or type(err).__name__
    return " ".join(text.split())
