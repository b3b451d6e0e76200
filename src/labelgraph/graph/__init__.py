"""Label graphs: label statistics, adjacency matrices, knowledge graphs and label embeddings."""

from labelgraph.graph.adjacency import (
    GraphSource,
    conditional_probability,
    gcn_adjacency,
    ml_gcn_adjacency,
    normalize_adjacency,
)
from labelgraph.graph.embeddings import embeddings_from_source, image_embeddings, onehot_embeddings
from labelgraph.graph.knowledge import (
    KnowledgeGraph,
    ggnn_adjacency,
    knowledge_graph_from_relationships,
    load_knowledge_graph,
)
from labelgraph.graph.label_graph import LabelGraph, require_embeddings

__all__ = [
    "GraphSource",
    "KnowledgeGraph",
    "LabelGraph",
    "conditional_probability",
    "embeddings_from_source",
    "gcn_adjacency",
    "ggnn_adjacency",
    "image_embeddings",
    "knowledge_graph_from_relationships",
    "load_knowledge_graph",
    "ml_gcn_adjacency",
    "normalize_adjacency",
    "onehot_embeddings",
    "require_embeddings",
]
