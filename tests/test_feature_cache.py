"""Feature caching: a cached run trains the same head as an uncached run with a frozen backbone."""

from __future__ import annotations

import json

import lightning as L
import numpy as np
import pytest
import torch

from labelgraph.data.feature_cache import CachedFeatureDataset, build_feature_cache
from labelgraph.engine.callbacks import StagedFineTuning
from labelgraph.engine.task import MultiLabelTask

from .conftest import TINY_BACKBONE, TINY_SIZE
from .test_task import datamodule, trainer


def _train(tiny_dataset, tmp_path, method="ml_gcn", **data_kw) -> MultiLabelTask:
    L.seed_everything(0)
    dm = datamodule(tiny_dataset, train_transform="none", embeddings="onehot", **data_kw)
    task = MultiLabelTask(
        method=method,
        backbone=TINY_BACKBONE,
        num_classes=dm.num_classes,
        class_names=dm.class_names,
        label_graph=dm.label_graph,
        optimizer=lambda p: torch.optim.Adam(p, lr=1e-3),
    )
    task.model.backbone.set_trainable_stages(0)  # the uncached run's frozen backbone (a cached run freezes it itself)
    run = trainer(tmp_path, epochs=2, enable_checkpointing=False)
    run.fit(task, datamodule=dm)
    run.test(task, datamodule=dm, verbose=False)
    return task


@pytest.mark.parametrize("method", ["ml_gcn", "lglm"])  # lglm: dropout in the head draws from the global RNG
def test_cached_and_uncached_runs_end_with_the_same_head(method, tiny_dataset, tmp_path):
    plain = _train(tiny_dataset, tmp_path / "plain", method)
    cached = _train(tiny_dataset, tmp_path / "cached", method, feature_cache=str(tmp_path / "cache"),
                    feature_cache_dtype="float32")  # fmt: skip
    assert isinstance(cached.trainer.datamodule.train_set, CachedFeatureDataset)
    start = MultiLabelTask(
        method=method, backbone=TINY_BACKBONE, num_classes=plain.hparams.num_classes, label_graph=plain.label_graph
    )
    for name, value in plain.model.head.state_dict().items():  # float32 features: bit-identical training
        assert torch.equal(cached.model.head.state_dict()[name], value), name
    moved = [
        n for n, v in plain.model.head.state_dict().items() if not torch.equal(v, start.model.head.state_dict()[n])
    ]
    assert moved  # the head did train
    for name, value in plain.model.backbone.state_dict().items():  # the backbone is untouched in both
        assert torch.equal(cached.model.backbone.state_dict()[name], value), name
    assert cached.results["test"]["mAP"] == pytest.approx(plain.results["test"]["mAP"], abs=1e-9)


def test_fp16_cache_is_close_and_half_the_size(tiny_dataset, tmp_path):
    plain = _train(tiny_dataset, tmp_path / "plain")
    half = _train(tiny_dataset, tmp_path / "half", feature_cache=str(tmp_path / "cache16"))
    for name, value in plain.model.head.state_dict().items():
        torch.testing.assert_close(half.model.head.state_dict()[name], value, rtol=2e-2, atol=2e-3, msg=name)
    folders = [p for p in (tmp_path / "cache16").iterdir() if p.is_dir() and not p.name.startswith(".")]
    assert len(folders) == 3  # train, val, test
    meta = json.loads((folders[0] / "meta.json").read_text())
    assert meta["dtype"] == "float16" and np.load(folders[0] / "stage0.npy", mmap_mode="r").dtype == np.float16


def test_cache_is_reused_and_rebuilt_when_the_backbone_changes(tiny_dataset, tmp_path):
    dm = datamodule(tiny_dataset)
    table = dm.train_table
    model = MultiLabelTask(backbone=TINY_BACKBONE, num_classes=dm.num_classes).model
    state = torch.random.get_rng_state()
    first = build_feature_cache(model, table, tmp_path, TINY_SIZE)
    assert torch.equal(torch.random.get_rng_state(), state)  # building draws nothing from the global RNG
    stamp = (first / "stage0.npy").stat().st_mtime_ns
    assert build_feature_cache(model, table, tmp_path, TINY_SIZE) == first
    assert (first / "stage0.npy").stat().st_mtime_ns == stamp
    with torch.no_grad():
        next(model.backbone.parameters()).add_(1.0)
    assert build_feature_cache(model, table, tmp_path, TINY_SIZE) != first
    dataset = CachedFeatureDataset(first)
    feats, target = dataset[(3, 12345)]
    assert [f.dtype for f in feats] == [torch.float32] and target.dtype == torch.int8 and len(dataset) == len(table)


def test_cache_refuses_random_train_transforms_and_staged_training(tiny_dataset, tmp_path):
    with pytest.raises(ValueError, match="train_transform must be 'none'"):
        datamodule(tiny_dataset, feature_cache=str(tmp_path))
    dm = datamodule(tiny_dataset, train_transform="none", feature_cache=str(tmp_path))
    task = MultiLabelTask(backbone=TINY_BACKBONE, num_classes=dm.num_classes, class_names=dm.class_names)
    with pytest.raises(ValueError, match="feature cache"):
        trainer(tmp_path, epochs=1, callbacks=[StagedFineTuning(1, 1)]).fit(task, datamodule=dm)
    with pytest.raises(FileNotFoundError, match="not a feature cache"):
        CachedFeatureDataset(tmp_path)


def test_backbones_returning_other_stages_get_their_own_cache(tiny_dataset, tmp_path):
    """ADD-GCN (layer4) and DB-DGCN (layer3 + layer4) share backbone weights but not their cached maps."""
    from labelgraph.data.feature_cache import backbone_fingerprint
    from labelgraph.models import Backbone

    dm = datamodule(tiny_dataset)
    one = MultiLabelTask(backbone=TINY_BACKBONE, num_classes=dm.num_classes).model
    two = MultiLabelTask(backbone=TINY_BACKBONE, num_classes=dm.num_classes).model
    two.backbone = Backbone(TINY_BACKBONE, out_indices=(-2, -1))
    two.backbone.load_state_dict(one.backbone.state_dict())
    assert backbone_fingerprint(one) != backbone_fingerprint(two)
    folder = build_feature_cache(two, dm.train_table, tmp_path, TINY_SIZE)
    feats, _ = CachedFeatureDataset(folder)[0]
    assert [f.shape[0] for f in feats] == two.backbone.channels
