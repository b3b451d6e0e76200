"""Start-up: wall time until a command has answered, against ``python -c pass``, measured side by side.

    python -m benchmarks.bench_startup [--against SRC] [--rounds 10] [--out FILE]

Each command runs as a fresh process (``python -m labelgraph.cli ...``, the same module the ``labelgraph`` script
runs), the contenders interleaved round by round so that a noisy neighbour slows all alike. ``--against SRC`` times the
same commands with another source tree first on ``PYTHONPATH`` (e.g. a worktree of an earlier commit). ``python -X
importtime`` of ``labelgraph --help`` gives the number of modules it imports and whether PyTorch, Lightning, timm or
LitServe are among them.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, interleaved, machine, write

SRC = Path(__file__).resolve().parents[1] / "src"
COMMANDS = {
    "labelgraph --help": ["-m", "labelgraph.cli", "--help"],
    "labelgraph predict --help": ["-m", "labelgraph.cli", "predict", "--help"],
    "labelgraph train --help": ["-m", "labelgraph.cli", "train", "--help"],
    "import labelgraph": ["-c", "import labelgraph"],
}
HEAVY = ("torch", "lightning", "timm", "litserve")


def runner(args: list[str], src: Path) -> Any:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return lambda: subprocess.run([sys.executable, *args], env=env, capture_output=True, check=False)


def imported_modules(args: list[str], src: Path) -> dict[str, Any]:
    """Modules imported by ``args`` (``python -X importtime``) and which heavy ones are among them."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    err = subprocess.run([sys.executable, "-X", "importtime", *args], env=env, capture_output=True, text=True).stderr
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", err, flags=re.M)
    return {"modules": len(names), "heavy": sorted({n.split(".")[0] for n in names} & set(HEAVY))}


def run(against: str | None = None, rounds: int = 10) -> dict[str, Any]:
    trees = {"now": SRC, **({"against": Path(against)} if against else {})}
    contenders = {"python -c pass": runner(["-c", "pass"], SRC)}
    for tree, src in trees.items():
        for name, args in COMMANDS.items():
            if (
                tree == "against"
                and name.startswith("labelgraph train")
                and not (src / "labelgraph/cli/train.py").exists()
            ):
                continue  # the earlier tree has no such command
            contenders[f"{name} [{tree}]"] = runner(args, src)
    seconds = interleaved(contenders, rounds=rounds, warmup=1)
    base = seconds["python -c pass"]
    result: dict[str, Any] = {"benchmark": "startup", "rounds": rounds, "machine": machine(), "against": against}
    result["seconds"] = {k: round(v, 4) for k, v in seconds.items()}
    result["over_python_pass"] = {k: round(v / base, 2) for k, v in seconds.items()}
    result["imports"] = {tree: imported_modules(COMMANDS["labelgraph --help"], src) for tree, src in trees.items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default=None, help="another source tree's src folder")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--out", default=str(RESULTS / "startup.json"))
    args = parser.parse_args()
    result = write(run(args.against, args.rounds), Path(args.out))
    for name, value in result["seconds"].items():
        print(f"{name:45s} {value:7.3f} s  {result['over_python_pass'][name]:6.1f}x python -c pass")
    print(result["imports"])


if __name__ == "__main__":
    main()
