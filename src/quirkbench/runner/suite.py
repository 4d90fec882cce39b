"""Suites and the runner.

A suite is a name plus defaults (seeds, data set); its tasks are those that declare
settings for it (``Task.suites``). The runner fans out units (task × data set × seed) to
an executor — local by default, Ray when asked — and writes each finished unit to the
results document at once, so an interrupted run resumes where it stopped.

What a run guarantees (docs/running.md):

* the document records the whole invocation (``meta.invocation``), so
  ``quirkbench run --resume PATH`` needs nothing else;
* one writer per results file: an exclusive lock (``filelock``) next to it for the run's
  life; a second run on the same file stops with the holder's PID and start time;
* every error raised while a unit runs (``UserError`` and divergence included) fails that
  unit only, with a one-line message; the run goes on;
* ``meta.status`` is ``running``, ``interrupted``, ``failed`` or ``done``, with the finish
  time and the units done/failed/left, whichever way the run ends (SIGTERM included);
* the output folder is checked for write access and free space before any training.

Executors
---------
An executor has ``map(units, fn)``: it runs each unit (anywhere: this process, a pool of
worker processes, a Ray cluster) and yields ``(unit, record)`` as each finishes, in any
order. ``fn`` (a ``UnitRunner``: :func:`run_unit` with the run's options) never raises for a
unit's own error: it returns a failure record; workers in other processes call
:func:`run_unit` themselves. An executor that loses a unit (a worker died) yields a failed
record for it (``failure_record``): a unit is never silently dropped. ``in_flight`` lists
the keys of the units running now (for the interruption message). Register a new one in
``EXECUTORS`` (name → factory taking the device, jobs, data_root, download, log).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from ..config import to_dict
from ..engine import data
from ..engine.models import get_model_factory, is_reference, model_fields
from ..errors import Terminated, UserError, choices
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
    if max(seeds) >= 2**63 or len(seeds) > 100_000:
        raise UserError(f"seeds must be below 2**63 and at most 100000 of them, got {text!r}")
    return sorted(set(seeds))


def _unique(names: Iterable[str] | None) -> list[str] | None:
    """Names in order, each once (``--tasks a,a`` or ``--tasks a a``: one task)."""
    if names is None:
        return None
    out: list[str] = []
    for n in names:
        for part in str(n).split(","):
            if part.strip() and part.strip() not in out:
                out.append(part.strip())
    return out or None


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
    tasks, datasets = _unique(tasks), _unique(datasets)
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


# --------------------------------------------------------------------------- one unit

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


def one_line(err: BaseException) -> str:
    """``Type: first line of the message`` — what a failed unit records as its error."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def failure_record(unit: Unit, err: BaseException | str, started: str | None = None,
                   seconds: float | None = None, tb: str | None = None) -> dict[str, Any]:
    """The record of a unit that raised (or whose worker was lost): no metrics, no holds.
    ``bad_input`` marks a ``UserError`` (a setting or file only the task could check): the
    run still goes on, and ends with exit status 2 rather than 1."""
    rec = results.unit_record(unit.task.name, unit.dataset, unit.seed, to_dict(unit.config),
                              started, seconds, error=err if isinstance(err, str)
                              else one_line(err), traceback=tb)
    if isinstance(err, UserError):
        rec["bad_input"] = True
    return rec


def run_unit(unit: Unit, device: torch.device, data_root=None, download=False,
             log: Callable[[str], None] = print, trust_data_root: bool = False) -> dict[str, Any]:
    """``execute`` that never raises for the unit's own error (``UserError``, divergence,
    a bug): it returns a failure record instead, so the other units still run. Ctrl-C and
    SIGTERM (``BaseException``) still stop the run. Module-level so that pool workers
    (``runner/pool.py``) and Ray workers can call it."""
    started, t0 = results.now(), time.perf_counter()
    try:
        return execute(unit, device, data_root, download, log=log,
                       trust_data_root=trust_data_root)
    except Exception as e:
        return failure_record(unit, e, started, time.perf_counter() - t0, traceback.format_exc())


@dataclass
class UnitRunner:
    """``fn`` for an executor: ``run_unit`` with the run's device and data options, progress
    lines prefixed with the unit's key. Picklable when ``log`` is (Ray pickles closures)."""

    device: torch.device
    data_root: str | None = None
    download: bool = False
    log: Callable[[str], None] = print
    trust_data_root: bool = False

    def __call__(self, unit: Unit) -> dict[str, Any]:
        return run_unit(unit, self.device, self.data_root, self.download,
                        log=lambda m, k=unit.key: self.log(f"  {k}: {m}"),
                        trust_data_root=self.trust_data_root)


