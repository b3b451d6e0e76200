"""One point of a sweep: ``python -m labelgraph.studies.sweep_point POINT_DIR`` (``labelgraph sweep`` runs it)."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from labelgraph.engine.callbacks import MetricHistory
from labelgraph.engine.lightning_cli import make_cli
from labelgraph.evaluation.metrics import SCALAR_KEYS


def fit_and_test(folder: str | Path) -> dict[str, Any]:
    """Train ``folder/sweep_config.yaml`` through the CLI, test the final weights, write ``folder/result.json``."""
    folder = Path(folder)
    cli = make_cli(["--config", str(folder / "sweep_config.yaml")], run=False)
    history = MetricHistory()
    cli.trainer.callbacks.append(history)
    start = time.perf_counter()
    cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    fit_seconds = time.perf_counter() - start
    cli.trainer.test(cli.model, datamodule=cli.datamodule, verbose=False)
    test = {k: float(v) for k, v in cli.model.results["test"].items() if k in SCALAR_KEYS or "_top" in k}
    result = {
        "test": test,
        "val_mAP": history.val_map,
        "best_val_mAP": max(history.val_map) if history.val_map else None,
        "seconds": time.perf_counter() - start,
        "fit_seconds": fit_seconds,
        "epochs": cli.trainer.current_epoch,
    }
    tmp = folder / "result.json.tmp"
    tmp.write_text(json.dumps(result, indent=1))
    os.replace(tmp, folder / "result.json")
    return result


if __name__ == "__main__":
    fit_and_test(sys.argv[1])
