"""Label Studio's JSON exports of an image classification project (a ``Choices`` control, ``choice="multiple"``).

Both of Label Studio's JSON exports are read, told apart by their records:

- **JSON** (the full export): a list of tasks ``{"id", "data": {"image": ...}, "annotations": [{"result": [{"type":
  "choices", "from_name", "value": {"choices": [...]}}], "was_cancelled", "created_at", "updated_at"}], ...}``;
- **JSON-MIN**: one flat record per annotation, the task's data fields beside ``id``, one field per control (its
  choices: a list under ``{"choices": [...]}``, or the one choice as a string), ``annotator``, ``annotation_id``,
  ``created_at``, ``updated_at`` and ``lead_time``.

Rules: an image's labels are the choices of its task's **latest** annotation (``updated_at``, else ``created_at``;
the last listed on a tie) that was not cancelled; the other classes are absent (a multiple-choice annotation says
what is there). A task with no such annotation (skipped, cancelled, not labelled yet) is left out, and the reader
says how many and which (a warning naming the file). Several ``Choices`` controls: their choices together; in
JSON-MIN a control's field is one that holds ``{"choices": [...]}`` in some record (a string there is its one
choice), or, where no record has several choices, every string field but the image's. The image is
``data["image"]`` (else the task's one data field), resolved against ``root`` (default: the export's folder):
``/data/upload/<project>/<prefix>-<name>`` (Label Studio's uploads, their names prefixed with 8 characters) is
``root/<prefix>-<name>`` or ``root/<name>``, whichever exists; ``/data/local-files/?d=<path>`` is ``root/<path>``;
a URL (``http(s)://``, ``s3://``, ``gs://``, ``azure-blob://``) is ``root/<its file name>``; any other path is taken
as it is, relative to ``root``. A task without an image, a choice outside ``class_names`` and an image listed twice
are errors naming the task (:func:`~labelgraph.data.formats.tagged_images.tagged_table`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from labelgraph.data.formats.csv_format import AnnotationError
from labelgraph.data.formats.tagged_images import tagged_table
from labelgraph.data.label_table import LabelTable

logger = logging.getLogger(__name__)
MIN_FIELDS = {"id", "annotator", "annotation_id", "created_at", "updated_at", "lead_time", "agreement"}
URL_SCHEMES = ("http", "https", "s3", "gs", "azure-blob")
UPLOAD_PREFIX = "/data/upload/"
LOCAL_FILES = "/data/local-files/"


def read_label_studio(root: str | Path | None, split: str, class_names: list[str] | None = None) -> LabelTable:
    """``split``: the export file (as given: ``root`` is only where the images are)."""
    path = Path(split)
    records = load_records(path)
    image_root = (Path(root) if root is not None else path.parent).absolute()
    tasks = [full_task(r, path) for r in records] if is_full_export(records) else min_tasks(records, path)
    kept = [(task_id, image, labels) for task_id, image, labels in tasks if labels is not None]
    skipped = [str(task_id) for task_id, _, labels in tasks if labels is None]
    if class_names is None:
        class_names = sorted({name for _, _, labels in kept for name in labels})
    entries = [(f"task {task_id}", image, resolve_image(image, image_root), labels) for task_id, image, labels in kept]
    table = tagged_table(entries, class_names, path, image_root)
    if skipped:
        shown = ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else "")
        logger.warning("%s: %d task(s) without an annotation to keep (skipped or cancelled) left out: %s",
                       path, len(skipped), shown)  # fmt: skip
    return table


def load_records(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise FileNotFoundError(f"Label Studio export {str(path)!r} does not exist")
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise AnnotationError(f"{path}: not a Label Studio JSON export ({err})") from err
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise AnnotationError(f"{path}: a Label Studio JSON export is a list of tasks (objects)")
    return records


def is_full_export(records: list[dict[str, Any]]) -> bool:
    return any("data" in r and isinstance(r["data"], dict) for r in records)


def task_image(data: dict[str, Any], task_id: Any, path: Path) -> str:
    """The task's image reference: ``data["image"]``, else its one data field."""
    if isinstance(data.get("image"), str) and data["image"]:
        return data["image"]
    values = [v for v in data.values() if isinstance(v, str) and v]
    if len(values) != 1:
        raise AnnotationError(f"{path}: task {task_id}: no image (a data field 'image' holding its path or URL)")
    return values[0]


