"""Label graphs: statistics of label co-occurrence and label embeddings, computed from annotations."""

from labelgraph.graph.label_graph import LabelGraph

__all__ = ["LabelGraph"]
