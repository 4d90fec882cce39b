"""Adding a task touches one file: the example of docs/development/adding-a-task.md, dropped
into the tasks package, is registered, passes the registry's checks, runs through
``quirkbench run`` and gets its report section; the same file works from another package
through the ``quirkbench.tasks`` entry point."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
from test_registry import _plugin, check_task

import quirkbench.tasks as tasks_pkg
from quirkbench.cli import main
from quirkbench.errors import UserError
from quirkbench.report import render_report
from quirkbench.tracking import results

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "width.py"


@pytest.fixture
def fresh_registry(monkeypatch):
    """The task registry as a new process finds it; the example is forgotten afterwards."""
    monkeypatch.setattr(tasks_pkg.REGISTRY, "_loaded", False)
    yield tasks_pkg.REGISTRY
    tasks_pkg.REGISTRY.unregister("width")
    for mod in ("quirkbench.tasks.width", "qb_width_plugin"):
        sys.modules.pop(mod, None)


def test_one_file_in_the_tasks_folder(tmp_path, monkeypatch, fresh_registry):
    folder = tmp_path / "tasks"
    folder.mkdir()
    shutil.copy(EXAMPLE, folder / "width.py")
    monkeypatch.setattr(tasks_pkg, "__path__", [*tasks_pkg.__path__, str(folder)])
    task = fresh_registry.lookup("width")
    check_task(task)

    out, page = tmp_path / "r.json", tmp_path / "r.html"
    assert main(["run", "--suite", "smoke", "--tasks", "width", "--out", str(out),
                 "--no-report", "-q"]) == 0
    unit = results.read(out)["units"]["width/digits/0"]
    assert unit["status"] == "done"
    widest = [m for m in unit["metrics"] if m["headline"]]
    assert [m["tags"] for m in widest] == [{"width": "256"}] and widest[0]["holds"] is True
    html = render_report([out], out=page).read_text()
    assert "memorization needs capacity" in html  # the blurb, from the task file
    assert 'id="task-width"' in html and "<svg" in html


def test_the_page_quotes_the_real_error(fresh_registry, tmp_path, monkeypatch):
    """The bad-setting message the page shows is the one the example gives."""
    page = (EXAMPLE.parents[1] / "development" / "adding-a-task.md").read_text()
    quoted = re.search(r"`(width\.widths must [^`]*)`", page).group(1)
    _plugin(tmp_path, monkeypatch, "quirkbench.tasks", "qb_width_plugin", EXAMPLE.read_text())
    with pytest.raises(UserError) as e:
        fresh_registry.lookup("width").make_config(None, {"widths": [0]})
    assert str(e.value) == quoted


def test_the_same_file_from_another_package(tmp_path, monkeypatch, fresh_registry):
    body = EXAMPLE.read_text()
    _plugin(tmp_path, monkeypatch, "quirkbench.tasks", "qb_width_plugin", body)
    task = fresh_registry.lookup("width")
    assert task.run.__module__ == "qb_width_plugin"
    check_task(task)
