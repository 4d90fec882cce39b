"""The PR gate: ``quirkbench compare BASE HEAD`` gives every metric a graded verdict.

Each side is a results document, a folder of them, or a tidy frame from
``quirkbench.load_results`` (``sides``). Values of one metric (task × data set × key) are
taken per seed. The verdicts and the rules behind them are in ``verdicts``; the evidence, in
the order it is tried:

* **exact identity** (``test`` ``exact``): on the seeds both sides ran, every value equal
  within ``EXACT_RTOL``: ``identical``, in any environment (across a torch upgrade too).
* **holds checks**: a ``holds`` that went yes → no is ``phenomenon lost`` when the value also
  moved beyond noise, or when no noise model can say how far it may move.
* **t-test** (``t``), with at least two seeds a side, non-timing metrics: Student's t over
  seeds, Benjamini-Hochberg over all of them (``q_value``), and the relative ``threshold``
  (5% of |base mean|, at least 1 pp for %); its minimal detectable change in ``mde``.
* **noise model** (``noise``), one seed on a side: the one-seed rule of ``verdicts`` against
  the suite's committed seed spread (``noise``); ``z`` and its ``critical`` value are shown,
  and ``mde`` is the smallest change the rule would have called beyond noise.
* **factor rule** (``factor``): timings, by the timing rule of ``stats.timing_limit``; and a
  one-seed metric with no usable noise model, when its change beats twice the threshold.
* otherwise ``not judged``, with the reason: no noise model, a stale one (another device
  class, or the task's settings changed), or the machine's speed moved during the run
  (``sides.machine_drift``).

``fails`` marks the rows that fail the gate: ``phenomenon lost``; a headline metric that
regressed or moved beyond noise (a timing only when it regressed) or is gone; with
``fail_on="moved"`` every non-timing change beyond noise; with ``strict`` (the old gate) also
every headline exact metric whose value differs on a shared seed in the same environment. A
change listed in the expected-changes file reads ``expected`` and does not fail, unless the
entry names another base commit (``stale``).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from ..metrics import EXACT, TIMING
from .expected import Expected, apply_expected, read_expected
from .noise import ModelUse, use_model
from .sides import (
    CONTROL_LIMIT,
    Side,
    check_complete,
    data_warnings,
    datasets,
    environment_warnings,
    fingerprint_diff,
    load_side,
    machine_drift,
    settings_warnings,
    side_facts,
    suites,
    task_configs,
)
from .stats import bh_q_values, read_timing_spread, same
from .table import format_table, summary_line, verdict_counts, verdict_rows
from .verdicts import (
    BEYOND,
    EXPECTED,
    GONE,
    IDENTICAL,
    LOST,
    MOVED,
    NEW,
    NOT_JUDGED,
    REGRESSED,
    SEVERITY,
    WITHIN,
    direction_verdict,
    judge_factor,
    judge_noise,
    judge_t,
    judge_timing,
    other_run_timings,
    timing_baselines,
)

__all__ = ["COLUMNS", "FAIL_ON", "VERDICTS", "Expected", "Row", "compare", "failing",
           "format_table", "read_expected", "summary_line", "verdict_counts", "verdict_rows"]

VERDICTS = SEVERITY  # display order, loudest first
KEYS = ["task", "dataset", "key"]
FAIL_ON = ("regressed", "moved")
_STATE = {"column": False}


@dataclass
class Row:
    """One metric's comparison. The fields marked as state are not columns."""

    task: str
    dataset: str
    key: str
    metric: str
    unit: str
    direction: str
    base_mean: float
    base_std: float
    base_n: int
    head_mean: float
    head_std: float
    head_n: int
    change: float = math.nan  # head_mean − base_mean, the metric's unit
    change_pct: float = math.nan  # % of |base_mean|
    p_value: float = math.nan
    verdict: str | None = None
    kind: str = EXACT
    headline: bool = False
    test: str = "none"  # exact, holds, t, noise, factor, none
    exact: bool = False  # compared value by value on shared seeds
    ratio: float = math.nan  # timing: head/base medians
    q_value: float = math.nan
    mde: float = math.nan  # the smallest change the test would call beyond noise
    seeds_needed: int | None = None
    fails: bool = False
    note: str = ""  # why: the reason a row fails, is not judged, or what it was weighed with
    z: float = math.nan  # noise model: (head − base) / (seed sd · sqrt(1/n_b + 1/n_h))
    critical: float = math.nan  # ... and the |z| it had to pass
    # working state
    baseline: str | None = field(default=None, metadata=_STATE)  # the timing a ratio divides by
    beyond: bool = field(default=False, metadata=_STATE)  # beats the threshold or timing limit
    limit: float = field(default=math.inf, metadata=_STATE)  # timing: the factor to beat
    strict_change: bool = field(default=False, metadata=_STATE)  # exact, same env and seed
    holds_lost: bool = field(default=False, metadata=_STATE)  # a holds went yes → no

    def record(self) -> dict:
        return {c: getattr(self, c) for c in COLUMNS}


