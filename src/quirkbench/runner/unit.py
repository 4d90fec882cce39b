"""One unit, run: the run's options, the unit's record, and the record of a unit that failed.

Every executor runs a unit through :func:`run_unit` with the run's :class:`RunOptions`, in
this process or in a worker (pool workers and Ray tasks call it themselves), so a unit's
numbers do not depend on where it ran.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..errors import UserError
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
    runs on the CPU (``None``: leave torch's setting alone).
    """

    device: torch.device
    data_root: str | None = None
    download: bool = False
    trust_data_root: bool = False
    log: Callable[[str], None] = print
    threads: int | None = None

    def for_unit(self, key: str) -> RunOptions:
        """The same options, progress lines prefixed with the unit's key."""
        return replace(self, log=lambda m, k=key, log=self.log: log(f"  {k}: {m}"))


def execute(unit: Unit, options: RunOptions) -> dict[str, Any]:
    """Run one unit; the returned record goes into the results document (with ``data``: the
    digests of the data sets the unit read)."""
    torch.manual_seed(unit.seed)
    ctx = Context(unit.dataset, unit.seed, options.device, options.data_root, options.download,
                  options.log, trust_data_root=options.trust_data_root)
    started = results.now()
    t0 = time.perf_counter()
    out = unit.task.run(unit.config, ctx)
    rec = results.unit_record(unit.task.name, unit.dataset, unit.seed, unit.record_config(),
                              started, time.perf_counter() - t0, out)
    rec["data"] = dict(ctx.sources)
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
