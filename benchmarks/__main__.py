"""``python -m benchmarks``: run every benchmark, write ``benchmarks/results/*.json`` and the table in
``benchmarks/README.md`` (between the ``<!-- results -->`` markers).

    python -m benchmarks [--only metrics,data,methods,inference,ssgrl_memory,cache]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from benchmarks import bench_cache, bench_data, bench_inference, bench_methods, bench_metrics, bench_ssgrl_memory
from benchmarks.common import RESULTS, machine, write

BENCHMARKS = {
    "metrics": bench_metrics.run,
    "data": bench_data.run,
    "methods": bench_methods.run,
    "inference": bench_inference.run,
    "ssgrl_memory": bench_ssgrl_memory.run,
    "cache": bench_cache.run,
}


def table(results: dict[str, dict]) -> str:
    """The README table: one line per measured ratio."""
    lines = ["| benchmark | measurement | labelgraph | reference | ratio |", "|---|---|---:|---:|---:|"]
    if "metrics" in results:
        m = results["metrics"]
        lines.append(
            f"| metrics | per-class AP, 40,504 x 80 (vs scikit-learn) | {m['labelgraph_ap_seconds']:.2f} s | "
            f"{m['sklearn_ap_seconds']:.2f} s | {m['ap_speedup_vs_sklearn']:.2f}x faster |"
        )
        lines.append(
            f"| metrics | all metrics vs sklearn AP alone | {m['labelgraph_evaluate_seconds']:.2f} s | "
            f"{m['sklearn_ap_seconds']:.2f} s | {m['evaluate_all_metrics_vs_sklearn_ap_only']:.2f}x faster |"
        )
    if "data" in results:
        d = results["data"]
        for w in (0, 2):
            lines.append(
                f"| data | ml_gcn train pipeline, {d['image_size']} px, {w} workers (vs bare JPEG decode, 1 process) | "
                f"{d[f'pipeline_images_per_s_workers_{w}']:.0f} img/s | {d['bare_decode_images_per_s']:.0f} img/s | "
                f"{d[f'pipeline_over_bare_decode_per_worker_{w}']:.2f} per worker |"
            )
    if "methods" in results:
        s = results["methods"]["setting"]
        for name, r in results["methods"]["methods"].items():
            lines.append(
                f"| methods | {name}: fwd+bwd, batch {s['batch']}, {s['backbone']} {s['image_size']} px, "
                f"{s['classes']} classes; {r['params_m']:.1f} M params, {r['gflops_per_image']:.2f} GFLOPs | "
                f"{1000 * r['fwd_bwd_seconds']:.0f} ms, {r['activation_mb']:.0f} MB | baseline | "
                f"{r['time_vs_baseline']:.2f}x time, {r['activation_vs_baseline']:.2f}x memory |"
            )
    if "inference" in results:
        i = results["inference"]
        for b in (1, 32):
            r = i[f"batch_{b}"]
            lines.append(
                f"| inference | {i['method']} ({i['backbone']}, {i['image_size']} px), ONNX Runtime vs eager PyTorch, "
                f"batch {b} | {r['onnxruntime_images_per_s']:.0f} img/s | {r['torch_images_per_s']:.0f} img/s | "
                f"{r['onnx_over_torch']:.2f}x (max logit diff {r['max_abs_logit_difference']:.1e}) |"
            )
    if "ssgrl_memory" in results:
        s = results["ssgrl_memory"]
        d, c = s["official_dense"], s["labelgraph_chunked"]
        lines.append(
            f"| ssgrl_memory | SSGRL head fwd+bwd, 576 px, 80 classes, batch {s['setting']['batch']}: saved "
            f"activations (peak RSS) | {c['saved_for_backward_mb']:.0f} MB ({c['peak_rss_increase_mb']:.0f} MB) | "
            f"{d['saved_for_backward_mb']:.0f} MB ({d['peak_rss_increase_mb']:.0f} MB) official | "
            f"{s['saved_for_backward_ratio']:.1f}x less ({s['peak_rss_ratio']:.1f}x) |"
        )
        lines.append(
            f"| ssgrl_memory | the semantic decoupling alone: saved activations | "
            f"{c['decoupling_saved_for_backward_mb']:.1f} MB | "
            f"{d['decoupling_saved_for_backward_mb']:.0f} MB official | "
            f"{s['decoupling_saved_ratio']:.0f}x less |"
        )
    if "cache" in results:
        c = results["cache"]
        s = c["setting"]
        lines.append(
            f"| cache | {s['method']} stage 1 (frozen {s['backbone']}, {s['image_size']} px, {s['images']} {s['data']} "
            f"images): one epoch from the fp16 feature cache vs from the images (0 / 2 loader workers) | "
            f"{c['cached_seconds_per_epoch']:.2f} s | {c['uncached_seconds_per_epoch_workers_0']:.1f} / "
            f"{c['uncached_seconds_per_epoch_workers_2']:.1f} s | {c['speedup_per_epoch']:.1f}x / "
            f"{c['speedup_per_epoch_vs_2_workers']:.1f}x faster (build {c['cache_build_seconds']:.1f} s, "
            f"{c['cache_megabytes']:.0f} MB; pays off after {c['break_even_epochs']:.1f} epochs) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    args = parser.parse_args()
    results = {}
    for name in args.only.split(","):
        print(f"running {name} ...", flush=True)
        results[name] = write(BENCHMARKS[name](), RESULTS / f"{name}.json")
    for name in BENCHMARKS:  # keep the table complete with earlier results of the benchmarks not run now
        if name not in results and (RESULTS / f"{name}.json").is_file():
            results[name] = json.loads((RESULTS / f"{name}.json").read_text())
    text = table(results)
    readme = Path(__file__).parent / "README.md"
    info = machine()
    where = f"Machine: {info['processor'] or info['platform']}, {info['cpus']} CPUs, torch {info['torch']}"
    block = f"<!-- results -->\n{where}, CUDA: {info['cuda'] or 'none'}.\n\n{text}\n<!-- /results -->"
    current = readme.read_text()
    if "<!-- results -->" in current:
        current = re.sub(r"<!-- results -->.*<!-- /results -->", lambda _: block, current, flags=re.S)
    else:
        current += "\n## Latest results (python -m benchmarks)\n\n" + block + "\n"
    readme.write_text(current)
    print(text)


if __name__ == "__main__":
    main()
