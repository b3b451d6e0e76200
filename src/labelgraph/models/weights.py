"""Reading trained weights without running code: Lightning checkpoints and exported model folders.

Shared by training (``init_from``: start a run from another run's weights), export and inference, so it lives
below all three. Checkpoints are read with ``torch.load(weights_only=True)``; exported folders are safetensors +
JSON (``labelgraph.apis.export.save_model`` writes them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_model as load_safetensors_into

from labelgraph.errors import InvalidInputError
from labelgraph.graph import LabelGraph
from labelgraph.models._registry import create_model
from labelgraph.models.hub_source import model_folder
from labelgraph.models.model_config import (
    CONFIG_FILE,
    GRAPH_FILE,
    WEIGHTS_FILE,
    ConfigError,
    ModelConfig,
    config_from_legacy_checkpoint,
)

MAX_CONFIG_BYTES = 32 * 2**20  # a config.json of 20,000 classes with every per-class record is about 10 MB


class CheckpointError(InvalidInputError):
    """A checkpoint that cannot be read safely; the message names the file."""


def read_checkpoint(path: str | Path, map_location: Any = "cpu") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with a clear error for missing, truncated, corrupt or unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001  (torch raises several types: UnpicklingError, RuntimeError, EOFError)
        reason = "it holds objects other than tensors and plain data (refused, nothing was run)"
        if "weights_only" not in str(err) and "Unsupported global" not in str(err):
            first_line = (str(err).splitlines() or [""])[0][:200]  # a 0-byte file's error has no message
            reason = f"truncated or corrupt ({type(err).__name__}: {first_line})"
        raise CheckpointError(f"{path}: cannot load this checkpoint: {reason}") from err
    if not isinstance(checkpoint, dict):
        raise CheckpointError(f"{path}: not a checkpoint (a {type(checkpoint).__name__}, not a dict)")
    return checkpoint


def trained_state_dict(source: str | Path) -> dict[str, torch.Tensor]:
    """The model weights of an exported model folder (or ``hf-hub:`` name) or of a Lightning checkpoint (read without
    unpickling code)."""
    path = model_folder(source)
    if path.is_dir():
        from safetensors.torch import load_file

        weights = path / WEIGHTS_FILE
        if not weights.is_file():
            raise FileNotFoundError(f"{path}: not an exported labelgraph model (no model.safetensors)")
        return load_file(str(weights))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model folder or checkpoint")
    return checkpoint_weights(read_checkpoint(path), path)


def checkpoint_weights(checkpoint: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The network's tensors of a Lightning checkpoint of ``MultiLabelTask`` (prefix removed).

    With an EMA the checkpoint holds two networks, ``model.*`` and ``ema.module.*``; the one it records as better on
    validation (``labelgraph.weights``, written by the task) is returned, as the official Query2Label code keeps the
    better of the two.
    """
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise InvalidInputError(f"{path}: a Lightning checkpoint has a 'state_dict'; this file does not")
    which = checkpoint.get("labelgraph", {}).get("weights", "model")
    prefix = "ema.module." if which == "ema" else "model."
    weights = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    if not weights:
        raise InvalidInputError(f"{path}: no {prefix}* tensors in its state_dict (not a labelgraph checkpoint?)")
    return weights


def initialise_from(model: nn.Module, source: str | Path) -> dict[str, list[str]]:
    """Copy every tensor of ``source`` whose name and shape match ``model``'s; return what was copied and skipped.

    Raises when nothing matches (the wrong file, most likely).
    """
    own = model.state_dict()
    incoming = trained_state_dict(source)
    copied = [k for k, v in incoming.items() if k in own and own[k].shape == v.shape]
    if not copied:
        raise InvalidInputError(f"{source}: none of its tensors fit this model (different method or backbone?)")
    model.load_state_dict({k: incoming[k] for k in copied}, strict=False)
    report = {
        "copied": copied,
        "skipped": sorted(k for k in incoming if k not in copied),
        "kept": sorted(k for k in own if k not in incoming),
    }
    print(
        f"initialised from {source}: {len(copied)} tensors copied, {len(report['skipped'])} of the source skipped, "
        f"{len(report['kept'])} of the model kept as initialised"
    )
    return report


