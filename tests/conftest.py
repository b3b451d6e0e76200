"""Shared fixtures: a tiny synthetic dataset on disk and a tiny backbone, so tests run offline on CPU."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from labelgraph.data.synthetic import SceneConfig, generate_dataset

TINY_BACKBONE = "test_resnet"  # timm's 0.4 M-parameter test network
TINY_SIZE = 32
#: GloVe 6B 50-d vectors of the words the tests need (tests/data/GLOVE_SUBSET.md): runs where the glove extra does not
GLOVE_SUBSET = Path(__file__).parent / "data" / "glove.6B.50d.subset.txt"


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Procedural shapes: 48 train / 16 val / 16 test images of 32 x 32 px (2 x 2 cells of 16 px)."""
    out = tmp_path_factory.mktemp("shapes")
    generate_dataset(
        out, kind="shapes", seed=0, sizes={"train": 48, "val": 16, "test": 16}, config=SceneConfig(grid=2, cell=16)
    )
    return out


@pytest.fixture(scope="session", autouse=True)
def _user_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """What labelgraph keeps between runs (the demo's stand-in backbone) goes to a folder of this session's."""
    os.environ["LABELGRAPH_CACHE"] = str(tmp_path_factory.mktemp("user_cache"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_model(tiny_dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A baseline trained for a few epochs on the tiny shapes (scores that mean something), exported."""
    import lightning as L

    from labelgraph.apis import save_model

    from .test_task import datamodule, task_for, trainer

    L.seed_everything(0)
    dm = datamodule(tiny_dataset)
    task = task_for(dm, method="baseline")
    trainer(tmp_path_factory.mktemp("fit"), epochs=3, enable_checkpointing=False).fit(task, dm)
    return save_model(task.model, tmp_path_factory.mktemp("model") / "m", class_names=dm.class_names,
                      image_size=TINY_SIZE)  # fmt: skip
