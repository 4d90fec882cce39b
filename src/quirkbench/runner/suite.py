"""The run: plan the units, lock and open the results document, hand the units to an
executor, and write each finished unit to the document at once, so an interrupted run
resumes where it stopped.

A suite is a name plus defaults (seeds, data set); its tasks are those that declare
settings for it (``Task.suites``). The pieces, each in a module of its own:

* ``plan``: suites, units, every name and model checked before the first unit trains;
* ``unit``: the run's options (``RunOptions``) and one unit run into its record;
* ``executors`` and ``pool``: where units run (this process, worker processes, Ray);
* ``document``: the results file's lock, opening or resuming it, its progress.

What a run guarantees (docs/running.md):

* every error raised while a unit runs (``UserError`` and divergence included) fails that
  unit only, with a one-line message; the run goes on;
* ``meta.status`` is ``running``, ``interrupted``, ``failed`` or ``done``, with the finish
  time and the units done/failed/left, whichever way the run ends (SIGTERM included).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..engine import data
from ..errors import Terminated, UserError
from ..tracking import results
from . import document, pool
from .executors import make_executor
from .plan import SUITES, Unit, check_models, parse_seeds, plan, project_of
from .unit import RunOptions, one_line

__all__ = ["SUITES", "parse_seeds", "resume_from", "run_suite"]


class _SigtermAsInterrupt:
    """Within the block, SIGTERM raises ``Terminated`` (a ``KeyboardInterrupt``) in the main
    thread, so the run stops as on Ctrl-C: the document says where, the lock is released.
    ``received`` remembers it: a library the exception passes through (Ray) may re-raise it
    as a plain ``KeyboardInterrupt``. It replaces the handler ``ray.init`` sets
    (``sys.exit``), for the block's life."""

    def __enter__(self):
        self.old, self.received = None, False
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):
                self.received = True
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
              model: str | None = None, unit_budget_s: float | None = None) -> Path:
    """Run a suite and return the path of its results document.

    Units already done in an existing ``out`` document (same units and settings) are
    skipped: this is how an interrupted run resumes (``resume_from`` reads the arguments
    from the document). A unit that raises — a bug, a ``UserError``, a divergence — is
    recorded as failed with its one-line error and the run goes on; ``meta.status`` ends
    ``failed`` then. Ctrl-C and SIGTERM leave ``interrupted`` and re-raise.
    ``jobs``: units run in that many worker processes at once (``auto``: one per physical
    core, or per GPU; see ``runner/pool.py``); 1 runs them one after another in this process.
    ``unit_budget_s``: the wall-clock seconds one unit may take before it is stopped and
    recorded as failed (``None``: the suite's ``unit_budget_s``; 0: no limit).
    """
    dev = data.resolve_device(device)
    n_jobs = pool.resolve_jobs(jobs, dev)
    units = plan(suite, tasks, datasets, parse_seeds(seeds), overrides, model=model)
    budget = unit_budget(suite, unit_budget_s)
    options = RunOptions(dev, data_root, bool(download), bool(trust_data_root), log,
                         unit_budget_s=budget)
    for u in units:
        check_models(u, dev, data_root, download, trust_data_root)
    # tasks and seeds as resolved: a resume runs the same units even if the suite's defaults
    # change in between
    inv = document.invocation(suite, list(dict.fromkeys(u.task.name for u in units)),
                              datasets, sorted({u.seed for u in units}), overrides, device,
                              data_root, download, executor, jobs, trust_data_root, model,
                              unit_budget_s)
    ex = make_executor(executor, options, n_jobs, len(units))
    out = Path(out) if out else document.default_out(suite)
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give a file path such as {out / 'run.json'}")
    out = document.the_file(out)
    document.preflight(out.parent, len(units))
    lock = document.RunLock(out).acquire()
    try:
        if lock.stale:
            log(f"taking over {out} from a run that stopped without finishing (PID "
                f"{lock.stale.get('pid', '?')}, started {lock.stale.get('started', '?')})")
        ex.start()  # before the document: a cluster that cannot be reached leaves it alone
        try:
            doc = document.open_document(out, inv, units, dev, argv, resume, project_of(units))
        except OSError as e:
            raise UserError(f"cannot write --out {out}: {e.strerror}") from None
        return _run_locked(out, doc, units, ex, dev, log)
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
                     trust_data_root=bool(inv.get("trust_data_root")), model=inv.get("model"),
                     unit_budget_s=inv.get("unit_budget_s"))


