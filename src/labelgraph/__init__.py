"""labelgraph: multi-label image classification with label graphs and label queries, under one API.

The subpackages in dependency order (:data:`DEPENDENCY_ORDER`: each imports only those before it): ``layers``,
``losses``, ``graph``, ``models``, ``data``, ``evaluation`` (the library), then ``apis`` (using a trained model),
``visualization`` (figures, reports), ``engine`` (training, whose callbacks draw figures), ``serving`` (HTTP),
``studies`` (demo, sweeps) and ``cli`` (the ``labelgraph`` command); below them four modules that import nothing of
ours.

``import labelgraph`` imports none of them: each name below loads its module when first used (PEP 562), so that a
command's first line and ``labelgraph --help`` do not wait for PyTorch, Lightning or timm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelgraph.lazy_exports import lazy_exports
from labelgraph.moved import install

install()  # old import paths (labelgraph.task, ...) answer with a DeprecationWarning naming the new one

__version__ = "0.1.0"

#: the package's modules and subpackages from the bottom up: each imports only those before it (tests/test_style.py
#: reads every import to hold it); the library ends with ``evaluation``, above it the application
DEPENDENCY_ORDER = (
    *("lazy_exports", "moved", "errors", "files"),
    *("layers", "losses", "graph", "models", "data", "evaluation"),
    *("apis", "visualization", "engine", "serving", "studies", "cli"),
)

#: public name -> the module that defines it
EXPORTS = {
    "LabelGraph": "labelgraph.graph",
    "Recipe": "labelgraph.models",
    "create_model": "labelgraph.models",
    "evaluate": "labelgraph.evaluation.metrics",
    "get_recipe": "labelgraph.models",
    "list_models": "labelgraph.models",
    "load": "labelgraph.apis.predict",
    "register_model": "labelgraph.models",
}
__all__ = [
    "LabelGraph",
    "Recipe",
    "__version__",
    "create_model",
    "evaluate",
    "get_recipe",
    "list_models",
    "load",
    "register_model",
]
__getattr__, __dir__ = lazy_exports(__name__, EXPORTS)

if TYPE_CHECKING:
    from labelgraph.apis.predict import load
    from labelgraph.evaluation.metrics import evaluate
    from labelgraph.graph import LabelGraph
    from labelgraph.models import Recipe, create_model, get_recipe, list_models, register_model
