"""Table tests over every registered task, data set, model and plot (in the style of Foolbox's
test over every attack), the one registry mechanism they share, and a report that knows no
task by name."""

from __future__ import annotations

import ast
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from report_docs import outputs

import quirkbench
from quirkbench.engine import data, models
from quirkbench.errors import UserError
from quirkbench.registry import Registry
from quirkbench.report import plots
from quirkbench.report.view import figures
from quirkbench.runner.suite import SUITES
from quirkbench.tasks import REGISTRY as TASK_REGISTRY
from quirkbench.tasks import Figure, Task, load_all

TASKS = sorted(load_all())
DATASETS = sorted(data.REGISTRY)
MODELS = sorted(models.REGISTRY)
PLOTS = sorted(plots.PLOTS)


def check_task(task: Task) -> None:
    """What the registry asks of every task (also run on the docs' example task)."""
    assert task.description.strip() and "\n" not in task.description
    assert task.blurb.strip(), "the report prints the blurb above the task's section"
    for fig in task.figures:
        assert fig.plot_name in plots.PLOTS, f"{task.name} declares series {fig.series!r} " \
                                             f"but no plot {fig.plot_name!r} is registered"
    assert len({f.series for f in task.figures}) == len(task.figures)
    assert set(task.suites) <= set(SUITES), "a suite the runner does not know"
    for suite in task.suites:
        assert isinstance(task.make_config(suite), task.config)


@pytest.mark.parametrize("name", TASKS)
def test_task(name):
    task = load_all()[name]
    assert task.name == name
    check_task(task)


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


# --------------------------------------------------------------------------- data sets

@pytest.mark.parametrize("name", DATASETS)
def test_dataset(name):
    spec = data.REGISTRY[name]
    assert spec.name == name and spec.description.strip()
    if not spec.embedded:  # needs files under --data-root: a one-line error without them
        with pytest.raises(UserError, match=name):
            data.load(name, data_root="/nonexistent")
        return
    ds = data.load(name, seed=0, n_train=50, n_test=20)
    assert ds.x_train.shape == (50, *ds.input_shape) and ds.x_test.shape[0] == 20
    assert ds.y_train.dtype == torch.int64 and ds.num_classes == spec.num_classes
    assert int(ds.y_train.max()) < ds.num_classes
    if spec.bounded:
        assert ds.bounds == (0.0, 1.0) and 0 <= float(ds.x_train.min())
        assert float(ds.x_train.max()) <= 1


# --------------------------------------------------------------------------- models

@pytest.mark.parametrize("name", MODELS + ["mlp-8-4"])
def test_model_builds_with_the_right_output(name):
    spec = models.REGISTRY.get(name) or models.REGISTRY["mlp"]
    shape = spec.example_input
    assert spec.description.strip()
    model = models.make_model(name, shape, 7, seed=0)
    twin = models.make_model(name, shape, 7, generator=torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 twin.state_dict().values(), strict=True))
    assert model(torch.zeros(3, *shape)).shape == (3, 7)


def test_make_model_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    a = models.make_model("mlp-16", (1, 8, 8), 10, seed=5)
    assert torch.equal(torch.rand(4), expected)
    b = models.make_model("mlp-16", (1, 8, 8), 10, seed=6)
    torch.manual_seed(5)  # seed=s: the weights torch.manual_seed(s) + constructor give
    c = models.MLP((1, 8, 8), 10, (16,))
    assert torch.equal(a.net[1].weight, c.net[1].weight)
    assert not torch.equal(a.net[1].weight, b.net[1].weight)
    g = torch.Generator().manual_seed(5)  # a generator advances: the next model differs
    d, e = (models.make_model("mlp-16", (1, 8, 8), 10, generator=g) for _ in range(2))
    assert torch.equal(d.net[1].weight, c.net[1].weight)
    assert not torch.equal(d.net[1].weight, e.net[1].weight)


