"""Hostile or broken input outside the server: annotation files that would be read wrongly, images that decode to
garbage or cost too much, names that leave their place, checkpoints that are not, names that are not UTF-8, and
long commands stopped by SIGTERM. Each case is one line and exit status 2, or the documented skip, never a traceback
or a silently wrong result."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from benchmarks.bench_decode_modes import MODES, encoded, many_scans_jpeg, measure_in_fork
from benchmarks.common import png16_bytes
from PIL import Image

from labelgraph.cli import main
from labelgraph.data import MultiLabelDataModule
from labelgraph.data.formats import load_table, read_class_list
from labelgraph.data.image_io import (
    DECODE_OVERHEAD,
    ImageLoadError,
    ImageTooLargeError,
    decode_image,
    decoded_bytes,
    load_image,
    read_image,
)
from labelgraph.errors import InvalidInputError
from labelgraph.files import atomic_path
from labelgraph.models.hub_source import parse_hub_source

from .conftest import TINY_BACKBONE, TINY_SIZE
from .test_hub import place_in_hf_cache

ROOT = Path(__file__).resolve().parents[1]


def png16(path: Path, width: int, height: int, channels: int = 3) -> Path:
    """A 16-bit RGB (or RGBA) PNG of zeros at ``path`` (:func:`benchmarks.common.png16_bytes`)."""
    path.write_bytes(png16_bytes(width, height, channels))
    return path


def csv_file(tmp_path: Path, text: str, name: str = "split.csv") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path / name


# -- annotation files ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, message",
    [
        ("image,labels\na.png,cross\u2028bar\n", "line 2: the labels 'cross\\u2028bar' contains the control or line-"),
        ('image,labels\na.png,"square\u0085star"\n', "U+0085"),
        ("image,labels\na\u2029b.png,circle\n", "line 2: the image path"),
        ('image,labels\n"a\nb.png",circle\n', "line 3: the image path"),  # a quoted newline: one record, refused
        ("image,labels\na.png,circ\x07le\n", "U+0007"),
    ],
)
def test_a_line_separator_or_control_character_is_refused_naming_the_line(tmp_path, text, message, capsys):
    path = csv_file(tmp_path, text)
    with pytest.raises(InvalidInputError, match=f"{path}: "):
        load_table("csv", str(path))
    assert main(["data", "stats", "--split", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_class_names_are_nfc_and_two_spellings_of_one_name_are_refused(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "café"), unicodedata.normalize("NFD", "café")
    assert nfc != nfd
    mixed = csv_file(tmp_path, f"image,labels\na.png,{nfc}\nb.png,{nfd}|tea\n")
    with pytest.raises(InvalidInputError, match=r"line 3: the class 'cafe\u0301' is written in another Unicode form"):
        load_table("csv", str(mixed))
    one_form = csv_file(tmp_path, f"image,labels\na.png,{nfd}\nb.png,{nfd}|tea\n", "nfd.csv")
    (tmp_path / "classes.txt").write_text(f"tea\n{nfc}\n", encoding="utf-8")
    table = load_table("csv", str(one_form), class_names=read_class_list(tmp_path / "classes.txt"))
    assert table.class_names == ["tea", nfc] and table.targets.tolist() == [[0, 1], [1, 1]]  # NFD file, NFC list
    (tmp_path / "twice.txt").write_text(f"{nfc}\ntea\n{nfd}\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match="line 3: the class .* is already listed on line 1"):
        read_class_list(tmp_path / "twice.txt")


def test_an_image_with_non_finite_pixels_is_refused_or_skipped_and_counted(tiny_dataset, tmp_path, capsys):
    pixels = np.random.default_rng(0).random((32, 32)).astype(np.float32)
    pixels[3, 4] = np.nan
    bad = tmp_path / "nan.tif"
    Image.fromarray(pixels, mode="F").save(bad)
    with pytest.raises(ImageLoadError, match=r"nan.tif: .*1 pixel\(s\) are NaN or infinite"):
        read_image(bad)
    pixels[3, 4] = np.inf
    Image.fromarray(pixels, mode="F").save(bad)
    with pytest.raises(ImageLoadError, match="NaN or infinite"):
        read_image(bad)
    rows = (tiny_dataset / "train.csv").read_text().splitlines()
    rows.insert(2, f"{bad},circle")
    split = csv_file(tmp_path, "\n".join(rows) + "\n", "train.csv")
    dm = MultiLabelDataModule(train=str(split), classes=str(tiny_dataset / "classes.txt"), image_size=TINY_SIZE,
                              image_root=str(tiny_dataset), batch_size=64, num_workers=0, skip_bad_images=True,
                              train_transform="none")  # fmt: skip
    dm.setup("fit")
    with pytest.warns(UserWarning, match="skipping unreadable image: .*nan.tif"):
        batches = list(dm.train_dataloader())
    assert sum(len(targets) for _, targets in batches) == len(dm.train_table) - 1
    dm.teardown("fit")
    assert f"fit: 1 unreadable image(s) skipped (skip_bad_images): {bad}" in capsys.readouterr().out


# -- decode cost ----------------------------------------------------------------------------------------------------
def test_decode_cost_is_estimated_from_the_header_and_refused_before_decoding(tmp_path):
    big = png16(tmp_path / "big.png", 9400, 9400)
    with Image.open(big) as img:
        assert decoded_bytes(img) >= 9400 * 9400 * 3 * 2  # 16-bit samples, as stored, at least
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match=r"big.png: refused, decoding it would take \d+ MB .* 16 bits"):
        read_image(big, max_decoded_bytes=256 * 2**20)
    assert time.perf_counter() - start < 1.0  # the header alone: no inflating of half a gigabyte
    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (4000, 3000)).save(photo)
    with Image.open(photo) as img:  # a JPEG four times the needed size decodes at 1/4 (DCT scaling): far cheaper
        assert decoded_bytes(img, (1000, 750)) - DECODE_OVERHEAD < (decoded_bytes(img) - DECODE_OVERHEAD) / 10


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_decodes_within_its_estimate_and_just_over_it_is_refused_at_once(mode):
    """The estimate counts what decoding and converting really hold: decoded with the limit set to it, the image's
    peak memory (measured in a forked child) stays under it; with the limit one byte lower, it is refused from the
    header alone."""
    data, need = encoded(3000, mode), (224, 224)
    with Image.open(io.BytesIO(data)) as img:
        estimate = decoded_bytes(img, need)
    small = encoded(448, mode)  # decoded first, unmeasured: the decoder's code and tables are loaded once a process
    run = measure_in_fork(lambda: decode_image(data, need, mode, estimate), lambda: decode_image(small, need))
    assert "error" not in run and run["seconds"] < 3, run
    slack = 8 * 2**20  # pages a process touches once (allocator arenas, library code): seen up to 6.5 MB in CI
    assert run["peak_bytes"] <= estimate + slack, (run["peak_bytes"] / 2**20, estimate / 2**20)
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="refused, decoding it would take"):
        decode_image(data, need, mode, max_decoded_bytes=estimate - 1)
    assert time.perf_counter() - start < 0.2


def test_a_jpeg_of_many_scans_is_refused_before_decoding(tmp_path):
    data = many_scans_jpeg(2048, 1000)  # 40 KB, 1,010 scans: seconds of decoding
    start = time.perf_counter()
    with pytest.raises(ImageTooLargeError, match="refused, a JPEG of 1010 scans"):
        decode_image(data, (224, 224), "scans.jpg")
    assert time.perf_counter() - start < 0.1
    (tmp_path / "scans.jpg").write_bytes(data)
    with pytest.raises(ImageTooLargeError, match="scans.jpg: refused, a JPEG of 1010 scans"):
        load_image(tmp_path / "scans.jpg")
    assert decode_image(many_scans_jpeg(256, 90), (224, 224)).shape == (3, 256, 256)  # 100 scans: decoded


# -- names that leave their place -----------------------------------------------------------------------------------
@pytest.mark.parametrize("source", ["hf-hub:org/name@../../../x", "hf-hub:org/name@/etc", "hf-hub:org/../../x",
                                    "hf-hub:org/na me", "hf-hub:org/name@main/../../../x"])  # fmt: skip
def test_hub_names_and_revisions_are_checked(source, tmp_path, monkeypatch, capsys):
    with pytest.raises(InvalidInputError):
        parse_hub_source(source)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert main(["predict", source, str(tmp_path / "x.png")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_a_snapshot_outside_the_cache_is_refused(tmp_path, capsys):
    from labelgraph import create_model
    from labelgraph.apis import save_model

    model = save_model(create_model("baseline", num_classes=2, backbone=TINY_BACKBONE), tmp_path / "m",
                       class_names=["a", "b"], image_size=32)  # fmt: skip
    cache = tmp_path / "hf"
    place_in_hf_cache(model, cache, "org/name")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (cache / "models--org--name" / "refs" / "main").write_text("../../../elsewhere")  # a ref that is a path
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    done = subprocess.run([sys.executable, "-m", "labelgraph.cli", "predict", "hf-hub:org/name", str(ROOT)],
                          capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
    assert "hf-hub:org/name" in done.stderr


# -- checkpoints and outputs ----------------------------------------------------------------------------------------
def test_empty_truncated_and_pickled_checkpoints_are_one_line(tiny_dataset, tmp_path, capsys):
    empty = tmp_path / "empty.ckpt"
    empty.write_bytes(b"")
    pickled = tmp_path / "pickle.ckpt"
    torch.save({"state_dict": {}, "x": os.system}, pickled)  # a checkpoint carrying a callable: refused unread
    for path, reason in ((empty, "truncated or corrupt"), (pickled, "it holds objects other than tensors")):
        assert main(["export", str(path), "--out", str(tmp_path / "m")]) == 2
        data = ["--data.train", str(tiny_dataset / "train.csv"), "--data.val", str(tiny_dataset / "val.csv")]
        fit = ["fit", "--config", str(ROOT / "configs" / "demo.yaml"), "--ckpt_path", str(path), *data]
        assert main(fit) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 2 and err.count(f"{path}: cannot load this checkpoint: {reason}") == 2, err
    assert not (tmp_path / "m").exists()


def test_a_file_name_that_is_not_utf8_is_written_back_as_its_bytes(tmp_path):
    from labelgraph import create_model
    from labelgraph.apis import save_model

    model = save_model(create_model("baseline", num_classes=2, backbone=TINY_BACKBONE).eval(), tmp_path / "m",
                       class_names=["a", "b"], image_size=32)  # fmt: skip
    folder = tmp_path / "photos"
    folder.mkdir()
    name = b"caf\xe9.png"  # Latin-1, not UTF-8
    Image.new("RGB", (40, 30), "red").save(os.path.join(bytes(folder), name))
    Image.new("RGB", (40, 30), "blue").save(folder / "plain.png")
    assert main(["predict", str(model), str(folder), "--out", str(tmp_path / "p.csv")]) == 0
    written = (tmp_path / "p.csv").read_bytes()
    assert name in written and b"plain.png" in written and written.count(b"\n") == 3  # header + two whole rows
    assert main(["predict", str(model), str(folder), "--out", str(tmp_path / "p.json")]) == 0
    assert json.loads((tmp_path / "p.json").read_text())["predictions"][0]["image"].endswith("caf\udce9.png")


def test_an_output_is_written_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one_and_is_one_line(tmp_path, monkeypatch, capsys):
    """Break: a trainer without the atomic checkpoint writer (train, compare and demo build theirs in demo_trainer),
    or the writer saving straight to the target."""
    import errno

    from labelgraph.engine.checkpoint_io import DiskFullError, SafeCheckpointIO
    from labelgraph.studies.demo import demo_trainer

    assert isinstance(demo_trainer(1, False, [], None).strategy.checkpoint_io, SafeCheckpointIO)
    target = tmp_path / "best.ckpt"
    SafeCheckpointIO().save_checkpoint({"step": 1}, target)

    def fill_the_disk(obj, path):
        Path(path).write_bytes(b"half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", fill_the_disk)
    with pytest.raises(DiskFullError, match="best.ckpt: cannot save the checkpoint, the disk is full; the previous"):
        SafeCheckpointIO().save_checkpoint({"step": 2}, target)
    assert torch.load(target)["step"] == 1 and list(tmp_path.iterdir()) == [target]


# -- long commands stopped by SIGTERM ------------------------------------------------------------------------------
def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.mark.slow
def test_sigterm_stops_the_demo_with_status_143_and_keeps_the_finished_methods(tmp_path):
    out = tmp_path / "demo"
    command = [sys.executable, "-m", "labelgraph.cli", "demo", "--methods", "baseline,query2label", "--out",
               str(out), "--data", "shapes", "--images", "96", "--epochs", "3", "--image-size", str(TINY_SIZE),
               "--batch-size", "16", "--pretrain-images", "64", "--backbone", TINY_BACKBONE,
               "--no-progress"]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    results = out / "results.json"
    wait_for(lambda: results.is_file() or process.poll() is not None, 300, "the baseline's results")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err[-3000:]
    kept = json.loads(results.read_text())
    assert kept["complete"] is False and list(kept["methods"]) == ["baseline"]
    assert "stopped by SIGTERM" in err and "Traceback" not in err


@pytest.mark.slow
def test_sigterm_stops_an_in_process_sweep_and_keeps_the_finished_points(tiny_dataset, tmp_path):
    import yaml

    base = tmp_path / "base.yaml"
    base.write_text(yaml.safe_dump({
        "seed_everything": 0,
        "trainer": {"max_epochs": 3, "accelerator": "cpu", "logger": False, "enable_checkpointing": False,
                    "enable_progress_bar": False, "enable_model_summary": False},
        "model": {"method": "baseline", "backbone": TINY_BACKBONE},
        "data": {"train": str(tiny_dataset / "train.csv"), "val": str(tiny_dataset / "val.csv"),
                 "classes": str(tiny_dataset / "classes.txt"), "image_size": TINY_SIZE, "batch_size": 8,
                 "num_workers": 0, "train_transform": "none"},
    }))  # fmt: skip
    out = tmp_path / "sweep"
    command = [sys.executable, "-m", "labelgraph.cli", "sweep", "--config", str(base), "--in-process",
               "--grid", "seed_everything=0,1,2,3,4,5", "--out", str(out)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = out / "point-000" / "result.json"
    wait_for(lambda: first.is_file() or process.poll() is not None, 300, "the first point's result")
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 143, err[-3000:]
    assert first.is_file() and not (out / "point-005" / "result.json").exists()


@pytest.mark.slow
def test_sigterm_stops_fit_with_status_143_and_keeps_its_checkpoints(tiny_dataset, tmp_path):
    from labelgraph.models import read_checkpoint

    from .test_reliability import fit_args, run_cli

    marker = tmp_path / "at_step_4"  # 48 images / 16 = 3 steps per epoch: step 4 is in the second epoch
    wait = ["--trainer.callbacks+=tests.kill_callback.WaitForSignalAtStep", "--trainer.callbacks.step=4",
            f"--trainer.callbacks.marker={marker}"]  # fmt: skip
    stopped = run_cli(["fit", *fit_args(tiny_dataset, "--data.num_workers", "0", *wait)], tmp_path, wait_for=marker,
                      send=signal.SIGTERM)  # fmt: skip
    assert stopped.returncode == 143, stopped.stderr[-3000:]
    assert "stopped by SIGTERM" in stopped.stderr and "Traceback" not in stopped.stderr
    assert read_checkpoint(tmp_path / "runs" / "epochs" / "epoch=0.ckpt")["global_step"] == 3  # the finished epoch
    assert not (tmp_path / "runs" / "epochs" / "epoch=1.ckpt").exists()  # the interrupted one is not passed off
    assert not list(tmp_path.rglob("*.tmp*"))  # no half-written file


def test_a_class_count_or_a_config_too_large_for_memory_is_one_line_before_allocating(tmp_path, capsys):
    """Break: the targets (N x C) allocated before the class count is checked -- 100,000 images of 100,000 classes
    (a 1.3 MB CSV, 10 GB of targets) ended in the out-of-memory killer; an oversized config.json read whole."""
    from labelgraph.graph.label_graph import MAX_CLASSES

    split = tmp_path / "many.csv"
    split.write_text("image,labels\n" + "".join(f"{i}.png,c{i}\n" for i in range(100_000)), encoding="utf-8")
    start = time.perf_counter()
    assert main(["train", str(split), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"many.csv: 100000 classes; at most {MAX_CLASSES} are supported" in err and err.count("\n") == 1
    assert time.perf_counter() - start < 10 and not (tmp_path / "run").exists()
    model = tmp_path / "model"
    model.mkdir()
    with open(model / "config.json", "w") as f:
        f.write('{"class_names": [' + ", ".join(['"x"'] * 8_000_000) + "]}")  # 38 MB
    assert main(["predict", str(model), "x.png"]) == 2
    assert "config.json: 38 MB, more than a model's config can be (32 MB); not read" in capsys.readouterr().err