COLUMNS = [f.name for f in dataclasses.fields(Row) if f.metadata.get("column", True)]


def _stats(v: np.ndarray) -> tuple[float, float, int]:
    return (float(v.mean()) if len(v) else math.nan,
            float(v.std(ddof=1)) if len(v) > 1 else math.nan, len(v))


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
        if s in out and not same(out[s], v):
            return None
        out[s] = v
    return out


def repeats_se(gb, gh) -> float | None:
    """The standard error of ln(head / base) that the runs' own repeats put on a timing:
    each value's ``spread`` (the se of its ln over its repeats), a side's mean over its
    seeds adding them as independent errors; None unless every value carries one."""
    total = 0.0
    for g in (gb, gh):
        se = pd.to_numeric(g["spread"], errors="coerce").to_numpy(dtype=float) \
            if "spread" in g else np.array([math.nan])
        if not len(se) or not np.isfinite(se).all():
            return None
        total += float((se**2).sum()) / len(se) ** 2
    return math.sqrt(total)


def _holds_lost(gb, gh) -> bool:
    """The base held on every seed and the head failed on one."""
    if gb is None or gh is None or "holds" not in gb or "holds" not in gh:
        return False
    hb, hh = gb["holds"].dropna(), gh["holds"].dropna()
    return bool(len(hb) and len(hh) and hb.astype(bool).all() and not hh.astype(bool).all())


# --------------------------------------------------------------------------- the sides

def _check_options(threshold: float, alpha: float, time_threshold: float, fdr: float,
                   fail_on: str) -> None:
    if not threshold >= 0 or not time_threshold >= 0:
        raise UserError(f"thresholds are fractions ≥ 0 (0.05 = 5%), got {threshold}, "
                        f"{time_threshold}")
    if not 0 < alpha < 1:
        raise UserError(f"alpha is a significance level in (0, 1), got {alpha}")
    if not 0 < fdr < 1:
        raise UserError(f"--fdr is a false-discovery rate in (0, 1), e.g. 0.05, got {fdr}")
    if fail_on not in FAIL_ON:
        raise UserError(f"--fail-on {fail_on!r}; valid: {', '.join(FAIL_ON)}")


@dataclass
class _Pair:
    """Both sides, pooled, with what decides how their metrics may be judged."""

    sb: Side
    sh: Side
    b: pd.DataFrame
    h: pd.DataFrame
    same_env: bool  # the fingerprints agree
    same_cfg: set[str]  # tasks whose settings agree
    warnings: list[str]
    notes: list[str]
    drift: dict[tuple[str, str], float]  # the machine's speed moved, per task × data set

    @property
    def suite(self) -> str | None:
        s = suites(self.b) | suites(self.h)
        return next(iter(s)) if len(s) == 1 else None

    @property
    def base_commit(self) -> str | None:
        commits = {str(m.get("commit")) for m in self.sb.metas if m.get("commit")}
        return commits.pop() if len(commits) == 1 else None


