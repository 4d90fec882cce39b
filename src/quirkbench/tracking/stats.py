"""The gate's statistics: tests over seeds, their power, false-discovery control and the
timing factor rule. Plain functions of numbers; the verdicts built on them are in
``compare``."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..metrics import TIMING

PERCENT_FLOOR = {"%": 20.0, "pp": 20.0}  # relative changes of % measured against ≥ 20
EXACT_RTOL = 1e-9  # exact metrics: relative difference that counts as a change
EXACT_ATOL = 1e-12  # ... and absolute, for values at 0
TIMING_K = 3.0  # timing: the factor must beat TIMING_K × the log-spread (within and A/A)
POWER = 0.8  # the power the minimal detectable change is quoted at


def same(a: float, b: float) -> bool:
    """Equal within ``EXACT_RTOL`` (relative) or ``EXACT_ATOL``; NaN equals only NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= EXACT_ATOL + EXACT_RTOL * max(abs(a), abs(b))


def min_mwu_p(n1: int, n2: int) -> float:
    """The smallest two-sided exact Mann-Whitney p that samples of sizes n1, n2 can give
    (3 against 3: 0.1, so a rank test on three seeds a side can never reach α = 0.05)."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def t_test_p(base: np.ndarray, head: np.ndarray) -> float:
    """Two-sided t-test p-value over seeds (Student's, pooled variance: for equal seed counts
    the same statistic as Welch's, on n_base + n_head − 2 degrees of freedom); NaN with fewer
    than 2 values a side. Two constant samples give 1 when equal and 0 when not."""
    if len(base) < 2 or len(head) < 2:
        return math.nan
    if np.ptp(base) == 0 and np.ptp(head) == 0:
        return 1.0 if base[0] == head[0] else 0.0
    from scipy.stats import ttest_ind

    return float(ttest_ind(head, base, equal_var=True).pvalue)


def mde(s: float, n_base: int, n_head: int, alpha: float = 0.05, power: float = POWER) -> float:
    """Minimal detectable change (same unit as ``s``) of the gate's two-sided t-test at
    ``alpha`` with ``power``, for spread ``s`` on both sides: the shift δ·SE with
    SE = s·sqrt(1/n_base + 1/n_head) at which the noncentral t (n_base + n_head − 2 degrees
    of freedom, noncentrality δ) exceeds the critical value with probability ``power``. For
    many seeds this is the familiar ``(z₁₋α/₂ + z_power) · SE``; for 3 seeds a side it is
    3.07·s where that formula says 2.29·s (and would give 68% power). NaN when ``s`` is
    unknown."""
    if not (n_base >= 1 and n_head >= 1 and np.isfinite(s)) or n_base + n_head < 3:
        return math.nan
    return float(_mde_factor(n_base, n_head, alpha, power) * s
                 * math.sqrt(1 / n_base + 1 / n_head))


@functools.lru_cache(maxsize=256)
def _mde_factor(n_base: int, n_head: int, alpha: float, power: float) -> float:
    from scipy.optimize import brentq
    from scipy.stats import nct
    from scipy.stats import t as student

    df = n_base + n_head - 2
    crit = student.ppf(1 - alpha / 2, df)

    def shortfall(d):
        return nct.sf(crit, df, d) + nct.cdf(-crit, df, d) - power

    hi = 1.0
    while shortfall(hi) < 0:
        hi *= 2
    return float(brentq(shortfall, 0.0, hi, xtol=1e-6))


def seeds_needed(s: float, change: float, alpha: float = 0.05, power: float = POWER,
                 limit: int = 10_000) -> int | None:
    """Seeds per side for ``mde(s, n, n) ≤ |change|`` (None: not within ``limit``)."""
    if not (np.isfinite(s) and np.isfinite(change)) or change == 0:
        return None
    if s == 0:
        return 2
    lo, hi = 2, 2
    while mde(s, hi, hi, alpha, power) > abs(change):
        lo, hi = hi, hi * 2
        if hi > limit:
            return None
    while lo < hi:  # smallest n with mde ≤ |change|
        mid = (lo + hi) // 2
        if mde(s, mid, mid, alpha, power) <= abs(change):
            hi = mid
        else:
            lo = mid + 1
    return lo


def bh_q_values(p: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q) over the finite entries; NaN stays NaN."""
    from scipy.stats import false_discovery_control

    q = np.full(len(p), math.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = false_discovery_control(np.clip(p[ok], 0.0, 1.0), method="bh")
    return q


def relative_threshold(kind: str, threshold: float, time_threshold: float) -> float:
    return time_threshold if kind == TIMING else threshold


def _log_spread(v: np.ndarray) -> float:
    v = v[v > 0]
    return float(np.std(np.log(v), ddof=1)) if len(v) > 1 else math.nan


def timing_limit(vb: np.ndarray, vh: np.ndarray, time_threshold: float,
                 aa_sigma: float | None) -> float:
    """The factor a timing must beat: max(1 + time_threshold, exp(TIMING_K · σ)) for σ both
    the A/A log-spread of the ratio (when known: how far identical runs drift apart) and the
    one the runs' own seeds imply (how unsteady the machine was during these runs)."""
    sig = [math.log1p(time_threshold)]
    if aa_sigma is not None and np.isfinite(aa_sigma):
        sig.append(TIMING_K * aa_sigma)
    sb, sh = _log_spread(vb), _log_spread(vh)
    if np.isfinite(sb) and np.isfinite(sh):
        sig.append(TIMING_K * math.sqrt(sb**2 / len(vb) + sh**2 / len(vh)))
    return math.exp(max(sig))


def read_timing_spread(path: str | Path | None) -> dict[str, float]:
    """A/A spread file (JSON ``{"task/key": σ of log(head/base), ...}``, as written by
    ``python -m qbtools.gate.aa --spread``); {} when no path."""
    if path is None:
        return {}
    path = Path(path)
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--timing-spread file {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"--timing-spread file {path} is not readable JSON "
                        f"({type(e).__name__})") from None
    spread = d.get("spread") if isinstance(d, dict) else None
    if not isinstance(spread, dict) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0
            for v in spread.values()):
        raise UserError(f"--timing-spread file {path}: expected {{\"spread\": {{\"task/key\": "
                        "σ ≥ 0, ...}}}")
    return {str(k): float(v) for k, v in spread.items()}


