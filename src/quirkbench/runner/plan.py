"""Suites and the plan of a run: which units (task × data set × seed) it executes, with
every config resolved and every name checked before the first unit trains.

``--model`` is resolved here and nowhere else: it sets each config field declared with
``config.model_setting`` that follows the flag (an explicit ``--set`` wins), and every model
setting of every unit — a zoo name or a user's ``package.module:factory`` — is checked
here, a user's factory on a dummy batch shaped like the unit's data set.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..config import model_settings, to_dict
from ..engine import data
from ..engine.models import get_model_factory, import_factory, is_reference, validate_model
from ..errors import UserError, choices, did_you_mean
from ..tasks import Task, get, load_all
from ..tracking import results


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seeds: tuple[int, ...]
    budget_s: int  # wall-clock budget the suite is designed for, on its target machine
    # the most one unit may take before it is stopped as a runaway (--unit-budget): several
    # times the slowest unit seen, on a 2-core machine at load 10
    unit_budget_s: int


SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("smoke", "tests and CI on a CPU: every phenomenon, tiny budgets", (0,), 20, 120),
    Suite("pr", "every pull request, CPU, base and head; 3 seeds for a noise estimate",
          (0, 1, 2), 180, 600),
    Suite("quick", "a laptop CPU in about two minutes (default)", (0,), 120, 1800),
    Suite("nightly", "a GPU runner: more seeds, longer budgets", (0, 1, 2, 3, 4), 900, 3600),
)}


@dataclass
class Unit:
    """One task × data set × seed with its resolved config. ``models``: for each setting
    naming a user's factory, {"ref", "digest"} (``check_models``)."""

    task: Task
    dataset: str
    seed: int
    config: Any
    models: dict[str, dict[str, str]] = field(default_factory=dict)
    cost: float | None = None  # the task's estimate for the run's suite (``Task.cost``)

    @property
    def key(self) -> str:
        return results.unit_key(self.task.name, self.dataset, self.seed)

    def record_config(self) -> dict[str, Any]:
        """The settings as the unit's record holds them: the config, plus under
        ``model_sources`` the digest of each user factory's source and architecture, so
        that everything keyed on the settings (resuming, compare's settings warnings, the
        noise model's digest) sees an edited model as other settings."""
        cfg = to_dict(self.config)
        return cfg | {"model_sources": dict(self.models)} if self.models else cfg


def parse_seeds(text: str | Iterable[int] | None) -> list[int] | None:
    """``"0,1,2"``, ``"0-4"`` or a list of ints; anything else is a ``UserError``."""
    if text is None:
        return None
    if not isinstance(text, str):
        seeds = list(text)
    else:
        seeds = []
        for part in text.replace(" ", ",").split(","):
            if not part:
                continue
            lo, sep, hi = part.partition("-")
            try:
                seeds += list(range(int(lo), int(hi) + 1)) if sep and lo else [int(part)]
            except ValueError:
                raise UserError(f"seeds must be integers like 0,1,2 or 0-4, got {text!r}") from None
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                            for s in seeds):
        raise UserError(f"seeds must be non-negative integers like 0,1,2 or 0-4, got {text!r}")
    if max(seeds) >= 2**63 or len(seeds) > 100_000:
        raise UserError(f"seeds must be below 2**63 and at most 100000 of them, got {text!r}")
    return sorted(set(seeds))


def unique(names: Iterable[str] | None) -> list[str] | None:
    """Names in order, each once (``--tasks a,a`` or ``--tasks a a``: one task)."""
    if names is None:
        return None
    out: list[str] = []
    for n in names:
        for part in str(n).split(","):
            if part.strip() and part.strip() not in out:
                out.append(part.strip())
    return out or None


def with_model_flag(chosen: list[Task], overrides: dict[str, dict[str, Any]],
                    model: str | None) -> dict[str, dict[str, Any]]:
    """``overrides`` plus ``--model`` in every model setting that follows the flag (an
    explicit ``--set`` of that setting wins)."""
    if model is None:
        return overrides
    out = {k: dict(v) for k, v in overrides.items()}
    for t in chosen:
        for key, (_, follows) in model_settings(t.config()).items():
            if follows:
                out.setdefault(t.name, {}).setdefault(key, model)
    return out


