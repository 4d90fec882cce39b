"""Units in parallel on one machine: ``quirkbench run --jobs N``.

A pool of N worker processes, started with ``spawn`` (no forked torch state, the same on
Linux, macOS and Windows). Each worker runs one unit at a time through ``unit.run_unit``,
with the run's torch threads like every executor (one: N processes of one thread also beat
one process of N threads on small models), or on its own GPU on CUDA (worker i uses
``cuda:i``). The parent alone writes the results document: workers send back the unit's
record, and their progress lines, over a pipe of their own.

Why not ``concurrent.futures.ProcessPoolExecutor``: when one of its workers dies it breaks
the whole pool, failing the innocent units in the other workers too. Here each worker has
its own pipe and process sentinel, so a worker that dies (killed, out of memory, a crash in
native code) fails exactly the unit it was running; a fresh worker takes its place and the
run completes. A pipe per worker (not a shared queue) also means a worker killed while
writing cannot leave a lock held that the others would wait on forever.

Tasks that measure speed (``Task.exclusive``: throughput) start last and run alone: a unit
on the other core shares caches and memory bandwidth, and moved a headline speed-up by 40%
between two identical runs.

Ctrl-C: workers ignore SIGINT; the parent stops them and records the run as interrupted,
exactly as with one worker (units in flight are run again on resume). A parent killed with
``kill -9``: each worker notices within a second that its parent is gone and exits.
"""

from __future__ import annotations

import collections
import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from ..engine.data import cuda_device_count
from ..errors import UserError
from ..tasks import get, load_all
from .plan import Unit
from .unit import RunOptions, failure_record, run_unit

AUTO = "auto"


def physical_cores() -> int:
    """Physical cores this process may run on (hyperthread siblings counted once; the CPU
    affinity mask respected), from Linux's sysfs topology; ``os.cpu_count()`` elsewhere."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1
    cores = set()
    for c in cpus:
        topo = Path(f"/sys/devices/system/cpu/cpu{c}/topology")
        try:
            cores.add((topo.joinpath("physical_package_id").read_text().strip(),
                       topo.joinpath("core_id").read_text().strip()))
        except OSError:
            cores.add(("cpu", str(c)))
    return max(1, len(cores))


def resolve_jobs(jobs: int | str | None, device: torch.device) -> int:
    """``--jobs`` → a worker count. ``auto`` (or None): one per physical core on the CPU, one
    per visible GPU on CUDA. On CUDA a number above the GPU count is refused (workers would
    share a GPU and the timings would mean nothing)."""
    if jobs is None or jobs == AUTO:
        return cuda_device_count() if device.type == "cuda" else physical_cores()
    try:
        n = int(jobs)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or isinstance(jobs, bool) or (isinstance(jobs, str) and not jobs.isdigit()):
        raise UserError(f"--jobs must be a whole number ≥ 1 or 'auto', got {jobs!r}")
    if device.type == "cuda" and device.index is None and n > cuda_device_count():
        raise UserError(f"--jobs {n} needs {n} GPUs but {cuda_device_count()} are "
                        f"visible; valid: 1..{cuda_device_count()} or auto")
    return n


def _worker_device(device: torch.device, wid: int) -> torch.device:
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", wid % max(1, cuda_device_count()))
    return device


def _watch_parent(parent: int) -> None:
    """Exit when the parent is gone (``kill -9`` of the run): no orphans keep computing."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(1)


