"""What several commands share: the dataset arguments, loading a split from them, the default device."""

from __future__ import annotations

import argparse
import typing
from typing import TYPE_CHECKING

from labelgraph.errors import LabelgraphError

if TYPE_CHECKING:
    from labelgraph.data.label_table import LabelTable

#: the dataset formats ``--format`` takes (held equal to :data:`labelgraph.data.formats.FORMATS` by a test; named here
#: so that parsing the command line imports nothing)
FORMAT_NAMES = ("csv", "coco2014", "voc2007", "voc2012", "nuswide", "vg500", "mirflickr", "label-studio", "cvat")
FORMATS_HELP = ", ".join(FORMAT_NAMES)


class UsageError(LabelgraphError):
    """A command's arguments do not fit together (printed as one line, exit status 2)."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are :class:`UsageError`: one line, exit status 2, before any work (argparse
    prints the usage and exits by itself)."""

    def error(self, message: str) -> typing.NoReturn:
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def checked(kind: type, test: typing.Callable[[typing.Any], bool], rule: str) -> typing.Callable[[str], typing.Any]:
    """An argparse ``type``: ``kind(text)``, refused unless ``test`` holds, the message saying ``rule``."""

    def convert(text: str) -> typing.Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value != value or not test(value):  # value != value: NaN
            raise argparse.ArgumentTypeError(f"must be {rule}, not {text!r}")
        return value

    convert.__name__ = rule
    return convert


positive_int = checked(int, lambda v: v >= 1, "an integer >= 1")
non_negative_int = checked(int, lambda v: v >= 0, "an integer >= 0")
positive_float = checked(float, lambda v: 0 < v < float("inf"), "a number > 0")
non_negative_float = checked(float, lambda v: 0 <= v < float("inf"), "a number >= 0")
probability = checked(float, lambda v: 0 <= v <= 1, "a number from 0 to 1")
port_number = checked(int, lambda v: 0 <= v <= 65535, "a port from 0 to 65535")


def dataset_arguments(p: argparse.ArgumentParser, split_flag: str = "--split", *aliases: str) -> None:
    """Add ``SPLIT_FLAG`` and :func:`source_arguments` (what :func:`load_split` reads)."""
    p.add_argument(split_flag, *aliases, required=True, help="split name (for csv: the CSV file)")
    source_arguments(p)


def source_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--format --root --classes --image-root --option``: how a split is read."""
    p.add_argument("--format", default="csv", choices=FORMAT_NAMES, help=FORMATS_HELP)
    p.add_argument("--root", default=None, help="the folder the dataset's archive unpacks into")
    p.add_argument("--classes", default=None, help="class list file (default: the dataset's own)")
    p.add_argument("--image-root", default=None)
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a format option, e.g. --option difficult=negative (repeatable)",
    )


def format_options(pairs: list[str]) -> dict:
    """``["difficult=negative", ...]`` -> ``{"difficult": "negative"}`` (values read as YAML)."""
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE")
        options[key.strip()] = yaml.safe_load(value)
    return options


def load_split(args: argparse.Namespace, split: str, default_classes: list[str] | None = None) -> LabelTable:
    """A split of the dataset named by the arguments, in ``--classes`` order, else ``default_classes`` (a model's
    output order), else the dataset's own order."""
    from labelgraph.data.formats import load_table, read_class_list

    names = read_class_list(args.classes) if args.classes else default_classes
    return load_table(
        args.format,
        split,
        root=args.root,
        class_names=names,
        image_root=args.image_root,
        **format_options(args.option),
    )


THRESHOLD_RULES = ("calibrated", "recall")


def threshold_value(text: str) -> str | float:
    """``--threshold``: ``calibrated``, ``recall`` or a probability."""
    if text in THRESHOLD_RULES:
        return text
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r}: a probability in [0, 1], 'calibrated' or 'recall'")
    return value


def threshold_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--threshold",
        default=None,
        type=threshold_value,
        help="a probability, 'calibrated' (the per-class thresholds) or 'recall' (the rule with a recall "
        "guarantee, labelgraph calibrate --recall); default: the model's stored thresholds",
    )


def runtime_argument(p: argparse.ArgumentParser) -> None:
    """``--runtime``: what computes an exported model's logits (:mod:`labelgraph.apis.onnx`)."""
    p.add_argument(
        "--runtime",
        default="auto",
        choices=("auto", "onnx", "torch"),
        help="auto (default): ONNX Runtime where the model folder has a current model.onnx and the device is the "
        "CPU, else PyTorch; onnx: ONNX Runtime or fail; torch: PyTorch",
    )


SCALINGS = ("platt", "platt-per-class", "temperature", "temperature-per-class", "none")


def scaling_argument(p: argparse.ArgumentParser, keep: bool = False) -> None:
    """``--scaling``: how calibration scales the logits (``docs/trust.md``)."""
    p.add_argument(
        "--scaling",
        default="platt",
        choices=(*SCALINGS, "keep") if keep else SCALINGS,
        help="sigmoid(logit / T + b) fitted on the split: platt (one T and b for every class, default), "
        "temperature (T only), *-per-class, none" + (", keep (the stored one)" if keep else ""),
    )


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