def _pair(base, head, allow_incomplete: bool) -> _Pair:
    from .results import pool

    sb_, sh_ = load_side(base, "BASE"), load_side(head, "HEAD")
    warnings = check_complete(sb_, allow_incomplete) + check_complete(sh_, allow_incomplete)
    (b, notes_b), (h, notes_h) = pool(sb_.df, "BASE"), pool(sh_.df, "HEAD")
    sb, sh = suites(b), suites(h)
    if sb and sh and sb != sh:
        raise UserError(f"BASE is a {'/'.join(sorted(sb))} run and HEAD a {'/'.join(sorted(sh))} "
                        "run; compare runs of the same suite")
    same_env, env_lines = environment_warnings(sb_, sh_)
    warnings += env_lines
    db, dh = datasets(b), datasets(h)
    if db != dh:
        warnings.append(f"warning: data sets differ: {', '.join(sorted(db))} → "
                        f"{', '.join(sorted(dh))}")
    cfg_b, cfg_h = task_configs(base), task_configs(head)
    same_cfg = {t for t in set(cfg_b) & set(cfg_h)
                if len(cfg_b[t]) == 1 and cfg_b[t] == cfg_h[t]}
    if isinstance(base, pd.DataFrame) and "config" not in base.columns:
        same_cfg = set()
    return _Pair(sb_, sh_, b, h, same_env, same_cfg, warnings, notes_b + notes_h,
                 machine_drift(sb_, sh_))


@dataclass
class _Rules:
    """What every row is judged with."""

    pair: _Pair
    model: ModelUse
    threshold: float
    alpha: float
    time_threshold: float
    spread: dict[str, float]


# --------------------------------------------------------------------------- compare

def compare(base, head, *, threshold: float = 0.05, alpha: float = 0.05,
            time_threshold: float = 0.20, fdr: float = 0.05,
            expected: list[Expected] | str | Path | None = None,
            allow_incomplete: bool = True, timing_spread: dict | str | Path | None = None,
            fail_on: str = "regressed", noise_model=None, strict: bool = False,
            base_stored: bool = False, only: set | None = None) -> pd.DataFrame:
    """One row per (task, dataset, key): the change from ``base`` to ``head`` and its verdict.

    ``base``/``head``: a results file, a folder of them, or a ``load_results`` frame.
    ``threshold``: relative change of a metric the t-test path must also beat (0.05 = 5%);
    ``time_threshold``: the least timing factor that counts, minus 1 (0.2 = 1.2×);
    ``alpha``: the test level the minimal detectable change is quoted at; ``fdr``: the
    Benjamini-Hochberg false-discovery rate (q) a change must pass; ``expected``: approved
    changes (``read_expected`` entries or the TOML file); ``allow_incomplete``: compare runs
    that did not finish, with a warning listing what is missing (``quirkbench compare``
    refuses them unless ``--allow-incomplete``); ``timing_spread``: A/A log-spreads per
    ``task/key`` (dict or JSON file); ``fail_on``: ``regressed`` (default) or ``moved``;
    ``noise_model``: a ``noise.NoiseModel``, its file, ``"auto"`` (``bench/noise/SUITE.json``
    under ``$QB_NOISE_DIR`` or the working folder) or None; ``strict``: also fail on any
    exact change of a headline metric, as the gate did before it knew the noise;
    ``base_stored``: the base side is a stored run made at another time (the PR gate's
    store of main's runs), so raw timings are not judged (``verdicts.other_run_timings``); ratios
    taken inside one run are judged; ``only``: judge just these (task, dataset, key) rows
    (escalation: the ambiguous rows again over more seeds, the FDR control over them alone).

    Columns (``COLUMNS``, the fields of ``Row``). ``df.attrs``: ``warnings`` and ``notes``
    (lines to print), ``model`` (one line on the noise model), ``identity`` (how many exact
    metrics stayed identical, and across what), ``chance`` (the t-test's false-alarm line,
    or ""), ``tested``, ``fdr``, ``expected_unused``, ``expected_stale`` (entries that did
    not apply, with why), ``base_commit``, ``sides``, ``strict``, ``fail_on``.
    """
    _check_options(threshold, alpha, time_threshold, fdr, fail_on)
    if isinstance(expected, (str, Path)):
        expected = read_expected(expected)
    spread = timing_spread if isinstance(timing_spread, dict) else \
        read_timing_spread(timing_spread)
    pair = _pair(base, head, allow_incomplete)
    rules = _Rules(pair, use_model(noise_model, pair.suite, [*pair.sb.metas, *pair.sh.metas],
                                   _configs(pair)),
                   threshold, alpha, time_threshold, spread)
    groups_b = {k: g for k, g in pair.b.groupby(KEYS, sort=False)}
    groups_h = {k: g for k, g in pair.h.groupby(KEYS, sort=False)}
    rows = [_judge(k, groups_b.get(k), groups_h.get(k), rules)
            for k in list(groups_b) + [k for k in groups_h if k not in groups_b]
            if only is None or k in only]
    tested = _fdr_verdicts(rows, fdr)
    timing_baselines(rows)
    if base_stored:
        other_run_timings(rows)
    unused, stale = apply_expected(rows, list(expected or []), pair.base_commit)
    for r in rows:
        r.fails = _fails(r, fail_on, strict)
    df = pd.DataFrame([r.record() for r in rows], columns=COLUMNS)
    df.attrs.update(
        warnings=settings_warnings(base, head) + data_warnings(base, head) + pair.warnings,
        notes=pair.notes + rules.model.lines, model=rules.model.summary, tested=tested,
        fdr=fdr, expected_unused=unused, expected_stale=stale, strict=strict, fail_on=fail_on,
        base_commit=pair.base_commit, identity=_identity_line(df, pair),
        sides={"base": side_facts(pair.b), "head": side_facts(pair.h)},
        chance="" if not tested else (
            f"{tested} metric(s) tested over seeds (t-test): chance alone would flag about "
            f"{alpha * tested:.1f} of them at p ≤ {alpha:g}; with the false-discovery rate "
            f"controlled at q ≤ {fdr:g}, on average at most {fdr:.0%} of the flagged ones "
            "are false alarms"))
    return df


