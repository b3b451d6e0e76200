"""What a trained model carries: one versioned schema (:class:`ModelConfig`), written one way, read one way.

A checkpoint of ``labelgraph fit`` holds it under ``checkpoint["labelgraph"]["config"]``; an exported model folder
holds it as ``config.json`` beside ``model.safetensors`` and, for the methods built from label statistics,
``label_graph.safetensors``. Every reader of a trained model (``load``, predict, serve, explain, calibrate, retrieve,
the Hub, ONNX, export) goes through :meth:`ModelConfig.from_dict`, which checks every field and turns a malformed or
missing one into one line naming the file and the field (:class:`ConfigError`; the CLI exits with status 2). It never
opens a path named inside a config: what a model needs travels inside its folder under the fixed names above.

Older files of this project still read: format 1 exported folders (``preprocessing.resize: squash``,
``has_label_graph``, training facts under ``extra``) and checkpoints that recorded ``model_config``/``preprocessing``
entries (:func:`config_from_legacy_checkpoint`); neither recorded an eval transform, so theirs is ``resize``, the
only one they were ever predicted with.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
from collections import Counter
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch.nn as nn

from labelgraph.errors import InvalidInputError
from labelgraph.graph import LabelGraph
from labelgraph.graph.label_graph import MAX_CLASSES
from labelgraph.models._registry import get_model_builder

FORMAT_VERSION = 2
CONFIG_FILE, WEIGHTS_FILE, GRAPH_FILE = "config.json", "model.safetensors", "label_graph.safetensors"
ONNX_FILE = "model.onnx"  # the ONNX graph of the weights beside it (labelgraph.apis.onnx)
#: the eval preprocessing a model can record (``labelgraph.data.transforms`` implements each): squash-resize to S x S,
#: or resize the shorter side to 10/9 S and take the central S x S (SSGRL's 640 -> 576)
EVAL_TRANSFORMS = ("resize", "center_crop")
#: builder arguments that name files read once at construction; a trained model carries their tensors in its weights
FILE_ARGUMENTS = ("pretrained", "prototypes")
MAX_IMAGE_SIZE = 8192


class ConfigError(InvalidInputError):
    """A model config (``config.json`` or a checkpoint's record) that cannot be trusted; the message names the file
    and the field."""


def labelgraph_version() -> str:
    try:
        return version("labelgraph")
    except PackageNotFoundError:  # running from a source tree that was not installed
        return "unknown"


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a trained model and use it as it was evaluated.

    Args:
        method: the registered method.
        model_kwargs: its builder arguments (without the files read at construction: :data:`FILE_ARGUMENTS`).
        class_names: the C class names, in output order.
        image_size: the side S of the square network input (None only in a checkpoint trained without a data module).
        mean, std: the input normalisation the backbone's weights expect (applied by the model itself).
        eval_transform: how an image becomes the S x S input (:data:`EVAL_TRANSFORMS`): the one validation used.
        thresholds: one decision threshold, or one per class (calibrated).
        calibration: how per-class thresholds were chosen (the split, the rule), when they were.
        temperature, logit_bias: the probabilities are ``sigmoid(logit / temperature + logit_bias)`` (temperature or
            Platt scaling): one number each, or one per class; 1.0 and 0.0: the network's own probabilities.
        recall_rule: a threshold with a recall guarantee (``labelgraph calibrate --recall``): ``threshold``,
            ``recall`` and how it was fitted; predict's ``--threshold recall`` uses it.
        label_graph: a summary of ``label_graph.safetensors`` (classes, embeddings, knowledge nodes); None: no graph.
        recipe: what the model was trained with (criterion, optimiser, schedule, EMA, ...), when known.
        metrics: the last evaluation of each split, percent (``{"val": {"mAP": ...}}``), when known.
        command: the command line that trained it, when known.
        labelgraph_version: the version that wrote it.
        extra: anything else worth keeping (the demo's seed, where an export came from).
    """

    method: str
    model_kwargs: dict[str, Any]
    class_names: list[str]
    image_size: int | None
    mean: list[float]
    std: list[float]
    eval_transform: str = "resize"
    thresholds: float | list[float] = 0.5
    calibration: dict[str, Any] | None = None
    temperature: float | list[float] = 1.0
    logit_bias: float | list[float] = 0.0
    recall_rule: dict[str, Any] | None = None
    label_graph: dict[str, Any] | None = None
    recipe: dict[str, Any] | None = None
    metrics: dict[str, Any] | None = None
    command: str | None = None
    labelgraph_version: str = field(default_factory=labelgraph_version)
    extra: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def calibrated(self) -> bool:
        return isinstance(self.thresholds, list)

    @property
    def preprocessing(self) -> dict[str, Any]:
        """The input pipeline in one dict (``GET /metadata``, model cards)."""
        return {
            "image_size": self.image_size,
            "eval_transform": self.eval_transform,
            "input_range": [0, 1],
            "mean": self.mean,
            "std": self.std,
        }

    def replace(self, **changes: Any) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``config.json`` and into checkpoints (the one writer)."""
        out = {"format_version": FORMAT_VERSION}
        out.update({f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "format_version"})
        return out

    @classmethod
    def for_model(
        cls,
        model: nn.Module,
        *,
        class_names: list[str],
        image_size: int | None = None,
        eval_transform: str | None = None,
        thresholds: float | list[float] = 0.5,
        label_graph: LabelGraph | None = None,
        **training: Any,
    ) -> ModelConfig:
        """The config of a model built by ``create_model`` (``model.config`` records its method and arguments) from
        ``label_graph``. ``image_size`` and ``eval_transform`` default to the model's own (``model.preprocessing``).
        ``training``: ``recipe``, ``metrics``, ``command``, ``extra``. The result is checked as a reader checks it."""
        if not getattr(model, "config", None):
            raise ValueError("model has no registry config; build it with labelgraph.create_model")
        if len(class_names) != model.num_classes:
            raise ValueError(f"{len(class_names)} class names for a model with {model.num_classes} outputs")
        kwargs = {k: v for k, v in model.config["kwargs"].items() if k not in ("num_classes", *FILE_ARGUMENTS)}
        prep = model.preprocessing
        config = cls(
            method=model.config["method"],
            model_kwargs=kwargs,
            class_names=list(class_names),
            image_size=image_size or prep["image_size"],
            mean=prep["mean"],
            std=prep["std"],
            eval_transform=eval_transform or prep["eval_transform"],
            thresholds=thresholds,
            label_graph=graph_summary(label_graph) if label_graph is not None else None,
            **training,
        )
        return cls.from_dict(config.to_dict(), "the model being saved")

    @classmethod
    def from_dict(cls, data: Any, source: str | Path) -> ModelConfig:
        """Read and check a config (format 1 or 2); any problem is a :class:`ConfigError` naming ``source`` and the
        field."""
        check = FieldCheck(source)
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a model config is a JSON object, this is a {type(data).__name__}")
        version_ = data.get("format_version", 1)
        if version_ not in (1, FORMAT_VERSION):
            raise check.fail("format_version", f"{version_!r} is not one this labelgraph reads (1, {FORMAT_VERSION})")
        if version_ == 1:
            data = upgrade_format_1(data, check)
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise check.fail(unknown[0], "not a field of a model config")
        classes = check.class_names(data)
        config = cls(
            method=check.method(data),
            model_kwargs=check.model_kwargs(data),
            class_names=classes,
            image_size=check.image_size(data),
            mean=check.triple(data, "mean", positive=False),
            std=check.triple(data, "std", positive=True),
            eval_transform=check.choice(data, "eval_transform", EVAL_TRANSFORMS, default="resize"),
            thresholds=check.thresholds(data, len(classes)),
            calibration=check.optional(data, "calibration", dict),
            temperature=check.per_class_number(data, "temperature", len(classes), 1.0, (1e-6, 1000.0)),
            logit_bias=check.per_class_number(data, "logit_bias", len(classes), 0.0, (-100.0, 100.0)),
            recall_rule=check.recall_rule(data),
            label_graph=check.optional(data, "label_graph", dict),
            recipe=check.optional(data, "recipe", dict),
            metrics=check.optional(data, "metrics", dict),
            command=check.optional(data, "command", str),
            labelgraph_version=check.optional(data, "labelgraph_version", str) or "unknown",
            extra=check.optional(data, "extra", dict) or {},
        )
        check.builder_accepts(config.method, config.model_kwargs)
        return config


def graph_summary(graph: LabelGraph) -> dict[str, Any]:
    """What ``config.json`` says of the label graph stored beside it."""
    return {
        "classes": graph.num_classes,
        "train_images": graph.num_images,
        "embeddings": graph.embedding_source,
        "embedding_dim": None if graph.embeddings is None else int(graph.embeddings.shape[1]),
        "knowledge_nodes": None if graph.knowledge is None else len(graph.knowledge.node_names),
    }


class FieldCheck:
    """The checks of :meth:`ModelConfig.from_dict`, each failing with ``SOURCE: field NAME: PROBLEM``."""

    def __init__(self, source: str | Path) -> None:
        self.source = source

    def fail(self, name: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.source}: field {name!r}: {problem}")

    def required(self, data: dict[str, Any], name: str) -> Any:
        if name not in data:
            raise self.fail(name, "missing")
        return data[name]

    def optional(self, data: dict[str, Any], name: str, kind: type) -> Any:
        value = data.get(name)
        if value is not None and not isinstance(value, kind):
            raise self.fail(name, f"expected a {kind.__name__} or null, got {type(value).__name__}")
        return value

    def method(self, data: dict[str, Any]) -> str:
        method = self.required(data, "method")
        if not isinstance(method, str):
            raise self.fail("method", f"expected a method name, got {type(method).__name__}")
        try:
            get_model_builder(method)
        except InvalidInputError as err:
            raise self.fail("method", str(err)) from None
        return method

    def model_kwargs(self, data: dict[str, Any]) -> dict[str, Any]:
        kwargs = self.required(data, "model_kwargs")
        if not isinstance(kwargs, dict):
            raise self.fail("model_kwargs", f"expected an object of builder arguments, got {type(kwargs).__name__}")
        for name in FILE_ARGUMENTS:
            if name in kwargs:
                raise self.fail(
                    f"model_kwargs.{name}",
                    "names a file; a trained model carries its tensors inside its "
                    "own folder, and a config never sends the reader elsewhere",
                )
        for name in ("num_classes", "label_graph"):
            if name in kwargs:
                raise self.fail(f"model_kwargs.{name}", "comes from class_names and the label graph file")
        backbone = kwargs.get("backbone", "")
        if not isinstance(backbone, str) or ":" in backbone:
            raise self.fail(
                "model_kwargs.backbone",
                f"{backbone!r} is not a timm or torchvision/ model name (a config names no remote or local source)",
            )
        return dict(kwargs)

    def builder_accepts(self, method: str, kwargs: dict[str, Any]) -> None:
        params = inspect.signature(get_model_builder(method)).parameters
        if any(p.kind == p.VAR_KEYWORD for p in params.values()):
            return
        unknown = sorted(set(kwargs) - set(params))
        if unknown:
            raise self.fail(f"model_kwargs.{unknown[0]}", f"not an argument of {method}'s builder")

    def class_names(self, data: dict[str, Any]) -> list[str]:
        names = self.required(data, "class_names")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
            raise self.fail("class_names", "expected a non-empty list of non-empty strings")
        if len(names) > MAX_CLASSES:
            raise self.fail("class_names", f"{len(names)} classes; at most {MAX_CLASSES} are supported")
        if len(set(names)) != len(names):
            repeated = sorted(n for n, k in Counter(names).items() if k > 1)
            raise self.fail("class_names", f"repeated names {repeated[:5]}")
        return list(names)

    def image_size(self, data: dict[str, Any]) -> int | None:
        size = self.required(data, "image_size")
        if size is None:
            return None
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_IMAGE_SIZE:
            raise self.fail("image_size", f"expected a whole number of pixels in 1..{MAX_IMAGE_SIZE}, got {size!r}")
        return size

    def triple(self, data: dict[str, Any], name: str, positive: bool) -> list[float]:
        value = self.required(data, name)
        numbers = isinstance(value, list) and len(value) == 3 and all(is_number(v) for v in value)
        if not numbers or (positive and min(value) <= 0):
            kind = "positive numbers" if positive else "numbers"
            raise self.fail(name, f"expected three {kind} (one per RGB channel), got {value!r}")
        return [float(v) for v in value]

    def choice(self, data: dict[str, Any], name: str, choices: tuple[str, ...], default: str) -> str:
        value = data.get(name, default)
        if value not in choices:
            raise self.fail(name, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def thresholds(self, data: dict[str, Any], num_classes: int) -> float | list[float]:
        value = data.get("thresholds", 0.5)
        if isinstance(value, list):
            if len(value) != num_classes:
                raise self.fail("thresholds", f"{len(value)} thresholds for {num_classes} classes")
            if not all(is_number(t) and 0 <= t <= 1 for t in value):
                raise self.fail("thresholds", "expected probabilities in [0, 1]")
            return [float(t) for t in value]
        if not is_number(value) or not 0 <= value <= 1:
            raise self.fail("thresholds", f"expected a probability in [0, 1] or one per class, got {value!r}")
        return float(value)

    def per_class_number(
        self, data: dict[str, Any], name: str, num_classes: int, default: float, bounds: tuple[float, float]
    ) -> float | list[float]:
        """One number in ``bounds``, or one per class."""
        value = data.get(name, default)
        values = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) != num_classes:
            raise self.fail(name, f"{len(value)} values for {num_classes} classes")
        if not all(is_number(v) and bounds[0] <= v <= bounds[1] for v in values):
            raise self.fail(
                name, f"expected a number in [{bounds[0]:g}, {bounds[1]:g}] or one per class, got {value!r}"
            )
        return [float(v) for v in value] if isinstance(value, list) else float(value)

    def recall_rule(self, data: dict[str, Any]) -> dict[str, Any] | None:
        rule = self.optional(data, "recall_rule", dict)
        if rule is None:
            return None
        if not (is_number(rule.get("threshold")) and 0 <= rule["threshold"] <= 1):
            raise self.fail("recall_rule.threshold", f"expected a probability, got {rule.get('threshold')!r}")
        if not (is_number(rule.get("recall")) and 0 < rule["recall"] < 1):
            raise self.fail("recall_rule.recall", f"expected a fraction in (0, 1), got {rule.get('recall')!r}")
        return dict(rule)


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def upgrade_format_1(data: dict[str, Any], check: FieldCheck) -> dict[str, Any]:
    """A format-1 ``config.json`` (exported before the schema was versioned) in format 2's fields."""
    prep = check.required(data, "preprocessing")
    if not isinstance(prep, dict):
        raise check.fail("preprocessing", f"expected an object, got {type(prep).__name__}")
    if "image_size" not in prep:
        raise check.fail("preprocessing.image_size", "missing")
    if prep.get("resize", "squash") != "squash":
        raise check.fail("preprocessing.resize", f"{prep.get('resize')!r}: format 1 knew only 'squash'")
    extra = dict(data.get("extra") or {}) if isinstance(data.get("extra"), dict) else {}
    metrics = dict(extra.pop("metrics", None) or {})
    if extra.get("test_metrics"):
        metrics["test"] = extra.pop("test_metrics")
    has_graph = data.get("has_label_graph", False)
    return {
        "method": data.get("method"),
        "model_kwargs": data.get("model_kwargs"),
        "class_names": data.get("class_names"),
        "image_size": prep.get("image_size"),
        "mean": prep.get("mean", [0.0, 0.0, 0.0]),
        "std": prep.get("std", [1.0, 1.0, 1.0]),
        "thresholds": data.get("thresholds", 0.5),
        "label_graph": {} if has_graph else None,
        "recipe": extra.pop("recipe", None),
        "metrics": metrics or None,
        "command": extra.pop("command", None) or extra.pop("trained_on", None),
        "labelgraph_version": "before format 2",
        "extra": extra,
    }


def config_from_legacy_checkpoint(info: dict[str, Any], source: str | Path) -> ModelConfig:
    """The config of a checkpoint written before checkpoints held a :class:`ModelConfig` (``model_config`` with the
    method and its arguments, ``class_names``, ``preprocessing``, ``metrics``, ``command``)."""
    check = FieldCheck(source)
    recorded = check.required(info, "model_config")
    prep = check.required(info, "preprocessing")
    if not isinstance(recorded, dict) or not isinstance(prep, dict):
        raise check.fail("model_config", "expected the method and its arguments")
    kwargs = check.required(recorded, "kwargs")
    if isinstance(kwargs, dict):
        kwargs = {k: v for k, v in kwargs.items() if k not in ("num_classes", *FILE_ARGUMENTS)}
    data = {
        "format_version": FORMAT_VERSION,
        "method": recorded.get("method"),
        "model_kwargs": kwargs,
        "class_names": info.get("class_names"),
        "image_size": prep.get("image_size"),
        "mean": prep.get("mean"),
        "std": prep.get("std"),
        "label_graph": {} if "label_graph" in info else None,
        "metrics": info.get("metrics"),
        "command": info.get("command"),
        "labelgraph_version": "before format 2",
    }
    return ModelConfig.from_dict(data, source)
