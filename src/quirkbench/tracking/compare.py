"""The PR gate's statistics: ``quirkbench compare BASE HEAD``.

Each side is a results document, a folder of them, or a tidy frame from
``quirkbench.load_results``. Values of one metric (task × data set × key) are taken per
seed. How a metric is judged depends on its *kind* (declared by the task, see
``quirkbench.metrics``), never on its unit:

* ``exact`` metrics, when both runs share the environment fingerprint (quirkbench, torch and
  Python versions, device, thread count, deterministic kernels; the task's settings) and at
  least one seed: compared value by value on the shared seeds; a difference beyond
  ``EXACT_RTOL`` (relative) is ``behaviour changed``. No statistics, no false alarms, one
  seed suffices. When the fingerprints differ, ``warnings`` name the differing fields and the
  metric is judged like a stochastic one.
* ``stochastic`` metrics (and exact ones across environments): a t-test over seeds
  (``scipy.stats.ttest_ind``, pooled variance: with equal seed counts the statistic is
  Welch's; its minimal detectable change is exact, see ``mde``) gives ``p_value``; the
  change must be significant after the false-discovery-rate control below AND beyond the
  relative ``threshold`` (default 5% of |base mean|, with a floor of 20 for % and pp, i.e.
  1 percentage point). ``mde`` is the minimal detectable change at ``alpha`` and 80% power
  from the base's spread, by the noncentral t distribution (for many seeds the familiar
  ``(z₁₋α/₂ + z₀.₈) · s_base · sqrt(1/n_base + 1/n_head)``); where it exceeds the
  threshold the row notes how many seeds would resolve it (``seeds_needed``). With a single
  value on a side there is no spread: the threshold alone decides, widened ``N1_MARGIN``×.
* ``timing`` metrics: ``ratio`` = head median / base median; flagged only when the slowdown
  or speedup factor beats ``1 + time_threshold`` (default 1.2) AND ``TIMING_K`` = 3 times
  the log-spread seen in A/A runs (``timing_spread``: metric → root mean square of
  log(head/base) between identical runs) or, without one, within the two runs' own seeds,
  AND, with ≥ 2 values a side, the two sides do not overlap. ``p_value`` (a t-test on the
  log values) is shown, not used: a timing is a step, not a sample mean. A timing fails the
  gate only when it is a headline metric (the suite's chosen speed numbers; the others are
  shown). A ratio of timings whose denominator (``baseline``) itself moved beyond this rule
  reads ``baseline moved``, never improved or regressed.

Suite-wide false-alarm control: Benjamini-Hochberg over the p-values of the statistical
tests (stochastic metrics, and exact ones across environments;
``scipy.stats.false_discovery_control``) gives ``q_value``; a change counts as significant
when ``q ≤ fdr`` (default 0.05). ``df.attrs["chance"]`` says how many alarms chance alone
would give.

Verdicts: ``regressed`` / ``improved`` by the metric's direction, ``moved`` for a
direction-none value that changed significantly, ``behaviour changed`` (exact), ``baseline
moved`` (timing ratios), ``expected`` (a change listed in the expected-changes file),
``new`` / ``gone``, ``unchanged``. ``fails`` marks the rows that fail the gate: regressions;
a headline metric that changed behaviour, moved, or is gone (a timing only when it is a
headline that regressed) unless expected; with ``fail_on="moved"`` every non-timing change.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from ..metrics import EXACT, HIGHER, LOWER, TIMING, fmt_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

VERDICTS = ("regressed", "behaviour changed", "moved", "gone", "expected", "baseline moved",
            "improved", "new", "unchanged")  # display order
PERCENT_FLOOR = {"%": 20.0, "pp": 20.0}  # relative changes of % measured against ≥ 20
N1_MARGIN = 2.0  # threshold multiplier when a side has a single value (no noise estimate)
EXACT_RTOL = 1e-9  # exact metrics: relative difference that counts as a change
EXACT_ATOL = 1e-12  # ... and absolute, for values at 0
TIMING_K = 3.0  # timing: the factor must beat TIMING_K × the log-spread (within and A/A)
POWER = 0.8  # the power the minimal detectable change is quoted at
KEYS = ["task", "dataset", "key"]
REQUIRED = {"task", "dataset", "key", "metric", "value", "unit", "direction"}
COLUMNS = ["task", "dataset", "key", "metric", "unit", "direction", "base_mean", "base_std",
           "base_n", "head_mean", "head_std", "head_n", "change", "change_pct", "p_value",
           "verdict",
           # added with metric kinds; the names above keep their meaning
           "kind", "headline", "test", "exact", "ratio", "q_value", "mde", "seeds_needed",
           "fails", "note"]
# the fingerprint fields that must agree for exact metrics to be compared value by value
FINGERPRINT = ("quirkbench", "torch", "python", "device", "device_name", "cpu_threads",
               "deterministic", "data")
FAIL_ON = ("regressed", "moved")


# --------------------------------------------------------------------------- the two sides

@dataclass
class Side:
    """One side of the comparison: its metrics frame and, for documents, their meta."""

    name: str  # BASE or HEAD
    df: pd.DataFrame
    metas: list[dict]  # one per document (empty for a frame)
    units: dict[str, dict]  # unit key → record (documents only)
    files: list[str]

    @property
    def fingerprint(self) -> dict[str, object] | None:
        """The environment fields of FINGERPRINT, or None when unknown or mixed."""
        if not self.metas:
            return None
        prints = []
        for m in self.metas:
            fp = {k: m.get(k) for k in FINGERPRINT}
            data = m.get("data") if isinstance(m.get("data"), dict) else {}
            fp["data"] = json.dumps({name: rec.get("sha256") if isinstance(rec, dict) else None
                                     for name, rec in data.items()}, sort_keys=True)
            if fp["deterministic"] is None:  # documents from before the field: CPU kernels are
                fp["deterministic"] = not str(m.get("device", "")).startswith("cuda")
            prints.append(fp)
        return prints[0] if all(p == prints[0] for p in prints) else None


def _side(x, name: str) -> Side:
    if isinstance(x, pd.DataFrame):
        df, metas, units, files = x, [], {}, []
    elif isinstance(x, (str, Path)):
        from .results import find_documents, load_results, read

        files = [str(f) for f in find_documents(x)]
        docs = [read(f) for f in files]
        metas = [d["meta"] for d in docs]
        units = {k: u for d in docs for k, u in d["units"].items()}
        df = load_results(x)
    else:
        raise UserError(f"{name} must be a results file, a folder or a DataFrame, "
                        f"got {type(x).__name__}")
    missing = REQUIRED - set(df.columns)
    if len(df) and missing:
        raise UserError(f"{name} is not a quirkbench results table (missing columns: "
                        f"{', '.join(sorted(missing))})")
    if df.empty:
        raise UserError(f"{name} holds no finished metrics")
    df = df.copy()
    if "kind" not in df.columns:  # a frame without kinds: the schema-1 rule
        from .results import legacy_kind

        df["kind"] = [legacy_kind(str(m), str(u)) for m, u in zip(df["metric"], df["unit"],
                                                                   strict=True)]
    for col, default in (("headline", False), ("baseline", None), ("seed", None)):
        if col not in df.columns:
            df[col] = default
    df["headline"] = df["headline"].fillna(False).astype(bool)
    return Side(name, df, metas, units, files)


def _frame(x, side: str) -> pd.DataFrame:
    return _side(x, side).df


def incomplete_units(side: Side) -> list[str]:
    """Unit keys of a document side that were planned but are not done: failed or missing
    units, judged from each document's planned tasks × seeds (data sets as run)."""
    missing = []
    for meta in side.metas:
        seeds = meta.get("seeds") or []
        for task in meta.get("tasks") or []:
            sets = sorted({u.get("dataset") for u in side.units.values()
                           if u.get("task") == task} - {None}) or list(meta.get("datasets") or [])
            for d in sets:
                for s in seeds:
                    k = f"{task}/{d}/{s}"
                    if side.units.get(k, {}).get("status") != "done":
                        missing.append(k)
    missing += [k for k, u in side.units.items()
                if u.get("status") != "done" and k not in missing]
    return sorted(set(missing))


