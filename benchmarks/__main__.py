"""``python -m benchmarks``: run every benchmark, write ``benchmarks/results/*.json`` and the table in
``benchmarks/README.md`` (between the ``<!-- results -->`` markers).

    python -m benchmarks [--only metrics,data,methods,inference,ssgrl_memory,cache,serve]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

from benchmarks import (
    bench_cache,
    bench_data,
    bench_inference,
    bench_methods,
    bench_metrics,
    bench_serve,
    bench_ssgrl_memory,
)
from benchmarks.common import RESULTS, machine, write

BENCHMARKS = {
    "metrics": bench_metrics.run,
    "data": bench_data.run,
    "methods": bench_methods.run,
    "inference": bench_inference.run,
    "ssgrl_memory": bench_ssgrl_memory.run,
    "cache": bench_cache.run,
    "serve": bench_serve.run,
}


def table(results: dict[str, dict]) -> str:
    """The README table: one line per measured ratio."""
    lines = ["| benchmark | measurement | labelgraph | reference | ratio |", "|---|---|---:|---:|---:|"]
    if "metrics" in results:
        m = results["metrics"]
        lines.append(
            f"| metrics | evaluate (13 figures), 40,504 x 80 float32, vs one np.argsort of the contiguous (C, N) copy "
            f"(as given, axis 0: {m['argsort_as_given_seconds']:.3f} s) | {m['evaluate_seconds']:.3f} s | "
            f"{m['argsort_contiguous_seconds']:.3f} s | {m['evaluate_over_argsort_contiguous']:.2f}x the sort "
            f"({m['evaluate_over_argsort_as_given']:.2f}x) |"
        )
        lines.append(
            f"| metrics | evaluate vs torchmetrics multilabel_average_precision alone (max AP diff, ties: "
            f"{m['max_abs_ap_difference_torchmetrics_tied']:.0e}) | {m['evaluate_seconds']:.3f} s | "
            f"{m['torchmetrics_ap_seconds']:.2f} s | {m['evaluate_speedup_vs_torchmetrics_ap']:.1f}x faster |"
        )
        lines.append(
            f"| metrics | per-class AP vs scikit-learn average_precision_score (max diff, ties: "
            f"{m['max_abs_ap_difference_sklearn_tied']:.0e}) | {m['labelgraph_ap_seconds']:.3f} s | "
            f"{m['sklearn_ap_seconds']:.2f} s | {m['ap_speedup_vs_sklearn']:.1f}x faster |"
        )
    if "data" in results:
        d = results["data"]
        for kind in ("photos", "noise"):
            r = d[kind]
            for w in (0, 2):
                for name, label in (("pipeline", "tensor pipeline"), ("pil_pipeline", "former PIL pipeline")):
                    lines.append(
                        f"| data | {label}, ml_gcn preset, {d['image_size']} px, {w} workers; {r['source']} | "
                        f"{r[f'{name}_images_per_s_workers_{w}']:.0f} img/s | "
                        f"PIL {r[f'bare_pil_images_per_s_workers_{w}_round']:.0f} / decode_jpeg "
                        f"{r[f'bare_decode_jpeg_images_per_s_workers_{w}_round']:.0f} img/s (1 process) | "
                        f"{r[f'{name}_over_bare_pil_per_worker_{w}']:.2f}x PIL / "
                        f"{r[f'{name}_over_bare_decode_jpeg_per_worker_{w}']:.2f}x decode_jpeg per worker |"
                    )
    if "methods" in results:
        m = results["methods"]
        for setting in m["settings"]:
            where = f"{setting['backbone']} {setting['image_size']} px"
            for name, r in setting["methods"].items():
                lines.append(
                    f"| methods | {name}: fwd+bwd, batch {m['batch']}, {where}, "
                    f"{m['classes']} classes; {r['params_m']:.1f} M params, {r['gflops_per_image']:.2f} GFLOPs | "
                    f"{1000 * r['fwd_bwd_seconds']:.0f} ms (head +{100 * r['head_over_baseline_step']:.1f} %), "
                    f"{r['activation_mb']:.0f} MB | baseline | {r['time_vs_baseline']:.3f}x time, "
                    f"{r['activation_vs_baseline']:.2f}x memory |"
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
    if "serve" in results:
        lines += serve_rows(results["serve"])
    return "\n".join(lines)


def serve_rows(s: dict) -> list[str]:
    rows = []
    for r in s["settings"]:
        where = f"{r['method']} on {r['backbone']} at {r['image_size']} px ({r['setting']}), {r['images']} photos"
        rows.append(
            f"| serve | labelgraph serve, 16 connections, 1 image per request (4 per request: "
            f"{r['served_images_per_s_16_clients_4_per_request']:.0f} img/s), {where} | "
            f"{r['served_images_per_s_16_clients']:.0f} img/s | offline predict, batch 16: "
            f"{r['offline_images_per_s']:.0f} img/s | {r['served_over_offline']:.2f}x "
            f"({r['served_4_per_request_over_offline']:.2f}x) |"
        )
        rows.append(
            f"| serve | latency p50 / p99, 1 connection and 16 connections, {where} | "
            f"{r['latency_ms_p50_1_clients']:.0f} / {r['latency_ms_p99_1_clients']:.0f} ms (1) | "
            f"{r['latency_ms_p50_16_clients']:.0f} / {r['latency_ms_p99_16_clients']:.0f} ms (16) | - |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHMARKS), help="comma-separated subset")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)  # run one benchmark in this process
    args = parser.parse_args()
    if args.child:
        write(BENCHMARKS[args.child](), RESULTS / f"{args.child}.json")
        return
    results = {}
    for name in args.only.split(","):
        print(f"running {name} ...", flush=True)
        # each in a process of its own: memory one leaves behind is not counted (or exhausted) by the next; in one
        # process, the methods benchmark's sixteen models left the SSGRL memory benchmark out of memory (23 GB)
        subprocess.run([sys.executable, "-m", "benchmarks", "--child", name], check=True)
        results[name] = json.loads((RESULTS / f"{name}.json").read_text())
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
