"""Training-pipeline throughput: decode + augment + collate (labelgraph's data module) vs bare JPEG decoding.

    python benchmarks/bench_data.py [--out benchmarks/results/data.json]

COCO-like JPEGs (640 x 480, written here) are read (a) by bare PIL decoding to RGB and (b) through
``MultiLabelDataset`` with the ``ml_gcn`` train preset at 448 px plus collation, in one process and with 2 loader
workers; images/s of each and the ratio pipeline / bare decoding (per worker).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader

from benchmarks.common import RESULTS, timed, write
from labelgraph.data.dataset import MultiLabelDataset, collate_skipping_bad
from labelgraph.data.label_table import LabelTable
from labelgraph.data.transforms import train_transform


def make_images(folder: Path, count: int) -> LabelTable:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    paths = []
    for i in range(count):
        path = folder / f"{i:05d}.jpg"
        Image.fromarray(np.roll(base, 7 * i, axis=1)).save(path, quality=90)
        paths.append(path.name)
    targets = (rng.random((count, 80)) < 0.04).astype(np.int8)
    return LabelTable(paths, [f"c{i}" for i in range(80)], targets, root=folder)


def run(images: int = 160, image_size: int = 448, batch_size: int = 16, repeats: int = 2) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        table = make_images(Path(tmp), images)
        files = [table.path(i) for i in range(len(table))]

        def bare() -> None:
            for f in files:
                with Image.open(f) as img:
                    img.convert("RGB")

        t_bare, _ = timed(bare, repeats, warmup=1)
        dataset = MultiLabelDataset(table, train_transform("ml_gcn", image_size))
        result = {"benchmark": "data", "images": images, "image_size": image_size, "source": "640 x 480 JPEG"}
        result["bare_decode_images_per_s"] = images / t_bare
        for workers in (0, 2):
            loader = DataLoader(
                dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate_skipping_bad,
                persistent_workers=workers > 0,
            )  # fmt: skip
            list(loader)  # warm-up (and worker start-up)
            start = time.perf_counter()
            for _ in range(repeats):
                for _batch in loader:
                    pass
            rate = images * repeats / (time.perf_counter() - start)
            result[f"pipeline_images_per_s_workers_{workers}"] = rate
            result[f"pipeline_over_bare_decode_per_worker_{workers}"] = (
                rate / max(workers, 1) / result["bare_decode_images_per_s"]
            )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "data.json"))
    args = parser.parse_args()
    print(write(run(), args.out))


if __name__ == "__main__":
    main()
