"""Old import path of :mod:`labelgraph.engine.schedulers`, kept because users' YAML recipes copied from ours name
``labelgraph.schedulers.OneCycleLR`` as a ``class_path``."""

from labelgraph.engine.schedulers import OneCycleLR

__all__ = ["OneCycleLR"]
