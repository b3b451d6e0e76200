"""The house rules: ruff-clean at 120 columns, and imports that go one way.

The import rules are read from the source with ``ast`` (every import, inside functions and ``TYPE_CHECKING`` blocks
too), so they hold for lazy imports as well:
- no import cycle between modules of the package;
- no module imports an underscore name from another module, and a private module (``models/_registry.py``) is
  imported only from inside its own package;
- the package's modules and subpackages form one dependency order (``labelgraph.DEPENDENCY_ORDER``): each imports
  only those before it. In particular the library (layers, losses, graph, models, data, evaluation) never imports
  engine, apis, visualization, studies or cli.
Each checker is also run on a small synthetic package written to a temporary folder, where it must find the defect.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from labelgraph import DEPENDENCY_ORDER as ORDER

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "labelgraph"
LIBRARY = ORDER[: ORDER.index("evaluation") + 1]


def ruff() -> list[str]:
    exe = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(exe).exists():
        pytest.skip("ruff is not installed (pip install -e .[dev])")
    return [exe]


def test_ruff_check():
    result = subprocess.run([*ruff(), "check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format():
    result = subprocess.run(
        [*ruff(), "format", "--check", "src", "tests", "benchmarks"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- reading the imports ---------------------------------------------------------------------------------------------
def module_files(package_dir: Path) -> dict[str, Path]:
    """``{"pkg.sub.mod": path}`` for every ``.py`` file under ``package_dir`` (``__init__`` names its package)."""
    out = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> list[tuple[str, str | None]]:
    """``(imported module, imported name or None)`` for every import of one module, resolved to our modules."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package upwards
                anchor = name.split(".") if is_package else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule, None) if submodule in modules else (base, alias.name))
    root = next(iter(modules)).split(".")[0]
    return [(m, n) for m, n in found if m == root or m.startswith(root + ".")]


