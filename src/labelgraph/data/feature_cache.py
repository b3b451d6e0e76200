"""Feature caching for frozen-backbone training: run the backbone once over a split, store its feature maps on disk
(fp16 by default, memory-mapped), then train any head on them without decoding an image or running the backbone.

A cache is one folder per (split, image size, transform, backbone weights, dtype): the folder name is a hash of those,
so a changed backbone or resolution builds a new cache instead of silently reusing a stale one. Each stage the
backbone returns is one ``.npy`` file of shape (N, C_i, H_i, W_i), opened with ``mmap_mode="r"``; ``meta.json`` records
what was cached. Builds write to a temporary folder and rename it when complete, so an interrupted build leaves
nothing behind that looks finished.

Only a deterministic view can be cached: training on a cache uses the evaluation transform of each image (no random
crops or flips), with the backbone in eval mode (its BatchNorm statistics are the pretrained ones) -- stage 1 of the
staged fine-tuning protocol, or any sweep over head hyper-parameters.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from labelgraph.data.dataset import collate_images, eval_dataset
from labelgraph.data.label_table import LabelTable

CACHE_DTYPES = {"float16": np.float16, "float32": np.float32}


def backbone_fingerprint(model: torch.nn.Module) -> str:
    """A hash of what the cached features depend on: the backbone's name, which stages it returns (DB-DGCN takes
    layer3 and layer4 from the same weights ADD-GCN takes layer4 from), its weights, buffers and input normalisation."""
    digest = hashlib.sha256()
    backbone = model.backbone
    outputs = (getattr(backbone, "name", None), list(backbone.channels), list(backbone.reductions))
    digest.update(repr(outputs).encode())
    tensors = dict(model.backbone.state_dict())
    tensors["input_mean"], tensors["input_std"] = model.input_mean, model.input_std
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        digest.update(name.encode())
        digest.update(str(t.dtype).encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def cache_key(table: LabelTable, image_size: int, transform: str, fingerprint: str, dtype: str) -> str:
    """The folder name of a cache: a hash of the split's images and targets and of how they were encoded."""
    digest = hashlib.sha256()
    for part in (str(table.source), str(image_size), transform, fingerprint, dtype):
        digest.update(part.encode() + b"\0")
    digest.update("\n".join(str(table.path(i)) for i in range(len(table))).encode())
    digest.update(np.ascontiguousarray(table.targets).tobytes())
    return digest.hexdigest()[:16]


@torch.no_grad()
def build_feature_cache(
    model: torch.nn.Module,
    table: LabelTable,
    folder: str | Path,
    image_size: int,
    transform: str = "resize",
    dtype: str = "float16",
    batch_size: int = 64,
    num_workers: int = 0,
    device: torch.device | str = "cpu",
    fingerprint: str | None = None,
) -> Path:
    """The cache of ``table``'s feature maps under ``folder`` (built unless present). Returns the cache's folder.

    ``fingerprint``: the model's ``backbone_fingerprint``, when the caller already has it (it hashes every weight).
    The process's random state is left untouched (a cached and an uncached run with one seed draw the same numbers).
    """
    if dtype not in CACHE_DTYPES:
        raise ValueError(f"cache dtype {dtype!r}; available: {', '.join(CACHE_DTYPES)}")
    fingerprint = fingerprint or backbone_fingerprint(model)
    key = cache_key(table, image_size, transform, fingerprint, dtype)
    final = Path(folder) / key
    if (final / "meta.json").is_file():
        return final
    Path(folder).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=folder))
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=[]):
            loader = DataLoader(
                eval_dataset(table, image_size, transform),
                batch_size=batch_size,
                num_workers=num_workers,
                collate_fn=collate_images,
                generator=torch.Generator().manual_seed(0),
            )
            _write_feature_maps(model, loader, len(table), tmp, CACHE_DTYPES[dtype], device)
        np.save(tmp / "targets.npy", np.ascontiguousarray(table.targets))
        meta = {
            "source": str(table.source),
            "num_images": len(table),
            "class_names": table.class_names,
            "image_size": image_size,
            "transform": transform,
            "dtype": dtype,
            "backbone": getattr(model.backbone, "name", None),
            "backbone_fingerprint": fingerprint,
            "stages": [list(np.load(tmp / f"stage{i}.npy", mmap_mode="r").shape[1:]) for i in range(_stages(tmp))],
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        try:
            os.replace(tmp, final)
        except OSError:  # another process finished the same cache first
            if not (final / "meta.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        model.train(was_training)
    return final


def _write_feature_maps(
    model: torch.nn.Module, loader: DataLoader, count: int, folder: Path, dtype: type, device: torch.device | str
) -> None:
    """``folder/stage{i}.npy`` of shape (count, C_i, H_i, W_i): the backbone's maps of every image, in order."""
    arrays: list[np.ndarray] = []
    start = 0
    # a bar with an estimate at a terminal (caching thousands of large images takes minutes), nothing in a log
    for images, _ in tqdm(loader, desc="caching features", unit="batch", leave=False, disable=not sys.stderr.isatty()):
        feats = model.features(images.to(device))
        if not arrays:  # the shapes are known from the first batch
            arrays = [
                np.lib.format.open_memmap(folder / f"stage{i}.npy", mode="w+", dtype=dtype, shape=(count, *f.shape[1:]))
                for i, f in enumerate(feats)
            ]
        for array, f in zip(arrays, feats, strict=True):
            array[start : start + len(f)] = f.float().cpu().numpy().astype(dtype)
        start += len(images)
    for array in arrays:
        array.flush()


def _stages(folder: Path) -> int:
    return len(list(folder.glob("stage*.npy")))


class CachedFeatureDataset(Dataset):
    """(feature maps, target) pairs from a cache folder, memory-mapped.

    Returns per item:
        a list of float32 tensors (C_i, H_i, W_i), one per backbone stage, and the target (C,) int8 (and the row
        number when ``return_index`` is set).
    """

    return_index = False

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        meta_file = self.folder / "meta.json"
        if not meta_file.is_file():
            raise FileNotFoundError(f"{self.folder}: not a feature cache (no meta.json)")
        self.meta: dict[str, Any] = json.loads(meta_file.read_text())
        self.stages = [np.load(self.folder / f"stage{i}.npy", mmap_mode="r") for i in range(len(self.meta["stages"]))]
        self.targets = np.load(self.folder / "targets.npy")
        if any(len(s) != len(self.targets) for s in self.stages):
            raise ValueError(f"{self.folder}: feature and target counts differ; delete the folder to rebuild it")

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, item: int | tuple[int, int]) -> tuple:
        index = int(item[0] if isinstance(item, (tuple, list)) else item)  # (index, seed): nothing random to seed
        feats = [torch.from_numpy(np.array(s[index], dtype=np.float32)) for s in self.stages]  # a writable copy
        target = torch.from_numpy(self.targets[index])
        return (feats, target, index) if self.return_index else (feats, target)
