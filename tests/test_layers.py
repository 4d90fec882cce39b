"""Imports go one way: no module imports from a higher layer (function-level imports
included). The layers, lowest first (docs/development/architecture.md draws them):

    core      errors, config, metrics, registry, _compat, peers, terminal, progress
    engine    engine/    data, models, training, timing, profiling
    methods   methods/   attacks, pruning, continual learning, geometry
    tasks     tasks/     one file per phenomenon
    tracking  tracking/  results documents, compare, history
    runner    runner/    suites, plan, executors
    report    report/    HTML pages and plots
    commands  commands/  one module per CLI command
    cli       cli.py, __main__.py, and the package's public API (quirkbench/__init__.py)

Modules of one layer may import each other, but never in a circle (``a`` imports ``b``
imports ``a``, function-level imports included): a circle is two modules that can only be
read, tested and loaded together.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import pytest

import quirkbench

LAYERS = ("core", "engine", "methods", "tasks", "tracking", "runner", "report", "commands",
          "cli")
TOP = {"errors": "core", "config": "core", "metrics": "core", "registry": "core",
       "_compat": "core", "peers": "core", "terminal": "core", "progress": "core",
       "__version__": "core",  # set first thing in __init__, imports nothing
       "engine": "engine", "methods": "methods", "tasks": "tasks", "tracking": "tracking",
       "runner": "runner", "report": "report", "commands": "commands", "cli": "cli",
       "__main__": "cli", "": "cli"}  # "": the package itself (its public API)
SRC = Path(quirkbench.__file__).parent


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str, root_name: str) -> str | None:
    """The layer of ``root_name.x.y`` (``None``: outside the package)."""
    if module != root_name and not module.startswith(root_name + "."):
        return None
    head = module[len(root_name) + 1:].split(".")[0]
    if head not in TOP:
        raise AssertionError(f"{module} is in no layer: add it to TOP here and to the "
                             "architecture page")
    return TOP[head]


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the tree, relative ones resolved; for
    ``from pkg import name``, ``pkg.name`` (a submodule, or an attribute of ``pkg``)."""
    out = []
    base = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                pkg = ".".join(base[:len(base) - node.level + 1])
                target = f"{pkg}.{node.module}" if node.module else pkg
            else:
                target = node.module
            if node.module and node.level == 0:
                out.append((node.lineno, target))
            for a in node.names:
                out.append((node.lineno, f"{target}.{a.name}"))
    return out


def violations(root: Path) -> list[str]:
    """Every import in the package at ``root`` that reaches a higher layer."""
    found = []
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        mine = layer_of(module, root.name)
        for line, target in imported(ast.parse(path.read_text()), module,
                                     path.name == "__init__.py"):
            theirs = _target_layer(target, root)
            if theirs is not None and LAYERS.index(theirs) > LAYERS.index(mine):
                found.append(f"{path.relative_to(root.parent)}:{line} ({mine}) imports "
                             f"{target} ({theirs})")
    return found


def _target_layer(target: str, root: Path) -> str | None:
    """``pkg.a.b.name``: the layer of the longest prefix that is a module of the package
    (``from pkg import __version__``: the attribute's own entry in ``TOP``)."""
    parts = target.split(".")
    if parts[0] != root.name:
        return None
    if len(parts) > 1 and not ((root / parts[1]).is_dir() or (root / f"{parts[1]}.py").exists()):
        return TOP.get(parts[1], "cli")  # a name defined in the package's __init__
    return layer_of(target, root.name)


def module_graph(root: Path) -> dict[str, set[str]]:
    """Module → the package's modules it imports (``from pkg import name``: ``pkg.name``
    when that is a module, else ``pkg``; a package's parents are not counted, since Python
    imports them first, whatever imports them). ``__version__`` is set before the package's
    ``__init__`` imports anything: importing it reaches nothing else."""
    paths = {module_name(p, root): p for p in sorted(root.rglob("*.py"))}
    graph: dict[str, set[str]] = {f"{root.name}.__version__": set()}
    for module, path in paths.items():
        edges = set()
        for _, target in imported(ast.parse(path.read_text()), module,
                                  path.name == "__init__.py"):
            while target and target not in paths and target not in graph:  # an attribute
                target = target.rpartition(".")[0]
            if target and target != module:
                edges.add(target)
        graph[module] = edges
    return graph