def check_models(unit: Unit, device: torch.device, data_root=None, download: bool = False,
                 trust_data_root: bool = False) -> None:
    """Every model the unit's config names exists; a user's factory builds a module that
    maps a dummy batch of the unit's data set to logits on ``device`` (``UserError``
    otherwise, one line naming the setting), and its digest goes into ``unit.models``."""
    for key, (value, _) in model_settings(unit.config).items():
        names = (value,) if isinstance(value, str) else tuple(value or ())
        for i, name in enumerate(names):
            try:
                get_model_factory(name)  # an unknown name or a bad reference stops here
                if is_reference(name):
                    shape, classes = data.shape_of(unit.dataset, data_root=data_root,
                                                   download=download,
                                                   trust_data_root=trust_data_root)
                    arch = validate_model(name, shape, classes, device)
                    unit.models[key if len(names) == 1 else f"{key}[{i}]"] = {
                        "ref": name, "digest": _digest(source_of(name)["text"], arch)}
            except UserError as e:
                raise UserError(f"{unit.task.name}.{key}: {e}") from None


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def source_of(ref: str) -> dict[str, Any]:
    """The file that defines a user's factory and its text ("" where Python has none)."""
    try:
        file = inspect.getsourcefile(import_factory(ref))
        return {"file": file, "text": Path(file).read_text(encoding="utf-8")}
    except (TypeError, OSError, UnicodeDecodeError):
        return {"file": None, "text": ""}


def project_of(units: list[Unit]) -> dict[str, Any] | None:
    """The user's project behind a run's first user factory: the reference, its file, and
    the commit and dirty flag of the git checkout holding that file (None outside git),
    recorded beside quirkbench's own commit. None when no unit uses a user's factory."""
    ref = next((m["ref"] for u in units for m in u.models.values()), None)
    if ref is None:
        return None
    file = source_of(ref)["file"]
    where = results.git_info(Path(file).parent) if file else {"commit": None, "dirty": None}
    return {"model": ref, "file": file, **where}


def plan(suite: str, tasks: list[str] | None = None, datasets: list[str] | None = None,
         seeds: list[int] | None = None,
         overrides: dict[str, dict[str, Any]] | None = None,
         model: str | None = None) -> list[Unit]:
    """The units a run will execute, configs resolved; every name is checked here (the
    models by :func:`check_models`, which needs the device).

    ``model``: a model name or ``package.module:factory`` put into every chosen task's
    model settings that follow the flag (``config.model_setting``).
    """
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}{did_you_mean(suite, SUITES)}; valid: "
                        f"{choices(SUITES)}")
    registry = load_all()
    tasks, datasets = unique(tasks), unique(datasets)
    if tasks:
        chosen = [get(t) for t in tasks]
    else:
        chosen = [t for t in registry.values() if suite in t.suites]
        if not chosen:
            raise UserError(f"suite {suite!r} has no tasks")
    for d in datasets or []:
        if d not in data.REGISTRY:
            raise UserError(f"unknown data set {d!r}{did_you_mean(d, data.REGISTRY)}; valid: "
                            f"{choices(data.REGISTRY)}")
    overrides = overrides or {}
    for name in overrides:
        if name not in {t.name for t in chosen}:
            raise UserError(f"--set names task {name!r}, which is not in this run; tasks: "
                            f"{choices(t.name for t in chosen)}")
    seeds = seeds or list(SUITES[suite].seeds)
    if model is not None:
        try:
            get_model_factory(model)
        except UserError as e:
            raise UserError(f"--model: {e}") from None
    overrides = with_model_flag(chosen, overrides, model)
    units = []
    for t in chosen:
        cfg = t.make_config(suite, overrides.get(t.name))
        for d in datasets or [t.default_dataset]:
            if t.datasets is not None and d not in t.datasets:
                raise UserError(f"task {t.name!r} does not run on data set {d!r}; valid: "
                                f"{choices(t.datasets)}")
            units += [Unit(t, d, s, cfg, cost=t.cost.get(suite)) for s in seeds]
    return units