def check_complete(side: Side, allow_incomplete: bool) -> list[str]:
    """Refuse (``UserError``) a side whose run did not finish, unless allowed; the warning
    lines listing what is missing otherwise."""
    if not side.metas:
        return []
    status = sorted({str(m.get("status")) for m in side.metas} - {"done"})
    missing = incomplete_units(side)
    if not status and not missing:
        return []
    what = (f"status {'/'.join(status)}" if status else "status done") + \
        (f", {len(missing)} unit(s) not done" if missing else "")
    if not allow_incomplete:
        raise UserError(f"{side.name} {', '.join(side.files)} is an incomplete run ({what}); "
                        f"finish it (quirkbench run resumes) or pass --allow-incomplete")
    shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12
                                       else "")
    return [f"warning: {side.name} is incomplete ({what})" + (f": {shown}" if missing else "")]


def environment_warnings(b: Side, h: Side) -> tuple[bool, list[str]]:
    """(do the environments agree, so exact metrics compare value by value?, warnings)."""
    fb, fh = b.fingerprint, h.fingerprint
    lines = []
    if b.metas and fb is None or h.metas and fh is None:
        lines.append("warning: the documents of one side ran in different environments; "
                     "exact metrics are compared statistically")
        return False, lines
    if fb is None or fh is None:
        return False, lines  # frames: no fingerprint, statistics only
    diff = [f"{k} {fb.get(k)} → {fh.get(k)}" for k in FINGERPRINT if fb.get(k) != fh.get(k)]
    if diff:
        lines.append(f"warning: environments differ ({'; '.join(diff)}): exact metrics are "
                     "compared statistically, over seeds")
    if not fb.get("deterministic"):
        lines.append("warning: nondeterministic kernels (a GPU without deterministic "
                     "algorithms): exact metrics are compared statistically")
        return False, lines
    return not diff, lines


def _suites(df: pd.DataFrame) -> set[str]:
    return set(df["suite"].dropna().astype(str)) if "suite" in df.columns else set()


def _datasets(df: pd.DataFrame) -> set[str]:
    return set(df["dataset"].dropna().astype(str))


# --------------------------------------------------------------------------- expected changes

