"""Suites and the runner.

A suite is a name plus defaults (seeds, data set); its tasks are those that declare
settings for it (``Task.suites``). The runner fans out units (task × data set × seed) to
an executor — local by default, Ray when asked — and writes each finished unit to the
results document at once, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from ..config import to_dict
from ..engine import data
from ..engine.models import get_model_factory, is_reference, model_fields
from ..errors import UserError, choices
from ..tasks import Context, Task, get, load_all
from ..tracking import results
from . import pool


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    seeds: tuple[int, ...]
    budget_s: int  # wall-clock budget the suite is designed for, on its target machine


SUITES: dict[str, Suite] = {s.name: s for s in (
    Suite("smoke", "tests and CI on a CPU: every phenomenon, tiny budgets", (0,), 20),
    Suite("pr", "every pull request, CPU, base and head; 3 seeds for a noise estimate",
          (0, 1, 2), 180),
    Suite("quick", "a laptop CPU in about two minutes (default)", (0,), 120),
    Suite("nightly", "a GPU runner: more seeds, longer budgets", (0, 1, 2, 3, 4), 900),
)}


@dataclass
class Unit:
    task: Task
    dataset: str
    seed: int
    config: Any

    @property
    def key(self) -> str:
        return results.unit_key(self.task.name, self.dataset, self.seed)


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
    return sorted(set(seeds))


def plan(suite: str, tasks: list[str] | None = None, datasets: list[str] | None = None,
         seeds: list[int] | None = None,
         overrides: dict[str, dict[str, Any]] | None = None,
         model: str | None = None) -> list[Unit]:
    """The units a run will execute, configs resolved; every name is checked here.

    ``model``: a model name or ``package.module:factory`` put into every chosen task's
    model settings (``model``, ``*_model``; an explicit ``--set`` wins). Model references
    are imported here, before any unit runs; the rest of their check (output shape,
    device) runs once the first unit has its data set (``Context.load_data``).
    """
    if suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}; valid: {choices(SUITES)}")
    registry = load_all()
    if tasks:
        chosen = [get(t) for t in tasks]
    else:
        chosen = [t for t in registry.values() if suite in t.suites]
        if not chosen:
            raise UserError(f"suite {suite!r} has no tasks")
    for d in datasets or []:
        if d not in data.REGISTRY:
            raise UserError(f"unknown data set {d!r}; valid: {choices(data.REGISTRY)}")
    overrides = overrides or {}
    for name in overrides:
        if name not in {t.name for t in chosen}:
            raise UserError(f"--set names task {name!r}, which is not in this run; tasks: "
                            f"{choices(t.name for t in chosen)}")
    seeds = seeds or list(SUITES[suite].seeds)
    if model is not None:
        get_model_factory(model)  # an unknown name or a bad reference stops here
        overrides = {k: dict(v) for k, v in overrides.items()}
        for t in chosen:
            for key in model_fields(t.config()):
                if key != "student" and "." not in key:
                    overrides.setdefault(t.name, {}).setdefault(key, model)
    units = []
    for t in chosen:
        cfg = t.make_config(suite, overrides.get(t.name))
        for ref in model_fields(cfg).values():
            if is_reference(ref):
                get_model_factory(ref)
        for d in datasets or [t.default_dataset]:
            if t.datasets is not None and d not in t.datasets:
                raise UserError(f"task {t.name!r} does not run on data set {d!r}; valid: "
                                f"{choices(t.datasets)}")
            units += [Unit(t, d, s, cfg) for s in seeds]
    return units


def execute(unit: Unit, device: torch.device, data_root=None, download=False,
            log: Callable[[str], None] = print, trust_data_root: bool = False) -> dict[str, Any]:
    """Run one unit; the returned record goes into the results document (with ``data``: the
    digests of the data sets the unit read)."""
    torch.manual_seed(unit.seed)
    refs = tuple(v for v in model_fields(unit.config).values() if is_reference(v))
    ctx = Context(unit.dataset, unit.seed, device, data_root, download, log,
                  trust_data_root=trust_data_root, models=refs)
    started = results.now()
    t0 = time.perf_counter()
    data.used(reset=True)
    out = unit.task.run(unit.config, ctx)
    rec = results.unit_record(unit.task.name, unit.dataset, unit.seed, to_dict(unit.config),
                              started, time.perf_counter() - t0, out)
    rec["data"] = data.used(reset=True)
    return rec


def run_unit(unit: Unit, device: torch.device, data_root=None, download=False,
             log: Callable[[str], None] = print, trust_data_root: bool = False) -> dict[str, Any]:
    """``execute``, with a bug in the task recorded as a failed unit (a ``UserError`` still
    stops the run). Module-level so that pool workers (``runner/pool.py``) can call it."""
    started, t0 = results.now(), time.perf_counter()
    try:
        return execute(unit, device, data_root, download, log=log,
                       trust_data_root=trust_data_root)
    except UserError:
        raise
    except Exception as e:  # a bug in one task must not lose the others
        return results.unit_record(unit.task.name, unit.dataset, unit.seed, to_dict(unit.config),
                                   started, time.perf_counter() - t0, error=e,
                                   traceback=traceback.format_exc())


def default_out(suite: str) -> Path:
    return Path("results") / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{suite}.json"


def _open_document(out: Path, suite: str, units: list[Unit], device, argv) -> dict[str, Any]:
    """A new document, or the existing one at ``out`` to resume (checked, never clobbered)."""
    if out.exists() and out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file path such as {out / 'run.json'}")
    if out.exists():
        doc = results.read(out)
        if doc["meta"].get("suite") != suite:
            raise UserError(f"{out} holds a {doc['meta'].get('suite')!r} run; resuming needs the "
                            f"same suite, or choose another --out")
        for u in units:
            old = doc["units"].get(u.key)
            if old and old.get("status") == "done" and old.get("config") != to_dict(u.config):
                raise UserError(f"{out} already holds {u.key} with other settings; choose another "
                                "--out to run with these")
        doc["meta"]["status"] = "running"
        doc["meta"].setdefault("resumed", []).append(results.now())
        return doc
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot create the folder for --out {out}: {e.strerror}") from None
    doc = results.new_document(suite=suite, seeds=sorted({u.seed for u in units}),
                               datasets=sorted({u.dataset for u in units}),
                               tasks=list(dict.fromkeys(u.task.name for u in units)),
                               device=device, argv=argv)
    try:
        results.write_atomic(out, doc)
    except OSError as e:
        raise UserError(f"cannot write --out {out}: {e.strerror}") from None
    return doc


class LocalExecutor:
    """Runs units one after another in this process."""

    def map(self, units, fn):
        for u in units:
            yield u, fn(u)


class RayExecutor:
    """Fans units out on a Ray cluster (``pip install quirkbench[ray]``; ``ray.init`` is the
    user's, or a local one is started). Each unit runs in its own Ray task with one GPU when
    the device is CUDA."""

    def __init__(self, device: torch.device):
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'quirkbench[ray]'") from None
        self.ray = ray
        if not ray.is_initialized():
            ray.init()
        self.gpus = 1 if device.type == "cuda" else 0

    def map(self, units, fn):
        remote = self.ray.remote(num_gpus=self.gpus)(lambda u: fn(u))
        refs = {remote.remote(u): u for u in units}
        while refs:
            done, _ = self.ray.wait(list(refs), num_returns=1)
            for ref in done:
                yield refs.pop(ref), self.ray.get(ref)


EXECUTORS = ("local", "ray")


def run_suite(suite: str = "quick", *, tasks: list[str] | None = None,
              datasets: list[str] | None = None, seeds: list[int] | str | None = None,
              device: str = "auto", out: str | Path | None = None,
              overrides: dict[str, dict[str, Any]] | None = None, data_root: str | None = None,
              download: bool = False, executor: str = "local", argv: list[str] | None = None,
              jobs: int | str = 1, log: Callable[[str], None] = print,
              trust_data_root: bool = False, model: str | None = None) -> Path:
    """Run a suite and return the path of its results document.

    ``jobs``: units run in that many worker processes at once (``auto``: one per physical
    core, or per GPU; see ``runner/pool.py``); 1 runs them one after another in this process.
    Units already done in an existing ``out`` document (same suite and settings) are
    skipped: this is how an interrupted run resumes. A unit that raises a bug is recorded
    as failed (with its error) and the run goes on; a ``UserError`` stops the run.
    """
    if executor not in EXECUTORS:
        raise UserError(f"unknown executor {executor!r}; valid: {choices(EXECUTORS)}")
    dev = data.resolve_device(device)
    n_jobs = pool.resolve_jobs(jobs, dev)
    units = plan(suite, tasks, datasets, parse_seeds(seeds), overrides, model=model)
    out = Path(out) if out else default_out(suite)
    doc = _open_document(out, suite, units, dev, argv)
    todo = [u for u in units if doc["units"].get(u.key, {}).get("status") != "done"]
    done_before = len(units) - len(todo)
    if done_before:
        log(f"resuming {out}: {done_before} of {len(units)} units already done")
    doc["meta"]["jobs"] = n_jobs
    log(f"{suite} suite: {len(todo)} units on {dev} → {out}"
        + (f", {min(n_jobs, len(todo))} at a time" if n_jobs > 1 and len(todo) > 1 else ""))
    t_run = time.perf_counter()

    def run_one(u: Unit) -> dict[str, Any]:
        return run_unit(u, dev, data_root, download, log=lambda m, k=u.key: log(f"  {k}: {m}"),
                        trust_data_root=trust_data_root)

    if executor == "ray":
        ex = RayExecutor(dev)
    elif n_jobs > 1 and len(todo) > 1:
        ex = pool.PoolExecutor(n_jobs, dev, data_root, download, log,
                               trust_data_root=trust_data_root)
    else:
        ex = LocalExecutor()
    i = done_before
    try:
        for u, rec in ex.map(todo, run_one):
            i += 1
            doc["units"][u.key] = rec
            doc["meta"].setdefault("data", {}).update(rec.get("data") or {})
            results.write_atomic(out, doc)
            if rec["status"] == "done":
                log(f"[{i}/{len(units)}] {u.key} done in {rec['seconds']:.1f} s "
                    f"({len(rec['metrics'])} metrics)")
            else:
                log(f"[{i}/{len(units)}] {u.key} FAILED: {rec['error']}")
    except KeyboardInterrupt:
        doc["meta"]["status"] = "interrupted"
        results.write_atomic(out, doc)
        log(f"interrupted after {i} of {len(units)} units; resume with: quirkbench run "
            f"--suite {suite} --out {out}")
        raise
    order = {u.key: i for i, u in enumerate(units)}  # plan order, however many workers ran
    doc["units"] = dict(sorted(doc["units"].items(), key=lambda kv: order.get(kv[0], len(order))))
    failed = [k for k, v in doc["units"].items() if v.get("status") != "done"]
    doc["meta"]["status"] = "failed" if failed else "done"
    doc["meta"]["ended"] = results.now()
    doc["meta"]["seconds"] = doc["meta"].get("seconds", 0) + (time.perf_counter() - t_run)
    results.write_atomic(out, doc)
    return out
