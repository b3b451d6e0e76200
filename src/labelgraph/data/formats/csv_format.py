"""The custom CSV format: how users bring their own multi-label data.

One file per split, UTF-8, with a header line that has (at least) the columns ``image`` and ``labels``::

    image,labels
    photos/0001.jpg,person|dog
    photos/0002.jpg,cat|?dog
    photos/0003.jpg,

- ``image``: a path, relative to the image root (by default the CSV's folder) or absolute.
- ``labels``: class names separated by ``|``. A name prefixed with ``?`` is **unknown** for that image (target -1:
  ignored by the losses and, by default, by the metrics). A class not listed is **absent** (0). An empty field
  means no class is present.
- Incomplete annotations (partial or single-positive labels) have a compact form: the item ``?*`` makes every class
  *not listed on that line* unknown, and ``!name`` marks a class as known absent. ``cat|!dog|?*`` says: cat present,
  dog absent, every other class unknown. In a line with ``?*`` an unlisted class never means absent; ``!name`` is
  allowed anywhere (in a line without ``?*`` it only repeats the default). Class names therefore cannot start with
  ``?`` or ``!``.
- Other columns are ignored. Class names are case-sensitive, stripped of surrounding spaces and NFC-normalised (the
  Unicode forms of "café" that look alike are one name; a file that spells one name in two forms is refused).

Lines are split by the ``csv`` module, at line ends only (``\\n``, ``\\r\\n``, ``\\r``): a path or label that contains
another line or paragraph separator (U+2028, U+2029, U+0085) or a control character is refused, naming the file and
line, rather than read as two records or a glued name.

The class list is given explicitly (``classes`` of the data module: a list or a text file with one name per
line) or, by default, is the sorted set of names that appear in the train CSV. A name in another split that is
not in the class list is an error.
"""

from __future__ import annotations

import csv
import os
import unicodedata
from pathlib import Path

import numpy as np

from labelgraph.data.label_table import LabelTable
from labelgraph.errors import InvalidInputError
from labelgraph.files import atomic_path
from labelgraph.graph.label_graph import check_class_count
from labelgraph.graph.sentence_embeddings import split_description

UNKNOWN_PREFIX = "?"
ABSENT_PREFIX = "!"
REST_UNKNOWN = "?*"  # every class not listed on the line is unknown
SEPARATOR = "|"


class AnnotationError(InvalidInputError):
    """A malformed annotation file; the message names the file and line."""


def _parse_rows(path: Path) -> list[tuple[int, str, list[str]]]:
    if not path.is_file():
        raise FileNotFoundError(f"annotation file {str(path)!r} does not exist")
    try:
        with path.open(encoding="utf-8-sig", newline="") as f:
            records = [(reader.line_num, row) for reader in [csv.reader(f)] for row in reader]
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not UTF-8 text ({err})") from err
    except csv.Error as err:
        raise AnnotationError(f"{path}: malformed CSV ({err})") from err
    if not records:
        raise AnnotationError(f"{path}: the file is empty; expected a header line 'image,labels'")
    header = [h.strip() for h in records[0][1]]
    if "image" not in header or "labels" not in header:
        raise AnnotationError(f"{path}: line 1: header {header} lacks the columns 'image' and 'labels'")
    i_img, i_lab = header.index("image"), header.index("labels")
    rows: list[tuple[int, str, list[str]]] = []
    seen: dict[str, int] = {}
    spellings = NameSpellings(path)
    for line_no, row in records[1:]:
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) <= i_img or len(row) > len(header):
            raise AnnotationError(f"{path}: line {line_no}: expected {len(header)} columns, found {len(row)}")
        image = check_text(row[i_img].strip(), path, line_no, "image path")
        labels = check_text(row[i_lab].strip(), path, line_no, "labels") if i_lab < len(row) else ""
        if not image:
            raise AnnotationError(f"{path}: line {line_no}: empty image path")
        names = [spellings.add(n.strip(), line_no) for n in labels.split(SEPARATOR)] if labels else []
        if any(not n or n in (UNKNOWN_PREFIX, ABSENT_PREFIX) for n in names):
            raise AnnotationError(f"{path}: line {line_no}: empty label name in {labels!r}")
        if image in seen:
            raise AnnotationError(f"{path}: line {line_no}: image {image!r} is already listed on line {seen[image]}")
        seen[image] = line_no
        rows.append((line_no, image, names))
    return rows


def check_text(text: str, path: Path, line_no: int, what: str) -> str:
    """``text`` when it holds no line/paragraph separator or control character; else one error naming the line."""
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Zl", "Zp")), None)
    if bad is not None:
        raise AnnotationError(
            f"{path}: line {line_no}: the {what} {text!r} contains the control or line-separator "
            f"character U+{ord(bad):04X}; remove it (a record is one line)"
        )
    return text


class NameSpellings:
    """NFC-normalises class names, refusing a file that writes one name in two Unicode forms."""

    def __init__(self, source: Path | str) -> None:
        self.source = source
        self.first: dict[str, tuple[str, int]] = {}  # normalised name -> (its first spelling, line)

    def add(self, raw: str, line_no: int) -> str:
        """``raw`` (``name``, ``?name`` or ``!name``) with the name NFC-normalised."""
        if raw == REST_UNKNOWN:
            return raw
        bare = bare_name(raw)
        name = unicodedata.normalize("NFC", bare)
        spelled, line = self.first.setdefault(name, (bare, line_no))
        if spelled != bare:
            raise AnnotationError(
                f"{self.source}: line {line_no}: the class {bare!r} is written in another Unicode form than on line "
                f"{line} ({ascii(bare)} vs {ascii(spelled)}); write every name in one form"
            )
        return raw[: len(raw) - len(bare)] + name


