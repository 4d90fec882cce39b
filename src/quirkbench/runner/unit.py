"""One unit, run: the run's options, the unit's record, and the record of a unit that failed.

Every executor runs a unit through :func:`run_unit` with the run's :class:`RunOptions`, in
this process or in a worker (pool workers and Ray tasks call it themselves), so a unit's
numbers do not depend on where it ran: each unit computes with ``UNIT_THREADS`` torch
intra-op threads, whatever the executor, ``--jobs``, ``OMP_NUM_THREADS`` or the caller's
``torch.set_num_threads`` (restored afterwards). A CPU reduction split over two threads
adds in another order than one thread does, and moved 14 of 244 exact smoke metrics.

Each record says what decided its numbers (``threads``, ``executor``) and carries the
machine-speed ``control``: a fixed small workload timed just before and just after the
unit (``engine.timing.control_seconds``), and the share of CPU time the unit got while it
ran, which the gate reads to tell a slower or busier machine from slower code (a 1 ms
control sees the machine's speed, not the other processes that take turns on its cores).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from types import FrameType
from typing import Any

import torch

from .. import progress
from ..engine.timing import control_seconds
from ..errors import UnitBudgetExceeded, UserError
from ..tasks import Context
from ..tracking import results
from .plan import Unit


@dataclass(frozen=True)
class RunOptions:
    """How and where a run's units run, the same for every unit and every executor.

    ``device``: where the unit computes (a pool worker on CUDA gets its own GPU);
    ``data_root``, ``download``, ``trust_data_root``: where data sets come from and whether
    files that are not the official ones are accepted; ``log``: progress lines for the user
    (replaced by a pipe in pool workers); ``threads``: torch intra-op threads while a unit
    runs; ``executor``: what runs the units (``local``, ``pool``, ``ray``; recorded);
    ``unit_budget_s``: the wall-clock seconds a unit may take before it is stopped and
    recorded as failed (``None``: no limit).
    """

    device: torch.device
    data_root: str | None = None
    download: bool = False
    trust_data_root: bool = False
    log: Callable[[str], None] = print
    threads: int = 1  # UNIT_THREADS
    executor: str = "local"
    unit_budget_s: float | None = None

    def for_unit(self, key: str) -> RunOptions:
        """The same options, progress lines prefixed with the unit's key."""
        return replace(self, log=lambda m, k=key, log=self.log: log(f"  {k}: {m}"))


UNIT_THREADS = 1  # one thread: the deterministic reference, and what --jobs workers use


# a budget that runs out inside torch's own Python code while something else traces the
# process (a debugger, coverage) tries again this much later
BUDGET_RETRY_S = 0.005
_TORCH_CODE = os.path.dirname(torch.__file__) + os.sep
_CONTEXTLIB = contextlib.__file__


def torch_caller(frame: FrameType | None) -> tuple[bool, FrameType | None]:
    """(whether ``frame`` or a frame that called it runs torch's own Python code or a
    context manager's enter or exit, the frame that called the outermost of those). That
    code keeps global state consistent only when it runs to its end: an exception raised
    in it by a signal can leave ``torch.no_grad()`` having turned grad off without the
    block that turns it back on, or functorch's stack of transforms a level off, so that
    every later ``vmap`` of the process fails an internal assert."""
    inside, caller = False, None
    while frame is not None:
        name = frame.f_code.co_filename
        if name.startswith(_TORCH_CODE) or name == _CONTEXTLIB:
            inside, caller = True, frame.f_back
        frame = frame.f_back
    return inside, caller


@contextmanager
def wall_clock_budget(seconds: float | None) -> Iterator[None]:
    """Within the block, ``UnitBudgetExceeded`` is raised once ``seconds`` have passed
    (``SIGALRM``: it lands between two Python bytecodes, after the torch kernel running
    then), and only where the unit's own code runs: when the time is up inside torch's
    Python code (``torch_caller``) it is raised at the next line of the frame that called
    into torch, once torch has returned (a training loop stops between two steps). Only
    the main thread can take signals; elsewhere, and without ``seconds``, no limit."""
    if not seconds or threading.current_thread() is not threading.main_thread() \
            or not hasattr(signal, "setitimer"):
        yield
        return
    traced: FrameType | None = None  # the frame that stops at its next line

    def stop_here(frame, event, arg):
        nonlocal traced
        sys.settrace(None)
        frame.f_trace, traced = None, None
        raise UnitBudgetExceeded(seconds)

    def stop(signum, frame):
        nonlocal traced
        inside, caller = torch_caller(frame)
        if not inside:
            raise UnitBudgetExceeded(seconds)
        if caller is None or sys.gettrace() is not None:  # nowhere of ours, or traced already
            signal.setitimer(signal.ITIMER_REAL, BUDGET_RETRY_S)
            return
        caller.f_trace, traced = stop_here, caller
        sys.settrace(lambda *a: None)  # line events for caller only: new frames untraced

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if traced is not None:  # the unit ended before reaching its caller's next line
            sys.settrace(None)
            traced.f_trace = None


