"""Training-pipeline throughput: decode + augment + collate (labelgraph's data path) vs bare JPEG decoding.

    python -m benchmarks.bench_data [--out benchmarks/results/data.json]

640 x 480 JPEGs (quality 90) are made from the real photographs in ``data/photos`` (shipped;
without them, from a smooth synthetic scene) -- and, for continuity, the former benchmark's uniform-noise JPEGs, which
take 1.7x longer to decode than photos, so any fixed per-image cost weighs less beside them -- and read

- by bare decoding: PIL to RGB (``Image.open(f).convert("RGB")``), and ``torchvision.io.decode_jpeg`` of the bytes;
- through ``MultiLabelDataset`` with the ``ml_gcn`` train preset at 448 px, ``SeededEpochSampler``'s seeded items
  and collation, exactly as training reads them, in one process and with 2 loader workers;
- through the former PIL pipeline (``benchmarks/pil_reference.py``: PIL crop/resize, float32 tensors, forked RNG).

All in one run, single-threaded torch (as in a loader worker), interleaved: each of 5 rounds runs every reader once,
and each figure is the median over the rounds. Reports images/s, the ratio pipeline / bare decode (per worker; with 2
workers the bare decoders' rate of the same rounds is the reference), and the mean absolute pixel difference
(0-255 levels) between the tensor and PIL pipelines for the same random draws: they crop the same boxes and differ
by interpolation only.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader
from torchvision.io import decode_jpeg

from benchmarks.common import RESULTS, interleaved, write
from benchmarks.pil_reference import PILDataset, load_pil, pil_eval_transform, pil_train_transform
from labelgraph.data.dataset import MultiLabelDataset, collate_skipping_bad, seed_augmentations
from labelgraph.data.label_table import LabelTable
from labelgraph.data.samplers import SeededEpochSampler
from labelgraph.data.transforms import decode_size, eval_transform, train_transform

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"


def source_photos() -> list[Image.Image]:
    photos = [load_pil(p) for p in sorted(PHOTOS.glob("*.jpg"))]
    if photos:
        return photos
    yy, xx = np.mgrid[0:600, 0:800]
    scene = np.stack([np.sin(xx / 31) * 70 + 128, xx / 800 * 255, yy / 600 * 255], -1)
    return [Image.fromarray(scene.astype(np.uint8))]


def make_images(folder: Path, count: int, kind: str = "photos") -> tuple[LabelTable, str]:
    """``count`` different 640 x 480 JPEGs: shifted, mirrored views of the source photos (``kind="photos"``), or
    the former benchmark's images (``kind="noise"``: uniform noise, rolled; slow to decode, as no photo is)."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    photos = source_photos()
    paths = []
    for i in range(count):
        view = Image.fromarray(np.roll(noise, 7 * i, axis=1)) if kind == "noise" else photo_view(photos, i)
        view.save(folder / f"{i:05d}.jpg", quality=90)
        paths.append(f"{i:05d}.jpg")
    targets = (rng.random((count, 80)) < 0.04).astype(np.int8)
    if kind == "noise":
        source = "uniform noise (the former benchmark's images)"
    else:
        source = f"real photos ({len(photos)} from data/photos)" if PHOTOS.is_dir() else "synthetic scene"
    return LabelTable(paths, [f"c{i}" for i in range(80)], targets, root=folder), source


def photo_view(photos: list[Image.Image], i: int) -> Image.Image:
    photo = photos[i % len(photos)]
    scale = 480 / min(photo.size) * (1 + 0.05 * (i // len(photos) % 4))
    big = photo.resize((max(640, round(photo.width * scale)), max(480, round(photo.height * scale))))
    x, y = (i * 13) % (big.width - 639), (i * 7) % (big.height - 479)
    view = big.crop((x, y, x + 640, y + 480))
    return view.transpose(Image.FLIP_LEFT_RIGHT) if i % 2 else view


def loader_pass(dataset, sampler, workers: int, batch_size: int) -> Callable[[], None]:
    """One pass over ``dataset`` as training reads it (a persistent loader, started and warmed up here)."""
    loader = DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, num_workers=workers, collate_fn=collate_skipping_bad,
        persistent_workers=workers > 0,
    )  # fmt: skip

    def one_pass() -> None:
        for _batch in loader:
            pass

    one_pass()  # warm-up (and worker start-up)
    return one_pass


def pixel_differences(files: list[Path], size: int, draws: int = 48) -> dict[str, float]:
    """Mean |tensor pipeline - PIL pipeline| in 0-255 levels, same seeds (same boxes, same flips)."""
    out = {}
    for preset in ("ml_gcn", "add_gcn", "resize"):
        new = eval_transform(size) if preset == "resize" else train_transform(preset, size)
        old = pil_eval_transform(size) if preset == "resize" else pil_train_transform(preset, size)
        diffs = []
        for seed in range(draws):
            image = load_pil(files[seed % len(files)])
            seed_augmentations(seed)
            a = new(image).float()
            seed_augmentations(seed)
            b = old(image) * 255
            diffs.append(float((a - b).abs().mean()))
        out[preset] = float(np.mean(diffs))
    return out


def run(images: int = 160, image_size: int = 448, batch_size: int = 16, rounds: int = 5) -> dict:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a loader worker's setting; the bare decoders are single-threaded too
    result = {"benchmark": "data", "images": images, "image_size": image_size}
    try:
        for kind in ("photos", "noise"):
            with tempfile.TemporaryDirectory() as tmp:
                result[kind] = _measure(Path(tmp), kind, images, image_size, batch_size, rounds)
    finally:
        torch.set_num_threads(threads)
    return result


def _measure(folder: Path, kind: str, images: int, image_size: int, batch_size: int, rounds: int) -> dict:
    table, source = make_images(folder, images, kind)
    files = [table.path(i) for i in range(len(table))]

    def bare_pil() -> None:
        for f in files:
            with Image.open(f) as img:
                img.convert("RGB")

    def bare_decode_jpeg() -> None:
        for f in files:
            decode_jpeg(torch.frombuffer(bytearray(f.read_bytes()), dtype=torch.uint8))

    result: dict = {"source": f"640 x 480 JPEG, {source}", "load_average_before": os.getloadavg()[0]}
    size = image_size
    dataset = MultiLabelDataset(table, train_transform("ml_gcn", size), decode_size=decode_size("ml_gcn", size))
    legacy = PILDataset(files, pil_train_transform("ml_gcn", size))
    for workers in (0, 2):
        passes = {"bare_pil": bare_pil, "bare_decode_jpeg": bare_decode_jpeg}
        passes["pipeline"] = loader_pass(dataset, SeededEpochSampler(dataset), workers, batch_size)
        passes["pil_pipeline"] = loader_pass(legacy, None, workers, batch_size)
        rates = {name: images / seconds for name, seconds in interleaved(passes, rounds).items()}
        for name in ("bare_pil", "bare_decode_jpeg"):
            result[f"{name}_images_per_s_workers_{workers}_round"] = rates[name]
        for name in ("pipeline", "pil_pipeline"):
            result[f"{name}_images_per_s_workers_{workers}"] = rates[name]
            per_worker = rates[name] / max(workers, 1)
            for bare in ("bare_pil", "bare_decode_jpeg"):
                result[f"{name}_over_{bare}_per_worker_{workers}"] = per_worker / rates[bare]
    if kind == "photos":
        result["mean_abs_pixel_difference_vs_pil"] = pixel_differences(files, size)
    result["load_average_after"] = os.getloadavg()[0]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(RESULTS / "data.json"))
    args = parser.parse_args()
    print(write(run(), args.out))


if __name__ == "__main__":
    main()
