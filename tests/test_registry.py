"""Every registered task presents itself: a table test over the task registry (in the style of
Foolbox's test over every attack), and the report knows no task by name."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import quirkbench
from quirkbench.report import plots
from quirkbench.report.view import figures
from quirkbench.runner.suite import SUITES
from quirkbench.tasks import Figure, Task, load_all

TASKS = sorted(load_all())


@pytest.mark.parametrize("name", TASKS)
def test_task_presents_itself(name):
    task = load_all()[name]
    assert task.name == name
    assert task.description.strip() and "\n" not in task.description
    assert task.blurb.strip(), "the report prints the blurb above the task's section"
    for fig in task.figures:
        assert fig.plot_name in plots.PLOTS, f"{name} declares series {fig.series!r} " \
                                             f"but no plot {fig.plot_name!r} is registered"
    assert len({f.series for f in task.figures}) == len(task.figures)


@pytest.mark.parametrize("name", TASKS)
def test_every_suite_builds_the_config(name):
    task = load_all()[name]
    assert set(task.suites) <= set(SUITES), "a suite the runner does not know"
    for suite in task.suites:
        cfg = task.make_config(suite)
        assert isinstance(cfg, task.config)


def test_figure_options_reach_the_plot():
    """A task's figure options turn the unit's config into plot arguments (here: the
    compression tolerance line), so the report needs no special case for it."""
    recs = [{"method": "magnitude", "ratio": r, "test_acc": a}
            for r, a in ((1.0, 0.9), (8.0, 0.89), (64.0, 0.5))]
    units = [{"config": {"delta_pp": 2.5}, "seed": 0, "series": {"accuracy_vs_ratio": recs}}]
    task = Task("t", "d", object, lambda c, x: None, {}, figures=(
        Figure("accuracy_vs_ratio", options=lambda cfg: {"delta_pp": cfg["delta_pp"]}),))
    (fig,) = figures(units, [], task)
    assert "dense − 2.5 pp" in fig["svg"]
    (fig,) = figures(units, [], None)  # a task this installation lacks: drawn by series name
    assert fig["svg"] and "dense − 1 pp" in fig["svg"]
    renamed = Task("t", "d", object, lambda c, x: None, {},
                   figures=(Figure("accuracy_vs_ratio", plot="no-such-plot"),))
    (fig,) = figures(units, [], renamed)
    assert fig["svg"] is None and fig["error"] is None


def test_report_names_no_task():
    """The report reads blurbs and figure hints from the tasks; a task name written into
    report/ (a blurb table, a special case) fails here. Plot names are series names."""
    report = Path(quirkbench.__file__).parent / "report"
    names = set(load_all()) - set(plots.PLOTS) - {"units"}  # "units": the documents' own key
    found = []
    for path in sorted(report.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.name}:{node.lineno} {node.value!r}")
    assert not found