@contextmanager
def grad_mode_restored() -> Iterator[None]:
    """The block starts with autograd on and the caller's grad mode comes back after it,
    however it ended: a unit that ends with grad off (an exception between
    ``torch.set_grad_enabled(False)`` and the block that turns it back on) must not leave
    every later unit of the process failing with "element 0 of tensors does not require
    grad"."""
    before = torch.is_grad_enabled()
    torch.set_grad_enabled(True)
    try:
        yield
    finally:
        torch.set_grad_enabled(before)


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """torch's intra-op thread count set to ``n`` within the block, the caller's after."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def execute(unit: Unit, options: RunOptions) -> dict[str, Any]:
    """Run one unit with ``options.threads`` torch threads; the returned record goes into the
    results document, with ``data`` (the digests of the data sets the unit read),
    ``threads``, ``executor`` and ``control`` (``{"before_s", "after_s", "cpu_share"}``:
    seconds of the machine-speed control just before and just after the unit, and the CPU
    time the unit's process got over its wall time × its threads: about 1 when nothing
    else wanted its cores, 0.67 beside two busy processes on two cores)."""
    with torch_threads(options.threads), grad_mode_restored(), \
            wall_clock_budget(options.unit_budget_s):
        control_before = control_seconds()
        torch.manual_seed(unit.seed)
        ctx = Context(unit.dataset, unit.seed, options.device, options.data_root,
                      options.download, options.log, trust_data_root=options.trust_data_root)
        started = results.now()
        t0, cpu0 = time.perf_counter(), time.process_time()
        with progress.reporting(options.log):  # a line every 10 s inside a long unit
            out = unit.task.run(unit.config, ctx)
        seconds = time.perf_counter() - t0
        # on a GPU the process waits for the device by design: no share to read there
        cpu_share = (time.process_time() - cpu0) / (seconds * options.threads) \
            if seconds > 0 and torch.device(ctx.device).type == "cpu" else None
        control_after = control_seconds()
    rec = results.unit_record(unit.task.name, unit.dataset, unit.seed, unit.record_config(),
                              started, seconds, out)
    rec.update(data=dict(ctx.sources), threads=options.threads, executor=options.executor,
               control={"before_s": control_before, "after_s": control_after,
                        "cpu_share": cpu_share})
    if ctx.clamped:  # sizes asked for beyond the data set: what was used instead
        rec["clamped"] = ctx.clamped
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
    rec = results.unit_record(unit.task.name, unit.dataset, unit.seed, unit.record_config(),
                              started, seconds, error=err if isinstance(err, str)
                              else one_line(err), traceback=tb)
    if isinstance(err, UserError):
        rec["bad_input"] = True
    return rec


def run_unit(unit: Unit, options: RunOptions) -> dict[str, Any]:
    """``execute`` that never raises for the unit's own error (``UserError``, divergence,
    a bug): it returns a failure record instead, so the other units still run. Ctrl-C and
    SIGTERM (``BaseException``) still stop the run."""
    started, t0 = results.now(), time.perf_counter()
    try:
        return execute(unit, options)
    except Exception as e:
        return failure_record(unit, e, started, time.perf_counter() - t0, traceback.format_exc())


@dataclass(frozen=True)
class UnitRunner:
    """``fn`` for an executor: ``run_unit`` with the run's options, progress lines prefixed
    with the unit's key. Picklable when ``options.log`` is (Ray pickles closures)."""

    options: RunOptions

    def __call__(self, unit: Unit) -> dict[str, Any]:
        return run_unit(unit, self.options.for_unit(unit.key))
