"""Stored logits of every registered model for a fixed seed, label graph and input
(``tests/golden/<method>.safetensors``).

``tests/test_models.py`` rebuilds each model the same way and compares: a change to any head's arithmetic (or to its
initialisation) fails there, even when every shape and invariant still holds. The files are written only by running
this module on purpose, after checking that the change is meant::

    .venv/bin/python -m tests.golden              # every registered method
    .venv/bin/python -m tests.golden ml_gcn ssgrl # some
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file

from labelgraph import LabelGraph, create_model, list_models

FOLDER = Path(__file__).parent / "golden"
BACKBONE = "test_resnet"  # timm's 0.4 M-parameter test network (conftest.TINY_BACKBONE)
NUM_CLASSES = 6


def golden_graph() -> LabelGraph:
    """Co-occurrence of 40 random label sets, 16-d embeddings marked image-based (IML-GCN accepts only those)."""
    rng = np.random.default_rng(0)
    graph = LabelGraph.from_targets((rng.random((40, NUM_CLASSES)) < 0.4).astype(np.int8),
                                    [f"c{i}" for i in range(NUM_CLASSES)])  # fmt: skip
    graph.embeddings = torch.from_numpy(rng.standard_normal((NUM_CLASSES, 16)).astype(np.float32))
    graph.embedding_source = "image:golden"
    return graph


def golden_input() -> torch.Tensor:
    """(2, 3, 48, 64) uint8: two non-square images, as the data path delivers them."""
    generator = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (2, 3, 48, 64), generator=generator, dtype=torch.uint8)


def golden_logits(method: str) -> torch.Tensor:
    """(2, C) logits of ``method`` built with its defaults after ``torch.manual_seed(0)``, in eval mode."""
    torch.manual_seed(0)
    model = create_model(method, num_classes=NUM_CLASSES, label_graph=golden_graph(), backbone=BACKBONE).eval()
    with torch.no_grad():
        return model(golden_input())


def write(methods: list[str]) -> None:
    FOLDER.mkdir(exist_ok=True)
    for method in methods:
        save_file({"logits": golden_logits(method).contiguous()}, str(FOLDER / f"{method}.safetensors"))
        print(f"wrote {FOLDER / f'{method}.safetensors'}")


if __name__ == "__main__":
    write(sys.argv[1:] or list_models())
