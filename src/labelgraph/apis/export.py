"""Exported models: a folder with ``model.safetensors`` + ``config.json`` (+ ``label_graph.safetensors``).

Loading needs neither the training data nor pickle: the config (:class:`~labelgraph.models.ModelConfig`) names the
method and its arguments, the class names in output order and the preprocessing, eval transform included; the weights
(fixed graph priors included) are safetensors. Files are written to a temporary name and renamed, so a crash never
leaves a half-written model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch.nn as nn
from safetensors.torch import save_model as save_safetensors_from

from labelgraph.errors import InvalidInputError
from labelgraph.files import atomic_path, write_text
from labelgraph.graph import LabelGraph
from labelgraph.models import ModelConfig, load_trained_model
from labelgraph.models.model_config import CONFIG_FILE, GRAPH_FILE, ONNX_FILE, WEIGHTS_FILE
from labelgraph.models.weights import read_model_config


def write_config(folder: Path, config: ModelConfig) -> None:
    """``config.json`` of an exported model (atomically), and its model card (``README.md``) to match: every model
    folder, whichever command wrote or updated it, describes what it holds."""
    from labelgraph.apis.model_card import write_model_card

    write_text(folder / CONFIG_FILE, json.dumps(config.to_dict(), indent=2, ensure_ascii=False))
    write_model_card(folder, config=config)


def write_model(model: nn.Module, out_dir: str | Path, config: ModelConfig, label_graph: LabelGraph | None) -> Path:
    """Write ``model`` with ``config`` as an exported folder: the label graph it was built from, weights and config,
    each atomically, the config last."""
    if (label_graph is None) != (config.label_graph is None):
        raise ValueError("the config's label graph summary does not match the label graph given")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / ONNX_FILE).unlink(missing_ok=True)  # exported from the weights being replaced
    if label_graph is not None:
        label_graph.save(out / GRAPH_FILE)  # (atomically)
    with atomic_path(out / WEIGHTS_FILE) as tmp:
        save_safetensors_from(model, str(tmp))
    write_config(out, config)
    return out


def save_model(
    model: nn.Module,
    out_dir: str | Path,
    *,
    class_names: list[str],
    image_size: int | None = None,
    label_graph: LabelGraph | None = None,
    eval_transform: str | None = None,
    thresholds: float | list[float] = 0.5,
    **training: Any,
) -> Path:
    """Export a :class:`MultiLabelClassifier` built by ``create_model``.

    Args:
        model: the network (its ``config`` records method and arguments).
        out_dir: folder to write (created).
        class_names: names in output order.
        image_size: the square input side the model was trained at; None: the model's own (``model.image_size``:
            its recipe's, or the data module's it was trained on).
        label_graph: the graph it was built from (default: the one ``create_model`` recorded, ``model.label_graph``).
        eval_transform: how an image is brought to that size (``resize``; ``center_crop`` as SSGRL evaluates); None:
            the model's own (``model.eval_transform``).
        thresholds: one probability threshold, or one per class.
        **training: what else is known: ``recipe``, ``metrics``, ``command``, ``extra`` (:class:`ModelConfig`).
    """
    graph = label_graph if label_graph is not None else getattr(model, "label_graph", None)
    config = ModelConfig.for_model(
        model,
        class_names=class_names,
        image_size=image_size,
        eval_transform=eval_transform,
        thresholds=thresholds,
        label_graph=graph,
        **training,
    )
    return write_model(model, out_dir, config, graph)


def update_config(model_dir: str | Path, **fields: Any) -> ModelConfig:
    """Change fields of an exported model's config (atomically), e.g. calibrated thresholds; the result is checked as
    any config is read."""
    folder = Path(model_dir)
    config = read_model_config(folder).replace(**fields)
    config = ModelConfig.from_dict(config.to_dict(), folder / CONFIG_FILE)
    write_config(folder, config)
    if (folder / ONNX_FILE).is_file() and ("temperature" in fields or "logit_bias" in fields):
        rescale_onnx_file(folder, config)
    return config


def rescale_onnx_file(folder: Path, config: ModelConfig) -> None:
    """The folder's ``model.onnx`` given the config's scaling, so that it keeps computing ``predict``'s logits; without
    the ``onnx`` package it keeps the old one (its metadata says which, and labelgraph's runtime undoes it)."""
    from labelgraph.apis.onnx import rescale_onnx

    try:
        rescale_onnx(folder / ONNX_FILE, config.temperature, config.logit_bias)
    except ImportError:
        print(f"note: {folder / ONNX_FILE} keeps its old scaling (install the onnx extra, or export it again)")


def export_checkpoint(checkpoint: str | Path, out_dir: str | Path, image_size: int | None = None) -> Path:
    """``labelgraph export``: a checkpoint of ``labelgraph fit`` -> an exported model folder, with its model card
    (``README.md``: :mod:`labelgraph.apis.model_card`)."""
    model, config = load_trained_model(checkpoint)
    size = image_size or config.image_size
    if not size:
        raise InvalidInputError(f"{checkpoint}: the training image size is not recorded; pass --image-size")
    config = config.replace(image_size=int(size), extra={**config.extra, "exported_from": str(checkpoint)})
    return write_model(model, out_dir, ModelConfig.from_dict(config.to_dict(), checkpoint), model.label_graph)
