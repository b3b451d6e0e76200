"""Frozen-backbone training from cached features vs from images, on the demo data.

    python benchmarks/bench_cache.py [--out benchmarks/results/cache.json]

Stage 1 of the staged protocol (backbone frozen, head trained with Adam) for ML-GCN on the demo's Fashion outfits
(shapes without Fashion-MNIST) at the demo's settings (2000 train images, resnet10t, 96 px, batch 32), run side by
side: (a) from the PNG files (decode + resize + frozen backbone forward + head) and (b) from a feature cache (fp16,
memory-mapped). Reports seconds per epoch of each, their ratio, the one-off cache build and the number of epochs
after which the cache has paid for itself. No validation during the timed epochs.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from benchmarks.common import RESULTS, write
from labelgraph.data import MultiLabelDataModule
from labelgraph.data.synthetic import generate_dataset
from labelgraph.engine.task import MultiLabelTask


def _fit_seconds(data: Path, cache: Path | None, epochs: int, backbone: str, image_size: int, workers: int) -> float:
    L.seed_everything(0, verbose=False)
    dm = MultiLabelDataModule(
        train=str(data / "train.csv"), classes=str(data / "classes.txt"), image_size=image_size,
        train_transform="none", batch_size=32, num_workers=workers, embeddings="onehot",
        feature_cache=str(cache) if cache else None,
    )  # fmt: skip
    task = MultiLabelTask(
        method="ml_gcn", backbone=backbone, num_classes=dm.num_classes, class_names=dm.class_names,
        label_graph=dm.label_graph, optimizer=lambda p: torch.optim.Adam(p, lr=1e-3),
    )  # fmt: skip
    task.model.backbone.set_trainable_stages(0)
    trainer = L.Trainer(
        max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(task, datamodule=dm)
    return time.perf_counter() - start


def run(
    images: int = 2000, epochs: int = 3, backbone: str = "resnet10t", image_size: int = 96, data: str = "auto"
) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "data"
        info = generate_dataset(folder, kind=data, seed=0, sizes={"train": images})
        cache = Path(tmp) / "cache"
        # the one-off build, timed alone: a 0-epoch fit would still build it, so time the build directly
        from labelgraph.data.feature_cache import build_feature_cache

        dm = MultiLabelDataModule(train=str(folder / "train.csv"), classes=str(folder / "classes.txt"))
        model = MultiLabelTask(backbone=backbone, num_classes=dm.num_classes).model
        start = time.perf_counter()
        built = build_feature_cache(model, dm.train_table, cache / "probe", image_size, batch_size=32)
        build_seconds = time.perf_counter() - start
        cache_mb = sum(f.stat().st_size for f in built.iterdir()) / 2**20
        # side by side: images (0 and 2 loader workers), then the cache (built by the first cached run, not timed)
        uncached = {w: _fit_seconds(folder, None, epochs, backbone, image_size, w) / epochs for w in (0, 2)}
        _fit_seconds(folder, cache / "run", 1, backbone, image_size, 0)  # builds the cache of this model
        cached = _fit_seconds(folder, cache / "run", epochs, backbone, image_size, 0) / epochs
    return {
        "benchmark": "cache",
        "setting": {
            "method": "ml_gcn",
            "backbone": backbone,
            "image_size": image_size,
            "images": images,
            "epochs": epochs,
            "batch": 32,
            "data": info["kind"],
            "cache_dtype": "float16",
        },  # fmt: skip
        "uncached_seconds_per_epoch_workers_0": uncached[0],
        "uncached_seconds_per_epoch_workers_2": uncached[2],
        "cached_seconds_per_epoch": cached,
        "speedup_per_epoch": uncached[0] / cached,
        "speedup_per_epoch_vs_2_workers": uncached[2] / cached,
        "cache_build_seconds": build_seconds,
        "cache_megabytes": cache_mb,
        "break_even_epochs": build_seconds / max(uncached[0] - cached, 1e-9),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "cache.json"))
    args = parser.parse_args()
    print(write(run(), args.out))
