"""Plots and a Markdown report of a comparison run (the demo's ``report.md``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from labelgraph.files import literal_text, save_figure, write_text


def plot_per_class_ap(
    per_class: dict[str, list[float]], class_names: list[str], path: Path, split: str = "test"
) -> None:
    """Grouped bars: one group per class, one bar per method (the AP on ``split``), saved to ``path``."""
    save_figure(per_class_ap_figure(per_class, class_names, f"Per-class average precision ({split} split)"), path)


def per_class_ap_figure(per_class: dict[str, list[float]], class_names: list[str], title: str) -> plt.Figure:
    """Grouped bars: one group per class, one bar per entry of ``per_class`` (a method, or a split), AP in %."""
    methods = list(per_class)
    x = np.arange(len(class_names))
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(class_names) * max(1, len(methods) / 2)), 3.5))
    for i, m in enumerate(methods):
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, per_class[m], width, label=m)
    ax.set_xticks(x, class_names, rotation=45, ha="right")
    ax.set_ylabel("AP (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize="small", ncol=min(len(methods), 4))
    ax.set_title(title)
    literal_text(fig).tight_layout()
    return fig


def plot_curves(history: dict[str, list[dict[str, float]]], path: Path) -> None:
    """:func:`curves_figure` saved to ``path``."""
    save_figure(curves_figure(history), path)


def curves_figure(history: dict[str, list[dict[str, float]]]) -> plt.Figure:
    """Training loss and validation mAP per epoch, one line per method. The loss axis is logarithmic when the losses
    span more than 30x (Query2Label's summed ASL is ~1000x ML-GCN's mean BCE: on a linear axis the others lie flat)."""
    fig, (ax_loss, ax_map) = plt.subplots(1, 2, figsize=(10, 3.5))
    losses = []
    for method, rows in history.items():
        epochs = [r["epoch"] + 1 for r in rows]
        # the classification loss is comparable across methods; totals include method terms (A-GCN's sparsity)
        loss = [r.get("train/cls_loss_epoch", r.get("train/loss_epoch", np.nan)) for r in rows]
        ax_loss.plot(epochs, loss, marker="o", label=method)
        losses += [v for v in loss if v > 0 and np.isfinite(v)]
        ax_map.plot(epochs, [r.get("val/mAP", np.nan) for r in rows], marker="o", label=method)
    ax_loss.set(xlabel="epoch", ylabel="classification loss", title="Training loss (classification term)")
    if losses and max(losses) > 30 * min(losses):
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("classification loss (log scale)")
    ax_map.set(xlabel="epoch", ylabel="mAP (%)", title="Validation mAP")
    for ax in (ax_loss, ax_map):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # epochs are whole numbers
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    literal_text(fig).tight_layout()
    return fig


def results_table(methods: dict[str, dict[str, Any]]) -> str:
    """The comparison table as Markdown (also what the demo prints)."""
    lines = ["| method | mAP | CF1 | OF1 | CF1 top-3 | params (M) | seconds |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in methods.items():
        lines.append(
            f"| {name} | {r['mAP']:.2f} | {r['CF1']:.2f} | {r['OF1']:.2f} | {r['CF1_top3']:.2f} | "
            f"{r['params'] / 1e6:.2f} | {r['seconds']:.1f} |"
        )
    return "\n".join(lines)


def per_class_table(per_class: dict[str, list[float]], class_names: list[str]) -> str:
    """Per-class AP as the VOC seeds print it: one row per method, one column per class, then the mean (percent)."""
    short = [name[:10] for name in class_names]
    lines = ["| method | " + " | ".join(short) + " | mAP |", "|---|" + "---:|" * (len(class_names) + 1)]
    for method, aps in per_class.items():
        values = [v for v in aps if v is not None and not np.isnan(v)]
        cells = ["—" if v is None or np.isnan(v) else f"{v:.1f}" for v in aps]
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {np.mean(values):.1f} |")
    return "\n".join(lines)


def write_report(out: Path, results: dict[str, Any], history: dict, per_class: dict, class_names: list[str]) -> Path:
    plot_per_class_ap(per_class, class_names, out / "per_class_ap.png")
    plot_curves(history, out / "curves.png")
    data = results["dataset"]
    what = f"`{data['description']}`" if "description" in data else f"synthetic **{data['kind']}** scenes"
    text = [
        "# labelgraph comparison report",
        "",
        f"Dataset: {what} (seed {data['seed']}), {data['train']['num_images']} train / "
        f"{data['val']['num_images']} val / {data['test']['num_images']} test images, {len(class_names)} classes, "
        f"{data['train']['label_cardinality']:.2f} labels per image. Metrics on the test split, in percent "
        "(mAP non-interpolated; CF1 harmonic; threshold 0.5).",
        "",
        results_table(results["methods"]),
        "",
        f"Training: {results['settings']['epochs']} epochs, backbone `{results['settings']['backbone']}` "
        f"({results['settings'].get('pretraining', 'from scratch')}), "
        f"{results['settings']['image_size']} px, on {results['settings']['device']}.",
        "",
        "Per-class AP (test split, percent):",
        "",
        per_class_table(per_class, class_names),
        "",
        "![per-class AP](per_class_ap.png)",
        "",
        "![training curves](curves.png)",
        "",
    ]
    path = out / "report.md"
    write_text(path, "\n".join(text))
    return path
