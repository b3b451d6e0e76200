"""LabelGraph statistics on a label matrix worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labelgraph import LabelGraph


def test_counts_and_cooccurrence_by_hand():
    # 4 images x 3 classes; -1 (unknown) must not count as present
    targets = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1], [0, -1, 1]], dtype=np.int8)
    g = LabelGraph.from_targets(targets, ["a", "b", "c"])
    assert g.counts.tolist() == [3, 2, 3]
    assert g.cooccurrence.tolist() == [[0, 2, 2], [2, 0, 1], [2, 1, 0]]
    assert g.num_images == 4
    assert torch.equal(g.cooccurrence, g.cooccurrence.T)


def test_save_load_round_trip(tmp_path):
    g = LabelGraph.from_targets(np.eye(3, dtype=np.int8), ["x", "y", "z"])
    g.embeddings, g.embedding_source = torch.randn(3, 5), "test"
    g.save(tmp_path / "g.safetensors")
    h = LabelGraph.load(tmp_path / "g.safetensors")
    assert h.class_names == ["x", "y", "z"] and h.embedding_source == "test" and h.num_images == 3
    assert torch.equal(h.embeddings, g.embeddings) and torch.equal(h.counts, g.counts)


def test_bad_files_and_shapes(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="bad.safetensors"):
        LabelGraph.load(bad)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LabelGraph.load(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="columns"):
        LabelGraph.from_targets(np.zeros((2, 3), dtype=np.int8), ["a", "b"])
