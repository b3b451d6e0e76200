"""Checks of a user's splits before any compute is spent (``labelgraph train`` and ``labelgraph compare``).

Every image's header is read (no pixel is decoded: thousands of images in seconds) and the labels are counted. The
rule, also in ``docs/your_own_data.md``:

- **refused** (the run does not start; exit status 2): an image file that is missing, unreadable or too costly to
  decode; an image listed twice in one split; an image in two splits (the held-out numbers would be measured on
  training images); a split with no image; a class without a single positive in the training split (nothing to learn
  it from); a held-out split without a single known negative entry (single-positive labels held out of the training
  split: every score would rank perfectly, mAP 100).
- **warned** (the run goes on): a class with fewer than ``RARE`` training positives (its AP and threshold rest on a
  handful of images); a class without a positive in the validation split (no AP; its threshold stays 0.5); images
  without any label (they teach "none of these classes"), or with every label unknown; unknown entries (``?name``,
  ``?*``: left to the incomplete-label loss, ``docs/incomplete_labels.md``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from PIL import Image

from labelgraph.data.image_io import DEFAULT_MAX_DECODED_BYTES, check_decode_cost
from labelgraph.data.label_table import LabelTable
from labelgraph.errors import InvalidInputError

RARE = 3  # training positives below which a class is reported as rare
SHOWN = 5  # names shown per problem in the summary


class PreflightError(InvalidInputError):
    """The splits fail a check that refuses the run (the message is the whole summary)."""


@dataclass
class Preflight:
    """What the checks found: ``refused`` and ``warned`` problems, each a line naming what it is about."""

    lines: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    warned: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return "\n".join(
            [*self.lines, *(f"refused: {p}" for p in self.refused), *(f"warning: {p}" for p in self.warned)]
        )


def named(items: list[str]) -> str:
    """``a, b, c, d, e and 7 more`` (the first ``SHOWN``)."""
    shown = ", ".join(items[:SHOWN])
    return shown + (f" and {len(items) - SHOWN} more" if len(items) > SHOWN else "")


def unreadable_images(table: LabelTable) -> list[str]:
    """``path (problem)`` for every image whose header cannot be read or that would cost too much to decode
    (:func:`labelgraph.data.image_io.check_decode_cost`, the readers' own limit)."""
    bad = []
    for i in range(len(table)):
        path = table.path(i)
        try:
            with Image.open(path) as img:
                check_decode_cost(img, None, DEFAULT_MAX_DECODED_BYTES, path)
        except FileNotFoundError:
            bad.append(f"{path} (missing)")
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            problem = " ".join(str(err).removeprefix(f"{path}: ").split()) or type(err).__name__
            bad.append(f"{path} ({problem})")
    return bad


def repeated_images(table: LabelTable) -> list[str]:
    """Images listed more than once in one split."""
    counts = Counter(str(table.path(i)) for i in range(len(table)))
    return [f"{path} ({n} times)" for path, n in counts.items() if n > 1]


def check_splits(splits: dict[str, LabelTable]) -> Preflight:
    """Check ``{"train": table, "val": table, ...}`` (the first is the training split) by the module's rule."""
    found = Preflight()
    seen: dict[str, str] = {}
    for name, table in splits.items():
        positives = table.targets == 1
        unknown = int((table.targets == -1).sum())
        found.lines.append(
            f"{name}: {len(table)} images of {table.source}, {table.num_classes} classes, "
            f"{positives.sum() / max(len(table), 1):.2f} labels per image"
            + (f", {unknown} unknown entries" if unknown else "")
        )
        if not len(table):
            found.refused.append(f"{name}: no images in {table.source}")
        if bad := unreadable_images(table):
            found.refused.append(f"{name}: {len(bad)} image(s) missing or unreadable: {named(bad)}")
        if twice := repeated_images(table):
            found.refused.append(f"{name}: {len(twice)} image(s) listed more than once: {named(twice)}")
        shared = sorted({str(table.path(i)) for i in range(len(table))} & set(seen))
        if shared:
            found.refused.append(f"{name}: {len(shared)} image(s) also in {seen[shared[0]]}: {named(shared)}")
        seen.update({str(table.path(i)): name for i in range(len(table))})
        unknown_rows = (table.targets == -1).any(axis=1)
        if empty := int((~positives.any(axis=1) & ~unknown_rows).sum()):
            found.warned.append(f"{name}: {empty} image(s) without any label (they teach 'none of these classes')")
        if blank := int((table.targets == -1).all(axis=1).sum()):
            found.warned.append(
                f"{name}: {blank} image(s) with every label unknown (only losses that estimate "
                "labels, such as ROLE, learn from them)"
            )
    check_class_counts(splits, found)
    return found


def check_class_counts(splits: dict[str, LabelTable], found: Preflight) -> None:
    """Classes without training positives (refused), rare ones, and ones without validation positives (warned)."""
    (train_name, train), *held_out = splits.items()
    counts = (train.targets == 1).sum(axis=0)
    absent = [n for n, k in zip(train.class_names, counts, strict=True) if k == 0]
    if absent:
        found.refused.append(f"{train_name}: {len(absent)} class(es) without a positive image: {named(absent)}")
    rare = [f"{n} ({k})" for n, k in zip(train.class_names, counts, strict=True) if 0 < k < RARE]
    if rare:
        found.warned.append(
            f"{train_name}: {len(rare)} class(es) with fewer than {RARE} positive images: {named(rare)}"
        )
    for name, table in held_out:  # measured on: without known negatives every score ranks perfectly (AP 100)
        if len(table) and not (table.targets == 0).any():
            found.refused.append(
                f"{name}: no known negative entry (single-positive labels?): its mAP and F1 would be 100 and its "
                "thresholds meaningless; give a fully labelled validation split (--val) and --test"
            )
    for name, table in held_out[:1]:  # the validation split: calibration and early stopping read it
        none = [n for n, k in zip(table.class_names, (table.targets == 1).sum(axis=0), strict=True) if k == 0]
        if none:
            found.warned.append(
                f"{name}: {len(none)} class(es) without a positive image (no AP; threshold stays 0.5): {named(none)}"
            )
