"""Pre-labels for the labelling tools: a model's tags written as files Label Studio and CVAT import, so that a person
corrects them instead of tagging from nothing.

- **Label Studio**: a JSON list of tasks ``{"data": {"image": REF, "scores": {class: p}}, "predictions":
  [{"model_version", "score", "result": [{"type": "choices", "from_name", "to_name", "value": {"choices": [...]}}]}]}``
  -- Label Studio shows the prediction as a pre-annotation; ``data.scores`` (every class's probability) is a column
  of its Data Manager, and the prediction's ``score`` is the image's **least confident decision** (the smallest
  ``max(p, 1 - p)`` over the classes), so sorting the tasks by it puts the images to review first. ``from_name`` /
  ``to_name`` are the names of the project's ``<Choices>`` and ``<Image>`` tags: :func:`label_studio_config` writes a
  labelling config with those names and the classes.
- **CVAT**: a "CVAT for images 1.1" XML annotation file, one ``<image>`` per picture with its size and one ``<tag
  label=... source="auto">`` per predicted class (CVAT's tags carry no score), the classes declared in ``<meta>``.

The image reference is the image's path relative to ``image_root`` (with ``/`` separators); for Label Studio,
percent-encoded behind ``prefix`` (default ``/data/local-files/?d=``: Label Studio's local-files storage, whose
document root is ``image_root``; a URL prefix for images served elsewhere). Reading the corrected export back with
``--root image_root`` gives the same images (:mod:`~labelgraph.data.formats.label_studio`,
:mod:`~labelgraph.data.formats.cvat`).
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

LOCAL_FILES_PREFIX = "/data/local-files/?d="
FROM_NAME, TO_NAME = "choice", "image"


def image_reference(image: str | Path, image_root: str | Path) -> str:
    """``image``'s path relative to ``image_root`` as a POSIX path (an error when it is not under it)."""
    path, root = Path(image).absolute(), Path(image_root).absolute()
    try:
        return PurePosixPath(path.relative_to(root)).as_posix()
    except ValueError:
        raise ValueError(f"{image}: not under the image root {str(root)!r} (set it with --image-root)") from None


def least_confidence(scores: dict[str, float]) -> float:
    """The smallest ``max(p, 1 - p)`` over the classes: how sure the model is of its least sure decision."""
    return round(min(max(p, 1.0 - p) for p in scores.values()), 6) if scores else 1.0


def label_studio_tasks(
    predictions: Sequence[dict[str, Any]],
    image_root: str | Path,
    model_version: str,
    prefix: str = LOCAL_FILES_PREFIX,
    from_name: str = FROM_NAME,
    to_name: str = TO_NAME,
) -> list[dict[str, Any]]:
    """``predictions``: ``[{"image", "labels", "scores": {class: p}}]`` (:meth:`Predictor.predict`'s) -> tasks."""
    tasks = []
    for p in predictions:
        relative = image_reference(p["image"], image_root)
        reference = prefix + quote(relative, errors="surrogateescape")
        choices = {"choices": list(p["labels"])}
        result = {"type": "choices", "from_name": from_name, "to_name": to_name, "value": choices}
        prediction = {"model_version": model_version, "score": least_confidence(p["scores"]), "result": [result]}
        tasks.append({"data": {to_name: reference, "scores": p["scores"]}, "predictions": [prediction]})
    return tasks


def label_studio_config(class_names: Sequence[str], from_name: str = FROM_NAME, to_name: str = TO_NAME) -> str:
    """A Label Studio labelling config for multi-label image tagging with these classes (to paste into the project's
    Settings > Labeling Interface > Code), its names matching :func:`label_studio_tasks`'."""
    view = ET.Element("View")
    ET.SubElement(view, "Image", name=to_name, value=f"${to_name}")
    choices = ET.SubElement(view, "Choices", name=from_name, toName=to_name, choice="multiple", showInLine="true")
    for name in class_names:
        ET.SubElement(choices, "Choice", value=name)
    ET.indent(view)
    return ET.tostring(view, encoding="unicode") + "\n"


def cvat_annotations(
    predictions: Sequence[dict[str, Any]],
    class_names: Sequence[str],
    image_root: str | Path,
    sizes: Sequence[tuple[int, int]],
) -> str:
    """A "CVAT for images 1.1" annotation file: ``sizes`` are the images' ``(width, height)``."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    labels = ET.SubElement(ET.SubElement(ET.SubElement(root, "meta"), "task"), "labels")
    for name in class_names:
        label = ET.SubElement(labels, "label")
        ET.SubElement(label, "name").text = name
        ET.SubElement(label, "type").text = "tag"
        ET.SubElement(label, "attributes")
    for i, (p, (width, height)) in enumerate(zip(predictions, sizes, strict=True)):
        name = image_reference(p["image"], image_root)
        image = ET.SubElement(root, "image", id=str(i), name=name, width=str(width), height=str(height))
        for label in p["labels"]:
            ET.SubElement(image, "tag", label=label, source="auto")
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def label_studio_json(tasks: list[dict[str, Any]]) -> str:
    return json.dumps(tasks, indent=1, ensure_ascii=False) + "\n"
