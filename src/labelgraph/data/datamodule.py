"""``MultiLabelDataModule``: splits, transforms, loaders, and what only the data knows (classes, label graph)."""

from __future__ import annotations

import os
import tempfile
import warnings
from functools import cached_property
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader

from labelgraph.data.classes import check_same_classes
from labelgraph.data.dataset import MultiLabelDataset, collate_skipping_bad, eval_dataset
from labelgraph.data.formats import load_table, read_class_list
from labelgraph.data.label_table import LabelTable
from labelgraph.data.resumable_loader import ResumableDataLoader
from labelgraph.data.samplers import SeededEpochSampler, UnpaddedDistributedSampler
from labelgraph.data.transforms import (
    EVAL_PRESETS,
    TRAIN_PRESETS,
    current_preset_name,
    decode_size,
    train_transform,
)
from labelgraph.graph import LabelGraph


class MultiLabelDataModule(L.LightningDataModule):
    """Train/val/test splits of a multi-label dataset.

    ``num_classes``, ``class_names`` and ``label_graph`` are available right after construction (they parse the
    annotation files, not the images), so the CLI can link them into the model. The label graph is computed
    from the **train split only**.

    Args:
        train: the train split (a split name such as ``train2014``... see the format; for ``csv``: a CSV file).
        val: the validation split (default: none).
        test: the test split (default: the validation split).
        format: the dataset format (see ``labelgraph.data.formats``).
        root: the folder the dataset's archive unpacks into (every format but ``csv``; for ``csv``, optional:
            split files are then relative to it).
        format_options: the format's options, e.g. ``{"difficult": "negative"}`` for VOC, ``{"class_order":
            "alphabetical", "include_unlabeled": false}`` for COCO as ML-GCN.
        classes: the class order: a list, a text file with one name per line, or None (from the train split).
        image_root: folder relative image paths start from (default: each annotation file's folder).
        image_size: side S of the square network input.
        train_transform: a train preset of ``labelgraph.data.transforms``.
        eval_transform: an eval preset (``resize``, default; ``center_crop`` as SSGRL evaluates).
        batch_size: training batch size (per device).
        eval_batch_size: batch size of evaluation (default: ``batch_size``).
        num_workers: data-loading worker processes.
        skip_bad_images: skip unreadable images (warned and counted) instead of stopping.
        check_files: check that every image file exists at setup (a clear error listing the missing ones).
        drop_last: drop the last incomplete training batch (ADD-GCN does).
        label_graph_file: a graph built by ``labelgraph data graph`` (checked against the class list) to use
            instead of computing one from the train split.
        embeddings: label embeddings to add to the graph: ``onehot``, ``glove:PATH``, ``glove50`` or
            ``image:MODEL_DIR`` (IML-GCN's class means of an exported model's features over the train split).
        knowledge_graph: a concept graph for GGNN: ``vg:PATH`` (Visual Genome ``relationships.json``) or a user's
            graph file (CSV edge list or JSON).
        feature_cache: a folder for cached backbone features (``labelgraph.data.feature_cache``): the model's backbone
            runs once per split (in eval mode, on the eval view of each image) and training reads the stored maps.
            The backbone is frozen for the run; ``train_transform`` must be ``none`` (a cache holds one view).
        feature_cache_dtype: ``float16`` (default; half the disk and memory traffic) or ``float32`` (exact).
    """

    def __init__(
        self,
        train: str,
        val: str | None = None,
        test: str | None = None,
        format: str = "csv",
        root: str | None = None,
        format_options: dict[str, Any] | None = None,
        classes: list[str] | str | None = None,
        image_root: str | None = None,
        image_size: int = 448,
        train_transform: str = "ml_gcn",
        eval_transform: str = "resize",
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 4,
        skip_bad_images: bool = False,
        check_files: bool = True,
        drop_last: bool = False,
        label_graph_file: str | None = None,
        embeddings: str | None = None,
        knowledge_graph: str | None = None,
        feature_cache: str | None = None,
        feature_cache_dtype: str = "float16",
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.train_source, self.val_source, self.test_source = train, val, test or val
        self.format, self.root, self.format_options = format, root, dict(format_options or {})
        self.classes = classes
        self.image_root = image_root
        self.image_size = image_size
        train_transform = current_preset_name(train_transform)
        self.train_transform_name, self.eval_transform_name = train_transform, eval_transform
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.skip_bad_images = skip_bad_images
        self.check_files = check_files
        self.drop_last = drop_last
        self.label_graph_file, self.embeddings, self.knowledge_graph = label_graph_file, embeddings, knowledge_graph
        self.feature_cache, self.feature_cache_dtype = feature_cache, feature_cache_dtype
        if feature_cache and train_transform != "none":
            raise ValueError(
                f"feature_cache stores one view per image, so train_transform must be 'none' (got {train_transform!r})"
            )
        if train_transform not in TRAIN_PRESETS:  # fail at construction, not after the data has loaded
            raise ValueError(f"unknown train_transform {train_transform!r}; available: {', '.join(TRAIN_PRESETS)}")
        if eval_transform not in EVAL_PRESETS:
            raise ValueError(f"unknown eval_transform {eval_transform!r}; available: {', '.join(EVAL_PRESETS)}")

    # -- what only the data knows -------------------------------------------------------------------------------
    @cached_property
    def train_table(self) -> LabelTable:
        names = read_class_list(self.classes) if isinstance(self.classes, str) else self.classes
        return self._load(self.train_source, names)

    @cached_property
    def val_table(self) -> LabelTable | None:
        return self._load(self.val_source, self.class_names) if self.val_source else None

    @cached_property
    def test_table(self) -> LabelTable | None:
        return self._load(self.test_source, self.class_names) if self.test_source else None

    @property
    def class_names(self) -> list[str]:
        return self.train_table.class_names

    @property
    def num_classes(self) -> int:
        return self.train_table.num_classes

    @cached_property
    def label_graph(self) -> LabelGraph:
        """The train split's label statistics (or ``label_graph_file``), with the requested embeddings/knowledge."""
        from labelgraph.data.graph_build import add_extras

        if self.label_graph_file:
            graph = LabelGraph.load(self.label_graph_file)
            check_same_classes(graph.class_names, self.class_names, f"label graph {self.label_graph_file}", "dataset")
        else:
            graph = LabelGraph.from_targets(self.train_table.targets, self.class_names)
        return add_extras(graph, self.train_table, embeddings=self.embeddings, knowledge=self.knowledge_graph)

    def _load(self, source: str, class_names: list[str] | None) -> LabelTable:
        table = load_table(
            self.format,
            source,
            root=self.root,
            class_names=class_names,
            image_root=self.image_root,
            **self.format_options,
        )
        if self.check_files:
            missing = table.missing_files()
            if missing:
                shown = ", ".join(str(p) for p in missing[:5])
                raise FileNotFoundError(f"{table.source}: {len(missing)} image file(s) not found, e.g. {shown}")
        return table

    # -- Lightning hooks --------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        log = self.skip_log()
        if stage in (None, "fit"):
            preset, size = self.train_transform_name, self.image_size
            self.train_set = MultiLabelDataset(
                self.train_table, train_transform(preset, size), self.skip_bad_images, decode_size(preset, size), log
            )
        for split, stages in (("val", (None, "fit", "validate")), ("test", (None, "test"))):
            table = getattr(self, f"{split}_table")
            if stage in stages and table is not None:
                dataset = eval_dataset(table, self.image_size, self.eval_transform_name, self.skip_bad_images, log)
                setattr(self, f"{split}_set", dataset)
            elif stage in stages and stage is not None and stage != "fit":
                raise ValueError(f"no {split} split was given to the data module, so it cannot run '{stage}'")
        if self.feature_cache:
            self._use_feature_cache()

    def skip_log(self) -> str | None:
        """With ``skip_bad_images``: a file the loader workers list skipped images in (counted at ``teardown``)."""
        if not self.skip_bad_images:
            return None
        if getattr(self, "_skip_log", None) is None:
            fd, self._skip_log = tempfile.mkstemp(prefix="labelgraph-skipped-", suffix=".txt")
            os.close(fd)
        return self._skip_log

    def teardown(self, stage: str) -> None:
        """Print how many unreadable images this stage skipped (each was warned about as it was met)."""
        log = getattr(self, "_skip_log", None)
        if not log or not os.path.exists(log):
            return
        with open(log, encoding="utf-8", errors="surrogateescape") as f:
            skipped = sorted(set(f.read().split("\n")) - {""})
        if skipped:
            shown = ", ".join(skipped[:3]) + (", ..." if len(skipped) > 3 else "")
            print(f"{stage}: {len(skipped)} unreadable image(s) skipped (skip_bad_images): {shown}", flush=True)
        os.unlink(log)
        self._skip_log = None

    def _use_feature_cache(self) -> None:
        """Replace the image datasets by cached features of the model's (now frozen) backbone."""
        from labelgraph.data.feature_cache import CachedFeatureDataset, backbone_fingerprint, build_feature_cache

        trainer = self.trainer
        if trainer is None or trainer.lightning_module is None:
            raise RuntimeError("feature_cache needs the data module to be attached to a Trainer with a model")
        model = trainer.lightning_module.model
        model.backbone.set_trainable_stages(0)  # never run during training: no gradients, no BatchNorm updates
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")
        strategy = trainer.strategy
        fingerprint = backbone_fingerprint(model)  # one hash of the weights for every split
        for split in ("train", "val", "test"):
            dataset = getattr(self, f"{split}_set", None)
            if not isinstance(dataset, MultiLabelDataset):
                continue
            transform = self.eval_transform_name if split != "train" else "resize"
            kwargs = dict(
                image_size=self.image_size,
                transform=transform,
                dtype=self.feature_cache_dtype,
                batch_size=self.eval_batch_size,
                num_workers=self.num_workers,
                fingerprint=fingerprint,
            )
            folder = None
            if strategy.local_rank == 0:
                model.to(strategy.root_device)
                folder = build_feature_cache(
                    model, dataset.table, self.feature_cache, device=strategy.root_device, **kwargs
                )
            strategy.barrier("feature_cache")
            if folder is None:  # the other ranks: the cache local rank 0 built, found by its key
                folder = build_feature_cache(model, dataset.table, self.feature_cache, **kwargs)
            setattr(self, f"{split}_set", CachedFeatureDataset(folder))

    def train_dataloader(self) -> DataLoader:
        # order and augmentations drawn from (seed, epoch) only: a resumed run replays its epochs exactly
        seed = int(os.environ.get("PL_GLOBAL_SEED", 0))
        sampler = SeededEpochSampler(self.train_set, seed=seed, epoch_source=self._epoch)
        return self._loader(
            self.train_set,
            self.batch_size,
            shuffle=False,
            drop_last=self.drop_last,
            sampler=sampler,
            batches_done=self._batches_done,
        )

    def _batches_done(self) -> int:
        """Batches of the current epoch trained on so far (saved with a mid-epoch checkpoint, skipped on resume)."""
        trainer = self.trainer
        return trainer.fit_loop.epoch_loop.batch_progress.current.processed if trainer is not None else 0

    def _epoch(self) -> int:
        """The epoch the trainer is about to run (restored from the checkpoint on resume); 0 without a trainer."""
        trainer = self.trainer
        return trainer.fit_loop.epoch_progress.current.processed if trainer is not None else 0

    def val_dataloader(self) -> DataLoader:
        return self._eval_loader(self.val_set) if self.val_table is not None else []

    def test_dataloader(self) -> DataLoader:
        return self._eval_loader(self.test_set)

    def _eval_loader(self, dataset: MultiLabelDataset) -> DataLoader:
        sampler = None
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            sampler = UnpaddedDistributedSampler(dataset)
        return self._loader(dataset, self.eval_batch_size, shuffle=False, sampler=sampler)

    def _loader(
        self, dataset, batch_size: int, shuffle: bool, drop_last: bool = False, sampler=None, batches_done=None
    ) -> DataLoader:
        extra = {"batches_done": batches_done} if batches_done is not None else {}
        return (ResumableDataLoader if batches_done is not None else DataLoader)(
            dataset,
            batch_size=batch_size,
            shuffle=shuffle if sampler is None else False,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate_skipping_bad,
            drop_last=drop_last,
            persistent_workers=self.num_workers > 0,
            pin_memory=torch.cuda.is_available(),  # uint8 batches, pinned for an asynchronous copy to the GPU
            generator=torch.Generator().manual_seed(0),  # worker seeds never draw from the global random state
            **extra,
        )
