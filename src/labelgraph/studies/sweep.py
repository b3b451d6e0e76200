"""Hyper-parameter sweeps: run a grid of training configurations and tabulate their test metrics.

A sweep is a list of base configs (``labelgraph fit`` YAML files, merged in order as the CLI merges them), fixed
settings and one or several grids of dotted keys (``model.model_args.tau``; a number indexes a list:
``model.aux_losses.0.init_args.weight``). Several grids are run one after the other (one-at-a-time ablations: each grid
varies its own keys around the base config). A sweep file holds the same in YAML::

    configs: [configs/sweeps/demo_stage1.yaml]
    set: {model.method: ml_gcn}
    grid:                           # or a list of grids
      model.model_args.tau: [0.1, 0.25, 0.4]
      model.model_args.p: [0.1, 0.25]

Every point runs in its own process (``python -m labelgraph.studies.sweep_point POINT_DIR``): fit, then test with the
final weights; its merged config (``sweep_config.yaml``; Lightning writes the resolved one to ``config.yaml``), log and
``result.json`` stay in ``OUT/point-NNN``. Points with a result are not run again, so an
interrupted sweep resumes, and ``--point I`` (e.g. ``$SLURM_ARRAY_TASK_ID``) runs one point per cluster job;
``--collect`` then writes the tables: ``results.csv``, ``results.md`` (a pivot table per two-key grid), ``results.png``.
"""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from lightning.pytorch.utilities.exceptions import SIGTERMException

from labelgraph.errors import Terminated
from labelgraph.files import write_text

RESULT_KEYS = ("mAP", "CP", "CR", "CF1", "OP", "OR", "OF1", "CF1_top3", "OF1_top3")


# -- configs ---------------------------------------------------------------------------------------------------------
def deep_merge(base: dict, override: dict) -> dict:
    """``override`` merged into a copy of ``base``: dictionaries merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_configs(paths: list[str | Path]) -> dict:
    merged: dict = {}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config {str(path)!r} does not exist")
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: a config must be a YAML mapping, found {type(data).__name__}")
        merged = deep_merge(merged, data)
    return merged


def set_dotted(config: dict, key: str, value: Any) -> None:
    """Set ``config[a][b][c] = value`` for ``key = "a.b.c"``, creating mappings; numeric parts index lists."""
    parts = key.split(".")
    node: Any = config
    for i, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise KeyError(f"{key}: {'.'.join(parts[: i + 1])} is not an index of a list of {len(node)}")
            node = node[int(part)]
            continue
        if not isinstance(node.get(part), (dict, list)):
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list):
        if not last.isdigit() or int(last) >= len(node):
            raise KeyError(f"{key}: {last} is not an index of a list of {len(node)}")
        node[int(last)] = value
    else:
        node[last] = value


# -- sweeps ----------------------------------------------------------------------------------------------------------
def parse_assignment(text: str, many: bool) -> tuple[str, Any]:
    """``key=v`` (``many``: ``key=v1,v2,...``); values are YAML: ``0.1`` a float, ``true`` a bool, ``[1, 2]`` a list."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"{text!r}: expected KEY=VALUE{',VALUE...' if many else ''}")
    if not many:
        return key.strip(), yaml.safe_load(value)
    return key.strip(), [yaml.safe_load(v) for v in _split_top_level(value)]


def _split_top_level(text: str) -> list[str]:
    """Split at commas outside brackets and braces (``a,[1,2],b`` -> three values)."""
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch in "[{"
        depth -= ch in "]}"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


