"""The task registry.

A task is one file in this package that calls ``register(Task(...))`` at import. Tasks from
other packages register through the entry-point group ``quirkbench.tasks`` (the entry
point names a module; importing it registers; see ``quirkbench.registry``). A task
receives its resolved config and a ``Context`` (data set, seed, device) and returns a
``TaskOutput``; it never writes files.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from ..metrics import Metric
from ..registry import Registry


@dataclass
class Context:
    """Where a task runs: one data set, one seed, one device. ``sources`` collects what each
    data set the task loaded was read from, ``clamped`` the sizes asked for beyond what a
    data set has (the runner records both with the unit)."""

    dataset: str
    seed: int
    device: torch.device
    data_root: str | None = None
    download: bool = False
    log: Callable[[str], None] = lambda msg: None  # progress lines for the user
    trust_data_root: bool = False  # accept files under data_root that are not the official ones
    sources: dict[str, dict] = field(default_factory=dict)  # data set → its Dataset.sources
    clamped: dict[str, dict] = field(default_factory=dict)  # data set → its Dataset.clamped

    def load_data(self, name: str | None = None, split_seed: int | None = None, **kw):
        """The context's data set (or ``name``) on the context's device, split by the seed
        (by ``split_seed`` instead when given: the same data for every seed of a run)."""
        from ..engine import data

        seed = self.seed if split_seed is None else split_seed
        ds = data.load(name or self.dataset, seed=seed, device=self.device,
                       data_root=self.data_root, download=self.download,
                       trust_data_root=self.trust_data_root, **kw)
        self.sources[ds.name] = dict(ds.sources or {})
        if ds.clamped:
            self.clamped[ds.name] = ds.clamped
            self.log("; ".join(f"{k} {v['asked']} asked, {ds.name} has {v['used']}: using all "
                               f"{v['used']}" for k, v in ds.clamped.items()))
        return ds


@dataclass
class TaskOutput:
    """Metrics plus plot series (name → list of records) and free-form info."""

    metrics: list[Metric]
    series: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Figure:
    """A series the task records (``TaskOutput.series[series]``) and how the report draws it.

    ``plot`` names a registered plot function (default: the series name). ``options`` maps
    the config a unit ran with (as written to its results document, a plain dict) to extra
    keyword arguments of the plot function, e.g. a tolerance line the plot draws.
    """

    series: str
    plot: str | None = None
    options: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def plot_name(self) -> str:
        return self.plot or self.series


@dataclass(frozen=True)
class Task:
    """A phenomenon: its settings, its run function, and how it presents itself.

    ``description`` is the one-line summary ``quirkbench list`` shows; ``blurb`` the
    sentence the report prints above the task's section (what it shows, which papers);
    ``figures`` the series it records and how they plot. The report knows nothing else
    about a task.
    """

    name: str
    description: str
    config: type  # a frozen dataclass whose defaults are the task's standard settings
    run: Callable[[Any, Context], TaskOutput]
    suites: dict[str, dict[str, Any]]  # suite name → config overrides; absent = not in that suite
    datasets: tuple[str, ...] | None = None  # data sets it accepts (None: any registered)
    default_dataset: str = "mnist5k"
    blurb: str = ""  # the report's sentence about the phenomenon (empty: none)
    figures: tuple[Figure, ...] = ()  # the series it records and how the report plots them
    # it measures speed (its headline metrics are timings): with --jobs it runs alone, after
    # the other units, so no unit on the other core shares its caches and memory bandwidth
    exclusive: bool = False
    # suite → seconds one unit takes with one thread (measured on the development machine):
    # a pool starts the longest units first, so its workers finish together; no effect on
    # any number (absent: unknown, started first)
    cost: dict[str, float] = field(default_factory=dict)

    def figure(self, series: str) -> Figure:
        """The declared figure of ``series`` (a series it does not declare: drawn by name)."""
        return next((f for f in self.figures if f.series == series), Figure(series))

    def make_config(self, suite: str | None, overrides: dict[str, Any] | None = None):
        from ..config import apply_overrides

        cfg = self.config()
        if suite is not None:
            cfg = apply_overrides(cfg, self.suites.get(suite, {}), f"{self.name}.")
        return apply_overrides(cfg, overrides or {}, f"{self.name}.")


def _import_builtin_tasks() -> None:
    for mod in pkgutil.iter_modules(__path__):
        if not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


REGISTRY: Registry[Task] = Registry("task", "quirkbench.tasks", builtins=_import_builtin_tasks,
                                    identity=lambda task: task.run)
register = REGISTRY.register


def load_all() -> Registry[Task]:
    """Every task: the modules of this package and the ``quirkbench.tasks`` entry points."""
    return REGISTRY.load()


def get(name: str) -> Task:
    return REGISTRY.lookup(name)
