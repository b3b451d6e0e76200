"""``labelgraph demo`` (the quick tour) as a newcomer runs it: wall time cold (an empty user cache), warm (the same
command again: same output folder, whose data and feature cache it reuses) and into a new output folder (the stand-in
backbone found in the user cache, the rest built again), and the time to its first line.

    python -m benchmarks.bench_demo [--against OLD_SRC] [--out FILE]

Each run is the command in a child process (``python -m labelgraph.cli demo --out DIR``, standard output a pipe, as
under ``| tee``); the cache is a fresh ``LABELGRAPH_CACHE`` folder. ``--against`` runs another checkout's ``src`` the
same way first (cold, then warm). The load average before and after is recorded: the figures mean something only on an
otherwise idle machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, machine, write

REPO = Path(__file__).resolve().parents[1]


def demo_run(src: Path, out: Path, cache: Path) -> dict[str, Any]:
    """One ``labelgraph demo`` on ``src``'s code: seconds to its first line and to its exit, and its lines."""
    env = {**os.environ, "PYTHONPATH": str(src), "LABELGRAPH_CACHE": str(cache)}
    argv = [sys.executable, "-m", "labelgraph.cli", "demo", "--out", str(out)]
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines, first = [], None
    for line in child.stdout:
        first = first if first is not None else time.perf_counter() - start
        lines.append(line.rstrip("\n"))
    if child.wait() != 0:
        raise RuntimeError(f"labelgraph demo exited with {child.returncode}: {lines[-5:]}")
    seconds = time.perf_counter() - start
    carriage_returns = sum("\r" in line for line in lines)
    return {"seconds": round(seconds, 1), "first_line_s": round(first or 0.0, 2), "lines": lines,
            "lines_with_carriage_returns": carriage_returns, "src": str(src)}  # fmt: skip


def run(against: Path | None = None) -> dict[str, Any]:
    result: dict[str, Any] = {"benchmark": "demo", "machine": machine(), "load_average_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if against is not None:
            result["against_cold"] = demo_run(against, tmp / "against", tmp / "cache_against")
            result["against_warm"] = demo_run(against, tmp / "against", tmp / "cache_against")
        result["cold"] = demo_run(REPO / "src", tmp / "demo_out", tmp / "cache")
        result["warm"] = demo_run(REPO / "src", tmp / "demo_out", tmp / "cache")
        result["new_folder"] = demo_run(REPO / "src", tmp / "other_out", tmp / "cache")
    result["load_average_after"] = os.getloadavg()[0]
    return result


RUNS = {
    "against_cold": "--against, first run",
    "against_warm": "--against, the same command again",
    "cold": "first run (empty user cache)",
    "warm": "the same command again",
    "new_folder": "again, into a new --out",
}


def markdown(result: dict[str, Any]) -> str:
    lines = ["| run | wall time | first line after |", "|---|---:|---:|"]
    for key, name in RUNS.items():
        if key in result:
            lines.append(f"| {name} | {result[key]['seconds']:.1f} s | {result[key]['first_line_s']:.2f} s |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", type=Path, default=None, help="another checkout's src folder, run first")
    parser.add_argument("--out", default=str(RESULTS / "demo.json"))
    args = parser.parse_args()
    print(markdown(write(run(args.against), Path(args.out))))


if __name__ == "__main__":
    main()