def _configs(pair: _Pair) -> dict[str, list]:
    """task/dataset → the distinct settings both sides ran it with (for staleness)."""
    import json

    out: dict[str, set[str]] = {}
    for df in (pair.b, pair.h):
        if "config" in df.columns:
            for (t, d), g in df.groupby(["task", "dataset"], sort=False):
                out.setdefault(f"{t}/{d}", set()).update(g["config"].dropna().astype(str))
    return {k: [json.loads(c) for c in v] for k, v in out.items() if v}


def _identity_line(df: pd.DataFrame, pair: _Pair) -> str:
    """"244 of 244 exact metrics identical across torch 2.13.0 → 2.14.1"."""
    exact = df[(df["kind"] == EXACT) & ~df["verdict"].isin((NEW, GONE))]
    if exact.empty:
        return ""
    n_same = int((exact["verdict"] == IDENTICAL).sum())
    fb, fh = pair.sb.fingerprint or {}, pair.sh.fingerprint or {}
    diff = fingerprint_diff(fb, fh, ("torch", "python", "quirkbench", "device_name", "cpu",
                                     "cpu_capability", "cpu_threads", "unit_threads")) \
        if fb and fh else []
    where = f" across {'; '.join(diff)}" if diff else ""
    return f"{n_same} of {len(exact)} exact metrics identical{where}"


