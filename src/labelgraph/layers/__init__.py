"""Building blocks shared by the methods: graph convolutions (static, dynamic, gated), class attention, pooling."""

from labelgraph.layers.dynamic_graph import DynamicAdjacency, DynamicGraphConv, StaticGraphConv
from labelgraph.layers.gated_graph import GatedGraphCell
from labelgraph.layers.graph_conv import GraphConvolution
from labelgraph.layers.pooling import global_pool
from labelgraph.layers.semantic_attention import SemanticAttention
from labelgraph.layers.semantic_decoupling import SemanticDecoupling

__all__ = [
    "DynamicAdjacency",
    "DynamicGraphConv",
    "GatedGraphCell",
    "GraphConvolution",
    "SemanticAttention",
    "SemanticDecoupling",
    "StaticGraphConv",
    "global_pool",
]
