"""``labelgraph compare``: the demo's comparison protocol on a user's own splits.

The same protocol as ``labelgraph demo`` (:mod:`labelgraph.studies.demo`): every method trains on the same images for
the same epochs with the same seed, each with its own recipe scaled to the run (EMA and the better-of-EMA-and-raw rule
included), measured with one metric preset, exported to ``OUT/<method>/model``; by default the heads train on the
frozen pretrained backbone's cached features (the tour), ``frozen_backbone=False`` fine-tunes every method end to end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from labelgraph.data.label_table import LabelTable
from labelgraph.studies.demo import (
    Comparison,
    DemoSettings,
    compare_methods,
    demo_datamodule,
    quiet_lightning,
    resolve_methods,
)
from labelgraph.studies.fine_tune import pretrained_argument, write_splits
from labelgraph.studies.own_splits import OwnSplits


def compare_on_splits(
    own: OwnSplits,
    methods: list[str],
    epochs: int = 4,
    batch_size: int = 32,
    seed: int = 0,
    frozen_backbone: bool = True,
    progress: bool = True,
    compare: Callable[..., dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Train and test ``methods`` on ``own.splits`` (without a test split the validation split is tested), writing
    ``results.json``, ``report.md`` and ``report.html`` under ``own.out``. ``compare``: as
    :func:`labelgraph.studies.demo.run_demo`'s (the incomplete-label study's, for one)."""
    splits, out, weights = own.splits, own.out, own.weights
    quiet_lightning()
    methods = resolve_methods(methods)
    write_splits({"test": splits["val"], **splits}, out / "data")  # the demo's layout: data/{train,val,test}.csv
    cache = out / "feature_cache" if frozen_backbone else None
    dm = demo_datamodule(out / "data", own.image_size, batch_size, cache, own.embeddings)
    settings = DemoSettings(epochs, seed, own.backbone, pretrained_argument(weights), progress)
    train = splits["train"]
    dataset = {
        "kind": "your data",
        "description": train.source,
        "seed": seed,
        "classes": train.class_names,
        **{name: split_summary(table) for name, table in splits.items()},
        "test": split_summary(splits.get("test", splits["val"])),
    }
    return (compare or compare_methods)(methods, Comparison(dm, out, settings, dataset, weights, frozen_backbone))


def split_summary(table: LabelTable) -> dict[str, Any]:
    positives = table.targets == 1
    return {"num_images": len(table), "label_cardinality": float(positives.sum(1).mean()) if len(table) else 0.0}
