"""Old import path of :class:`labelgraph.engine.callbacks.ValidationFigures`, kept because users' YAML recipes copied
from ours name ``labelgraph.engine.callbacks.ValidationFigures`` as a callback ``class_path``."""

from labelgraph.engine.callbacks import ValidationFigures

__all__ = ["ValidationFigures"]
