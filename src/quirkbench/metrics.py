"""One metric type: a value with a unit, a direction, and the paper it is held against."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

HIGHER = "higher"  # higher is better (accuracy, throughput)
LOWER = "lower"  # lower is better (time, forgetting)
NONE = "none"  # a phenomenon value that should stay where it is
DIRECTIONS = (HIGHER, LOWER, NONE)


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
    that an effect failed to reproduce, so it is reported apart from ``holds``."""

    target: float
    at_least: bool = True
    met: bool | None = None  # filled in by ``Metric`` from its value

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

    def __post_init__(self):
        if self.direction not in DIRECTIONS:
            raise ValueError(f"direction {self.direction!r} is not one of {DIRECTIONS}")
        object.__setattr__(self, "value", float(self.value))
        object.__setattr__(self, "tags", {str(k): str(v) for k, v in self.tags.items()})
        if self.goal is not None:
            object.__setattr__(self, "goal", Goal(self.goal.target, self.goal.at_least,
                                                  self.goal.check(self.value)))

    @property
    def key(self) -> str:
        """``name[k=v,...]``: a stable identifier within a task."""
        if not self.tags:
            return self.name
        inner = ",".join(f"{k}={v}" for k, v in sorted(self.tags.items()))
        return f"{self.name}[{inner}]"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
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
