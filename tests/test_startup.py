"""Start-up: importing labelgraph and asking a command for its help load none of the heavy libraries."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = {"torch", "lightning", "timm", "litserve", "torchvision"}


def run_and_list_modules(code: str) -> tuple[str, set[str]]:
    """Standard output of ``code`` and the top-level modules imported by its end."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})), file=sys.stderr)"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout, set(done.stderr.split())


def test_import_labelgraph_loads_no_heavy_library_until_a_name_is_used():
    assert not run_and_list_modules("import labelgraph")[1] & HEAVY
    used = run_and_list_modules("import labelgraph; labelgraph.load")[1]  # the predictor: PyTorch and timm
    assert "torch" in used and not used & {"lightning", "litserve"}


@pytest.mark.parametrize(
    "command", ["predict", "train", "compare", "serve", "demo", "evaluate", "calibrate", "explain"]
)
def test_a_commands_help_loads_no_heavy_library(command):
    code = f"from labelgraph.cli import main\ntry: main([{command!r}, '--help'])\nexcept SystemExit: pass"
    out, modules = run_and_list_modules(code)
    assert f"usage: labelgraph {command}" in out
    assert not modules & HEAVY


def test_labelgraph_help_loads_no_heavy_library():
    out, modules = run_and_list_modules("from labelgraph.cli import main\nmain(['--help'])")
    assert "commands:" in out and not modules & HEAVY


@pytest.mark.parametrize("package", ["labelgraph", "labelgraph.data"])
def test_every_lazy_name_is_public_and_resolves(package):
    import importlib

    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted([*module.EXPORTS, *(["__version__"] if package == "labelgraph" else [])])
    for name in module.EXPORTS:
        assert getattr(module, name).__name__ == name