def full_task(task: dict[str, Any], path: Path) -> tuple[Any, str, list[str] | None]:
    """``(task id, image, labels)`` of a task of the full export; labels None when no annotation is kept."""
    task_id = task.get("id", "?")
    image = task_image(task.get("data") or {}, task_id, path)
    kept = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if not kept:
        return task_id, image, None
    latest = max(enumerate(kept), key=lambda ia: (annotation_time(ia[1]), ia[0]))[1]
    labels = []
    for result in latest.get("result") or []:
        if isinstance(result, dict) and result.get("type") == "choices":
            labels += [str(c) for c in (result.get("value") or {}).get("choices", [])]
    return task_id, image, labels


def min_tasks(records: list[dict[str, Any]], path: Path) -> list[tuple[Any, str, list[str] | None]]:
    """JSON-MIN: one record per annotation; each task's latest one (records without an ``id``: one task each)."""
    latest: dict[Any, tuple[tuple[str, int], dict[str, Any]]] = {}
    for i, record in enumerate(records):
        key = record.get("id", f"record {i + 1}")
        stamp = (annotation_time(record), i)
        if key not in latest or stamp >= latest[key][0]:
            latest[key] = (stamp, record)
    controls = {k for r in records for k, v in r.items() if k not in MIN_FIELDS and several_choices(v)}
    tasks = []
    for task_id, (_, record) in latest.items():
        fields = {k: v for k, v in record.items() if k not in MIN_FIELDS}
        image = fields["image"] if isinstance(fields.get("image"), str) else None
        if image is None and controls:
            image = task_image({k: v for k, v in fields.items() if k not in controls}, task_id, path)
        if not image:
            raise AnnotationError(f"{path}: task {task_id}: no image (a field 'image' holding its path or URL)")
        keys = controls or {k for k, v in fields.items() if isinstance(v, str) and v != image}
        labels = [c for k in keys if k in fields for c in min_choices(fields[k])]
        tasks.append((task_id, image, labels))
    return tasks


def several_choices(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("choices"), list)


def min_choices(value: Any) -> list[str]:
    """A JSON-MIN control field's choices: ``{"choices": [...]}``, one choice as a string, or a list of either."""
    if several_choices(value):
        return [str(c) for c in value["choices"]]
    if isinstance(value, list):
        return [c for v in value for c in min_choices(v)]
    return [value] if isinstance(value, str) and value else []


def annotation_time(annotation: dict[str, Any]) -> str:
    """ISO 8601 times sort as strings (Label Studio writes them all in UTC, ``...Z``)."""
    return str(annotation.get("updated_at") or annotation.get("created_at") or "")


def resolve_image(reference: str, root: Path) -> str:
    """Where an exported image reference is under ``root`` (module docstring)."""
    parsed = urlparse(reference)
    if reference.startswith(LOCAL_FILES):
        wanted = parse_qs(parsed.query).get("d", [""])[0]
        return str(root / unquote(wanted))
    if reference.startswith(UPLOAD_PREFIX):
        name = PurePosixPath(unquote(parsed.path)).name
        bare = name.split("-", 1)[1] if len(name) > 9 and name[8] == "-" else name
        return str(root / name) if (root / name).exists() or not (root / bare).exists() else str(root / bare)
    if parsed.scheme in URL_SCHEMES:
        return str(root / PurePosixPath(unquote(parsed.path)).name)
    return str(root / reference)
