"""A results document's headline metrics as asv tracks (what ``bench/bench_tracks.py`` reads).

A night runs the suite once and writes its results document; ``scripts/nightly.sh`` then
names that document to asv (``QB_ASV_RESULTS``), so asv's tracks record the night's
numbers without training anything a second time. Every task's metrics marked
``headline=True`` become tracks, one series per (data set and metric key, seed).

asv reads a rise of a track as worse (``asv compare``, and the nightly gate's rule in
``asv_record``), so each value is oriented up = worse from the metric's own direction:

* lower-is-better: as it is;
* higher-is-better in %: its shortfall from 100 (``test_acc`` 86% → 14);
* other higher-is-better: negated;
* no direction (steps to fit, a success rate): as it is, an *undirected* track, which the
  nightly gate judges in both directions (``bench.common.EITHER_WAY``).
"""

from __future__ import annotations

import functools
import math
import os
from dataclasses import dataclass
from pathlib import Path

from ..metrics import HIGHER, NONE
from .results import metrics_of, read

#: the environment variable naming the night's results document (``scripts/nightly.sh``)
RESULTS_ENV = "QB_ASV_RESULTS"


def oriented(value: float | None, unit: str, direction: str) -> float:
    """``value`` oriented so that up is worse (see the module); NaN when there is none."""
    if value is None or not math.isfinite(value):
        return math.nan
    if direction == HIGHER:
        return 100.0 - value if unit == "%" else -value
    return float(value)


def label(dataset: str, key: str, unit: str, direction: str) -> str:
    """The track's parameter: data set, the metric key as oriented, and the unit
    (``mnist5k 100 - test_acc[model=dense] (%)``)."""
    how = ("100 - " if unit == "%" else "-") if direction == HIGHER else ""
    return f"{dataset} {how}{key} ({unit})"


@dataclass(frozen=True)
class Headlines:
    """The headline values of one results document: {(task, directed, label, seed): value},
    values oriented up = worse (``label`` says how)."""

    path: str
    values: dict[tuple[str, bool, str, str], float]

    def tasks(self) -> list[str]:
        return sorted({t for t, _, _, _ in self.values})

    def params(self, task: str, directed: bool) -> tuple[list[str], list[str]]:
        """(labels, seeds) of ``task``'s directed or undirected tracks; ([], []) if none."""
        keys = [(label, seed) for t, d, label, seed in self.values if t == task and d == directed]
        return (sorted({k[0] for k in keys}),
                sorted({k[1] for k in keys}, key=int)) if keys else ([], [])

    def value(self, task: str, directed: bool, label: str, seed: str) -> float:
        """The oriented value; NaN for a combination the run did not produce (asv: n/a)."""
        return self.values.get((task, directed, label, seed), math.nan)


@functools.cache
def headlines(path: str) -> Headlines:
    """The headline tracks of the results document at ``path`` (read once per process)."""
    values = {}
    for unit in read(path)["units"].values():
        if unit.get("status") != "done":
            continue
        for m in metrics_of(unit):
            if m.headline:
                key = (unit["task"], m.direction != NONE,
                       label(unit["dataset"], m.key, m.unit, m.direction), str(unit["seed"]))
                values[key] = oriented(m.value, m.unit, m.direction)
    return Headlines(str(path), values)


def night() -> Headlines | None:
    """The headline tracks of the document ``QB_ASV_RESULTS`` names; None when unset (a
    missing or damaged document is a ``UserError``: the nightly named it)."""
    path = os.environ.get(RESULTS_ENV)
    return headlines(str(Path(path).resolve())) if path else None
