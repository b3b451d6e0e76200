"""labelgraph: multi-label image classification with label graphs and label queries, under one API.

The rooms, from the ground up (each imports only rooms below it): ``layers``, ``losses``, ``graph``, ``models``,
``data``, ``evaluation`` (the library), then ``apis`` (using a trained model), ``visualization`` (figures, reports),
``engine`` (training, whose callbacks draw figures), ``serving`` (HTTP), ``studies`` (demo, sweeps) and ``cli`` (the
``labelgraph`` command).

``import labelgraph`` imports none of them: each name below loads its module when first used (PEP 562), so that a
command's first line and ``labelgraph --help`` do not wait for PyTorch, Lightning or timm.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from labelgraph.lazy_exports import lazy_exports

__version__ = "0.1.0"

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