@dataclass(frozen=True)
class Expected:
    """One approved change: ``metric`` is ``task/key`` or ``task/dataset/key`` (``task/*``:
    every metric of the task; shell wildcards ``*``/``?`` match as in ``fnmatch``, brackets
    are literal), or ``benchmark`` an asv benchmark name (wildcards too: the nightly job's
    asv record); ``old``/``new`` (None: any value) with relative ``tol``."""

    metric: str
    reason: str
    old: float | None = None
    new: float | None = None
    tol: float = 0.01
    benchmark: bool = False  # ``metric`` names an asv benchmark, not a quirkbench metric

    def matches(self, task: str, dataset: str, key: str) -> bool:
        if self.benchmark:
            return False
        if self.metric in (f"{task}/{key}", f"{task}/{dataset}/{key}", f"{task}/*"):
            return True
        pat = self.metric.replace("[", "[[]")  # a metric key's brackets are literal text
        return any(fnmatch.fnmatchcase(name, pat)
                   for name in (f"{task}/{key}", f"{task}/{dataset}/{key}"))

    def matches_benchmark(self, name: str) -> bool:
        return self.benchmark and (name == self.metric
                                   or fnmatch.fnmatchcase(name, self.metric))

    def agrees(self, base_mean: float, head_mean: float) -> bool:
        def near(a, b):
            return a is None or (np.isfinite(b) and abs(b - a) <= self.tol * max(abs(a), 1e-12))
        return near(self.old, base_mean) and near(self.new, head_mean)


