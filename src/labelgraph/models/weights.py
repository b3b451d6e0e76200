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

BUILD_TIME_FILES = ("pretrained", "prototypes")  # builder arguments read once at construction, not re-read on load


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
            reason = f"truncated or corrupt ({type(err).__name__}: {str(err).splitlines()[0][:200]})"
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

        weights = path / "model.safetensors"
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


def load_model(model_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild an exported model (in eval mode) and return it with its config.

    ``model_dir``: a folder, or ``hf-hub:ORG/NAME[@REVISION]`` (fetched into the Hugging Face cache:
    :mod:`labelgraph.models.hub_source`)."""
    folder = model_folder(model_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: not an exported labelgraph model (no config.json)")
    try:
        config = json.loads(config_path.read_text())
        method, classes = config["method"], config["class_names"]
    except (json.JSONDecodeError, KeyError) as err:
        raise InvalidInputError(f"{config_path}: malformed model config ({err})") from err
    graph = LabelGraph.load(folder / "label_graph.safetensors") if config.get("has_label_graph") else None
    model = create_model(
        method, num_classes=len(classes), label_graph=graph, pretrained=False, **config["model_kwargs"]
    )
    try:
        missing, unexpected = load_safetensors_into(model, str(folder / "model.safetensors"), strict=False)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise InvalidInputError(f"{folder / 'model.safetensors'}: unreadable or truncated weights ({err})") from err
    if missing or unexpected:
        raise InvalidInputError(
            f"{folder / 'model.safetensors'}: weights do not fit {method}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return model.eval(), config


def load_trained_model(source: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """An exported model folder or ``hf-hub:`` name (``load_model``) or a Lightning checkpoint of ``labelgraph fit``,
    in eval mode. A checkpoint is rebuilt from the method, arguments and label graph it records.
    """
    path = model_folder(source)
    if path.is_dir():
        return load_model(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model folder or checkpoint")
    checkpoint = read_checkpoint(path)
    info = checkpoint.get("labelgraph")
    if not info or "model_config" not in info:
        raise InvalidInputError(f"{path}: not a labelgraph checkpoint (no 'labelgraph' entry)")
    method, kwargs = info["model_config"]["method"], dict(info["model_config"]["kwargs"])
    classes = info["class_names"]
    kwargs = {k: v for k, v in kwargs.items() if k not in ("num_classes", *BUILD_TIME_FILES)}
    graph = None
    if "label_graph" in info:
        graph = LabelGraph.from_tensors(info["label_graph"]["tensors"], info["label_graph"]["metadata"])
    model = create_model(method, num_classes=len(classes), label_graph=graph, pretrained=False, **kwargs)
    model.load_state_dict(checkpoint_weights(checkpoint, path))
    config = {
        "method": method,
        "model_kwargs": kwargs,
        "class_names": classes,
        "preprocessing": info["preprocessing"],
        "label_graph": graph,
        "training": {k: info[k] for k in ("metrics", "command") if k in info},
    }
    return model.eval(), config