def import_graph(package_dir: Path) -> dict[str, list[tuple[str, str | None]]]:
    modules = module_files(package_dir)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, list[tuple[str, str | None]]]) -> list[str] | None:
    """One import cycle as ``[a, b, ..., a]``, or None (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for target, _ in graph.get(node, []):
            if target == node or target not in graph:
                continue
            if state.get(target) == 1:
                return stack[stack.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def private_imports(graph: dict[str, list[tuple[str, str | None]]]) -> list[str]:
    """Imports of an underscore name from another module, or of a private module from outside its package."""
    bad = []
    for importer, targets in graph.items():
        for module, name in targets:
            if name is not None and name.startswith("_") and not name.startswith("__") and module != importer:
                bad.append(f"{importer} imports {name} from {module}")
            parts = module.split(".")
            for i, part in enumerate(parts):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])
                    if not (importer == owner or importer.startswith(owner + ".")):
                        bad.append(f"{importer} imports the private module {module} from outside {owner}")
    return bad


def place_of(module: str, order: tuple[str, ...]) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in order else None


def upward_imports(graph: dict[str, list[tuple[str, str | None]]], order: tuple[str, ...]) -> list[str]:
    """Imports from a place in the order to one after it (or to a module in no place: the package's API)."""
    bad = []
    for importer, targets in graph.items():
        own = place_of(importer, order)
        if own is None:
            continue  # the package's __init__ stands above every place
        for module, _ in targets:
            target = place_of(module, order)
            if target is None or order.index(target) > order.index(own):
                bad.append(f"{importer} ({own}) imports {module} ({target or 'above the order'})")
    return bad


# -- the rules on labelgraph -----------------------------------------------------------------------------------------
def test_every_module_is_in_the_dependency_order():
    unplaced = [m for m in module_files(PACKAGE) if m != "labelgraph" and not place_of(m, ORDER)]
    assert not unplaced, f"modules outside the order {ORDER}: {unplaced}"


def test_no_import_cycle():
    assert find_cycle(import_graph(PACKAGE)) is None


def test_no_private_name_crosses_a_module():
    assert private_imports(import_graph(PACKAGE)) == []


def test_each_place_imports_only_those_before_it():
    assert upward_imports(import_graph(PACKAGE), ORDER) == []


def test_the_library_never_imports_the_application():
    graph = import_graph(PACKAGE)
    upper = set(ORDER) - set(LIBRARY)
    bad = [
        f"{importer} imports {module}"
        for importer, targets in graph.items()
        if place_of(importer, ORDER) in LIBRARY
        for module, _ in targets
        if place_of(module, ORDER) in upper
    ]
    assert bad == []


def test_the_readme_and_the_design_page_show_the_dependency_order_of_the_code():
    page = (ROOT / "docs" / "design.md").read_text()
    shown = page.split("<!-- dependency order:", 1)[1].split("-->", 1)[1].split("<!-- end -->", 1)[0]
    assert shown.split() == " → ".join(ORDER).split()
    readme = (ROOT / "README.md").read_text().split("<!-- dependency order -->", 1)[1].split("<!-- end -->", 1)[0]
    assert readme.replace("`", "").split() == " → ".join(ORDER[ORDER.index("layers") :]).split()


# -- the checkers find what they name ---------------------------------------------------------------------------------
def write_package(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / "pkg" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path / "pkg"


def test_checkers_find_a_cycle_a_private_import_and_an_upward_import(tmp_path):
    package = write_package(
        tmp_path,
        {
            "__init__.py": "",
            "low/__init__.py": "",
            "low/a.py": "from pkg.low import b\n",
            "low/b.py": "def f():\n    from pkg.low.a import g  # lazy, still a cycle\n",
            "low/_hidden.py": "x = 1\n",
            "low/c.py": "from pkg.low._hidden import x\n",  # same package: allowed
            "high/__init__.py": "",
            "high/d.py": "from pkg.low.c import _secret\nfrom pkg.low._hidden import x\n",
            "low/e.py": "from ..high import d\n",  # relative, upward
        },
    )
    graph = import_graph(package)
    assert find_cycle(graph) in (["pkg.low.a", "pkg.low.b", "pkg.low.a"], ["pkg.low.b", "pkg.low.a", "pkg.low.b"])
    assert private_imports(graph) == [
        "pkg.high.d imports _secret from pkg.low.c",
        "pkg.high.d imports the private module pkg.low._hidden from outside pkg.low",
    ]
    assert upward_imports(graph, ("low", "high")) == ["pkg.low.e (low) imports pkg.high.d (high)"]


def test_checkers_pass_a_clean_package(tmp_path):
    package = write_package(
        tmp_path,
        {"__init__.py": "from pkg.high import d\n", "low/__init__.py": "", "low/a.py": "", "high/__init__.py": "",
         "high/d.py": "from pkg.low import a\n"},
    )  # fmt: skip
    graph = import_graph(package)
    assert find_cycle(graph) is None and private_imports(graph) == [] and upward_imports(graph, ("low", "high")) == []


def test_every_third_party_import_is_declared():
    """Each package the source imports is a dependency (or an optional extra) in ``pyproject.toml``."""
    import importlib.metadata
    import re

    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = project["dependencies"] + [d for deps in project["optional-dependencies"].values() for d in deps]
    declared = {re.split(r"[\s<>=!~;\[]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}
    distributions = importlib.metadata.packages_distributions()
    imported = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {m for m in imported - set(sys.stdlib_module_names) if m not in ("labelgraph", "omegaconf")}
    # omegaconf: optional, only used when the user installed it (LightningCLI's omegaconf parser mode)
    missing = {
        module: distributions.get(module, ["(not installed)"])
        for module in third_party
        if not {d.lower().replace("_", "-") for d in distributions.get(module, [])} & declared
    }
    assert missing == {}, f"imported but not declared in pyproject.toml: {missing}"


MAX_FUNCTION_LINES = 50  # a screen: the body of a function, its docstring left out


def test_functions_fit_on_a_screen():
    long = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                body = node.body
                has_doc = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and len(body) > 1
                lines = node.end_lineno - (body[1] if has_doc else body[0]).lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert long == [], f"functions longer than {MAX_FUNCTION_LINES} lines: {long}"


def test_the_moved_paths_resolve_to_the_moved_classes_with_a_warning_naming_the_new_path():
    import importlib

    from labelgraph.moved import MOVED

    for old, names in MOVED.items():
        assert not (ROOT / "src" / (old.replace(".", "/") + ".py")).exists()  # no module file: no import arrow
        module = importlib.import_module(old)
        for name, new in names.items():
            with pytest.warns(DeprecationWarning, match=rf"{old}\.{name} moved to {new}\.{name}"):
                value = getattr(module, name)
            assert value is getattr(importlib.import_module(new), name)
    with pytest.raises(AttributeError, match="has no attribute 'Nothing'"):
        _ = importlib.import_module("labelgraph.task").Nothing


def direct_writes(path: Path) -> list[tuple[int, str]]:
    """``(line, "write" | "open")`` of every ``X.write_text(...)`` / ``X.write_bytes(...)`` / ``open(X, "w")`` whose
    target is not a temporary path (a name ``tmp``, or a path built from one): what bypasses :mod:`labelgraph.files`."""

    def root_name(node: ast.AST) -> str | None:
        while isinstance(node, ast.BinOp | ast.Attribute | ast.Call | ast.Subscript):
            node = node.left if isinstance(node, ast.BinOp) else node.func if isinstance(node, ast.Call) else node.value
        return node.id if isinstance(node, ast.Name) else None

    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ("write_text", "write_bytes"):
            if root_name(func.value) != "tmp":
                found.append((node.lineno, "write"))
        elif isinstance(func, ast.Name) and func.id == "open" and len(node.args) > 1:
            mode = node.args[1]
            if isinstance(mode, ast.Constant) and "w" in str(mode.value) and root_name(node.args[0]) != "tmp":
                found.append((node.lineno, "open"))
    return found


def test_every_file_is_written_through_the_atomic_writers(tmp_path):
    found = {str(path.relative_to(ROOT)): hits for path in sorted(PACKAGE.rglob("*.py"))
             if path.name != "files.py" and (hits := direct_writes(path))}  # fmt: skip
    # a sweep point's log is written as the point runs (a partial log is what it is for): its two open(..., "w")
    assert {name: [kind for _, kind in hits] for name, hits in found.items()} == {
        "src/labelgraph/studies/sweep.py": ["open", "open"]
    }, found
    bad = tmp_path / "bad.py"
    bad.write_text("def f(out, tmp):\n    (out / 'x.json').write_text('{}')\n    (tmp / 'y').write_text('fine')\n"
                   "    open(out, 'w')\n")  # fmt: skip
    assert direct_writes(bad) == [(2, "write"), (4, "open")]
