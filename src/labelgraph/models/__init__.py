"""Models: the classifier contract, backbones, and one module per method (importing registers them)."""

from labelgraph.models import baseline  # noqa: F401  (registers "baseline")
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier

__all__ = ["Backbone", "MultiLabelClassifier"]
