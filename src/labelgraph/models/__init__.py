"""Models: the registry, the classifier contract, backbones, one module per method, and reading trained weights.

The registry is imported first; importing each method module then runs its ``@register_model`` line.
"""

from labelgraph.models.recipe import Component, ImageEmbeddings, Recipe, WarmStart  # isort: skip
from labelgraph.models._registry import (  # isort: skip
    create_model,
    extends,
    get_model_builder,
    get_recipe,
    list_models,
    methods_providing,
    register_model,
)
from labelgraph.models import (  # noqa: F401  (each registers its method)
    a_gcn,
    add_gcn,
    baseline,
    c_tran,
    db_dgcn,
    ggnn,
    iml_gcn,
    lglm,
    ml_decoder,
    ml_gcn,
    query2label,
    sadcl,
    salgl,
    ssgrl,
)
from labelgraph.models.backbone import Backbone
from labelgraph.models.classifier import MultiLabelClassifier
from labelgraph.models.head import MultiLabelHead
from labelgraph.models.model_config import ConfigError, ModelConfig
from labelgraph.models.weights import (
    CheckpointError,
    checkpoint_weights,
    initialise_from,
    load_model,
    load_trained_model,
    read_checkpoint,
    trained_state_dict,
)

__all__ = [
    "Backbone",
    "CheckpointError",
    "Component",
    "ConfigError",
    "ImageEmbeddings",
    "ModelConfig",
    "MultiLabelClassifier",
    "MultiLabelHead",
    "Recipe",
    "WarmStart",
    "checkpoint_weights",
    "create_model",
    "extends",
    "get_model_builder",
    "get_recipe",
    "initialise_from",
    "list_models",
    "load_model",
    "load_trained_model",
    "methods_providing",
    "read_checkpoint",
    "register_model",
    "trained_state_dict",
]
