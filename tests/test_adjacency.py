"""Graph construction worked out by hand on a 5-image label matrix."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from labelgraph import LabelGraph
from labelgraph.graph import conditional_probability, ggnn_adjacency, ml_gcn_adjacency, normalize_adjacency

# images: {a, b}, {a, b}, {a, c}, {a}, {b, c}  ->  counts a 4, b 3, c 2; pairs ab 2, ac 1, bc 1
TARGETS = np.array([[1, 1, 0], [1, 1, 0], [1, 0, 1], [1, 0, 0], [0, 1, 1]], dtype=np.int8)


@pytest.fixture
def graph() -> LabelGraph:
    return LabelGraph.from_targets(TARGETS, ["a", "b", "c"])


def test_conditional_probability(graph):
    expected = [[0, 2 / 4, 1 / 4], [2 / 3, 0, 1 / 3], [1 / 2, 1 / 2, 0]]  # P(j | i)
    assert torch.allclose(conditional_probability(graph.cooccurrence, graph.counts), torch.tensor(expected))
    zero = conditional_probability(torch.zeros(2, 2), torch.tensor([0.0, 3.0]))
    assert torch.equal(zero, torch.zeros(2, 2))


def test_official_reweighting_divides_by_column_sums_and_adds_identity(graph):
    # tau .4 keeps a->b, b->a, c->a, c->b; column sums: a 2, b 2, c 0
    adj = ml_gcn_adjacency(graph.cooccurrence, graph.counts, tau=0.4, p=0.25, style="official")
    expected = [[1, 0.125, 0], [0.125, 1, 0], [0.125, 0.125, 1]]
    assert torch.allclose(adj, torch.tensor(expected), atol=1e-6)


def test_paper_reweighting_scales_rows_to_p_with_diagonal_one_minus_p(graph):
    adj = ml_gcn_adjacency(graph.cooccurrence, graph.counts, tau=0.4, p=0.25, style="paper")
    expected = [[0.75, 0.25, 0], [0.25, 0.75, 0], [0.125, 0.125, 0.75]]
    assert torch.allclose(adj, torch.tensor(expected))
    # a node without edges keeps only itself (weight 1 - p)
    isolated = ml_gcn_adjacency(graph.cooccurrence, graph.counts, tau=0.9, p=0.25, style="paper")
    assert torch.allclose(isolated, 0.75 * torch.eye(3))
    with pytest.raises(ValueError, match="style"):
        ml_gcn_adjacency(graph.cooccurrence, graph.counts, style="other")


def test_ml_gcn_normalisation_is_d_at_d(graph):
    adj = ml_gcn_adjacency(graph.cooccurrence, graph.counts, style="official")  # row sums 1.125, 1.125, 1.25
    norm = normalize_adjacency(adj, "ml_gcn")
    assert norm[0, 2] == pytest.approx(0.125 / math.sqrt(1.125 * 1.25), rel=1e-5)  # uses A[c, a] (transpose)
    assert norm[2, 0] == pytest.approx(0.0, abs=1e-6)  # A[a, c] = 0
    assert norm[0, 0] == pytest.approx(1 / 1.125, rel=1e-5)


def test_symmetric_normalisation_adds_self_loops():
    norm = normalize_adjacency(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), "symmetric")
    assert torch.allclose(norm, torch.full((2, 2), 0.5))
    lonely = normalize_adjacency(torch.zeros(2, 2), "ml_gcn")  # zero rows give zeros, not NaN
    assert torch.equal(lonely, torch.zeros(2, 2))


def test_ggnn_adjacency_in_is_out_transposed():
    weights = torch.tensor([[0.0, 4.0, 0.0], [0.0, 0.0, 2.0], [1.0, 0.0, 0.0]])  # a->b 4, b->c 2, c->a 1
    adj_in, adj_out = ggnn_adjacency(weights, tau=0.3, p=0.1)  # scaled 1, .5, .25: c->a is dropped
    assert torch.equal(adj_in, adj_out.T)
    assert adj_out[0, 1] == pytest.approx(0.1) and adj_out[1, 2] == pytest.approx(0.1)
    assert adj_out[2, 0] == 0 and torch.allclose(adj_out.diagonal(), torch.full((3,), 0.9))
