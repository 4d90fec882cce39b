"""No module of the package over 500 lines and no function over 80: past those a reader can
no longer hold one in their head, and a split is due (docs/development/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import quirkbench

SRC = Path(quirkbench.__file__).parent
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 80


def oversized(root: Path) -> list[str]:
    """``path: N lines`` for each module over the limit, ``path:LINE name: N lines`` for each
    function (methods and nested functions included) over its own."""
    found = []
    for path in sorted(root.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        rel = path.relative_to(root).as_posix()
        if (n := len(text.splitlines())) > MAX_MODULE_LINES:
            found.append(f"{rel}: {n} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                if (n := node.end_lineno - node.lineno + 1) > MAX_FUNCTION_LINES:
                    found.append(f"{rel}:{node.lineno} {node.name}: {n} lines")
    return found


def test_no_module_over_500_lines_and_no_function_over_80():
    assert oversized(SRC) == []


def test_the_checker_finds_a_long_module_and_a_long_method(tmp_path):
    body = "".join(f"        x{i} = {i}\n" for i in range(81))
    (tmp_path / "a.py").write_text(f"class C:\n    def f(self):\n{body}", encoding="utf-8")
    (tmp_path / "b.py").write_text("x = 1\n" * 501, encoding="utf-8")
    (tmp_path / "c.py").write_text("def g():\n" + "    y = 1\n" * 79, encoding="utf-8")
    assert oversized(tmp_path) == ["a.py:2 f: 82 lines", "b.py: 501 lines"]