def _worker(conn, wid: int, options: RunOptions, parent: int) -> None:
    """A worker's life: receive (task, dataset, seed, config), run it, send the record back."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C for everyone
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    load_all()
    dev = _worker_device(options.device, wid)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            msg = None
        if msg is None:  # everything is sent (Connection.send is synchronous): skip the
            sys.stdout.flush()  # interpreter's teardown, seconds with torch on a busy CPU
            sys.stderr.flush()
            os._exit(0)
        name, dataset, seed, config, models = msg
        unit = Unit(get(name), dataset, seed, config, models)
        key = unit.key
        try:
            rec = run_unit(unit, replace(options, device=dev,
                                         log=lambda m, k=key: conn.send(("log", k, m))))
        except UserError as e:
            conn.send(("user-error", key, str(e)))
        else:
            conn.send(("done", key, rec))


@dataclass
class _Worker:
    wid: int
    proc: Any
    conn: Any
    unit: Any = None  # the unit it is running, None when idle
    started: float = 0.0


def _exclusive(unit) -> bool:
    return bool(getattr(unit.task, "exclusive", False))


def schedule_order(units: list) -> list:
    """The order units start in: the longest first (``Unit.cost``, the task's estimate for
    the suite; unknown ones first of all, in plan order, as they may be long), so that the
    workers finish together (longest-processing-time scheduling); the tasks that measure
    speed (``Task.exclusive``) last, so they can run alone once the others are done. The
    document is still written in plan order."""
    def longest_first(u):
        cost = getattr(u, "cost", None)
        return (cost is not None, -(cost or 0.0))

    return sorted((u for u in units if not _exclusive(u)), key=longest_first) + \
        [u for u in units if _exclusive(u)]


def may_start(unit, running: list) -> bool:
    """Whether ``unit`` may start while ``running`` units are in flight: an exclusive unit
    only on an idle pool, and nothing beside an exclusive one."""
    if _exclusive(unit):
        return not running
    return not any(_exclusive(r) for r in running)


def died_record(unit, exitcode: int | None) -> dict[str, Any]:
    """The record of a unit whose worker process died while running it."""
    how = (f"killed by signal {signal.Signals(-exitcode).name}"
           if exitcode is not None and exitcode < 0 and -exitcode in signal.valid_signals()
           else f"exit status {exitcode}")
    return failure_record(unit, f"WorkerDied: the worker process running this unit died "
                                f"({how})", tb="")


class PoolExecutor:
    """``map(units)`` yields ``(unit, record)`` as units finish, N at a time in worker
    processes, each unit run with ``options`` (on CUDA, worker i on GPU i). Same contract as
    ``LocalExecutor``: a failing unit yields a failed record, a ``UserError`` escaping a
    worker stops the run (raised here)."""

    def __init__(self, jobs: int, options: RunOptions):
        self.jobs, self.options, self.log = jobs, options, options.log
        self.restarts = 0  # workers replaced after dying
        self._workers: list[_Worker] = []

    def start(self) -> None:
        pass  # workers start with the first units (map)

    @property
    def in_flight(self) -> list[str]:
        """Keys of the units running now (the runner names them when interrupted)."""
        return [w.unit.key for w in self._workers if w.unit is not None]

    def _start(self, ctx, wid: int) -> _Worker:
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        options = replace(self.options, log=print)  # a worker sends its lines over its pipe
        proc = ctx.Process(target=_worker, name=f"quirkbench-worker-{wid}", daemon=True,
                           args=(child_conn, wid, options, os.getpid()))
        proc.start()
        child_conn.close()
        return _Worker(wid, proc, parent_conn)

    def map(self, units: Iterable) -> Iterator[tuple[Any, dict]]:
        pending = collections.deque(schedule_order(list(units)))
        if not pending:
            return
        ctx = mp.get_context("spawn")
        workers = [self._start(ctx, i) for i in range(min(self.jobs, len(pending)))]
        self._workers = workers
        clean = False
        try:
            while pending or any(w.unit is not None for w in workers):
                for w in workers:
                    if w.unit is None and pending and may_start(
                            pending[0], [x.unit for x in workers if x.unit is not None]):
                        u = pending.popleft()
                        w.unit, w.started = u, time.perf_counter()
                        w.conn.send((u.task.name, u.dataset, u.seed, u.config, u.models))
                        self.log(f"  {u.key}: started (worker {w.wid}, pid {w.proc.pid})")
                busy = [w for w in workers if w.unit is not None]
                mp.connection.wait([w.conn for w in busy] + [w.proc.sentinel for w in busy],
                                   timeout=1.0)
                for i, w in enumerate(workers):
                    if w.unit is None:
                        continue
                    done = self._drain(w)
                    if done is not None:
                        yield done
                        continue
                    if not w.proc.is_alive():
                        done = self._drain(w)  # it may have sent its record, then died
                        if done is not None:
                            yield done
                            continue
                        u, code = w.unit, w.proc.exitcode
                        w.unit = None
                        w.conn.close()
                        self.restarts += 1
                        workers[i] = self._start(ctx, w.wid)
                        yield u, died_record(u, code)
            clean = True
        finally:
            self._stop(workers, clean)

    def _drain(self, w: _Worker) -> tuple[Any, dict] | None:
        """Handle what worker ``w`` sent; ``(unit, record)`` once its unit is finished."""
        try:
            while w.conn.poll():
                kind, key, payload = w.conn.recv()
                if kind == "log":
                    self.log(f"  {key}: {payload}")
                elif kind == "user-error":
                    w.unit = None
                    raise UserError(payload)
                else:
                    u, w.unit = w.unit, None
                    return u, payload
        except (EOFError, OSError):
            pass  # the worker died; the caller sees it in its exit status
        return None

    def _stop(self, workers: list[_Worker], clean: bool) -> None:
        """Finished: ask every worker to exit. Interrupted or failed: terminate them now."""
        for w in workers:
            if clean:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
            elif w.proc.is_alive():
                w.proc.terminate()
        deadline = time.monotonic() + (10.0 if clean else 3.0)
        for w in workers:
            w.proc.join(max(0.0, deadline - time.monotonic()))
            if w.proc.is_alive():
                w.proc.kill()
                w.proc.join()
            w.conn.close()
