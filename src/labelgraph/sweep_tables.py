"""Tables and plots of a sweep's results (``labelgraph sweep``): Markdown pivots and one panel per grid."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from labelgraph.sweep import Sweep


def _short(key: str) -> str:
    return key.split(".")[-1]


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _grid_rows(sweep: Sweep, rows: list[dict]) -> list[tuple[dict, list[dict]]]:
    """Each grid with its own rows (points are numbered grid after grid)."""
    out, start = [], 0
    for grid in sweep.grids:
        count = 1
        for values in grid.values():
            count *= len(values)
        out.append((grid, rows[start : start + count]))
        start += count
    return out


def markdown_tables(sweep: Sweep, rows: list[dict]) -> str:
    """Per grid: a pivot of the metric (two keys: rows x columns) or a column of it, then every metric per point."""
    metric = sweep.metric
    text = [f"# Sweep `{sweep.name}`", "", f"Base config(s): {', '.join(f'`{c}`' for c in sweep.configs)}."]
    if sweep.settings:
        text.append("Set: " + ", ".join(f"`{k}={v}`" for k, v in sweep.settings.items()) + ".")
    text.append(f"Test-split metrics in percent; pivots show **{metric}**.")
    for grid, grid_rows in _grid_rows(sweep, rows):
        keys = list(grid)
        text += ["", f"## {' x '.join(_short(k) for k in keys)}", ""]
        if len(keys) == 2:
            k1, k2 = keys
            text.append(f"| {_short(k1)} \\ {_short(k2)} | " + " | ".join(_fmt(v) for v in grid[k2]) + " |")
            text.append("|---|" + "---:|" * len(grid[k2]))
            for v1 in grid[k1]:
                cells = [next((r[metric] for r in grid_rows if r[k1] == v1 and r[k2] == v2), None) for v2 in grid[k2]]
                text.append(f"| {_fmt(v1)} | " + " | ".join(_fmt(c) for c in cells) + " |")
            text.append("")
        header = [*(_short(k) for k in keys), "mAP", "CF1", "OF1", "CF1 top-3", "best val mAP", "seconds"]
        text.append("| " + " | ".join(header) + " |")
        text.append("|" + "---|" * len(keys) + "---:|" * (len(header) - len(keys)))
        for r in grid_rows:
            cells = [r[k] for k in keys] + [r["mAP"], r["CF1"], r["OF1"], r["CF1_top3"], r["best_val_mAP"]]
            seconds = "—" if r["seconds"] is None else f"{r['seconds']:.0f}"
            text.append("| " + " | ".join(_fmt(c) for c in cells) + f" | {seconds} |")
    return "\n".join(text) + "\n"


def plot_sweep(sweep: Sweep, rows: list[dict], path: Path) -> None:
    """One panel per grid: the metric against the grid's first key, one line per value of its second key."""
    metric = sweep.metric
    panels = _grid_rows(sweep, rows)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (grid, grid_rows) in zip(axes[0], panels, strict=True):
        keys = list(grid)
        x_key = keys[0]
        xs = list(grid[x_key])
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
        positions = xs if numeric else list(range(len(xs)))
        series: dict[str, list] = {}
        for r in grid_rows:
            label = ", ".join(f"{_short(k)}={r[k]}" for k in keys[1:]) or metric
            series.setdefault(label, [None] * len(xs))[xs.index(r[x_key])] = r[metric]
        for label, ys in series.items():
            pts = [(x, y) for x, y in zip(positions, ys, strict=True) if y is not None]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        if not numeric:
            ax.set_xticks(positions, [str(v) for v in xs])
        ax.set(xlabel=_short(x_key), ylabel=f"test {metric} (%)", title=" x ".join(_short(k) for k in keys))
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize="small")
    fig.suptitle(f"sweep {sweep.name}", fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
