"""labelgraph: multi-label image classification with label graphs and label queries, under one API."""

from labelgraph.graph import LabelGraph
from labelgraph.registry import create_model, list_models, register_model

__version__ = "0.1.0"


def load(model_dir, device="cpu"):  # noqa: ANN001, ANN201  (lazy: keeps `import labelgraph` light)
    """Load an exported model folder as a :class:`labelgraph.predict.Predictor` with ``predict(paths)``."""
    from labelgraph.predict import Predictor

    return Predictor.load(model_dir, device)


__all__ = ["LabelGraph", "__version__", "create_model", "list_models", "load", "register_model"]
