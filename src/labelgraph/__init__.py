"""labelgraph: multi-label image classification with label graphs and label queries, under one API."""

from labelgraph.graph import LabelGraph
from labelgraph.registry import create_model, list_models, register_model

__version__ = "0.1.0"

__all__ = ["LabelGraph", "create_model", "list_models", "register_model", "__version__"]
