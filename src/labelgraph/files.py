"""Files written whole or not at all: every output goes to a temporary name beside its target and is renamed into
place, so a crash, a full disk or a signal never leaves a partial CSV, JSON, figure or model file behind. And where
what is worth keeping between runs goes (:func:`user_cache_dir`).

At the bottom of the dependency order with :mod:`labelgraph.errors`: it imports nothing of ours.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` (same suffix, so writers that infer the format from it work); when the
    block ends without an exception it replaces ``path``, otherwise it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def user_cache_dir(*parts: str) -> Path:
    """``$LABELGRAPH_CACHE`` (else ``$XDG_CACHE_HOME/labelgraph``, else ``~/.cache/labelgraph``) / ``parts``, created:
    what a later run reuses (the demo's stand-in backbone). Deleting it costs only the time to rebuild."""
    root = os.environ.get("LABELGRAPH_CACHE")
    if not root:
        root = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "labelgraph")
    folder = Path(root, *parts)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_text(path: str | Path, text: str, errors: str = "strict") -> Path:
    """Write ``text`` as UTF-8 (``errors="surrogateescape"`` writes back the bytes of names that were not UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8", errors=errors)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """A matplotlib figure as a PNG at ``path`` (written whole or not at all), then closed."""
    import matplotlib.pyplot as plt

    literal_text(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    plt.close(fig)
    return Path(path)


def literal_text(fig: Any) -> Any:
    """Every text of ``fig`` drawn as written: matplotlib reads ``$...$`` as mathtext, so a class called ``$x^$`` would
    fail to draw (and ``$\\alpha$`` draw as a Greek letter)."""
    for text in fig.findobj(lambda artist: hasattr(artist, "set_parse_math")):
        text.set_parse_math(False)
    return fig
