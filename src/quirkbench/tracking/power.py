"""Power analysis: what the gate can see with the seeds run.

For every metric with at least two seeds in a results set: the spread over seeds, the minimal
detectable change (MDE) of the gate's t-test at ``alpha`` and ``power`` when base and head
each run that many seeds, and the seeds a side needed to detect a given change. The change
users care about defaults to the gate's own threshold (5% of the mean, at least one
percentage point for % and pp). Timings are shown as the factor the gate's timing rule
needs. Exact metrics compared within one environment need none of this (any change is seen,
one seed suffices): their rows describe the fallback across environments.
"""

from __future__ import annotations

import math
import re

import numpy as np

from ..errors import UserError
from ..metrics import TIMING
from .stats import PERCENT_FLOOR, POWER, TIMING_K, mde, relative_threshold, seeds_needed

CHANGE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e-?[0-9]+)?)\s*(pp|%|×|x)?\s*$", re.I)


def parse_change(text: str | None):
    """``"2pp"`` (percentage points, for % and pp metrics), ``"5%"`` (relative to the mean),
    ``"1.5x"`` (a factor, for timings) or ``"0.5"`` (absolute, in each metric's unit) →
    (value, how); None → the gate's threshold."""
    if text is None:
        return None
    m = CHANGE.match(str(text))
    if not m or not float(m.group(1)) > 0:
        raise UserError(f"--change {text!r}; valid: a positive amount such as 2pp (percentage "
                        "points), 5% (of the mean), 1.5x (a timing factor) or 0.5 (the "
                        "metric's unit)")
    how = {None: "abs", "pp": "pp", "%": "rel", "×": "factor", "x": "factor"}[
        (m.group(2) or "").lower() or None]
    v = float(m.group(1))
    if how == "factor" and not v > 1:
        raise UserError(f"--change {text!r}: a factor must be > 1 (1.2x = 20% slower)")
    return v, how


def _wanted(change, mean: float, unit: str, kind: str, threshold: float,
            time_threshold: float) -> float | None:
    """The change to detect for one metric, in its unit (timings: log of the factor)."""
    if kind == TIMING:
        if change is None:
            return math.log1p(relative_threshold(kind, threshold, time_threshold))
        v, how = change
        if how == "factor":
            return math.log(v)
        return math.log1p(v / 100) if how == "rel" else None
    if change is None:
        return threshold * max(abs(mean), PERCENT_FLOOR.get(unit, 0.0))
    v, how = change
    if how == "pp":
        return v if unit in ("%", "pp") else None
    if how == "rel":
        return v / 100 * abs(mean)
    return v if how == "abs" else None


def power_table(results, change: str | None = None, alpha: float = 0.05, power: float = POWER,
                threshold: float = 0.05, time_threshold: float = 0.20,
                headline_only: bool = False):
    """One row per metric with ≥ 2 seeds: n, mean, sd, mde (unit; timings: factor), wanted,
    seeds_needed. ``results``: a results file, folder or ``load_results`` frame."""
    import pandas as pd

    from .sides import load_side

    if not 0 < alpha < 1 or not 0 < power < 1:
        raise UserError(f"--alpha and --power are probabilities in (0, 1), got {alpha}, "
                        f"{power}")
    parsed = parse_change(change)
    df = load_side(results, "RESULTS").df
    if headline_only:
        df = df[df["headline"]]
    rows = []
    for (task, dataset, key), g in df.groupby(["task", "dataset", "key"], sort=False):
        v = pd.to_numeric(g["value"], errors="coerce").to_numpy(dtype=float)
        v = v[np.isfinite(v)]
        kind, unit = str(g["kind"].iloc[0]), str(g["unit"].iloc[0])
        n = len(v)
        row = {"task": task, "dataset": dataset, "key": key, "kind": kind, "unit": unit,
               "headline": bool(g["headline"].any()), "n": n,
               "mean": float(v.mean()) if n else math.nan,
               "sd": float(v.std(ddof=1)) if n > 1 else math.nan,
               "mde": math.nan, "wanted": math.nan, "seeds_needed": None}
        if kind == TIMING:
            pos = v[v > 0]
            s = float(np.std(np.log(pos), ddof=1)) if len(pos) > 1 else math.nan
            w = _wanted(parsed, row["mean"], unit, kind, threshold, time_threshold)
            if np.isfinite(s):  # the factor rule: beat max(1 + t, exp(k σ sqrt(2/n)))
                row["mde"] = math.exp(max(math.log1p(time_threshold),
                                          TIMING_K * s * math.sqrt(2 / n)))
                if w is not None:
                    row["wanted"] = math.exp(w)
                    # below the gate's least factor no number of seeds helps
                    need = (TIMING_K * s / w) ** 2 * 2 if w >= math.log1p(time_threshold) \
                        else math.inf
                    row["seeds_needed"] = max(2, math.ceil(need)) if math.isfinite(need) \
                        else None
        else:
            w = _wanted(parsed, row["mean"], unit, kind, threshold, time_threshold)
            if n > 1:
                row["mde"] = mde(row["sd"], n, n, alpha, power)
                if w is not None and w > 0:
                    row["wanted"] = w
                    row["seeds_needed"] = seeds_needed(row["sd"], w, alpha, power)
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        raise UserError("RESULTS holds no metrics to judge")
    return out
