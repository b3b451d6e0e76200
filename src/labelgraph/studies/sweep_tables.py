"""Tables and plots of a sweep's results (``labelgraph sweep``): Markdown pivots and one panel per grid.

A grid axis ``seed_everything`` is treated as repetitions, not as a setting: the tables and plots show the mean
over seeds with the standard deviation (``67.31 ± 0.12``) and the number of seeds.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from labelgraph.files import atomic_path, literal_text, save_figure, write_text
from labelgraph.studies.sweep import RESULT_KEYS, Sweep  # noqa: E402

SEED_KEY = "seed_everything"


def _short(key: str) -> str:
    return key.split(".")[-1]


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.2f}" if isinstance(value, float) else str(value)


def _grid_rows(sweep: Sweep, rows: list[dict]) -> list[tuple[dict, list[dict]]]:
    """Each grid with its own rows (points are numbered grid after grid)."""
    out, start = [], 0
    for grid in sweep.grids:
        count = int(np.prod([len(v) for v in grid.values()]))
        out.append((grid, rows[start : start + count]))
        start += count
    return out


def aggregate(rows: list[dict], keys: list[str], metric: str) -> dict[tuple, tuple[float | None, float | None, int]]:
    """(mean, std, n) of ``metric`` per combination of ``keys`` (over the seeds; points without results skipped)."""
    groups: dict[tuple, list[float]] = {}
    for r in rows:
        groups.setdefault(tuple(r[k] for k in keys), [])
        if r[metric] is not None:
            groups[tuple(r[k] for k in keys)].append(r[metric])
    return {
        combo: (float(np.mean(v)), float(np.std(v)) if len(v) > 1 else None, len(v)) if v else (None, None, 0)
        for combo, v in groups.items()
    }


def _cell(stat: tuple[float | None, float | None, int]) -> str:
    mean, std, _ = stat
    return "—" if mean is None else f"{mean:.2f}" if std is None else f"{mean:.2f} ± {std:.2f}"


def markdown_tables(sweep: Sweep, rows: list[dict]) -> str:
    """Per grid: a pivot of the metric (two keys: rows x columns), then the main metrics per setting."""
    metric = sweep.metric
    text = [f"# Sweep `{sweep.name}`", "", f"Base config(s): {', '.join(f'`{c}`' for c in sweep.configs)}."]
    if sweep.settings:
        text.append("Set: " + ", ".join(f"`{k}={v}`" for k, v in sweep.settings.items()) + ".")
    text.append(f"Test-split metrics in percent; pivots show **{metric}**.")
    for grid, grid_rows in _grid_rows(sweep, rows):
        keys = [k for k in grid if k != SEED_KEY] or list(grid)
        seeds = len(grid.get(SEED_KEY, [None]))
        title = " x ".join(_short(k) for k in keys) + (f" (mean ± std over {seeds} seeds)" if seeds > 1 else "")
        text += ["", f"## {title}", ""]
        stats = {m: aggregate(grid_rows, keys, m) for m in (metric, "mAP", "CF1", "OF1", "CF1_top3", "seconds")}
        if len(keys) == 2:
            k1, k2 = keys
            text.append(f"| {_short(k1)} \\ {_short(k2)} | " + " | ".join(_fmt(v) for v in grid[k2]) + " |")
            text.append("|---|" + "---:|" * len(grid[k2]))
            for v1 in grid[k1]:
                text.append(f"| {_fmt(v1)} | " + " | ".join(_cell(stats[metric][(v1, v2)]) for v2 in grid[k2]) + " |")
            text.append("")
        header = [*(_short(k) for k in keys), "mAP", "CF1", "OF1", "CF1 top-3", "seconds"]
        text.append("| " + " | ".join(header) + " |")
        text.append("|" + "---|" * len(keys) + "---:|" * (len(header) - len(keys)))
        for combo in stats["mAP"]:
            cells = [_fmt(v) for v in combo] + [_cell(stats[m][combo]) for m in ("mAP", "CF1", "OF1", "CF1_top3")]
            seconds = stats["seconds"][combo][0]
            text.append("| " + " | ".join(cells) + f" | {'—' if seconds is None else f'{seconds:.0f}'} |")
    return "\n".join(text) + "\n"


def plot_sweep(sweep: Sweep, rows: list[dict], path: Path) -> None:
    """One panel per grid: the metric against the grid's first key, one line per value of its second key (error bars:
    the standard deviation over seeds)."""
    metric = sweep.metric
    panels = _grid_rows(sweep, rows)
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), squeeze=False)
    for ax, (grid, grid_rows) in zip(axes[0], panels, strict=True):
        keys = [k for k in grid if k != SEED_KEY] or list(grid)
        x_key, xs = keys[0], list(grid[keys[0]])
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in xs)
        positions = xs if numeric else list(range(len(xs)))
        series: dict[str, list] = {}
        for combo, (mean, std, _) in aggregate(grid_rows, keys, metric).items():
            label = ", ".join(f"{_short(k)}={v}" for k, v in zip(keys[1:], combo[1:], strict=True)) or metric
            series.setdefault(label, [(None, None)] * len(xs))[xs.index(combo[0])] = (mean, std)
        for label, points in series.items():
            pts = [(x, m, s or 0.0) for x, (m, s) in zip(positions, points, strict=True) if m is not None]
            if pts:
                x, m, s = zip(*pts, strict=True)
                ax.errorbar(x, m, yerr=s, marker="o", capsize=3, label=label)
        if not numeric:
            ax.set_xticks(positions, [str(v) for v in xs])
        ax.set(xlabel=_short(x_key), ylabel=f"test {metric} (%)", title=" x ".join(_short(k) for k in keys))
        ax.grid(alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize="small")
    fig.suptitle(f"sweep {sweep.name}", fontsize="medium")
    literal_text(fig).tight_layout()
    save_figure(fig, path)


def write_tables(sweep: Sweep, out: str | Path) -> dict[str, Path]:
    """``results.csv`` (one row per point), ``results.md`` (pivots) and ``results.png`` of the points' results."""
    out = Path(out)
    rows = sweep.collect(out)
    keys = list(dict.fromkeys(k for g in sweep.grids for k in g))
    columns = ["point", *keys, *RESULT_KEYS, "best_val_mAP", "seconds"]
    with atomic_path(out / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows([{c: row.get(c, "") for c in columns} for row in rows])
    write_text(out / "results.md", markdown_tables(sweep, rows))
    plot_sweep(sweep, rows, out / "results.png")
    return {"csv": out / "results.csv", "markdown": out / "results.md", "plot": out / "results.png"}
