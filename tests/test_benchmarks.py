"""The benchmarks run (at toy sizes) and produce the fields the README table reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from benchmarks import bench_data, bench_methods
from benchmarks.__main__ import table
from PIL import Image

from labelgraph import list_models

from .conftest import TINY_BACKBONE


@pytest.mark.slow
def test_methods_benchmark_covers_every_method_against_the_baseline():
    result = bench_methods.run(settings=((TINY_BACKBONE, 32),), batch=2, classes=5, rounds=1)
    rows = result["settings"][0]["methods"]
    assert set(rows) == set(list_models())
    assert rows["baseline"]["time_vs_baseline"] == 1.0 and rows["baseline"]["head_over_baseline_step"] == 0.0
    assert all(r["activation_mb"] > 0 and r["gflops_per_image"] > 0 for r in rows.values())
    assert "| methods | ml_gcn" in table({"methods": result})


@pytest.mark.slow
def test_data_benchmark_measures_both_pipelines():
    result = bench_data.run(images=6, image_size=32, batch_size=3, rounds=1)
    for kind in ("photos", "noise"):
        r = result[kind]
        assert r["bare_pil_images_per_s_workers_0_round"] > 0 and r["pipeline_images_per_s_workers_2"] > 0
        assert r["pil_pipeline_over_bare_decode_jpeg_per_worker_0"] > 0
    assert set(result["photos"]["mean_abs_pixel_difference_vs_pil"]) == {"ml_gcn", "add_gcn", "resize"}
    assert "| data |" in table({"data": result})


@pytest.mark.slow  # a benchmark run
def test_metrics_benchmark_fields():
    from benchmarks import bench_metrics

    result = bench_metrics.run(repeats=1)
    assert result["max_abs_ap_difference_sklearn_tied"] < 1e-9
    assert result["max_abs_ap_difference_torchmetrics_tied"] < 1e-6
    assert result["evaluate_over_argsort_contiguous"] > 0
    assert "| metrics |" in table({"metrics": result})


def test_gpu_check_without_cuda_stops_with_a_message(monkeypatch, capsys, tmp_path):
    from benchmarks import gpu_check

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert gpu_check.main(["--out", str(tmp_path / "g.json")]) == 2
    assert "no CUDA device" in capsys.readouterr().err and not (tmp_path / "g.json").exists()


@pytest.mark.slow
def test_gpu_check_loop_runs_on_the_cpu(tmp_path, capsys):
    import json

    from benchmarks import gpu_check

    argv = ["--device", "cpu", "--backbone", TINY_BACKBONE, "--size", "32", "--batch", "2", "--steps", "1",
            "--methods", "baseline,lglm", "--workers", "0", "--loader-images", "4",
            "--out", str(tmp_path / "g.json")]  # fmt: skip
    assert gpu_check.main(argv) == 0
    result = json.loads((tmp_path / "g.json").read_text())
    assert set(result["methods"]) == {"baseline", "lglm"} and result["loader_images_per_s"] > 0
    assert all(r[p]["images_per_s"] > 0 for r in result["methods"].values() for p in ("bf16", "fp16"))
    assert "| lglm |" in capsys.readouterr().out


@pytest.mark.slow
def test_cache_benchmark_times_both_paths():
    from benchmarks import bench_cache

    result = bench_cache.run(images=40, epochs=1, backbone=TINY_BACKBONE, image_size=32, data="shapes")
    assert result["cached_seconds_per_epoch"] > 0 and result["speedup_per_epoch"] > 0
    assert "| cache | ml_gcn stage 1" in table({"cache": result})


@pytest.mark.slow
def test_serve_benchmark_measures_the_server_against_offline_prediction():
    pytest.importorskip("litserve")
    from benchmarks import bench_serve

    src = Path(__file__).resolve().parents[1] / "src"  # served alongside as "another" tree: the same code
    result = bench_serve.run(settings=((TINY_BACKBONE, 32, "tiny"),), images=16, rounds=1, against=src)
    row = result["settings"][0]
    assert row["offline_images_per_s"] > 0 and row["served_images_per_s_16_clients"] > 0
    assert row["against_images_per_s_16_clients"] > 0 and row["against_4_per_request_over_offline"] > 0
    assert 0 < row["latency_ms_p50_1_clients"] <= row["latency_ms_p99_1_clients"]
    assert "| serve |" in table({"serve": result})


@pytest.mark.slow  # a benchmark run, at a toy size
def test_camera_photo_benchmark_measures_the_scaled_decode_against_the_full_one(tmp_path, monkeypatch):
    from benchmarks import bench_camera_photos

    from labelgraph.data.formats import load_table

    monkeypatch.setattr(bench_camera_photos, "CAMERA", (2000, 1500))  # a full decode clearly costs more than 1/8
    table = load_table("csv", str(bench_camera_photos.write_camera_photos(tmp_path)))
    assert len(table) == 10 and {Image.open(table.path(i)).size for i in range(10)} <= {(2000, 1500), (1500, 2000)}
    result = {"data_path": bench_camera_photos.data_path(table, image_size=16, rounds=1)}
    row = result["data_path"]["workers_0"]
    assert row["pipeline_over_full_decode"] > 1  # 1/8 of the pixels decoded
    assert "| 0 |" in bench_camera_photos.markdown(result)


def test_labelling_formats_benchmark_reads_every_export_of_the_same_labels(tmp_path):
    """The four files hold the same labels: each reader gives the CSV's table (the benchmark times like with like)."""
    import numpy as np
    from benchmarks.bench_labelling_formats import read_in_child, write_files

    from labelgraph.data.formats import load_table

    files = write_files(tmp_path, 300)
    csv = load_table("csv", str(files["csv"][1]))
    for fmt, path in files.values():
        table = load_table(fmt, str(path), root=tmp_path, class_names=csv.class_names)
        assert [table.path(i) for i in range(300)] == [csv.path(i) for i in range(300)], fmt
        assert np.array_equal(table.targets, csv.targets), fmt
    row = read_in_child("cvat", files["cvat"][1], tmp_path)
    assert row["rows"] == 300 and row["peak_mb"] > 0
