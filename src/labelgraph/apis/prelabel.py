"""``labelgraph predict --format label-studio|cvat``: a model's predictions written as the labelling tools' import
files (:mod:`labelgraph.data.formats.prelabels`), so a person corrects the model's tags instead of tagging from
nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from labelgraph.data.formats.prelabels import (
    LOCAL_FILES_PREFIX,
    cvat_annotations,
    label_studio_config,
    label_studio_json,
    label_studio_tasks,
)
from labelgraph.data.image_io import ImageLoadError, upright_size
from labelgraph.errors import InvalidInputError
from labelgraph.files import write_text
from labelgraph.models import ModelConfig

TOOLS = ("label-studio", "cvat")


def model_version(folder: str | Path, config: ModelConfig) -> str:
    """What the pre-labels say made them: the method, the folder's name and its weights' digest (Label Studio shows
    it beside each prediction and can filter by it)."""
    from labelgraph.apis.onnx import weights_digest

    return f"labelgraph {config.method} {Path(folder).name} sha256:{weights_digest(folder)[:12]}"


def write_prelabels(
    result: dict[str, Any],
    out: str | Path,
    tool: str,
    image_root: str | Path,
    version: str,
    prefix: str = LOCAL_FILES_PREFIX,
) -> list[Path]:
    """Write ``result`` (:meth:`Predictor.predict`'s) for ``tool``; returns the files written: Label Studio's tasks
    and, beside them, the labelling config they fit (``<out stem>.label_config.xml``); CVAT's annotation file."""
    out = Path(out)
    if tool not in TOOLS:
        raise InvalidInputError(f"unknown labelling tool {tool!r}: use one of {', '.join(TOOLS)}")
    try:
        if tool == "label-studio":
            tasks = label_studio_tasks(result["predictions"], image_root, version, prefix)
            config = out.with_name(out.stem + ".label_config.xml")
            written = write_text(out, label_studio_json(tasks))
            return [written, write_text(config, label_studio_config(result["classes"]))]
        sizes = [upright_size(p["image"]) for p in result["predictions"]]
        return [write_text(out, cvat_annotations(result["predictions"], result["classes"], image_root, sizes))]
    except (ValueError, ImageLoadError) as err:
        raise InvalidInputError(f"{out}: not written: {err}") from err