def test_model_names_are_checked():
    with pytest.raises(UserError, match=r"unknown model 'vgg'; valid: mlp, mlp-W1-W2-\.\.\., "):
        models.make_model("vgg", (1, 28, 28))
    with pytest.raises(UserError, match="bad MLP name 'mlp-0'"):
        models.make_model("mlp-0", (1, 28, 28))


# --------------------------------------------------------------------------- plots

@pytest.mark.parametrize("name", PLOTS)
def test_plot(name):
    spec = plots.PLOTS[name]
    assert spec.name == name and spec.title.strip()
    assert spec.fn([], None) is None  # nothing recorded: nothing drawn
    recorded = {s: recs for task, out in outputs(0, 1.0).items() if task in TASKS
                for s, recs in out.series.items()}
    if name in recorded:
        recs = [{"seed": 0, **r} for r in recorded[name]]
        assert spec.fn(recs, None).startswith("<svg")


# --------------------------------------------------------------------------- the mechanism

REGISTRIES = {"tasks": TASK_REGISTRY, "datasets": data.REGISTRY, "models": models.REGISTRY,
              "plots": plots.PLOTS}


@pytest.mark.parametrize("kind", sorted(REGISTRIES))
def test_one_mechanism(kind):
    reg = REGISTRIES[kind]
    assert isinstance(reg, Registry) and reg.group == f"quirkbench.{kind}"
    name = next(iter(reg))
    spec = reg[name]
    assert reg.register(spec) is spec  # the same spec again (a module imported twice): fine
    with pytest.raises(UserError, match=f"unknown {reg.kind} 'no-such-thing'; valid: {name}"):
        reg.lookup("no-such-thing")


def test_duplicate_names_are_refused():
    reg = Registry("widget", "quirkbench.widgets", identity=lambda s: s.fn)
    Spec = type("Spec", (), {"__init__": lambda self, n, f: setattr(self, "name", n) or
                             setattr(self, "fn", f)})
    f = lambda: None  # noqa: E731
    reg.register(Spec("a", f))
    reg.register(Spec("a", f))  # same identity
    with pytest.raises(ValueError, match="widget 'a' registered twice"):
        reg.register(Spec("a", lambda: None))
    assert list(reg) == ["a"]


def _plugin(tmp_path, monkeypatch, group: str, module: str, body: str) -> None:
    """A fake installed distribution whose entry point in ``group`` names ``module``."""
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(body))
    info = tmp_path / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{group}]\n{module} = {module}\n")
    monkeypatch.syspath_prepend(str(tmp_path))


def test_entry_points_register(tmp_path, monkeypatch):
    """A package registers a model through ``quirkbench.models``: importing the module the
    entry point names is enough, and ``make_model`` finds it."""
    _plugin(tmp_path, monkeypatch, "quirkbench.models", "qb_test_models", """
        from torch import nn
        from quirkbench.engine.models import register_model

        def tiny(input_shape, num_classes):
            return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))

        register_model("tiny-plugin", tiny, description="one lazy linear layer")
    """)
    monkeypatch.setattr(models.REGISTRY, "_loaded", False)
    try:
        m = models.make_model("tiny-plugin", (1, 4, 4), 3, seed=0)
        assert m(torch.zeros(2, 1, 4, 4)).shape == (2, 3)
    finally:
        models.REGISTRY.unregister("tiny-plugin")
        sys.modules.pop("qb_test_models", None)


def test_a_broken_entry_point_is_one_line(tmp_path, monkeypatch):
    _plugin(tmp_path, monkeypatch, "quirkbench.plots", "qb_test_broken", "raise ImportError('x')")
    monkeypatch.setattr(plots.PLOTS, "_loaded", False)
    with pytest.raises(UserError, match=r"quirkbench.plots entry point 'qb_test_broken' "
                                        r"\(qb_test_broken\) failed to load: ImportError: x"):
        plots.PLOTS.lookup("train_curve")