def _judge(k: tuple, gb, gh, rules: _Rules) -> Row:
    """One metric's row; its verdict too unless it waits for the FDR control."""
    ref = gh if gh is not None else gb
    vb, vh = _values(gb), _values(gh)
    kind = str(ref["kind"].iloc[0])
    row = Row(*k, metric=ref["metric"].iloc[0], unit=ref["unit"].iloc[0],
              direction=ref["direction"].iloc[0], **dict(zip(
                  ("base_mean", "base_std", "base_n"), _stats(vb), strict=True)),
              **dict(zip(("head_mean", "head_std", "head_n"), _stats(vh), strict=True)),
              kind=kind, headline=bool(ref["headline"].any()),
              baseline=ref["baseline"].dropna().iloc[0] if ref["baseline"].notna().any()
              else None)
    if len(vb) == 0 or len(vh) == 0:
        row.verdict = NEW if len(vb) == 0 else GONE
        if row.verdict == GONE:
            _gone(row, rules, gh)
        return row
    row.change = change = row.head_mean - row.base_mean
    base_abs = abs(row.base_mean)
    row.change_pct = 100 * change / base_abs if base_abs > 0 else \
        (0.0 if change == 0 else math.copysign(math.inf, change))
    pb, ph = _per_seed(gb), _per_seed(gh)
    shared = sorted(set(pb) & set(ph), key=str) if pb is not None and ph is not None else []
    diff = [s for s in shared if not same(pb[s], ph[s])]
    if shared and not diff:
        row.test, row.exact, row.mde, row.verdict = "exact", True, 0.0, IDENTICAL
        return row
    if kind == TIMING:
        judge_timing(row, vb, vh, rules.time_threshold, rules.spread.get(f"{k[0]}/{k[2]}"),
                     rules.pair.drift.get((k[0], k[1])), CONTROL_LIMIT,
                     repeats_se(gb, gh))
        return row
    row.strict_change = bool(kind == EXACT and rules.pair.same_env and shared
                             and k[0] in rules.pair.same_cfg)
    if diff:
        row.note = (f"seed {diff[0]}: {pb[diff[0]]:.10g} → {ph[diff[0]]:.10g}"
                    + (f" (and {len(diff) - 1} more seeds)" if len(diff) > 1 else ""))
    row.holds_lost = _holds_lost(gb, gh)
    if len(vb) >= 2 and len(vh) >= 2:
        judge_t(row, vb, vh, rules.threshold, rules.alpha)  # verdict after the FDR control
        return row
    noise, why = rules.model.lookup(*k)
    if noise is not None:
        judge_noise(row, noise, rules.model.family)
    else:
        judge_factor(row, rules.threshold, why)
    _phenomenon(row)
    return row


def _gone(row: Row, rules: _Rules, gh) -> None:
    """A metric missing from a one-seed head that the noise model lacks on some of its seeds
    too (a value some seeds do not give) is within noise, not gone."""
    seeds = rules.pair.h.loc[(rules.pair.h["task"] == row.task)
                             & (rules.pair.h["dataset"] == row.dataset), "seed"].nunique()
    noise, _ = rules.model.lookup(row.task, row.dataset, row.key)
    missing = [s for s, v in (noise.values if noise else {}).items() if v is None]
    if seeds == 1 and missing:
        row.verdict, row.test = WITHIN, "noise"
        row.note = (f"missing on this seed, as on {len(missing)} of {len(noise.values)} seeds of "
                    "the noise model")


def _phenomenon(row: Row) -> None:
    """A holds yes → no is the phenomenon lost when the value moved beyond noise, or when
    nothing says how far it may move; within noise, a note."""
    if not row.holds_lost:
        return
    if row.verdict in BEYOND or row.verdict == NOT_JUDGED:
        if row.verdict == NOT_JUDGED:
            row.test = "holds"
        row.note = f"holds yes → no; {row.note}".rstrip("; ")
        row.verdict = LOST
    elif row.verdict == WITHIN:
        row.note = f"holds yes → no, but the value is within seed noise; {row.note}"


def _fdr_verdicts(rows: list[Row], fdr: float) -> int:
    """Benjamini-Hochberg over the t-tests' p-values, then the verdicts that waited for it;
    the number of metrics tested."""
    p = np.array([r.p_value if r.kind != TIMING and r.test == "t" else math.nan
                  for r in rows], dtype=float)
    q = bh_q_values(p)
    for r, qi in zip(rows, q, strict=True):
        if not np.isfinite(qi):
            continue
        r.q_value = float(qi)
        if r.verdict is None:
            sig = r.beyond and qi <= fdr
            r.verdict = direction_verdict(r.direction, 1.0 if r.change > 0 else -1.0,
                                          0.0) if sig else WITHIN
            _phenomenon(r)
    return int(np.isfinite(p).sum())


def _fails(r: Row, fail_on: str, strict: bool) -> bool:
    v = r.verdict
    if v == EXPECTED:
        return False
    if v == LOST:
        return True
    if r.kind == TIMING:
        return v == REGRESSED and bool(r.headline)
    if v in (REGRESSED, MOVED):
        return bool(r.headline) or fail_on == "moved"
    if v == GONE:
        return bool(r.headline)
    return strict and r.strict_change and (bool(r.headline) or fail_on == "moved")


def failing(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that fail the gate."""
    return df[df["fails"].astype(bool)]