class Sweep:
    """Base configs + fixed settings + grids -> points (merged configs), results and tables.

    Args:
        configs: YAML config files merged in order.
        grids: one or several ``{dotted key: [values]}``; the points are each grid's product, grid after grid.
        settings: ``{dotted key: value}`` applied to every point.
        name: the sweep's name (titles of the tables).
        metric: the test metric the Markdown pivot tables and the plot show (``mAP``).
    """

    def __init__(
        self,
        configs: list[str | Path],
        grids: list[dict[str, list]],
        settings: dict[str, Any] | None = None,
        name: str = "sweep",
        metric: str = "mAP",
    ) -> None:
        if not configs:
            raise ValueError("a sweep needs at least one config")
        grids = [g for g in grids if g]
        if not grids:
            raise ValueError("a sweep needs a grid: --grid KEY=V1,V2 or a 'grid' entry in the sweep file")
        for grid in grids:
            for key, values in grid.items():
                if key.startswith("model.init_args."):
                    raise ValueError(
                        f"grid {key}: the model section is the task itself (no init_args); a method's builder "
                        f"arguments are model.model_args.*, e.g. model.model_args.{key.split('.', 2)[2]}"
                    )
                if not isinstance(values, list) or not values:
                    raise ValueError(f"grid {key}: expected a non-empty list of values, got {values!r}")
        if metric not in RESULT_KEYS:
            raise ValueError(f"metric {metric!r}; available: {', '.join(RESULT_KEYS)}")
        self.configs, self.grids, self.settings = [str(c) for c in configs], grids, dict(settings or {})
        self.name, self.metric = name, metric
        self.base = load_configs(self.configs)
        for key, value in self.settings.items():
            set_dotted(self.base, key, value)

    @classmethod
    def from_file(cls, path: str | Path, **overrides: Any) -> Sweep:
        path = Path(path)
        spec = yaml.safe_load(path.read_text()) or {}
        unknown = set(spec) - {"configs", "set", "grid", "metric", "name"}
        if unknown:
            raise ValueError(f"{path}: unknown entries {sorted(unknown)}; a sweep file has configs, set, grid, metric")
        grid = spec.get("grid") or {}
        grids = grid if isinstance(grid, list) else [grid]
        kwargs = {"name": spec.get("name", path.stem), "metric": spec.get("metric", "mAP")}
        kwargs.update({k: v for k, v in overrides.items() if v is not None})
        return cls(spec.get("configs", []), grids, spec.get("set"), **kwargs)

    def points(self) -> list[dict[str, Any]]:
        """The grid values of every point, in run order."""
        out = []
        for grid in self.grids:
            keys = list(grid)
            out += [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]
        return out

    def config(self, values: dict[str, Any]) -> dict:
        config = copy.deepcopy(self.base)
        for key, value in values.items():
            set_dotted(config, key, value)
        return config

    # -- running ---------------------------------------------------------------------------------------------------
    def run(
        self, out: str | Path, run_point: Callable[[Path], int], point: int | None = None, echo: bool = True
    ) -> list[int]:
        """Run every point (or only ``point``) that has no result yet. Returns the indices of failed points.

        Args:
            run_point: trains the point whose folder it is given (``sweep_config.yaml`` inside) and writes its
                ``result.json``; returns an exit status. :func:`subprocess_runner` runs each point in its own process;
                :func:`in_process_runner` in this one: no start-up cost per point (a few seconds of imports), at the
                price of isolation (a crash ends the sweep; it resumes where it stopped).
        """
        out = Path(out)
        points = self.points()
        todo = range(len(points)) if point is None else [point]
        failed = []
        for i in todo:
            if not 0 <= i < len(points):
                raise IndexError(f"point {i}: the sweep has points 0..{len(points) - 1}")
            folder = out / f"point-{i:03d}"
            config = relocate_outputs(self.config(points[i]), folder)
            if _done(folder, config):
                continue
            folder.mkdir(parents=True, exist_ok=True)
            write_text(folder / "sweep_config.yaml", yaml.safe_dump(config, sort_keys=False))
            write_text(folder / "point.json", json.dumps({"index": i, "values": points[i]}, indent=1))
            label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in points[i].items())
            if echo:
                print(f"[{i + 1}/{len(points)}] {label}", flush=True)
            code = run_point(folder)
            if code != 0:
                failed.append(i)
                if echo:
                    print(f"    failed (exit {code}); see {folder / 'log.txt'}", flush=True)
            elif echo:
                result = json.loads((folder / "result.json").read_text())
                print(
                    f"    test {self.metric} {result['test'][self.metric]:.2f} ({result['seconds']:.0f} s)", flush=True
                )
        return failed

    # -- tables ----------------------------------------------------------------------------------------------------
    def collect(self, out: str | Path) -> list[dict[str, Any]]:
        """One row per point: its grid values and test metrics (None where the point has no result)."""
        rows = []
        for i, values in enumerate(self.points()):
            result_file = Path(out) / f"point-{i:03d}" / "result.json"
            result = json.loads(result_file.read_text()) if result_file.is_file() else None
            row = {"point": i, **values}
            for key in RESULT_KEYS:
                row[key] = None if result is None else result["test"].get(key)
            row["best_val_mAP"] = None if result is None else result.get("best_val_mAP")
            row["seconds"] = None if result is None else result["seconds"]
            rows.append(row)
        return rows