# --------------------------------------------------------------------------- executors

class LocalExecutor:
    """Runs units one after another in this process."""

    def __init__(self, device=None, *_, **__):
        self.in_flight: list[str] = []

    def map(self, units: list[Unit], fn) -> Iterator[tuple[Unit, dict[str, Any]]]:
        for u in units:
            self.in_flight = [u.key]
            rec = fn(u)
            self.in_flight = []
            yield u, rec


def _ray_call(fn, unit):  # module level: Ray pickles it by reference, the closure by value
    return fn(unit)


class RayExecutor:
    """Fans units out on a Ray cluster (``pip install 'quirkbench[ray]'``). ``ray.init`` is
    the user's, else the cluster at ``RAY_ADDRESS`` or one started by ``ray start --head``
    on this machine, else a local one. Each unit is one Ray task (one GPU when the device is
    CUDA); a task whose worker dies is retried once, then recorded as failed."""

    RETRIES = 1
    LOST = {"WorkerCrashedError", "NodeDiedError", "LocalRayletDiedError", "ObjectLostError",
            "OwnerDiedError", "OutOfMemoryError"}  # the worker is gone, not the unit's error

    def __init__(self, device: torch.device, *_, **__):
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray: pip install 'quirkbench[ray]'") from None
        self.ray = ray
        self.gpus = 1 if device.type == "cuda" else 0
        self.in_flight: list[str] = []

    def _start(self) -> None:
        if self.ray.is_initialized():
            return
        import logging

        address = os.environ.get("RAY_ADDRESS")
        try:
            self.ray.init(address=address, logging_level=logging.WARNING)
        except Exception as e:
            where = f"the Ray cluster at RAY_ADDRESS={address}" if address else "a local Ray"
            raise UserError(f"cannot start or reach {where}: {one_line(e)}") from None

    def map(self, units, fn):
        if not units:
            return
        self._start()
        remote = self.ray.remote(num_gpus=self.gpus, max_retries=self.RETRIES)(_ray_call)
        refs = {remote.remote(fn, u): u for u in units}
        try:
            while refs:
                self.in_flight = [u.key for u in refs.values()]
                done, _ = self.ray.wait(list(refs), num_returns=1)
                for ref in done:
                    u = refs.pop(ref)
                    try:
                        rec = self.ray.get(ref)
                    except self.ray.exceptions.RayError as e:
                        if type(e).__name__ in self.LOST:  # after Ray's retries
                            e = f"{type(e).__name__}: the Ray worker running this unit was " \
                                f"lost (tried {1 + self.RETRIES} times)"
                        rec = failure_record(u, e)  # else: e.g. quirkbench missing on a node
                    yield u, rec
        finally:
            for ref in refs:
                try:
                    self.ray.cancel(ref, force=True)
                except Exception:
                    pass
            self.in_flight = []


EXECUTORS: dict[str, Callable[..., Any]] = {"local": LocalExecutor, "ray": RayExecutor}


def make_executor(name: str, device: torch.device, jobs: int = 1, n_units: int = 1,
                  data_root=None, download: bool = False, log: Callable[[str], None] = print,
                  trust_data_root: bool = False):
    """The executor for ``--executor NAME`` (``--jobs N`` > 1 turns local into a pool of N
    worker processes)."""
    if name not in EXECUTORS:
        raise UserError(f"unknown executor {name!r}; valid: {choices(EXECUTORS)}")
    if name == "local" and jobs > 1 and n_units > 1:
        return pool.PoolExecutor(jobs, device, data_root, download, log,
                                 trust_data_root=trust_data_root)
    return EXECUTORS[name](device, jobs, data_root, download, log)


# --------------------------------------------------------------------------- the document

def default_out(suite: str) -> Path:
    return Path("results") / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{suite}.json"


def resume_command(out: str | Path) -> str:
    """The command that resumes the run whose document is ``out``."""
    return f"quirkbench run --resume {shlex.quote(str(out))}"