def read_csv(
    path: str | Path, class_names: list[str] | None = None, image_root: str | Path | None = None
) -> LabelTable:
    """Parse one split in the custom CSV format.

    Args:
        path: the CSV file.
        class_names: the class order; by default the sorted names found in this file.
        image_root: folder that relative image paths start from (default: the CSV's folder).
    """
    path = Path(path)
    rows = _parse_rows(path)
    if class_names is not None:
        class_names = [unicodedata.normalize("NFC", n) for n in class_names]
    if class_names is None:
        class_names = sorted({bare_name(n) for _, _, names in rows for n in names if n != REST_UNKNOWN})
        if not class_names:
            raise AnnotationError(f"{path}: no labels found, so the class list is empty; give `classes` explicitly")
    check_class_count(len(class_names), path)
    index = {name: i for i, name in enumerate(class_names)}
    targets = np.zeros((len(rows), len(class_names)), dtype=np.int8)
    for r, (line_no, _, names) in enumerate(rows):
        targets[r] = row_targets(names, index, path, line_no)
    root = Path(image_root) if image_root is not None else path.parent
    return LabelTable([img for _, img, _ in rows], list(class_names), targets, root=root, source=str(path))


def bare_name(raw: str) -> str:
    """The class name of a label item (``name``, ``?name`` or ``!name``)."""
    return raw[1:] if raw[:1] in (UNKNOWN_PREFIX, ABSENT_PREFIX) else raw


def row_targets(names: list[str], index: dict[str, int], path: Path, line_no: int) -> np.ndarray:
    """One line's label items -> its (C,) targets in {1, 0, -1}; with ``?*`` unlisted classes are -1."""
    values = {UNKNOWN_PREFIX: -1, ABSENT_PREFIX: 0}
    row = np.full(len(index), -1 if REST_UNKNOWN in names else 0, dtype=np.int8)
    given: dict[str, int] = {}
    for raw in names:
        if raw == REST_UNKNOWN:
            continue
        name, value = bare_name(raw), values.get(raw[:1], 1)
        if name not in index:
            raise AnnotationError(
                f"{path}: line {line_no}: unknown class {name!r} (not among the {len(index)} classes)"
            )
        if given.setdefault(name, value) != value:
            states = {1: "present", 0: "absent", -1: "unknown"}
            raise AnnotationError(
                f"{path}: line {line_no}: class {name!r} is both {states[given[name]]} and {states[value]}"
            )
        row[index[name]] = value
    return row


def parse_labels(text: str, class_names: list[str], where: str = "labels") -> np.ndarray:
    """One labels field in this format (``cat|!dog|?*``) -> (C,) targets in {1, 0, -1} over ``class_names``; a
    problem is an :class:`AnnotationError` naming ``where``."""
    names = [unicodedata.normalize("NFC", n.strip()) for n in text.split("|") if n.strip()]
    index = {unicodedata.normalize("NFC", name): i for i, name in enumerate(class_names)}
    try:
        return row_targets(names, index, Path(where), 1)
    except AnnotationError as err:
        raise AnnotationError(str(err).replace(f"{where}: line 1: ", f"{where}: ")) from None


def row_labels(class_names: list[str], row: np.ndarray) -> str:
    """(C,) targets -> the ``labels`` field, in the shorter of the two forms: unknown classes listed as ``?name``
    (absent ones unlisted), or ``?*`` with absent classes listed as ``!name``."""
    present = [n for n, v in zip(class_names, row, strict=True) if v == 1]
    unknown = [UNKNOWN_PREFIX + n for n, v in zip(class_names, row, strict=True) if v == -1]
    absent = [ABSENT_PREFIX + n for n, v in zip(class_names, row, strict=True) if v == 0]
    if unknown and len(absent) + 1 < len(unknown):
        return SEPARATOR.join([*present, *absent, REST_UNKNOWN])
    return SEPARATOR.join(present + unknown)


def write_csv(table: LabelTable, path: str | Path, rebase: bool = False) -> None:
    """Write a table in the custom CSV format (incomplete lines compact). Image paths as stored in the table, or with
    ``rebase`` each image's resolved path relative to the new file's folder (the file can live elsewhere)."""
    images = table.images
    if rebase:
        folder = Path(path).absolute().parent
        images = [os.path.relpath(table.path(i).absolute(), folder) for i in range(len(table))]
    with atomic_path(path) as tmp, tmp.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["image", "labels"])
        for image, row in zip(images, table.targets, strict=True):
            writer.writerow([image, row_labels(table.class_names, row)])


def read_class_list(path: str | Path) -> list[str]:
    """A text file with one class name per line (blank lines ignored), NFC-normalised; a name listed twice (in any
    Unicode form) or holding a control character is refused. A line ``name: description`` names the class ``name``
    (the description is what ``minilm`` label embeddings embed: :func:`labelgraph.graph.embeddings_from_source`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"class list {str(path)!r} does not exist")
    try:
        lines = path.read_text(encoding="utf-8-sig").split("\n")  # line ends only: U+2028 inside a name is refused
    except UnicodeDecodeError as err:
        raise AnnotationError(f"{path}: not UTF-8 text ({err})") from err
    names, where = [], {}
    for line_no, line in enumerate(lines, start=1):
        raw = check_text(split_description(line)[0], path, line_no, "class name")
        if not raw:
            continue
        name = unicodedata.normalize("NFC", raw)
        if name in where:
            raise AnnotationError(f"{path}: line {line_no}: the class {raw!r} is already listed on line {where[name]}")
        where[name] = line_no
        names.append(name)
    if not names:
        raise AnnotationError(f"{path}: no class names")
    return names
