"""Progress and the time left inside a long unit.

A unit can train for minutes (a quick-suite memorization fits random labels; compression
retrains after every pruning step) and its start line was all the user saw. While a unit
runs, the runner installs a reporter (``reporting``) on its progress log; the loops that
take the time (``engine.train``'s) open a ``phase`` and update it once an epoch. Once the
unit has run ``EVERY_S`` seconds, and then every ``EVERY_S`` seconds, one line says where
the current phase is, in tqdm's format (``format_meter``: percentage, bar, done/total,
elapsed<left, rate), e.g. ``training run 3:  24%|██▍       | 1200/5000 [00:12<00:38,
97.56step/s]``. Lines, not a redrawn bar: units in ``--jobs`` workers send their lines to the
parent over a pipe, interleaved, and a log file reads the same.

Nothing is reported outside a run (a task called from a notebook, the tests) and nothing
here touches a random stream: metrics are the same with or without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

EVERY_S = 10.0  # [s] the first line after this long in a unit, then one per this long


@dataclass
class _Reporter:
    log: Callable[[str], None]
    every_s: float
    next_at: float
    phases: int = 0


_current: ContextVar[_Reporter | None] = ContextVar("quirkbench_progress", default=None)


def _now() -> float:
    return time.monotonic()


@contextmanager
def reporting(log: Callable[[str], None], every_s: float | None = None) -> Iterator[None]:
    """Report the phases opened inside the block to ``log`` (a unit's progress log)."""
    every = EVERY_S if every_s is None else every_s
    token = _current.set(_Reporter(log, every, _now() + every))
    try:
        yield
    finally:
        _current.reset(token)


class Phase:
    """One loop's progress: ``update(done)`` as it goes (cheap: a clock read)."""

    def __init__(self, what: str, total: int, unit: str, reporter: _Reporter | None):
        self.what, self.total, self.unit, self.reporter = what, total, unit, reporter
        self.t0 = _now()

    def update(self, done: int) -> None:
        r = self.reporter
        if r is None:
            return
        now = _now()
        if now < r.next_at:
            return
        from tqdm import tqdm

        r.next_at = now + r.every_s
        r.log(f"{self.what}: " + tqdm.format_meter(done, self.total, now - self.t0,
                                                   unit=self.unit))


def phase(what: str, total: int, detail: str = "", unit: str = "step") -> Phase:
    """A loop of ``total`` ``unit``s; ``what`` names it, numbered within the unit
    (``training run 3``), ``detail`` after the number (``training run 3 (4 models)``).
    Inert outside ``reporting``."""
    r = _current.get()
    if r is not None:
        r.phases += 1
        what = f"{what} {r.phases}"
    return Phase(what + (f" ({detail})" if detail else ""), total, unit, r)


def until(target_acc: float | None, detail: str = "") -> str:
    """A training phase's detail: its steps are a budget when it stops at a target train
    accuracy (``or 100% train``: the time left is then at most what the line says)."""
    parts = [detail] if detail else []
    return ", ".join(parts + ([] if target_acc is None else [f"or {target_acc:.0%} train"]))
