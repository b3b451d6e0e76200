"""Building blocks shared by the methods: graph convolution, gated graph propagation."""

from labelgraph.layers.gated_graph import GatedGraphCell
from labelgraph.layers.graph_conv import GraphConvolution

__all__ = ["GatedGraphCell", "GraphConvolution"]
