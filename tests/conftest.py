"""Shared fixtures: a tiny synthetic dataset on disk and a tiny backbone, so tests run offline on CPU."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from labelgraph.data.synthetic import SceneConfig, generate_dataset

TINY_BACKBONE = "test_resnet"  # timm's 0.4 M-parameter test network
TINY_SIZE = 32


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Procedural shapes: 48 train / 16 val / 16 test images of 32 x 32 px (2 x 2 cells of 16 px)."""
    out = tmp_path_factory.mktemp("shapes")
    generate_dataset(
        out, kind="shapes", seed=0, sizes={"train": 48, "val": 16, "test": 16}, config=SceneConfig(grid=2, cell=16)
    )
    return out


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
