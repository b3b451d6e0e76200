"""Import paths that moved, still answered for one release with a ``DeprecationWarning`` naming the new path.

Saved files name classes by their import path: checkpoints of ``labelgraph fit`` record ``labelgraph.task.
MultiLabelTask`` (LightningCLI stores the model's class path), and YAML recipes copied from ours name
``labelgraph.schedulers.OneCycleLR``, ``labelgraph.finetuning.StagedFineTuning`` or ``labelgraph.visualization.
validation_figures.ValidationFigures``. Instead of a module at each old path (one of which, inside
``visualization``, would import the engine above it), ``import labelgraph`` adds a finder that answers these names
from :data:`MOVED`: the old module is created empty, and each of its names imports the new module when first used,
warning once. They go in 0.2.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import types
import warnings
from typing import Any

#: old module -> {name: the module that defines it now}
MOVED = {
    "labelgraph.task": {"MultiLabelTask": "labelgraph.engine.task"},
    "labelgraph.schedulers": {"OneCycleLR": "labelgraph.engine.schedulers"},
    "labelgraph.finetuning": {
        "StagedFineTuning": "labelgraph.engine.callbacks",
        "TwoStageCosineLR": "labelgraph.engine.schedulers",
    },
    "labelgraph.visualization.validation_figures": {"ValidationFigures": "labelgraph.engine.callbacks"},
}
REMOVED_IN = "0.2"


class MovedModules:
    """Finds and loads the old modules of :data:`MOVED` (a meta path finder and its loader: the protocol of
    ``importlib.abc.MetaPathFinder`` and ``Loader``, without importing ``importlib.abc``, which costs ``import
    labelgraph`` 14 ms)."""

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None  # the default module

    def exec_module(self, module: types.ModuleType) -> None:
        names = MOVED[module.__name__]
        module.__doc__ = f"Moved: {', '.join(f'{m}.{n}' for n, m in names.items())} (this path goes in {REMOVED_IN})."
        module.__all__ = list(names)
        module.__getattr__ = moved_attribute(module.__name__, names)  # type: ignore[method-assign]


def moved_attribute(old: str, names: dict[str, str]) -> Any:
    """The old module's ``__getattr__``: the name from its new module, with the warning that says where that is."""

    def getattr_(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {old!r} has no attribute {name!r}")
        warnings.warn(
            f"{old}.{name} moved to {names[name]}.{name}; the old path goes in labelgraph {REMOVED_IN}",
            DeprecationWarning,
            stacklevel=2,
        )
        return getattr(importlib.import_module(names[name]), name)

    return getattr_


def install() -> None:
    """Answer the old paths (once per interpreter)."""
    if not any(isinstance(finder, MovedModules) for finder in sys.meta_path):
        sys.meta_path.append(MovedModules())
