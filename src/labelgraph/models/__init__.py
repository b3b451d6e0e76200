"""Models: the classifier contract, backbones, and one module per method (importing registers them)."""

from labelgraph.models import a_gcn, baseline, ggnn, iml_gcn, lglm, ml_gcn  # noqa: F401  (each registers its method)
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier

__all__ = ["Backbone", "MultiLabelClassifier"]
