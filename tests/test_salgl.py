"""SALGL: the head against its official code (a stored reference), the per-scene co-occurrence counts, the scene
terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from parity.salgl import REFERENCE, SMALL, seeded_head_state
from safetensors.torch import load_file

from labelgraph import LabelGraph, create_model
from labelgraph.losses import SceneBalanceLoss, SceneEntropyLoss
from labelgraph.models.salgl import SALGLHead

from .conftest import TINY_BACKBONE


@pytest.mark.parametrize("soft", [False, True])
def test_head_equals_the_official_code_on_its_stored_logits(soft):
    """``python -m parity.salgl --write-reference`` ran the official SALGL (a stub backbone handing it the tokens) on
    seeded random weights, per-scene counts that differ by scene, and tokens whose two images fall in different
    scenes; the same weights in our head give the same logits (the full models at 448 px: 2e-7 both ways)."""
    reference = load_file(REFERENCE)
    state = seeded_head_state()
    tokens = state.pop("tokens")
    head = SALGLHead(SMALL["width"], SMALL["classes"], state["label_embed"], soft=soft).eval()
    head.load_state_dict(state)
    mode = "soft" if soft else "hard"
    with torch.no_grad():
        out = head.forward_train([tokens.transpose(1, 2).reshape(2, SMALL["width"], 3, 3)])
    scale = reference[f"logits_{mode}"].abs().max()
    assert float((out["logits"] - reference[f"logits_{mode}"]).abs().max() / scale) < 1e-4
    assert torch.allclose(out["scene_probs"], reference[f"scene_probs_{mode}"], atol=1e-5)
    assert reference[f"scene_probs_{mode}"].argmax(-1).unique().numel() == 2  # two scenes exercised


def graph_with_embeddings(classes: int = 5) -> LabelGraph:
    graph = LabelGraph.from_targets((np.random.default_rng(0).random((40, classes)) < 0.4).astype(np.int8),
                                    [f"c{i}" for i in range(classes)])  # fmt: skip
    graph.embeddings = torch.randn(classes, 16)
    return graph


def test_counts_go_to_each_images_scene_and_make_its_graph():
    """after_loss adds y y^T of each image's present labels to its most probable scene (unknown entries count as not
    present); a scene's graph is P(j | i) from its counts, rows renormalised."""
    torch.manual_seed(0)
    model = create_model("salgl", num_classes=3, label_graph=graph_with_embeddings(3), backbone=TINY_BACKBONE)
    head = model.head
    probs = torch.tensor([[0.9, 0.1, 0, 0, 0, 0], [0.2, 0.7, 0.1, 0, 0, 0]])
    targets = torch.tensor([[1, 1, 0], [1, -1, 1]])
    head.after_loss({"scene_probs": probs, "logits": torch.zeros(2, 3)}, targets)
    assert head.comatrix[0].tolist() == [[1, 1, 0], [1, 1, 0], [0, 0, 0]]
    assert head.comatrix[1].tolist() == [[1, 0, 1], [0, 0, 0], [1, 0, 1]]
    assert head.comatrix[2:].sum() == 0
    graphs = head.scene_graphs()
    assert torch.allclose(graphs[0, 0], torch.tensor([0.5, 0.5, 0.0]))  # P(j | 0) = (1, 1, 0), renormalised
    head.soft = True
    head.after_loss({"scene_probs": probs, "logits": torch.zeros(2, 3)}, targets)
    assert head.comatrix[2, 0, 2] == pytest.approx(0.1)  # soft: every scene by its probability


def test_scene_terms_reward_sure_images_and_balanced_batches():
    sure = {"scene_probs": torch.eye(4)}  # four images, each sure of a different scene
    unsure = {"scene_probs": torch.full((4, 4), 0.25)}
    collapsed = {"scene_probs": torch.eye(4)[[0, 0, 0, 0]]}
    entropy, balance = SceneEntropyLoss(), SceneBalanceLoss()
    assert entropy(sure, None) == pytest.approx(0, abs=1e-5)
    assert entropy(unsure, None) == pytest.approx(np.log(4), abs=1e-5)
    assert balance(sure, None) == pytest.approx(0, abs=1e-3) and balance(unsure, None) == pytest.approx(0, abs=1e-3)
    assert balance(collapsed, None) == pytest.approx(100 * np.log(4), rel=1e-4)  # one scene for the whole batch