def subprocess_runner(module: str) -> Callable[[Path], int]:
    """A point runner that calls ``python -m MODULE POINT_DIR`` with the point's output in ``POINT_DIR/log.txt``."""

    def run(folder: Path) -> int:
        with open(folder / "log.txt", "w") as log:
            process = subprocess.Popen([sys.executable, "-m", module, str(folder)], stdout=log, stderr=log)
            try:
                return process.wait()
            except BaseException:  # the sweep is stopped (SIGTERM, Ctrl-C): so is its point
                process.terminate()
                process.wait()
                raise

    return run


def in_process_runner(fit: Callable[[Path], Any]) -> Callable[[Path], int]:
    """A point runner that calls ``fit(POINT_DIR)`` here, its output (Lightning's log too) in ``POINT_DIR/log.txt``."""

    def run(folder: Path) -> int:
        import contextlib
        import gc
        import logging
        import traceback

        with open(folder / "log.txt", "w") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            handler = logging.StreamHandler(log)
            loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
            saved = [(lg.handlers, lg.propagate) for lg in loggers]
            for lg in loggers:
                lg.handlers, lg.propagate = [handler], False
            try:
                fit(folder)
            except (Exception, SystemExit) as err:  # a bad config exits the CLI: record it, go on with the next point
                if isinstance(err, SIGTERMException) or Terminated.requested is not None:
                    raise Terminated("the sweep was asked to stop") from err  # not this point to fail
                traceback.print_exc(file=log)
                return 1
            finally:
                for lg, (handlers, propagate) in zip(loggers, saved, strict=True):
                    lg.handlers, lg.propagate = handlers, propagate
                gc.collect()  # the point's trainer, model and loaders
        return 0

    return run


def _done(folder: Path, config: dict) -> bool:
    """A point is done when it has a result for this very config."""
    saved = folder / "sweep_config.yaml"
    return (folder / "result.json").is_file() and saved.is_file() and yaml.safe_load(saved.read_text()) == config


def relocate_outputs(config: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Point a run's outputs into its point's folder: the root directory, each logger's ``save_dir`` and each
    checkpoint callback's ``dirpath`` (a recipe names ``runs/<recipe>``, which every point would share)."""
    trainer = config.setdefault("trainer", {})
    trainer["default_root_dir"] = str(folder)
    loggers = trainer.get("logger")
    for entry in loggers if isinstance(loggers, list) else [loggers]:
        if isinstance(entry, dict) and "save_dir" in entry.get("init_args", {}):
            entry["init_args"]["save_dir"] = str(folder)
    for entry in trainer.get("callbacks") or []:
        if isinstance(entry, dict) and "dirpath" in (entry.get("init_args") or {}):
            entry["init_args"]["dirpath"] = str(folder / "checkpoints")
    return config
