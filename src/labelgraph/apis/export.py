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

import torch.nn as nn
from safetensors.torch import save_model as save_safetensors_from

from labelgraph.graph import LabelGraph
from labelgraph.models import BUILD_TIME_FILES, load_trained_model

FORMAT_VERSION = 1


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


def update_config(model_dir: str | Path, **fields: Any) -> dict[str, Any]:
    """Set top-level fields of an exported model's ``config.json`` (atomically), e.g. calibrated thresholds."""
    path = Path(model_dir) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{model_dir}: not an exported labelgraph model (no config.json)")
    config = json.loads(path.read_text())
    config.update(fields)
    _atomic_write(path, lambda p: Path(p).write_text(json.dumps(config, indent=2)))
    return config


def export_checkpoint(
    checkpoint: str | Path, out_dir: str | Path, image_size: int | None = None, thresholds: Any = None
) -> Path:
    """``labelgraph export``: a checkpoint of ``labelgraph fit`` -> an exported model folder, with its model card
    (``README.md``: :mod:`labelgraph.apis.model_card`)."""
    from labelgraph.apis.model_card import write_model_card

    model, config = load_trained_model(checkpoint)
    size = image_size or config["preprocessing"].get("image_size")
    if not size:
        raise ValueError(f"{checkpoint}: the training image size is not recorded; pass --image-size")
    out = save_model(
        model,
        out_dir,
        class_names=config["class_names"],
        image_size=int(size),
        thresholds=0.5 if thresholds is None else thresholds,
        label_graph=config["label_graph"],
        extra={"exported_from": str(checkpoint), **config.get("training", {})},
    )
    write_model_card(out)
    return out
