"""Label graphs: label statistics, adjacency matrices, knowledge graphs and label embeddings."""

from labelgraph.graph.adjacency import conditional_probability, ml_gcn_adjacency, normalize_adjacency
from labelgraph.graph.embeddings import embeddings_from_source, image_embeddings, onehot_embeddings
from labelgraph.graph.knowledge import (
    KnowledgeGraph,
    ggnn_adjacency,
    knowledge_graph_from_relationships,
    load_knowledge_graph,
)
from labelgraph.graph.label_graph import LabelGraph

__all__ = [
    "KnowledgeGraph",
    "LabelGraph",
    "conditional_probability",
    "embeddings_from_source",
    "ggnn_adjacency",
    "image_embeddings",
    "knowledge_graph_from_relationships",
    "load_knowledge_graph",
    "ml_gcn_adjacency",
    "normalize_adjacency",
    "onehot_embeddings",
]
