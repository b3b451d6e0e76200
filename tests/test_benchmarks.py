"""The benchmarks run (at toy sizes) and produce the fields the README table reads."""

from __future__ import annotations

import pytest
from benchmarks import bench_data, bench_methods
from benchmarks.__main__ import table

from labelgraph import list_models

from .conftest import TINY_BACKBONE


@pytest.mark.slow
def test_methods_benchmark_covers_every_method_against_the_baseline():
    result = bench_methods.run(backbone=TINY_BACKBONE, size=32, batch=2, classes=5, repeats=1)
    assert set(result["methods"]) == set(list_models())
    assert result["methods"]["baseline"]["time_vs_baseline"] == 1.0
    assert all(r["activation_mb"] > 0 and r["gflops_per_image"] > 0 for r in result["methods"].values())
    assert "| methods | ml_gcn" in table({"methods": result})


@pytest.mark.slow
def test_data_benchmark_measures_both_pipelines():
    result = bench_data.run(images=6, image_size=32, batch_size=3, repeats=1)
    assert result["bare_decode_images_per_s"] > 0 and result["pipeline_images_per_s_workers_2"] > 0
    assert "| data |" in table({"data": result})


@pytest.mark.slow
def test_cache_benchmark_times_both_paths():
    from benchmarks import bench_cache

    result = bench_cache.run(images=40, epochs=1, backbone=TINY_BACKBONE, image_size=32, data="shapes")
    assert result["cached_seconds_per_epoch"] > 0 and result["speedup_per_epoch"] > 0
    assert "| cache | ml_gcn stage 1" in table({"cache": result})
