"""Exported models: a folder with ``model.safetensors`` + ``config.json`` (+ ``label_graph.safetensors``).

Loading needs neither the training data nor pickle: the config names the method and its arguments, the class
names in output order and the preprocessing; the weights (fixed graph priors included) are safetensors.
Files are written to a temporary name and renamed, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
from safetensors import SafetensorError
from safetensors.torch import load_model as load_safetensors_into
from safetensors.torch import save_model as save_safetensors_from

from labelgraph.checkpoint_io import read_checkpoint
from labelgraph.graph import LabelGraph
from labelgraph.registry import create_model

FORMAT_VERSION = 1
BUILD_TIME_FILES = ("pretrained", "prototypes")  # builder arguments read once at construction, not re-read on load


def _atomic_write(path: Path, write) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_model(
    model: nn.Module,
    out_dir: str | Path,
    *,
    class_names: list[str],
    image_size: int,
    label_graph: LabelGraph | None = None,
    thresholds: float | list[float] = 0.5,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Export a :class:`MultiLabelClassifier` built by ``create_model``.

    Args:
        model: the network (its ``config`` records method and arguments).
        out_dir: folder to write (created).
        class_names: names in output order.
        image_size: the square input side the model was trained at.
        label_graph: the graph it was built from (needed to rebuild graph methods).
        thresholds: one probability threshold, or one per class.
        extra: anything else worth recording (metrics, training recipe), JSON-serialisable.
    """
    if not getattr(model, "config", None):
        raise ValueError("model has no registry config; build it with labelgraph.create_model")
    if len(class_names) != model.num_classes:
        raise ValueError(f"{len(class_names)} class names for a model with {model.num_classes} outputs")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    kwargs = {k: v for k, v in model.config["kwargs"].items() if k not in ("num_classes", *BUILD_TIME_FILES)}
    config = {
        "format_version": FORMAT_VERSION,
        "method": model.config["method"],
        "model_kwargs": kwargs,
        "class_names": list(class_names),
        "preprocessing": {"image_size": image_size, "resize": "squash", "input_range": [0, 1], **model.preprocessing},
        "thresholds": thresholds,
        "has_label_graph": label_graph is not None,
        "extra": extra or {},
    }
    if label_graph is not None:
        _atomic_write(out / "label_graph.safetensors", label_graph.save)
    _atomic_write(out / "model.safetensors", lambda p: save_safetensors_from(model, p))
    _atomic_write(out / "config.json", lambda p: Path(p).write_text(json.dumps(config, indent=2)))
    return out


def load_model(model_dir: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild an exported model (in eval mode) and return it with its config."""
    folder = Path(model_dir)
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder}: not an exported labelgraph model (no config.json)")
    try:
        config = json.loads(config_path.read_text())
        method, classes = config["method"], config["class_names"]
    except (json.JSONDecodeError, KeyError) as err:
        raise ValueError(f"{config_path}: malformed model config ({err})") from err
    graph = LabelGraph.load(folder / "label_graph.safetensors") if config.get("has_label_graph") else None
    model = create_model(
        method, num_classes=len(classes), label_graph=graph, pretrained=False, **config["model_kwargs"]
    )
    try:
        missing, unexpected = load_safetensors_into(model, str(folder / "model.safetensors"), strict=False)
    except (SafetensorError, OSError, RuntimeError) as err:
        raise ValueError(f"{folder / 'model.safetensors'}: unreadable or truncated weights ({err})") from err
    if missing or unexpected:
        raise ValueError(
            f"{folder / 'model.safetensors'}: weights do not fit {method}: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return model.eval(), config


def update_config(model_dir: str | Path, **fields: Any) -> dict[str, Any]:
    """Set top-level fields of an exported model's ``config.json`` (atomically), e.g. calibrated thresholds."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: not an exported labelgraph model (no config.json)")
    config = json.loads(path.read_text())
    config.update(fields)
    _atomic_write(path, lambda p: Path(p).write_text(json.dumps(config, indent=2)))
    return config


def trained_state_dict(source: str | Path) -> dict[str, torch.Tensor]:
    """The model weights of an exported model folder or of a Lightning checkpoint (read without unpickling code)."""
    path = Path(source)
    if path.is_dir():
        from safetensors.torch import load_file

        weights = path / "model.safetensors"
        if not weights.is_file():
            raise FileNotFoundError(f"{path}: not an exported labelgraph model (no model.safetensors)")
        return load_file(str(weights))
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model folder or checkpoint")
    return _model_weights(read_checkpoint(path), path)


def _model_weights(checkpoint: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """The network's tensors of a Lightning checkpoint of ``MultiLabelTask`` (the ``model.`` prefix removed)."""
    state = checkpoint.get("state_dict")
    if not isinstance(state, dict):
        raise ValueError(f"{path}: a Lightning checkpoint has a 'state_dict'; this file does not")
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}


def initialise_from(model: nn.Module, source: str | Path) -> dict[str, list[str]]:
    """Copy every tensor of ``source`` whose name and shape match ``model``'s; return what was copied and skipped.

    Raises when nothing matches (the wrong file, most likely).
    """
    own = model.state_dict()
    incoming = trained_state_dict(source)
    copied = [k for k, v in incoming.items() if k in own and own[k].shape == v.shape]
    if not copied:
        raise ValueError(f"{source}: none of its tensors fit this model (different method or backbone?)")
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


def load_trained_model(source: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """An exported model folder (``load_model``) or a Lightning checkpoint of ``labelgraph fit``, in eval mode.

    A checkpoint is rebuilt from the method, arguments and label graph it records.
    """
    path = Path(source)
    if path.is_dir():
        return load_model(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model folder or checkpoint")
    checkpoint = read_checkpoint(path)
    info = checkpoint.get("labelgraph")
    if not info or "model_config" not in info:
        raise ValueError(f"{path}: not a labelgraph checkpoint (no 'labelgraph' entry)")
    method, kwargs = info["model_config"]["method"], dict(info["model_config"]["kwargs"])
    classes = info["class_names"]
    kwargs = {k: v for k, v in kwargs.items() if k not in ("num_classes", *BUILD_TIME_FILES)}
    graph = None
    if "label_graph" in info:
        graph = LabelGraph.from_tensors(info["label_graph"]["tensors"], info["label_graph"]["metadata"])
    model = create_model(method, num_classes=len(classes), label_graph=graph, pretrained=False, **kwargs)
    model.load_state_dict(_model_weights(checkpoint, path))
    config = {
        "method": method,
        "model_kwargs": kwargs,
        "class_names": classes,
        "preprocessing": info["preprocessing"],
        "label_graph": graph,
    }
    return model.eval(), config


def export_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, image_size: int | None = None, thresholds: Any = None
) -> Path:
    """``labelgraph export``: a checkpoint of ``labelgraph fit`` -> an exported model folder."""
    model, config = load_trained_model(checkpoint)
    size = image_size or config["preprocessing"].get("image_size")
    if not size:
        raise ValueError(f"{checkpoint}: the training image size is not recorded; pass --image-size")
    return save_model(
        model,
        out_dir,
        class_names=config["class_names"],
        image_size=int(size),
        thresholds=0.5 if thresholds is None else thresholds,
        label_graph=config["label_graph"],
        extra={"exported_from": str(checkpoint)},
    )