def invocation(suite, tasks, datasets, seeds, overrides, device, data_root, download,
               executor, jobs=1, trust_data_root=False, model=None) -> dict[str, Any]:
    """Everything that decides a run's units and where they run, JSON-normalised."""
    return json.loads(json.dumps({
        "suite": suite, "tasks": _unique(tasks), "datasets": _unique(datasets),
        "seeds": seeds, "overrides": overrides or {}, "device": device,
        "data_root": data_root, "download": bool(download),
        "trust_data_root": bool(trust_data_root), "executor": executor, "jobs": jobs,
        "model": model}))


# what decides the units
_SAME_UNITS = ("suite", "tasks", "datasets", "seeds", "overrides", "model")


def _progress(doc: dict[str, Any], planned: list[str]) -> dict[str, int]:
    units = doc["units"]
    done = sum(units.get(k, {}).get("status") == "done" for k in planned)
    failed = sum(units.get(k, {}).get("status") == "failed" for k in planned)
    return {"planned": len(planned), "done": done, "failed": failed,
            "left": len(planned) - done - failed}


MIB = 1 << 20
MIN_FREE = 16 * MIB  # room for the document's rewrites, a report and a trace or two
PER_UNIT = 1 * MIB  # a unit's record (series, info) with room to spare


def preflight(folder: Path, n_units: int, what: str = "--out") -> None:
    """Before any training: ``folder`` exists or can be made, takes a file, and has room."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"cannot create the folder for {what} {folder}: a file of that name "
                        "is in the way") from None
    except OSError as e:
        raise UserError(f"cannot create the folder for {what} {folder}: {e.strerror}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".quirkbench-write-test-") as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise UserError(f"cannot write in {folder} ({what}): {e.strerror}") from None
    need = MIN_FREE + PER_UNIT * n_units
    free = shutil.disk_usage(folder).free
    if free < need:
        raise UserError(f"not enough free space in {folder} ({what}): {free / MIB:.1f} MiB "
                        f"free, a run of {n_units} units needs about {need / MIB:.0f} MiB")


class RunLock:
    """The one-writer lock of a results file: ``.NAME.lock`` (``filelock``, released by the
    kernel when the holder dies, so a kill -9'd run leaves nothing to clean) and
    ``.NAME.holder`` (the holder's PID and start time, for the message a second run sees)."""

    def __init__(self, out: Path):
        import filelock

        self.out = out
        self.holder = out.parent / f".{out.name}.holder"
        self.lock = filelock.FileLock(str(out.parent / f".{out.name}.lock"), timeout=0)
        self._timeout = filelock.Timeout
        self.stale: dict[str, Any] | None = None

    def _read_holder(self) -> dict[str, Any] | None:
        try:
            h = json.loads(self.holder.read_text())
            return h if isinstance(h, dict) else None
        except (OSError, ValueError):
            return None

    def acquire(self) -> RunLock:
        try:
            self.lock.acquire()
        except self._timeout:
            h = self._read_holder() or {}
            raise UserError(f"{self.out} is being written by another run (PID "
                            f"{h.get('pid', '?')}, started {h.get('started', '?')}); wait for "
                            "it to finish, or choose another --out") from None
        except OSError as e:
            raise UserError(f"cannot lock {self.out}: {e.strerror}") from None
        self.stale = self._read_holder()  # a holder file under a free lock: a killed run
        try:
            results.write_atomic(self.holder, {"pid": os.getpid(), "started": results.now()})
        except OSError:
            pass  # the lock itself holds; only the second writer's message loses detail
        return self

    def release(self) -> None:
        try:
            self.holder.unlink()
        except OSError:
            pass
        self.lock.release()


def _open_document(out: Path, inv: dict[str, Any], units: list[Unit], device, argv,
                   resume: bool) -> dict[str, Any]:
    """A new document, or the existing one at ``out`` to resume (checked, never clobbered)."""
    suite = inv["suite"]
    planned = [u.key for u in units]
    if out.exists():
        doc = results.read(out)
        meta = doc["meta"]
        if meta.get("suite") != suite:
            raise UserError(f"{out} holds a {meta.get('suite')!r} run; resuming needs the "
                            f"same suite, or choose another --out")
        old = meta.get("invocation")
        if not resume and isinstance(old, dict) \
                and any(old.get(k) != inv[k] for k in _SAME_UNITS):
            diff = ", ".join(k for k in _SAME_UNITS if old.get(k) != inv[k])
            raise UserError(f"{out} holds a run with other settings ({diff}); resume it with "
                            f"`{resume_command(out)}`, or choose another --out")
        for u in units:
            rec = doc["units"].get(u.key)
            if rec and rec.get("status") == "done" and rec.get("config") != to_dict(u.config):
                raise UserError(f"{out} already holds {u.key} with other settings; choose another "
                                "--out to run with these")
        for stale in ("interrupted_in", "error", "ended"):
            meta.pop(stale, None)
        meta["status"] = "running"
        meta["invocation"] = inv
        meta["planned"] = planned
        meta.setdefault("run_id", uuid.uuid4().hex[:8])
        meta["argv"] = list(argv) if argv is not None else meta.get("argv", [])
        meta.setdefault("resumed", []).append({"at": results.now(), "argv": meta["argv"],
                                               "pid": os.getpid()})
        meta["progress"] = _progress(doc, planned)
        results.write_atomic(out, doc)
        return doc
    doc = results.new_document(suite=suite, seeds=sorted({u.seed for u in units}),
                               datasets=sorted({u.dataset for u in units}),
                               tasks=list(dict.fromkeys(u.task.name for u in units)),
                               device=device, argv=argv)
    doc["meta"].update(run_id=uuid.uuid4().hex[:8], pid=os.getpid(), invocation=inv,
                       planned=planned, progress=_progress(doc, planned))
    results.write_atomic(out, doc)
    return doc


class _SigtermAsInterrupt:
    """Within the block, SIGTERM raises ``Terminated`` (a ``KeyboardInterrupt``) in the main
    thread, so the run stops as on Ctrl-C: the document says where, the lock is released."""

    def __enter__(self):
        self.old = None
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                raise Terminated("terminated (SIGTERM)")
            self.old = signal.signal(signal.SIGTERM, handler)
        return self

    def __exit__(self, *exc):
        if self.old is not None:
            signal.signal(signal.SIGTERM, self.old)
        return False


# --------------------------------------------------------------------------- the run

def run_suite(suite: str = "quick", *, tasks: list[str] | None = None,
              datasets: list[str] | None = None, seeds: list[int] | str | None = None,
              device: str = "auto", out: str | Path | None = None,
              overrides: dict[str, dict[str, Any]] | None = None, data_root: str | None = None,
              download: bool = False, executor: str = "local", argv: list[str] | None = None,
              log: Callable[[str], None] = print, resume: bool = False,
              jobs: int | str = 1, trust_data_root: bool = False,
              model: str | None = None) -> Path:
    """Run a suite and return the path of its results document.

    Units already done in an existing ``out`` document (same units and settings) are
    skipped: this is how an interrupted run resumes (``resume_from`` reads the arguments
    from the document). A unit that raises — a bug, a ``UserError``, a divergence — is
    recorded as failed with its one-line error and the run goes on; ``meta.status`` ends
    ``failed`` then. Ctrl-C and SIGTERM leave ``interrupted`` and re-raise.
    ``jobs``: units run in that many worker processes at once (``auto``: one per physical
    core, or per GPU; see ``runner/pool.py``); 1 runs them one after another in this process.
    """
    dev = data.resolve_device(device)
    n_jobs = pool.resolve_jobs(jobs, dev)
    seed_list = parse_seeds(seeds)
    units = plan(suite, tasks, datasets, seed_list, overrides, model=model)
    # tasks and seeds as resolved: a resume runs the same units even if the suite's defaults
    # change in between
    inv = invocation(suite, list(dict.fromkeys(u.task.name for u in units)), datasets,
                     sorted({u.seed for u in units}), overrides, device, data_root, download,
                     executor, jobs, trust_data_root, model)
    ex = make_executor(executor, dev, n_jobs, len(units), data_root, download, log,
                       trust_data_root)
    out = Path(out) if out else default_out(suite)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file path such as {out / 'run.json'}")
    preflight(out.parent, len(units))
    lock = RunLock(out).acquire()
    try:
        if lock.stale:
            log(f"taking over {out} from a run that stopped without finishing (PID "
                f"{lock.stale.get('pid', '?')}, started {lock.stale.get('started', '?')})")
        return _run_locked(out, inv, units, dev, argv, resume, ex, data_root, download, log,
                           trust_data_root)
    finally:
        lock.release()


def resume_from(path: str | Path, *, executor: str | None = None, jobs: int | str | None = None,
                argv: list[str] | None = None, log: Callable[[str], None] = print) -> Path:
    """Resume the run whose document is ``path`` with the arguments it records."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--resume takes a results file; {path} is a folder")
    doc = results.read(path)
    inv = doc["meta"].get("invocation")
    if not isinstance(inv, dict) or not isinstance(inv.get("suite"), str):
        raise UserError(f"{path} does not record its invocation (written by an older "
                        "quirkbench); run it again with its original arguments and --out "
                        f"{path}")
    inv = dict(inv)
    if executor is not None:  # where the units run may change; what they are may not
        inv["executor"] = executor
    if jobs is not None:
        inv["jobs"] = jobs
    return run_suite(inv["suite"], tasks=inv.get("tasks"), datasets=inv.get("datasets"),
                     seeds=inv.get("seeds"), device=inv.get("device") or "auto", out=path,
                     overrides=inv.get("overrides"), data_root=inv.get("data_root"),
                     download=bool(inv.get("download")), executor=inv.get("executor") or "local",
                     argv=argv, log=log, resume=True, jobs=inv.get("jobs") or 1,
                     trust_data_root=bool(inv.get("trust_data_root")), model=inv.get("model"))


def _run_locked(out: Path, inv, units: list[Unit], dev, argv, resume: bool, ex, data_root,
                download, log, trust_data_root: bool = False) -> Path:
    try:
        doc = _open_document(out, inv, units, dev, argv, resume)
    except OSError as e:
        raise UserError(f"cannot write --out {out}: {e.strerror}") from None
    planned = [u.key for u in units]
    todo = [u for u in units if doc["units"].get(u.key, {}).get("status") != "done"]
    done_before = len(units) - len(todo)
    if done_before:
        log(f"resuming {out}: {done_before} of {len(units)} units already done")
    n_jobs = getattr(ex, "jobs", 1)
    doc["meta"]["jobs"] = n_jobs
    log(f"{inv['suite']} suite: {len(todo)} units on {dev} → {out}"
        + (f", {min(n_jobs, len(todo))} at a time" if n_jobs > 1 and len(todo) > 1 else ""))
    t_run = time.perf_counter()
    seconds_before = doc["meta"].get("seconds", 0) or 0
    fn = UnitRunner(dev, data_root, download, log, trust_data_root)

    def finish(status: str, **extra) -> None:
        meta = doc["meta"]
        meta.update(status=status, ended=results.now(), progress=_progress(doc, planned),
                    seconds=seconds_before + (time.perf_counter() - t_run), **extra)
        results.write_atomic(out, doc)

    i = done_before
    finished = ex.map(todo, fn)
    try:
        with _SigtermAsInterrupt():
            for u, rec in finished:
                i += 1
                doc["units"][u.key] = rec
                doc["meta"].setdefault("data", {}).update(rec.get("data") or {})
                doc["meta"]["progress"] = _progress(doc, planned)
                try:
                    results.write_atomic(out, doc)
                except OSError as e:
                    raise UserError(
                        f"cannot write {out} after {u.key}: {e.strerror}; the file keeps its "
                        f"previous state; free the space, then `{resume_command(out)}`") from None
                if rec["status"] == "done":
                    log(f"[{i}/{len(units)}] {u.key} done in {rec['seconds']:.1f} s "
                        f"({len(rec['metrics'])} metrics)")
                else:
                    log(f"[{i}/{len(units)}] {u.key} FAILED: {rec['error']}")
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM
        where = ", ".join(getattr(ex, "in_flight", [])) or "between units"
        how = "terminated" if isinstance(e, Terminated) else "interrupted"
        try:
            finish("interrupted", interrupted_in=where)
        except OSError:
            pass
        log(f"{how} in {where} after {i} of {len(units)} units; resume with: "
            f"{resume_command(out)}")
        raise
    except BaseException as e:
        try:
            finish("failed", error=one_line(e))
        except OSError:
            pass  # the disk refused: the previous document stays as it was
        raise
    finally:
        if hasattr(finished, "close"):  # stop the executor's workers before the lock goes
            finished.close()
    order = {k: i for i, k in enumerate(planned)}  # plan order, however many workers ran
    doc["units"] = dict(sorted(doc["units"].items(), key=lambda kv: order.get(kv[0], len(order))))
    failed = [k for k in planned if doc["units"].get(k, {}).get("status") != "done"]
    try:
        finish("failed" if failed else "done")
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror}; it keeps its previous state") \
            from None
    return out
