"""One metric type: a value with a unit, a direction, a kind, and the paper it is held against.

The *kind* says how a metric may be compared between runs (``quirkbench compare``), and it is
declared where the metric is made, never inferred from its unit:

* ``exact``: deterministic given the seed, the settings, the library versions, the device
  and the thread count (the phenomena on a CPU are bit-identical run to run): compared value
  by value per seed when both runs share that environment, statistically otherwise;
* ``stochastic``: varies between runs of the same seed even in one environment: compared by
  effect size against the spread over seeds;
* ``timing``: wall clock or anything derived from it (seconds, samples/s, speedups, shares of
  the step time, idle fraction): machine-bound and noisy, compared by a factor rule.

``scale`` says on which scale a metric's seed-to-seed noise is symmetric, so that the noise
model and ``compare`` weigh a change there: ``log`` for a positive value whose noise is
multiplicative, a standard deviation (or range) over models above all: the sample sd of k
normal draws is σ·χ_{k−1}/√(k−1), right-skewed on the linear scale, while the sd of its log
(about 1/√(2(k−1))) does not depend on σ. Ratios (unit ×) are always judged on the log scale.

``baseline`` names, for a ratio of two timings (``speedup_vs_naive``), the key of the metric
in the same unit that is its denominator: when that baseline moves, the ratio moves without
anything in the numerator changing, and ``compare`` labels the row so.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

HIGHER = "higher"  # higher is better (accuracy, throughput)
LOWER = "lower"  # lower is better (time, forgetting)
NONE = "none"  # a phenomenon value that should stay where it is
DIRECTIONS = (HIGHER, LOWER, NONE)

EXACT = "exact"  # deterministic for one seed, settings and environment
STOCHASTIC = "stochastic"  # varies run to run even for one seed: compare against the spread
TIMING = "timing"  # wall clock and everything derived from it
KINDS = (EXACT, STOCHASTIC, TIMING)

LINEAR = "linear"  # seed noise additive: accuracies, steps, percentages
LOG = "log"  # seed noise multiplicative: spreads over models (ratios, unit ×, always are)
SCALES = (LINEAR, LOG)


@dataclass(frozen=True)
class Anchor:
    """A published figure: ``value`` in ``unit`` from ``paper`` (``where``: table, figure or
    setting)."""

    paper: str
    value: float | None = None
    unit: str = ""
    where: str = ""

    def describe(self) -> str:
        v = "" if self.value is None else \
            f"{self.value:g}{_sep(self.unit)}{shown_unit(self.unit)} "
        w = f", {self.where}" if self.where else ""
        return f"{v}({self.paper}{w})".strip()


@dataclass(frozen=True)
class Goal:
    """A performance target (``value ≥ target``, or ``≤`` when ``at_least`` is false).

    A goal is not a phenomenon check: missing it means the code is slower than hoped, not
    that an effect failed to reproduce, so it is reported apart from ``holds``.
    ``not_judged``: why this run cannot judge it (a budget too small to time the code
    fairly), one line; ``met`` is then None, never "missed"."""

    target: float
    at_least: bool = True
    met: bool | None = None  # filled in by ``Metric`` from its value
    not_judged: str = ""

    def check(self, value: float) -> bool:
        if not math.isfinite(value):
            return False
        return value >= self.target if self.at_least else value <= self.target

    def describe(self) -> str:
        return f"{'≥' if self.at_least else '≤'} {self.target:g}"


def _sep(unit: str) -> str:
    return "" if unit in ("%", "×", "", "1") else " "


def shown_unit(unit: str) -> str:
    """The unit as printed after a number: dimensionless ("1") prints nothing."""
    return "" if unit == "1" else unit


@dataclass(frozen=True)
class Metric:
    """A measured number.

    ``name`` is the field's word (``steps_to_fit``, ``success_rate``); ``tags`` say which
    condition/attack/budget it belongs to (``{"condition": "random-labels"}``), so the pair
    (name, tags) identifies a metric within a task. ``holds`` is the verdict of the
    phenomenon check (does the effect appear at all?), ``None`` where there is no check;
    ``goal`` is a performance target (``Goal``), reported apart from ``holds``.
    ``not_shown``: why this run's budget cannot show the phenomenon that the check tests
    (one line, naming what can: "at this budget ...; run --suite quick"); ``holds`` is then
    None. A check that a run *can* make is never marked so: it holds or it fails.
    """

    name: str
    value: float
    unit: str
    direction: str = NONE
    tags: dict[str, str] = field(default_factory=dict)
    anchor: Anchor | None = None
    holds: bool | None = None
    headline: bool = False  # shown first in summaries, tracked by asv
    goal: Goal | None = None  # a performance target, not a phenomenon check
    kind: str = EXACT  # how compare treats it: exact, stochastic or timing (see the module)
    baseline: str | None = None  # timing ratios: key of the denominator metric in this unit
    not_shown: str = ""  # why the budget cannot show what the check tests (holds is None)
    # timing made from repeats: the standard error of ln(value) over this run's own repeats
    # (a ratio: over its per-repeat ratios), so a change its repeats explain is not judged
    spread: float | None = None
    scale: str = LINEAR  # the scale its seed noise is symmetric on (see the module)

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction {self.direction!r} is not one of {DIRECTIONS}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {KINDS}")
        if self.scale not in SCALES:
            raise ValueError(f"scale {self.scale!r} is not one of {SCALES}")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "tags", {str(k): str(v) for k, v in self.tags.items()})
        if self.spread is not None:
            object.__setattr__(self, "spread", float(self.spread))
            if not self.spread >= 0 or not math.isfinite(self.spread):
                raise ValueError(f"{self.name}: spread {self.spread!r} is not a finite number "
                                 "≥ 0")
        if self.not_shown and self.holds is not None:
            raise ValueError(f"{self.name}: a check not shown at this budget has no verdict "
                             f"(holds {self.holds!r})")
        if self.goal is not None:
            g = self.goal
            object.__setattr__(self, "goal", Goal(g.target, g.at_least, None if g.not_judged
                                                  else g.check(self.value), g.not_judged))

    @property
    def key(self) -> str:
        """``name[k=v,...]``: a stable identifier within a task."""
        return metric_key(self.name, self.tags)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.not_shown:  # written only where set: documents stay as they were
            del d["not_shown"]
        if self.spread is None:
            del d["spread"]
        if self.scale == LINEAR:  # written only where declared: documents stay as they were
            del d["scale"]
        if self.goal is not None and not self.goal.not_judged:
            del d["goal"]["not_judged"]
        if not math.isfinite(self.value):
            d["value"] = None if math.isnan(self.value) else str(self.value)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Metric:
        d = dict(d)
        a = d.pop("anchor", None)
        g = d.pop("goal", None)
        v = d.pop("value")
        v = math.nan if v is None else float(v)
        return cls(value=v, anchor=Anchor(**a) if a else None, goal=Goal(**g) if g else None,
                   **d)


def metric_key(name: str, tags: dict[str, Any] | None = None) -> str:
    """``name[k=v,...]`` (tags sorted): the key a metric with these name and tags has."""
    if not tags:
        return name
    inner = ",".join(f"{k}={v}" for k, v in sorted((str(k), str(v)) for k, v in tags.items()))
    return f"{name}[{inner}]"


def fmt_value(value: float, unit: str) -> str:
    """Human formatting: ``97.3%``, ``12.0×``, ``1.23 s``; dimensionless (unit ``"1"``)
    values carry no unit: ``0.0398``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "×":
        return f"{value:.1f}×"
    if abs(value) >= 1000:
        s = f"{value:,.0f}"
    elif abs(value) >= 100:
        s = f"{value:.1f}"
    elif abs(value) >= 1:
        s = f"{value:.2f}"
    else:
        s = f"{value:.3g}"
    return f"{s}{_sep(unit)}{shown_unit(unit)}".strip()