def unit_budget(suite: str, seconds: float | None) -> float | None:
    """The wall-clock budget of one unit: ``seconds`` (0: none), else the suite's."""
    if seconds is None:
        return float(SUITES[suite].unit_budget_s)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
            or not 0 <= seconds < float("inf"):
        raise UserError(f"--unit-budget must be a number of seconds ≥ 0 (0: no limit), "
                        f"got {seconds!r}")
    return float(seconds) or None


class _Run:
    """The open document of a run under way: each finished unit written at once."""

    def __init__(self, out: Path, doc: dict[str, Any], units: list[Unit]):
        self.out, self.doc = out, doc
        self.planned = [u.key for u in units]
        self.t0 = time.perf_counter()
        self.seconds_before = doc["meta"].get("seconds", 0) or 0

    def record(self, u: Unit, rec: dict[str, Any]) -> None:
        self.doc["units"][u.key] = rec
        self.doc["meta"].setdefault("data", {}).update(rec.get("data") or {})
        self.doc["meta"]["progress"] = document.progress(self.doc, self.planned)
        try:
            results.write_atomic(self.out, self.doc)
        except OSError as e:
            raise UserError(f"cannot write {self.out} after {u.key}: {e.strerror}; the file "
                            "keeps its previous state; free the space, then "
                            f"`{document.resume_command(self.out)}`") from None

    def finish(self, status: str, **extra) -> None:
        meta = self.doc["meta"]
        meta.update(status=status, ended=results.now(),
                    progress=document.progress(self.doc, self.planned),
                    seconds=self.seconds_before + (time.perf_counter() - self.t0), **extra)
        results.write_atomic(self.out, self.doc)

    def in_plan_order(self) -> list[str]:
        """Sort the units as planned, however many workers ran; the keys not done."""
        order = {k: i for i, k in enumerate(self.planned)}
        self.doc["units"] = dict(sorted(self.doc["units"].items(),
                                        key=lambda kv: order.get(kv[0], len(order))))
        return [k for k in self.planned if self.doc["units"].get(k, {}).get("status") != "done"]


def _run_locked(out: Path, doc: dict[str, Any], units: list[Unit], ex, dev, log) -> Path:
    run = _Run(out, doc, units)
    todo = [u for u in units if doc["units"].get(u.key, {}).get("status") != "done"]
    done_before = len(units) - len(todo)
    if done_before:
        log(f"resuming {out}: {done_before} of {len(units)} units already done")
    n_jobs = getattr(ex, "jobs", 1)
    # what decides the exact metrics: the threads every unit computes with (not this
    # process's), and what ran them (recorded for the reader; the numbers do not depend on it)
    doc["meta"].update(jobs=n_jobs, cpu_threads=ex.options.threads,
                       executor=ex.options.executor)
    log(f"{doc['meta']['invocation']['suite']} suite: {len(todo)} units on {dev} → {out}"
        + (f", {min(n_jobs, len(todo))} at a time" if n_jobs > 1 and len(todo) > 1 else ""))
    i = done_before
    finished = ex.map(todo)
    sigterm = _SigtermAsInterrupt()
    try:
        with sigterm:
            for u, rec in finished:
                i += 1
                run.record(u, rec)
                if rec["status"] == "done":
                    log(f"[{i}/{len(units)}] {u.key} done in {rec['seconds']:.1f} s "
                        f"({len(rec['metrics'])} metrics)")
                else:
                    log(f"[{i}/{len(units)}] {u.key} FAILED: {rec['error']}")
    except KeyboardInterrupt as e:  # Ctrl-C or SIGTERM
        where = ", ".join(getattr(ex, "in_flight", [])) or "between units"
        terminated = isinstance(e, Terminated) or sigterm.received
        try:
            run.finish("interrupted", interrupted_in=where)
        except OSError:
            pass
        log(f"{'terminated' if terminated else 'interrupted'} in {where} after {i} of "
            f"{len(units)} units; resume with: {document.resume_command(out)}")
        if terminated and not isinstance(e, Terminated):
            raise Terminated("terminated (SIGTERM)") from None
        raise
    except BaseException as e:
        try:
            run.finish("failed", error=one_line(e))
        except OSError:
            pass  # the disk refused: the previous document stays as it was
        raise
    finally:
        if hasattr(finished, "close"):  # stop the executor's workers before the lock goes
            finished.close()
    failed = run.in_plan_order()
    try:
        run.finish("failed" if failed else "done")
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror}; it keeps its previous state") \
            from None
    return out
