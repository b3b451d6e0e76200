"""Models: the registry, the classifier contract, backbones, one module per method, and reading trained weights.

The registry is imported first; importing each method module then runs its ``@register_model`` line.
"""

from labelgraph.models._registry import create_model, get_model_builder, list_models, register_model  # isort: skip
from labelgraph.models import (  # noqa: F401  (each registers its method)
    a_gcn,
    add_gcn,
    baseline,
    db_dgcn,
    ggnn,
    iml_gcn,
    lglm,
    ml_decoder,
    ml_gcn,
    query2label,
    sadcl,
    ssgrl,
)
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.weights import (
    BUILD_TIME_FILES,
    CheckpointError,
    checkpoint_weights,
    initialise_from,
    load_model,
    load_trained_model,
    read_checkpoint,
    trained_state_dict,
)

__all__ = [
    "BUILD_TIME_FILES",
    "Backbone",
    "CheckpointError",
    "MultiLabelClassifier",
    "checkpoint_weights",
    "create_model",
    "get_model_builder",
    "initialise_from",
    "list_models",
    "load_model",
    "load_trained_model",
    "read_checkpoint",
    "register_model",
    "trained_state_dict",
]
