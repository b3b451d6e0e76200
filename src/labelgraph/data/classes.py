"""Class lists: the order is part of a model, so every mismatch is an error that says what differs."""

from __future__ import annotations

from labelgraph.errors import InvalidInputError


def class_mismatch_message(a: list[str], b: list[str], a_name: str, b_name: str) -> str:
    """Say how two class lists differ (count, names, or order)."""
    if len(a) != len(b):
        only_a, only_b = sorted(set(a) - set(b))[:10], sorted(set(b) - set(a))[:10]
        diff = (
            f"{len(a)} classes in the {a_name}, {len(b)} in the {b_name} "
            f"(only in the {a_name}: {only_a}; only in the {b_name}: {only_b})"
        )
    elif set(a) != set(b):
        diff = f"only in the {a_name}: {sorted(set(a) - set(b))}; only in the {b_name}: {sorted(set(b) - set(a))}"
    else:
        first = next(i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y)
        diff = f"same names, different order (position {first}: {a[first]!r} vs {b[first]!r})"
    return f"the {a_name}'s classes do not match the {b_name}'s: {diff}"


class ClassMismatchError(InvalidInputError):
    """Two class lists (a model's, a dataset's, a checkpoint's) differ in count, names or order."""


def check_same_classes(a: list[str], b: list[str], a_name: str, b_name: str) -> None:
    """Raise :class:`ClassMismatchError`, saying what differs, unless ``a`` and ``b`` are the same list."""
    if list(a) != list(b):
        raise ClassMismatchError(class_mismatch_message(list(a), list(b), a_name, b_name))
