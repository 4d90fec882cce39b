"""A clock in units of a control workload, for the pytest-benchmark gate
(``--benchmark-timer=bench.paired_clock.clock``; ``scripts/bench_gate.sh`` uses it).

pytest-benchmark compares two runs made minutes apart (the base's, saved, and the head's);
on a machine whose speed moves by tens of percent over tens of seconds (a shared virtual
machine) their ratio is the machine's as much as the code's. Here every timed round is
preceded (pytest-benchmark's ``setup``, untimed) by one call of a fixed control workload,
whose duration becomes the clock's unit until the next round: the round's duration on this
clock is (its time) / (the control's time a moment before), a paired ratio, the way the asv
paired track and the throughput task measure. A change to the code moves the numerator only;
a change of the machine's speed moves both and cancels. ``QB_BENCH_BASE_CLOCK``: ``process``
(default: the process's CPU time) or ``wall`` (a GPU, synchronised inside the calls).
"""

from __future__ import annotations

import os
import time

_base = time.perf_counter if os.environ.get("QB_BENCH_BASE_CLOCK") == "wall" \
    else time.process_time
_unit = [1.0]


def clock() -> float:
    """The base clock in units of the last control call's duration."""
    return _base() / _unit[0]


def calibrate(control) -> None:
    """Time one call of ``control`` on the base clock; that duration is the unit from now on."""
    t0 = _base()
    control()
    _unit[0] = max(_base() - t0, 1e-9)
