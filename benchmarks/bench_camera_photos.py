"""Camera photos: 12-megapixel JPEGs through the training data path, ``labelgraph train`` and fastai's ``fine_tune``.

    python -m benchmarks.bench_camera_photos [--against OLD_SRC] [--fastai-epochs 10] [--out FILE]

The ten real photos of :mod:`benchmarks.real_photos`, each resized to 4000 x 3000 (3000 x 4000 if upright) and written
as a quality-90 JPEG (12 megapixels, as a phone writes them; the mean file size is in the JSON), with their labels.
Measured in one run:

- **the data path** at 224 px with the ``flip`` preset ``labelgraph train`` trains with: ``MultiLabelDataset`` (decoded
  at the DCT scale the preset needs: :func:`labelgraph.data.transforms.decode_size`), the same dataset decoding every
  file in full (``decode_size=None``: what a pipeline without scaled decoding does), and bare full-size decoding (PIL
  to RGB, nothing else), 0 and 2 loader workers, single-threaded torch as in a loader worker, interleaved rounds,
  medians;
- **``labelgraph train``** (its defaults: ML-GCN, the packaged EfficientNet-Lite0) as a command, wall time from the
  command's start to its exit; with ``--against OLD_SRC`` the same command run on another checkout's ``src`` in the
  same run (before and after);
- **fastai's ``fine_tune``** (:func:`benchmarks.bench_fastai.fastai_run`: ``Resize(224)`` on the full decode, as
  fastai's documentation shows) on the same files and split, in this process (its import not counted).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from benchmarks.bench_data import loader_pass
from benchmarks.common import RESULTS, interleaved, machine, write
from benchmarks.real_photos import real_photo_rows
from labelgraph.data.dataset import MultiLabelDataset
from labelgraph.data.samplers import SeededEpochSampler
from labelgraph.data.transforms import decode_size, train_transform

CAMERA = (4000, 3000)
REPO = Path(__file__).resolve().parents[1]


def write_camera_photos(folder: Path) -> Path:
    """The real photos at 12 megapixels as ``folder/camera.csv`` (and the JPEGs beside it)."""
    lines = ["image,labels"]
    for source, labels in real_photo_rows():
        with Image.open(source) as img:
            photo = img.convert("RGB")
        size = CAMERA if photo.width >= photo.height else CAMERA[::-1]
        name = f"{Path(source).stem}.jpg"
        photo.resize(size, Image.BICUBIC).save(folder / name, quality=90)
        lines.append(f"{name},{labels}")
    (folder / "camera.csv").write_text("\n".join(lines) + "\n")
    return folder / "camera.csv"


def data_path(table: Any, image_size: int = 224, rounds: int = 3) -> dict[str, Any]:
    """Images/s of the three readers (module docstring), 0 and 2 workers."""
    files = [table.path(i) for i in range(len(table))]

    def bare_pil() -> None:
        for f in files:
            with Image.open(f) as img:
                img.convert("RGB")

    preset = "flip"
    scaled = MultiLabelDataset(table, train_transform(preset, image_size), decode_size=decode_size(preset, image_size))
    full = MultiLabelDataset(table, train_transform(preset, image_size), decode_size=None)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    result: dict[str, Any] = {"preset": preset, "image_size": image_size, "images": len(files)}
    try:
        for workers in (0, 2):
            passes = {"bare_full_pil": bare_pil}
            passes["pipeline"] = loader_pass(scaled, SeededEpochSampler(scaled), workers, 4)
            passes["pipeline_full_decode"] = loader_pass(full, SeededEpochSampler(full), workers, 4)
            rates = {name: len(files) / s for name, s in interleaved(passes, rounds).items()}
            row = {f"{name}_images_per_s": round(rate, 2) for name, rate in rates.items()}
            per_worker = {name: rate / max(workers, 1) for name, rate in rates.items()}
            row["pipeline_over_bare_full_pil_per_worker"] = round(per_worker["pipeline"] / rates["bare_full_pil"], 2)
            row["pipeline_over_full_decode"] = round(rates["pipeline"] / rates["pipeline_full_decode"], 2)
            result[f"workers_{workers}"] = row
    finally:
        torch.set_num_threads(threads)
    return result


def train_command(folder: Path, src: Path, name: str) -> dict[str, Any]:
    """``labelgraph train camera_train.csv --val camera_val.csv`` run on ``src``'s code: wall time and its metrics."""
    out = folder / f"train_{name}"
    argv = [sys.executable, "-m", "labelgraph.cli", "train", str(folder / "train.csv"), "--val",
            str(folder / "val.csv"), "--out", str(out), "--no-progress"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(src)}
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True, cwd=folder)
    seconds = time.perf_counter() - start
    metrics = json.loads((out / "metrics.json").read_text())
    settings = json.loads((out / "results.json").read_text())["settings"]
    return {"seconds": round(seconds, 1), "val_mAP": metrics["val_mAP"], "stages": settings["stages"], "src": str(src)}


