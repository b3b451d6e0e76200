"""Models: the classifier contract, backbones, and one module per method (importing registers them)."""

from labelgraph.models import (  # noqa: F401  (each registers its method)
    a_gcn,
    add_gcn,
    baseline,
    db_dgcn,
    ggnn,
    iml_gcn,
    lglm,
    ml_gcn,
    query2label,
    sadcl,
    ssgrl,
)
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier

__all__ = ["Backbone", "MultiLabelClassifier"]