def read_model_config(folder: Path) -> ModelConfig:
    """The checked :class:`ModelConfig` of an exported model folder."""
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{folder}: not an exported labelgraph model (no {CONFIG_FILE})")
    if (size := path.stat().st_size) > MAX_CONFIG_BYTES:
        limit = f"{MAX_CONFIG_BYTES / 2**20:.0f} MB"
        raise ConfigError(f"{path}: {size / 2**20:.0f} MB, more than a model's config can be ({limit}); not read")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from err
    return ModelConfig.from_dict(data, path)


def read_label_graph(path: Path, config: ModelConfig) -> LabelGraph:
    """The label graph stored beside a model, checked against its config's classes."""
    if not path.is_file():
        raise ConfigError(f"{path}: missing (the model's config says it was built from a label graph)")
    try:
        graph = LabelGraph.load(path)
    except ValueError as err:
        raise ConfigError(f"{path}: unreadable or truncated label graph ({err})") from err
    if graph.class_names != config.class_names:
        raise ConfigError(f"{path}: its classes are not the model's ({graph.num_classes} vs {config.num_classes})")
    return graph


def build_from_config(config: ModelConfig, graph: LabelGraph | None, source: str | Path) -> nn.Module:
    """The untrained network a config describes (no pretrained weights: the trained ones are loaded next)."""
    try:
        model = create_model(
            config.method, num_classes=config.num_classes, label_graph=graph, pretrained=False, **config.model_kwargs
        )
    except (TypeError, ValueError, KeyError) as err:
        raise ConfigError(f"{source}: field 'model_kwargs': they do not build {config.method} ({err})") from err
    if config.image_size is not None:  # the input it was trained for, not its recipe's
        model.image_size = config.image_size
    model.eval_transform = config.eval_transform
    return model


def load_model(model_dir: str | Path) -> tuple[nn.Module, ModelConfig]:
    """Rebuild an exported model (in eval mode) and return it with its config.

    ``model_dir``: a folder, or ``hf-hub:ORG/NAME[@REVISION]`` (fetched into the Hugging Face cache:
    :mod:`labelgraph.models.hub_source`)."""
    folder = model_folder(model_dir)
    config = read_model_config(folder)
    graph = read_label_graph(folder / GRAPH_FILE, config) if config.label_graph is not None else None
    model = build_from_config(config, graph, folder / CONFIG_FILE)
    weights = folder / WEIGHTS_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"{folder}: not an exported labelgraph model (no {WEIGHTS_FILE})")
    try:
        missing, unexpected = load_safetensors_into(model, str(weights), strict=False)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise InvalidInputError(f"{weights}: unreadable or truncated weights ({err})") from err
    if missing or unexpected:
        raise InvalidInputError(
            f"{weights}: weights do not fit {config.method}: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    return model.eval(), config


def checkpoint_config(checkpoint: dict[str, Any], path: Path) -> tuple[ModelConfig, LabelGraph | None]:
    """The config and label graph a checkpoint of ``labelgraph fit`` records (or recorded, before format 2)."""
    info = checkpoint.get("labelgraph")
    if not isinstance(info, dict) or not ({"config", "model_config"} & set(info)):
        raise InvalidInputError(f"{path}: not a labelgraph checkpoint (no 'labelgraph' entry)")
    if "config" in info:
        config = ModelConfig.from_dict(info["config"], path)
    else:
        config = config_from_legacy_checkpoint(info, path)
    graph = None
    if config.label_graph is not None:
        stored = info.get("label_graph")
        try:
            graph = LabelGraph.from_tensors(stored["tensors"], stored["metadata"])
        except (TypeError, KeyError, ValueError) as err:
            raise ConfigError(f"{path}: its label graph is incomplete ({type(err).__name__}: {err})") from err
        if graph.class_names != config.class_names:
            raise ConfigError(f"{path}: the label graph's classes are not the model's")
    return config, graph


def load_trained_model(source: str | Path) -> tuple[nn.Module, ModelConfig]:
    """An exported model folder or ``hf-hub:`` name (``load_model``) or a Lightning checkpoint of ``labelgraph fit``,
    in eval mode, with its config. A checkpoint is rebuilt from the config and label graph it records.
    """
    path = model_folder(source)
    if path.is_dir():
        return load_model(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model folder or checkpoint")
    checkpoint = read_checkpoint(path)
    config, graph = checkpoint_config(checkpoint, path)
    model = build_from_config(config, graph, path)
    try:
        model.load_state_dict(checkpoint_weights(checkpoint, path))
    except RuntimeError as err:
        raise InvalidInputError(f"{path}: its weights do not fit {config.method} ({str(err).splitlines()[0]})") from err
    return model.eval(), config
