"""labelgraph: multi-label image classification with label graphs and label queries, under one API.

The rooms, from the ground up (each imports only rooms below it): ``layers``, ``losses``, ``graph``, ``models``,
``data``, ``evaluation`` (the library), then ``apis`` (using a trained model), ``visualization`` (figures, reports),
``engine`` (training, whose callbacks draw figures), ``serving`` (HTTP), ``studies`` (demo, sweeps) and ``cli`` (the
``labelgraph`` command).
"""

from labelgraph.apis.predict import load
from labelgraph.evaluation.metrics import evaluate
from labelgraph.graph import LabelGraph
from labelgraph.models import Recipe, create_model, get_recipe, list_models, register_model

__version__ = "0.1.0"

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