def read_expected(path: str | Path) -> list[Expected]:
    """The expected-changes file (TOML), read by ``compare --expect`` and ``nightly
    --expect`` alike: ``[[change]]`` tables with ``metric`` (or ``benchmark``: an asv
    benchmark name), ``reason`` and optionally ``old``, ``new`` (numbers; leave out or
    ``"any"`` for any value) and ``tol`` (relative, default 0.01). Anything else is a
    one-line ``UserError`` naming the entry."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"--expect file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"--expect file {path} cannot be read ({type(e).__name__})") from None
    except tomllib.TOMLDecodeError as e:
        raise UserError(f"--expect file {path} is not valid TOML: {e}") from None
    entries = doc.get("change")
    extra = sorted(set(doc) - {"change"})
    if extra or not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UserError(f"--expect file {path}: expected only [[change]] tables with metric "
                        f"and reason, found {', '.join(extra) or 'no [[change]] entries'}")
    out = []
    for i, e in enumerate(entries, 1):
        where = f"--expect file {path}, change {i}"
        unknown = sorted(set(e) - {"metric", "benchmark", "reason", "old", "new", "tol"})
        if unknown:
            raise UserError(f"{where}: unknown field(s) {', '.join(unknown)}; valid: metric "
                            "(or benchmark), reason, old, new, tol")
        metric, bench, reason = e.get("metric"), e.get("benchmark"), e.get("reason")
        if (metric is None) == (bench is None):
            raise UserError(f"{where}: give exactly one of metric ('task/key') or benchmark "
                            "(an asv benchmark name)")
        if bench is not None and (not isinstance(bench, str) or not bench.strip()):
            raise UserError(f"{where}: benchmark must be an asv benchmark name, got {bench!r}")
        if metric is not None and (not isinstance(metric, str)
                                   or metric.split("[")[0].count("/") not in (1, 2)):
            raise UserError(f"{where}: metric must be text like 'task/key' or "
                            f"'task/dataset/key', got {metric!r}")
        if not isinstance(reason, str) or not reason.strip():
            raise UserError(f"{where}: reason must be non-empty text (say why it changed)")
        vals = {}
        for f in ("old", "new"):
            v = e.get(f, "any")
            if v == "any":
                vals[f] = None
            elif isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                vals[f] = float(v)
            else:
                raise UserError(f"{where}: {f} must be a number or \"any\", got {v!r}")
        tol = e.get("tol", 0.01)
        if not isinstance(tol, (int, float)) or isinstance(tol, bool) or not tol >= 0:
            raise UserError(f"{where}: tol must be a number ≥ 0 (relative), got {tol!r}")
        out.append(Expected((metric or bench).strip(), reason.strip(), vals["old"], vals["new"],
                            float(tol), benchmark=bench is not None))
    return out


# --------------------------------------------------------------------------- settings

def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    """Nested config → {"train.lr": "0.05", ...}, leaves as canonical JSON text."""
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return out


def task_configs(x) -> dict[str, list[dict[str, str]]]:
    """task → its distinct flattened configs on one side (JSON-normalised, so a tuple and a
    list are the same). ``x``: results file or folder (configs read from the documents'
    units) or a frame (its ``config`` column when it has one, dicts or JSON text)."""
    pairs = []
    if isinstance(x, pd.DataFrame):
        if "config" in x.columns and "task" in x.columns:
            pairs = [(t, json.loads(c) if isinstance(c, str) else c)
                     for t, c in zip(x["task"], x["config"], strict=True)]
    elif isinstance(x, (str, Path)):
        from .results import find_documents, read

        for file in find_documents(x):
            pairs += [(u["task"], u.get("config")) for u in read(file)["units"].values()
                      if u.get("status") == "done"]
    seen: dict[str, dict[str, dict[str, str]]] = {}
    for task, cfg in pairs:
        if isinstance(cfg, dict):
            flat = _flatten(json.loads(json.dumps(cfg)))
            seen.setdefault(task, {})[json.dumps(flat, sort_keys=True)] = flat
    return {t: list(v.values()) for t, v in seen.items()}


def _values_text(vals: list[str | None]) -> str:
    s = " / ".join("(absent)" if v is None else v for v in vals)
    return s if len(s) <= 60 else s[:57] + "..."


def settings_warnings(base, head) -> list[str]:
    """One line per task whose settings differ between ``base`` and ``head`` (same inputs
    as ``compare``), naming each differing config key: its value(s) in BASE → in HEAD."""
    cb, ch = task_configs(base), task_configs(head)
    lines = []
    for task in sorted(set(cb) & set(ch)):
        diffs = []
        keys = sorted({k for c in cb[task] + ch[task] for k in c})
        for k in keys:
            vb = sorted({c.get(k) for c in cb[task]}, key=str)
            vh = sorted({c.get(k) for c in ch[task]}, key=str)
            if vb != vh:
                diffs.append(f"{k} {_values_text(vb)} → {_values_text(vh)}")
        if diffs:
            lines.append(f"warning: {task} settings differ between base and head: "
                         f"{'; '.join(diffs)}; differences may not be regressions")
    return lines


def data_digests(x) -> dict[str, set[str]]:
    """data set → the distinct digests of the data it was read from, over one side's
    documents (``meta.data``); empty for a frame or for documents that predate it."""
    if not isinstance(x, (str, Path)):
        return {}
    from .results import find_documents, read

    out: dict[str, set[str]] = {}
    for file in find_documents(x):
        for name, rec in (read(file)["meta"].get("data") or {}).items():
            sha = rec.get("sha256") if isinstance(rec, dict) else None
            if isinstance(sha, dict):
                out.setdefault(name, set()).add(json.dumps(sha, sort_keys=True))
    return out


def data_warnings(base, head) -> list[str]:
    """One line per data set whose recorded digests differ between ``base`` and ``head``."""
    db, dh = data_digests(base), data_digests(head)
    lines = []
    for name in sorted(set(db) & set(dh)):
        if db[name] != dh[name]:
            files = sorted({k for s in db[name] | dh[name] for k in json.loads(s)})
            lines.append(f"warning: data set {name} was read from different data in base and "
                         f"head (SHA-256 of {', '.join(files)} differ); differences may not be "
                         "regressions")
    return lines


# --------------------------------------------------------------------------- statistics

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


def _direction_verdict(direction: str, change: float) -> str:
    if direction == HIGHER:
        return "improved" if change > 0 else "regressed"
    if direction == LOWER:
        return "improved" if change < 0 else "regressed"
    return "moved"


def _values(g) -> np.ndarray:
    if g is None:
        return np.array([])
    v = pd.to_numeric(g["value"], errors="coerce").to_numpy(dtype=float)
    return v[np.isfinite(v)]


def _per_seed(g) -> dict | None:
    """seed → value for one metric on one side; None when a seed has two different values
    (then the side is not deterministic for this metric) or seeds are unknown."""
    if g is None or g["seed"].isna().any():
        return None
    out: dict = {}
    for s, v in zip(g["seed"], pd.to_numeric(g["value"], errors="coerce"), strict=True):
        v = float(v)
        if s in out and not _same(out[s], v):
            return None
        out[s] = v
    return out


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= EXACT_ATOL + EXACT_RTOL * max(abs(a), abs(b))


def _stats(side: str, v: np.ndarray) -> dict:
    return {f"{side}_mean": float(v.mean()) if len(v) else math.nan,
            f"{side}_std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
            f"{side}_n": len(v)}


def read_timing_spread(path: str | Path | None) -> dict[str, float]:
    """A/A spread file (JSON ``{"task/key": σ of log(head/base), ...}``, as written by
    ``scripts/aa_gate.py``); {} when no path."""
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


# --------------------------------------------------------------------------- compare

def compare(base, head, *, threshold: float = 0.05, alpha: float = 0.05,
            time_threshold: float = 0.20, fdr: float = 0.05,
            expected: list[Expected] | str | Path | None = None,
            allow_incomplete: bool = True, timing_spread: dict | str | Path | None = None,
            fail_on: str = "regressed") -> pd.DataFrame:
    """One row per (task, dataset, key): the change from ``base`` to ``head`` and its verdict.

    ``base``/``head``: a results file, a folder of them, or a ``load_results`` frame.
    ``threshold``: relative change of a stochastic metric that counts (0.05 = 5%);
    ``time_threshold``: the least timing factor that counts, minus 1 (0.2 = 1.2×);
    ``alpha``: the test level the minimal detectable change is quoted at; ``fdr``: the
    Benjamini-Hochberg false-discovery rate (q) a change must pass; ``expected``: approved
    changes (``read_expected`` entries or the TOML file); ``allow_incomplete``: compare runs
    that did not finish, with a warning listing what is missing (the library's default, so a
    report still shows a crashed run; ``quirkbench compare`` refuses them with a
    ``UserError`` unless ``--allow-incomplete``); ``timing_spread``: A/A log-spreads per
    ``task/key`` (dict or JSON file); ``fail_on``: ``regressed`` (default) or ``moved``.

    Columns (``COLUMNS``): task, dataset, key, metric, unit, direction; base_/head_ mean, std
    (over seeds), n; ``change`` = head_mean − base_mean (the metric's unit), ``change_pct``
    (% of |base_mean|); ``p_value`` (t-test, NaN where not tested); ``verdict``; ``kind``;
    ``headline``; ``test`` (exact, t, threshold, factor, none); ``exact`` (compared value
    by value); ``ratio`` (timing: head/base medians); ``q_value`` (BH); ``mde`` (minimal
    detectable change at alpha and 80% power, the metric's unit; 0 for an exact comparison);
    ``seeds_needed`` (per side, to detect a change of the threshold's size); ``fails`` (this
    row fails the gate); ``note``. ``df.attrs``: ``warnings`` (lines to print), ``chance``
    (one line: alarms chance alone would give), ``tested``, ``fdr``, ``expected_unused``.
    """
    if not threshold >= 0 or not time_threshold >= 0:
        raise UserError(f"thresholds are fractions ≥ 0 (0.05 = 5%), got {threshold}, "
                        f"{time_threshold}")
    if not 0 < alpha < 1:
        raise UserError(f"alpha is a significance level in (0, 1), got {alpha}")
    if not 0 < fdr < 1:
        raise UserError(f"--fdr is a false-discovery rate in (0, 1), e.g. 0.05, got {fdr}")
    if fail_on not in FAIL_ON:
        raise UserError(f"--fail-on {fail_on!r}; valid: {', '.join(FAIL_ON)}")
    if isinstance(expected, (str, Path)):
        expected = read_expected(expected)
    expected = list(expected or [])
    spread = timing_spread if isinstance(timing_spread, dict) else \
        read_timing_spread(timing_spread)
    sb_, sh_ = _side(base, "BASE"), _side(head, "HEAD")
    warnings = check_complete(sb_, allow_incomplete) + check_complete(sh_, allow_incomplete)
    from .results import pool

    (b, notes_b), (h, notes_h) = pool(sb_.df, "BASE"), pool(sh_.df, "HEAD")
    sb, sh = _suites(b), _suites(h)
    if sb and sh and sb != sh:
        raise UserError(f"BASE is a {'/'.join(sorted(sb))} run and HEAD a {'/'.join(sorted(sh))} "
                        "run; compare runs of the same suite")
    same_env, env_lines = environment_warnings(sb_, sh_)
    warnings += env_lines
    db, dh = _datasets(b), _datasets(h)
    if db != dh:
        warnings.append(f"warning: data sets differ: {', '.join(sorted(db))} → "
                        f"{', '.join(sorted(dh))}")
    cfg_b, cfg_h = task_configs(base), task_configs(head)
    same_cfg = {t for t in set(cfg_b) & set(cfg_h)
                if len(cfg_b[t]) == 1 and cfg_b[t] == cfg_h[t]}
    if isinstance(base, pd.DataFrame) and "config" not in base.columns:
        same_cfg = set()

    groups_b = {k: g for k, g in b.groupby(KEYS, sort=False)}
    groups_h = {k: g for k, g in h.groupby(KEYS, sort=False)}
    rows = []
    for k in list(groups_b) + [k for k in groups_h if k not in groups_b]:
        gb, gh = groups_b.get(k), groups_h.get(k)
        ref = gh if gh is not None else gb
        vb, vh = _values(gb), _values(gh)
        kind = str(ref["kind"].iloc[0])
        row = dict(zip(KEYS, k, strict=True), metric=ref["metric"].iloc[0],
                   unit=ref["unit"].iloc[0], direction=ref["direction"].iloc[0],
                   **_stats("base", vb), **_stats("head", vh),
                   kind=kind, headline=bool(ref["headline"].any()),
                   test="none", exact=False, ratio=math.nan, q_value=math.nan, mde=math.nan,
                   seeds_needed=None, note="",
                   _baseline=ref["baseline"].dropna().iloc[0] if ref["baseline"].notna().any()
                   else None, _big=False)
        if len(vb) == 0 or len(vh) == 0:
            row.update(change=math.nan, change_pct=math.nan, p_value=math.nan,
                       verdict="new" if len(vb) == 0 else "gone")
            rows.append(row)
            continue
        change = row["head_mean"] - row["base_mean"]
        base_abs = abs(row["base_mean"])
        row.update(change=change, change_pct=100 * change / base_abs if base_abs > 0 else
                   (0.0 if change == 0 else math.copysign(math.inf, change)), p_value=math.nan)
        pb, ph = _per_seed(gb), _per_seed(gh)
        shared = sorted(set(pb) & set(ph), key=str) if pb is not None and ph is not None else []
        if kind == EXACT and same_env and k[0] in same_cfg and shared:
            diff = [s for s in shared if not _same(pb[s], ph[s])]
            row.update(test="exact", exact=True, mde=0.0, verdict="behaviour changed" if diff
                       else "unchanged")
            if diff:
                row["note"] = (f"seed {diff[0]}: {pb[diff[0]]:.10g} → {ph[diff[0]]:.10g}"
                               + (f" (and {len(diff) - 1} more seeds)" if len(diff) > 1 else ""))
            rows.append(row)
            continue
        if kind == TIMING:
            _timing(row, vb, vh, time_threshold, spread.get(f"{k[0]}/{k[2]}"))
        else:
            _stochastic(row, vb, vh, threshold, alpha)
        rows.append(row)

    # Benjamini-Hochberg over the statistical tests' p-values, then the verdicts on them
    p = np.array([r["p_value"] if r["kind"] != TIMING else math.nan for r in rows],
                 dtype=float)
    q = bh_q_values(p)
    tested = int(np.isfinite(p).sum())
    for r, qi in zip(rows, q, strict=True):
        r["q_value"] = float(qi)
        if "verdict" in r:
            continue
        sig = r["_big"] and (r["kind"] == TIMING or not np.isfinite(qi) or qi <= fdr)
        r["verdict"] = _direction_verdict(r["direction"], r["change"]) if sig else "unchanged"
    _baselines(rows)
    unused = _expectations(rows, expected)
    for r in rows:
        r["fails"] = _fails(r, fail_on)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["warnings"] = settings_warnings(base, head) + data_warnings(base, head) + warnings + \
        [f"warning: expected change not seen: {e.metric} ({e.reason})" for e in unused]
    df.attrs["tested"], df.attrs["fdr"], df.attrs["expected_unused"] = tested, fdr, unused
    df.attrs["notes"] = notes_b + notes_h  # seeds counted once (format_table prints them)
    df.attrs["sides"] = {"base": side_facts(b), "head": side_facts(h)}  # banner facts
    df.attrs["chance"] = (
        f"{tested} metric(s) tested statistically (t-test over seeds): chance alone would "
        f"flag about "
        f"{alpha * tested:.1f} of them at p ≤ {alpha:g}; with the false-discovery rate "
        f"controlled at q ≤ {fdr:g}, on average at most {fdr:.0%} of the flagged ones are "
        f"false alarms; {int((df['test'] == 'exact').sum())} exact metric(s) compared value "
        "by value (no false alarms)")
    return df


def _stochastic(row: dict, vb: np.ndarray, vh: np.ndarray, threshold: float,
                alpha: float) -> None:
    scale = max(abs(row["base_mean"]), PERCENT_FLOOR.get(row["unit"], 0.0))
    t = threshold
    if len(vb) >= 2 and len(vh) >= 2:
        row["p_value"] = t_test_p(vb, vh)
        row["test"] = "t"
        s = row["base_std"]
        row["mde"] = mde(s, len(vb), len(vh), alpha)
        want = t * scale
        if np.isfinite(row["mde"]) and want > 0 and row["mde"] > want:
            row["seeds_needed"] = seeds_needed(s, want, alpha)
            n = row["seeds_needed"]
            row["note"] = (f"underpowered: detects ≥ {fmt_value(row['mde'], row['unit'])}; "
                           + (f"run {n} seeds a side for {fmt_value(want, row['unit'])}"
                              if n else "more seeds needed"))
    else:
        t *= N1_MARGIN
        row["test"] = "threshold"
        row["note"] = "one value on a side: no spread, threshold only"
    row["_big"] = abs(row["change"]) > t * scale if scale > 0 else row["change"] != 0


def _timing(row: dict, vb: np.ndarray, vh: np.ndarray, time_threshold: float,
            aa_sigma: float | None) -> None:
    mb, mh = float(np.median(vb)), float(np.median(vh))
    if not (mb > 0 and mh > 0):
        row.update(test="none", note="timing not positive: not compared")
        return
    ratio = mh / mb
    limit = timing_limit(vb, vh, time_threshold, aa_sigma)
    row.update(ratio=ratio, test="factor", mde=(limit - 1) * mb)
    if len(vb) >= 2 and len(vh) >= 2 and (vb > 0).all() and (vh > 0).all():
        row["p_value"] = t_test_p(np.log(vb), np.log(vh))
    row["_big"] = max(ratio, 1 / ratio) > limit
    row["_limit"] = limit
    if row["_big"] and len(vb) >= 2 and len(vh) >= 2 and not (
            vh.min() > vb.max() or vh.max() < vb.min()):
        row["_big"] = False  # the medians differ but the runs overlap: not a step
    row["note"] = f"×{ratio:.3g} (limit ×{limit:.3g})"


def _baselines(rows: list[dict]) -> None:
    """Timing ratios whose denominator moved beyond the timing rule read ``baseline moved``."""
    by = {(r["task"], r["dataset"], r["key"]): r for r in rows}
    for r in rows:
        base = by.get((r["task"], r["dataset"], r["_baseline"])) if r["_baseline"] else None
        if base is None or not np.isfinite(base["ratio"]):
            continue
        if max(base["ratio"], 1 / base["ratio"]) > base.get("_limit", math.inf):
            r["note"] = (f"baseline {r['_baseline']} moved ×{base['ratio']:.3g}; "
                         + r["note"]).rstrip("; ")
            if r["verdict"] in ("improved", "regressed", "moved"):
                r["verdict"] = "baseline moved"


def _expectations(rows: list[dict], expected: list[Expected]) -> list[Expected]:
    used = set()
    for r in rows:
        if r["verdict"] in ("unchanged", "new"):
            continue
        for i, e in enumerate(expected):
            if e.matches(r["task"], r["dataset"], r["key"]):
                used.add(i)
                if e.agrees(r["base_mean"], r["head_mean"]):
                    r["note"] = f"expected ({r['verdict']}): {e.reason}"
                    r["verdict"] = "expected"
                else:
                    r["note"] = (f"listed as expected ({e.reason}) but not as "
                                 f"{'any' if e.old is None else f'{e.old:g}'} → "
                                 f"{'any' if e.new is None else f'{e.new:g}'}; " + r["note"])
                break
    # asv benchmark entries are the nightly job's; a PR comparison never sees them
    return [e for i, e in enumerate(expected) if i not in used and not e.benchmark]


def _fails(r: dict, fail_on: str) -> bool:
    v = r["verdict"]
    if r["kind"] == TIMING:
        return v == "regressed" and bool(r["headline"])
    if v == "regressed":
        return True
    if v not in ("behaviour changed", "moved", "gone"):
        return False
    return bool(r["headline"]) or (fail_on == "moved" and v != "gone")


def failing(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that fail the gate."""
    return df[df["fails"].astype(bool)]


# --------------------------------------------------------------------------- the table
# How a comparison is SHOWN: one "verdict table" of every metric that did not stay
# unchanged, regressions first, largest effect first, used by the terminal table, the
# Markdown PR comment and the HTML comparison page alike. It reads whatever columns
# ``compare`` gives (kind, abs_change, q_value, mde when present) and never recomputes a
# verdict.

MARK = {"regressed": "✗", "behaviour changed": "≠", "changed": "≠", "moved": "~",
        "improved": "✓", "new": "+", "gone": "-", "unchanged": " ", "expected": "=",
        "baseline moved": "÷"}
RANK = {"regressed": 0, "behaviour changed": 1, "changed": 1, "moved": 2, "improved": 3,
        "baseline moved": 3, "new": 4, "gone": 5, "expected": 6,
        "unchanged": 9}  # display order; unknown verdicts after moved
BANNER = ("regressed", "improved", "behaviour changed", "unchanged")


def _is_changed_behaviour(verdict: str) -> bool:
    return verdict in ("behaviour changed", "changed", "moved")


def verdict_counts(df: pd.DataFrame) -> dict[str, int]:
    """{regressed, improved, behaviour changed, unchanged, ...}: metrics per verdict.

    ``moved`` (a direction-none value that changed) counts as behaviour changed, except for
    timing metrics, whose moves are counted apart as ``timings moved``: a wall-clock value
    that moved is speed or noise, never a change of what the network does."""
    v = df["verdict"].astype(str)
    timing = (df["kind"].astype(str) == "timing") if "kind" in df else pd.Series(False, v.index)
    moved_timing = (v == "moved") & timing  # wall-clock noise or speed, never behaviour
    out = {"regressed": int((v == "regressed").sum()), "improved": int((v == "improved").sum()),
           "behaviour changed": int((v.map(_is_changed_behaviour) & ~moved_timing).sum()),
           "unchanged": int((v == "unchanged").sum())}
    if moved_timing.any():
        out["timings moved"] = int(moved_timing.sum())
    out.update({k: int((v == k).sum()) for k in ("new", "gone", "baseline moved")
                if (v == k).any()})
    other = len(v) - sum(out.values())
    if other:
        out["other"] = other
    return out


def summary_line(df: pd.DataFrame) -> str:
    return ", ".join(f"{n} {k}" for k, n in verdict_counts(df).items())


def _num(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _get(r: dict, *keys: str) -> float:
    """The first of ``keys`` that ``r`` has as a finite number, else NaN."""
    for k in keys:
        v = _num(r.get(k))
        if math.isfinite(v):
            return v
    return math.nan


def effect_size(r: dict) -> float:
    """The magnitude a row is sorted by: ``compare``'s own effect column when it has one,
    else |change| relative to the scale the threshold rule uses (|base mean|, at least 20
    for percentages); new/gone metrics last within their verdict."""
    e = _get(r, "effect", "effect_size")
    if math.isfinite(e):
        return abs(e)
    change = _get(r, "abs_change", "change")
    if not math.isfinite(change):
        return -1.0
    scale = max(abs(_get(r, "base_mean")) if math.isfinite(_get(r, "base_mean")) else 0.0,
                PERCENT_FLOOR.get(str(r.get("unit")), 0.0))
    return abs(change) / scale if scale > 0 else math.inf


def change_unit(unit: str) -> str:
    """A change of a percentage is in percentage points."""
    return "pp" if unit == "%" else unit


def fmt_cell(mean: float, std: float, n: int, unit: str) -> str:
    """``97.3 ± 0.41% (n=3)``, ``1,000 ± 12 samples/s (n=2)``; ``—`` where a side has no
    value. The unit is written once, after the spread."""
    if not n or not math.isfinite(mean):
        return "—"
    if n > 1 and math.isfinite(std):
        s = f"{fmt_value(mean, '')} ± {fmt_value(std, unit)}"
    else:
        s = fmt_value(mean, unit)
    return f"{s} (n={int(n)})"


def fmt_change(change: float, unit: str) -> str:
    if not math.isfinite(change):
        return ""
    s = fmt_value(change, change_unit(unit))
    return ("+" + s) if change > 0 else s


def fmt_relative(pct: float) -> str:
    if not math.isfinite(pct):
        return "" if math.isnan(pct) else ("+∞" if pct > 0 else "−∞")
    return f"{pct:+.1f}%"


def fmt_p(r: dict) -> str:
    """q-value (FDR-adjusted) if ``compare`` gives one, else the p-value; "exact" for an
    exact comparison; "n=1" where one side has a single value (no noise estimate)."""
    test = r.get("test")
    if str(test) == "exact" or (not isinstance(test, str) and str(r.get("kind")) == "exact"):
        return "exact"  # compared value by value (an exact metric across environments is not)
    q, p = _get(r, "q_value"), _get(r, "p_value")
    if math.isfinite(q):
        return f"q={q:.2g}"
    if math.isfinite(p):
        return f"p={p:.2g}"
    if min(_num(r.get("base_n")), _num(r.get("head_n"))) == 1:
        return "n=1"
    return ""


def verdict_rows(df: pd.DataFrame, changed_only: bool = True) -> list[dict]:
    """Every row of ``compare``'s frame that is not unchanged (all rows with
    ``changed_only=False``), regressions first, then by effect size, as display strings:
    {verdict, mark, task, dataset, key, metric, unit, base, head, change, relative, p, mde,
    kind, effect}."""
    rows = []
    for r in df.to_dict("records"):
        verdict = str(r.get("verdict"))
        if changed_only and verdict == "unchanged":
            continue
        unit = str(r.get("unit") or "")
        mde = _get(r, "mde")
        rows.append({
            "verdict": verdict, "mark": MARK.get(verdict, "?"), "task": str(r.get("task")),
            "dataset": str(r.get("dataset")), "key": str(r.get("key")),
            "metric": str(r.get("metric")), "unit": unit, "direction": r.get("direction"),
            "base": fmt_cell(_get(r, "base_mean"), _get(r, "base_std"),
                             int(_get(r, "base_n")) if math.isfinite(_get(r, "base_n")) else 0,
                             unit),
            "head": fmt_cell(_get(r, "head_mean"), _get(r, "head_std"),
                             int(_get(r, "head_n")) if math.isfinite(_get(r, "head_n")) else 0,
                             unit),
            "change": fmt_change(_get(r, "abs_change", "change"), unit),
            "relative": fmt_relative(_get(r, "change_pct", "rel_change_pct")),
            "p": fmt_p(r), "mde": fmt_value(mde, change_unit(unit)) if math.isfinite(mde) else "",
            "kind": str(r.get("kind") or ""), "effect": effect_size(r)})
    rows.sort(key=lambda x: (RANK.get(x["verdict"], 2), -x["effect"]))
    return rows


HEADER = ("verdict", "task", "metric", "base mean ± sd (n)", "head mean ± sd (n)", "change",
          "relative", "p")


def _cells(r: dict, mde: bool = False) -> tuple[str, ...]:
    """A row's cells under ``HEADER`` (plus the minimal detectable change with ``mde``)."""
    cells = (f"{r['mark']} {r['verdict']}", f"{r['task']}/{r['dataset']}", r["key"], r["base"],
             r["head"], r["change"], r["relative"], r["p"])
    return (*cells, r["mde"]) if mde else cells


def _header(rows: list[dict]) -> tuple[tuple[str, ...], bool]:
    """The table's header, with an "MDE" column when ``compare`` gives a minimal detectable
    change for any row."""
    mde = any(r["mde"] for r in rows)
    return ((*HEADER, "MDE") if mde else HEADER), mde


def side_facts(df: pd.DataFrame) -> dict[str, str]:
    """commit(s), date(s), machine(s), seeds of one side of a comparison (a tidy frame)."""
    def uniq(col: str, short: int | None = None) -> str:
        if col not in df.columns:
            return "?"
        vals = sorted({str(v)[:short] if short else str(v) for v in df[col].dropna()})
        return ", ".join(vals) if vals else "?"

    seeds = sorted({int(s) for s in df["seed"].dropna()}) if "seed" in df.columns else []
    machine = uniq("machine") if "machine" in df.columns else uniq("device")
    return {"commit": uniq("commit", 10), "date": uniq("started", 10),
            "machine": machine, "seeds": ", ".join(map(str, seeds)) or "?",
            "runs": str(df["run"].nunique()) if "run" in df.columns else "?"}


def _facts_lines(df: pd.DataFrame) -> list[str]:
    sides = df.attrs.get("sides") or {}
    return [f"{side}: commit {f['commit']} · {f['date']} · {f['machine']} · seeds {f['seeds']}"
            for side, f in sides.items()]


_MD_ESCAPE = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;",
              "`": "&#96;", "~": "&#126;", "@": "&#64;", "#": "&#35;", "|": "\\|",
              "\\": "\\\\", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]",
              "\n": " ", "\r": " "}


def md_escape(text) -> str:
    """Text safe inside a GitHub-flavoured Markdown table cell: HTML special characters,
    backticks and ``~`` as entities, ``|``, ``\\`` and emphasis/link characters
    backslash-escaped, ``@`` and ``#`` as entities (no mentions or issue links from a
    metric's name), no line breaks."""
    return "".join(_MD_ESCAPE.get(c, c) for c in str(text))


def format_table(df: pd.DataFrame, fmt: str = "text", *, changed_only: bool = False) -> str:
    """The comparison as an aligned terminal table (``fmt="text"``) or a Markdown table for a
    PR comment (``fmt="markdown"``). Both open with the counts (N regressed, N improved, N
    behaviour changed, N unchanged) and the two sides (commit, date, machine, seeds), then
    the verdict table: every metric that did not stay unchanged, regressions first, largest
    effect first. ``changed_only=False`` lists the unchanged metrics after it."""
    if fmt not in ("text", "markdown"):
        raise UserError(f"table format {fmt!r}; valid: text, markdown")
    changed = verdict_rows(df, changed_only=True)
    same = [] if changed_only else [r for r in verdict_rows(df, changed_only=False)
                                    if r["verdict"] == "unchanged"]
    warnings = list(df.attrs.get("warnings", ())) + list(df.attrs.get("notes", ()))
    if fmt == "markdown":
        def table(rows):
            header, mde = _header(rows)
            out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
            return out + ["| " + " | ".join(md_escape(c) for c in _cells(r, mde)) + " |"
                          for r in rows]
        lines = [f"**quirkbench compare**: {md_escape(summary_line(df))}", ""]
        lines += [f"- {md_escape(f)}" for f in _facts_lines(df)]
        lines += [""] if _facts_lines(df) else []
        lines += [f"> ⚠ {md_escape(w)}" for w in warnings] + ([""] if warnings else [])
        lines += table(changed) if changed else ["No metric changed."]
        if same:
            lines += ["", f"<details><summary>{len(same)} unchanged metrics</summary>", "",
                      *table(same), "", "</details>"]
        return "\n".join(lines)

    def aligned(rows):
        header, mde = _header(rows)
        cells = [_cells(r, mde) for r in rows]
        widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(len(header))]
        line = lambda c: "  ".join(str(x).ljust(w) for x, w in zip(c, widths, strict=True))  # noqa: E731
        return [line(header).rstrip(), line(tuple("-" * w for w in widths)).rstrip(),
                *(line(c).rstrip() for c in cells)]

    lines = [summary_line(df), *_facts_lines(df), ""]
    lines += aligned(changed) if changed else ["No metric changed."]
    if same:
        lines += ["", f"unchanged ({len(same)}):", *aligned(same)]
    return "\n".join([*lines, *([""] + warnings if warnings else [])])
