"""Step changes in a metric's history over commits (``quirkbench history``, the history page).

A nightly series (one value per night, oldest first) is split into segments of constant
level by asv's own step detection (``asv.step_detect.solve_potts``: an exact penalized
fit of a step function with the robust L1 cost, in C), with the penalty scaled by the
series' own noise, estimated from the median absolute first difference (a step moves one
difference, so it barely moves the median):

    sigma = median(|x[i+1] - x[i]|) / (0.6745 · sqrt(2))
    gamma = PENALTY · sigma · log(n)          (L1 cost: in units of sigma)

``PENALTY`` = 2.5 was set on simulated pure-noise series (normal and Student-t₃ noise,
200 series each for n = 8, 12, 30, 100): 0-4.5% of them showed any step (the most at
n = 8), while a 3-sigma step in the middle of 30 nights was found 99 times in 100.
``tests/test_changepoints.py`` checks ≤ 5% over 200 noise series and that planted steps
are found at the right commit. Only the newest ``WINDOW`` points are searched (the
search is quadratic in n).

A deterministic metric (the same value every night until the code changes) has sigma = 0:
the noise floor ``REL_FLOOR`` × its level then stands in, so any real change is a step and
float round-off is not. Each step names the first point after it (the first commit that
shows the new level), the levels before and after (medians of the two segments) and the
size of the step.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

PENALTY = 2.5  # × sigma × log(n); calibrated on noise (module docstring)
WINDOW = 120  # newest points searched
MIN_SIZE = 2  # points per segment: one outlier night is not a step
REL_FLOOR = 1e-6  # noise floor relative to the series' level (deterministic metrics)
ABS_FLOOR = 1e-12
MAD_TO_SIGMA = 1.0 / (0.6745 * math.sqrt(2.0))  # first differences of N(0, s²) have sd s·√2


@dataclass(frozen=True)
class Step:
    """A step change: ``index`` is the first point after it, ``label`` that point's label
    (the commit), ``before``/``after`` the medians of the segments on either side."""

    index: int
    label: str
    before: float
    after: float

    @property
    def size(self) -> float:
        return self.after - self.before

    @property
    def relative(self) -> float:
        """Size relative to the level before, as a fraction (inf when that level is 0)."""
        if self.before == 0:
            return 0.0 if self.size == 0 else math.copysign(math.inf, self.size)
        return self.size / abs(self.before)

    def to_dict(self) -> dict:
        return {**asdict(self), "size": self.size, "relative": self.relative}

    def describe(self, unit: str = "") -> str:
        u = f" {unit}" if unit and unit not in ("1",) else ""
        rel = "" if not math.isfinite(self.relative) else f" ({100 * self.relative:+.1f}%)"
        return (f"step at {self.label}: {self.before:.4g} → {self.after:.4g}{u}, "
                f"{self.size:+.4g}{u}{rel}")


def noise_sigma(x: np.ndarray) -> float:
    """Robust noise sd of a series: median absolute first difference / (0.6745 √2), floored
    at ``REL_FLOOR`` × the series' level (a deterministic series has no noise)."""
    x = np.asarray(x, dtype=float)
    floor = max(REL_FLOOR * float(np.median(np.abs(x))) if len(x) else 0.0, ABS_FLOOR)
    if len(x) < 2:
        return floor
    return max(float(np.median(np.abs(np.diff(x)))) * MAD_TO_SIGMA, floor)


def detect(values, labels=None, *, penalty: float = PENALTY, min_size: int = MIN_SIZE,
           window: int = WINDOW) -> list[Step]:
    """Steps in ``values`` (oldest first; NaN points are skipped), each named by ``labels``
    (default: the point's index). Only the newest ``window`` finite points are searched;
    fewer than ``2 · min_size`` of them: no steps."""
    try:
        from asv.step_detect import solve_potts
    except ImportError:
        from ..errors import UserError

        raise UserError("change-point detection needs asv: pip install 'quirkbench[track]'") \
            from None
    v = np.asarray(values, dtype=float)
    labels = [str(i) for i in range(len(v))] if labels is None else [str(s) for s in labels]
    if len(labels) != len(v):
        raise ValueError(f"{len(v)} values but {len(labels)} labels")
    keep = np.flatnonzero(np.isfinite(v))[-window:]
    x = v[keep]
    n = len(x)
    if n < 2 * min_size:
        return []
    sigma = noise_sigma(x)
    # centre and scale: the cost is then in units of sigma, so round-off stays far below gamma
    z = ((x - np.median(x)) / sigma).tolist()
    right, _, _ = solve_potts(z, [1.0] * n, gamma=penalty * math.log(n), min_size=min_size)
    steps = []
    bounds = [0, *right]
    for a, b, c in zip(bounds, bounds[1:], bounds[2:], strict=False):
        before, after = float(np.median(x[a:b])), float(np.median(x[b:c]))
        if before != after:
            steps.append(Step(int(keep[b]), labels[keep[b]], before, after))
    return steps


# --------------------------------------------------------------------------- a results folder

def history_series(results_dir, all_metrics: bool = False) -> list[dict]:
    """Per suite in a folder of results documents (runs in start order): the runs' commits
    and, per tracked metric (task, dataset, key), its unit and mean over seeds per run (NaN
    where a run lacks it). Tracked: a task's headline metrics (all of them when it marks
    none), or every metric with ``all_metrics``. Documents that are not results (asv,
    pytest-benchmark JSON) are skipped."""
    from collections import defaultdict
    from pathlib import Path

    import pandas as pd

    from ..errors import UserError
    from .results import find_documents, load_results, read, run_commit

    runs = []
    for p in find_documents(Path(results_dir)):
        try:
            meta = read(p)["meta"]
        except UserError:
            continue
        runs.append((meta.get("started") or "", p, meta))
    runs.sort(key=lambda r: r[0])
    by_suite = defaultdict(list)
    for r in runs:
        by_suite[str(r[2].get("suite"))].append(r)
    out = []
    for suite, rs in by_suite.items():
        frames = []
        for i, (_, p, _) in enumerate(rs):
            df = load_results(p)
            if not df.empty:
                frames.append(df.assign(_run=i))
        series: dict[tuple, dict] = {}
        if frames:
            df = pd.concat(frames, ignore_index=True)
            if not all_metrics:
                df = df[df["headline"] | ~df.groupby("task")["headline"].transform("any")]
            df = df.assign(value=pd.to_numeric(df["value"], errors="coerce"))
            for (task, dataset, key), g in df.groupby(["task", "dataset", "key"], sort=False):
                means = g.groupby("_run")["value"].mean()
                values = [float(means.get(i, math.nan)) for i in range(len(rs))]
                series[(task, dataset, key)] = {"unit": g["unit"].iloc[0], "values": values}
        out.append({"suite": suite, "commits": [run_commit(m) or "unknown" for _, _, m in rs],
                    "docs": [str(p) for _, p, _ in rs], "series": series})
    return out


def history_steps(results_dir, all_metrics: bool = False) -> list[dict]:
    """``history_series`` with the steps found in each metric's series (labels: commits)."""
    suites = history_series(results_dir, all_metrics)
    for s in suites:
        for m in s["series"].values():
            m["steps"] = detect(m["values"], [c[:10] for c in s["commits"]])
    return suites