def circles(root: Path) -> list[list[str]]:
    """Each set of modules that import each other in a circle (Tarjan's strongly connected
    components of more than one module), as a sorted list."""
    graph, index, low, stack, on, found = module_graph(root), {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = []
            while True:
                w = stack.pop()
                on.discard(w)
                part.append(w)
                if w == v:
                    break
            if len(part) > 1:
                found.append(sorted(part))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles():
    assert not circles(SRC), "modules that import each other in a circle: " + "; ".join(
        " ↔ ".join(c) for c in circles(SRC))


@pytest.mark.parametrize("where,source,bad", [
    ("runner/plan.py", "def f():\n    from . import suite\n", True),  # lazy import: a circle
    ("runner/plan.py", "from .document import progress\n", True),
    ("runner/suite.py", "from .plan import plan\n", False),  # already imported that way
])
def test_the_checker_finds_a_planted_circle(tmp_path, where, source, bad):
    root = _copy_package(tmp_path)
    path = root / where
    path.write_text(path.read_text() + "\n" + source)
    assert bool(circles(root)) == bad, circles(root)


def _copy_package(tmp_path: Path) -> Path:
    root = tmp_path / "quirkbench"
    for path in SRC.rglob("*.py"):
        dest = root / path.relative_to(SRC)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(path.read_text())
    return root


def test_no_module_imports_a_higher_layer():
    assert not violations(SRC), "\n".join(violations(SRC))


def test_every_module_has_a_layer():
    for path in SRC.rglob("*.py"):
        layer_of(module_name(path, SRC), SRC.name)


@pytest.mark.parametrize("source,bad", [
    ("def f():\n    from ..runner import suite\n", True),  # a lazy import counts too
    ("from ..tracking.results import read\n", True),
    ("from .. import report\n", True),
    ("from quirkbench.cli import main\n", True),
    ("from .. import run_suite\n", True),  # the public API sits on top
    ("from .. import __version__\n", False),
    ("from ..errors import UserError\nfrom . import models\n", False),
])
def test_the_checker_finds_a_planted_violation(tmp_path, source, bad):
    """A copy of the package with one line added to engine/data.py."""
    root = _copy_package(tmp_path)
    data = root / "engine" / "data.py"
    data.write_text(data.read_text() + "\n" + source)
    found = violations(root)
    assert bool(found) == bad, found
    assert all("engine/data.py" in v for v in found)


def task_imports(root: Path) -> list[str]:
    """Every import of one task module by another: tasks share code through the methods and
    the engine below them, never through each other."""
    tasks = {p.stem for p in (root / "tasks").glob("*.py") if p.stem != "__init__"}
    found = []
    for path in sorted((root / "tasks").glob("*.py")):
        module = module_name(path, root)
        for line, target in imported(ast.parse(path.read_text()), module,
                                     path.name == "__init__.py"):
            parts = target.split(".")
            if parts[:2] == [root.name, "tasks"] and len(parts) > 2 and parts[2] in tasks \
                    and parts[2] != path.stem:
                found.append(f"{path.relative_to(root.parent)}:{line} imports {target}")
    return found


def test_no_task_imports_another_task(tmp_path):
    assert not task_imports(SRC), "\n".join(task_imports(SRC))
    root = tmp_path / "quirkbench"  # planted: a task reaching into another for a helper
    shutil.copytree(SRC, root, ignore=shutil.ignore_patterns("__pycache__"))
    plant = root / "tasks" / "sharpness.py"
    plant.write_text(plant.read_text() + "\nfrom .compression import Fold\n")
    assert [v.split(":")[0] for v in task_imports(root)] == ["quirkbench/tasks/sharpness.py"]