def run(against: Path | None = None, fastai_epochs: int = 10) -> dict[str, Any]:
    from benchmarks.bench_fastai import fastai_run
    from labelgraph.data.formats import load_table, write_csv
    from labelgraph.data.splitting import hold_out

    result: dict[str, Any] = {"benchmark": "camera_photos", "machine": machine(), "camera_size": list(CAMERA)}
    result["load_average_before"] = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = load_table("csv", str(write_camera_photos(folder)))
        sizes = [table.path(i).stat().st_size for i in range(len(table))]
        result["mean_file_mb"] = round(sum(sizes) / len(sizes) / 1e6, 2)
        result["data_path"] = data_path(table)
        train, val = hold_out(table, 0.2, seed=0)
        write_csv(train, folder / "train.csv")
        write_csv(val, folder / "val.csv")
        result["labelgraph_train"] = train_command(folder, REPO / "src", "now")
        if against is not None:
            result["labelgraph_train_against"] = train_command(folder, against, "against")
        result["fastai"] = fastai_run(train, val, fastai_epochs)
    result["load_average_after"] = os.getloadavg()[0]
    return result


def markdown(result: dict[str, Any]) -> str:
    """The README's two tables of a run: the data path, and training."""
    d = result["data_path"]
    lines = [
        f"| loader workers | data path ({d['preset']} preset, {d['image_size']} px, scaled decode) | the same, "
        "decoded in full | bare full-size PIL decode (1 process) | data path / bare decode, per worker |",
        "|---:|---:|---:|---:|---:|",
    ]
    for workers in (0, 2):
        r = d[f"workers_{workers}"]
        lines.append(
            f"| {workers} | {r['pipeline_images_per_s']:.1f} img/s | {r['pipeline_full_decode_images_per_s']:.1f} img/s"
            f" | {r['bare_full_pil_images_per_s']:.1f} img/s | {r['pipeline_over_bare_full_pil_per_worker']:.2f}x |"
        )
    lines += ["", "| run | wall time | held-out mAP | epochs |", "|---|---:|---:|---|"]
    runs = [
        ("labelgraph_train", "`labelgraph train` (this commit)"),
        ("labelgraph_train_against", "`labelgraph train` (--against)"),
        ("fastai", "fastai `fine_tune(10)`"),
    ]
    for key, name in runs:
        if key in result:
            r = result[key]
            lines.append(f"| {name} | {r['seconds']:.1f} s | {r['val_mAP']:.2f} | {r.get('stages', r.get('epochs'))} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, default=None, help="another checkout's src folder, run beside")
    parser.add_argument("--fastai-epochs", type=int, default=10)
    parser.add_argument("--out", default=str(RESULTS / "camera_photos.json"))
    args = parser.parse_args()
    print(markdown(write(run(args.against, args.fastai_epochs), Path(args.out))))


if __name__ == "__main__":
    main()
