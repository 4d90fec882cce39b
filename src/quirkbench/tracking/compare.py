"""The PR gate's verdicts: ``quirkbench compare BASE HEAD``.

Each side is a results document, a folder of them, or a tidy frame from
``quirkbench.load_results`` (``sides``). Values of one metric (task × data set × key) are
taken per seed. How a metric is judged depends on its *kind* (declared by the task, see
``quirkbench.metrics``), never on its unit:

* ``exact`` metrics, when both runs share the environment fingerprint (quirkbench, torch and
  Python versions, device, thread count, deterministic kernels; the task's settings) and at
  least one seed: compared value by value on the shared seeds; a difference beyond
  ``EXACT_RTOL`` (relative) is ``behaviour changed``. No statistics, no false alarms, one
  seed suffices. When the fingerprints differ, ``warnings`` name the differing fields and the
  metric is judged like a stochastic one.
* ``stochastic`` metrics (and exact ones across environments): a t-test over seeds
  (``scipy.stats.ttest_ind``, pooled variance: with equal seed counts the statistic is
  Welch's; its minimal detectable change is exact, see ``stats.mde``) gives ``p_value``; the
  change must be significant after the false-discovery-rate control below AND beyond the
  relative ``threshold`` (default 5% of |base mean|, with a floor of 20 for % and pp, i.e.
  1 percentage point). ``mde`` is the minimal detectable change at ``alpha`` and 80% power
  from the base's spread; where it exceeds the threshold the row notes how many seeds would
  resolve it (``seeds_needed``). With a single value on a side there is no spread: the
  threshold alone decides, widened ``N1_MARGIN``×.
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

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from ..metrics import EXACT, HIGHER, LOWER, TIMING, fmt_value
from .expected import Expected, read_expected
from .sides import (
    check_complete,
    data_warnings,
    datasets,
    environment_warnings,
    load_side,
    settings_warnings,
    side_facts,
    suites,
    task_configs,
)
from .stats import (
    PERCENT_FLOOR,
    bh_q_values,
    mde,
    read_timing_spread,
    same,
    seeds_needed,
    t_test_p,
    timing_limit,
)
from .table import format_table, summary_line, verdict_counts, verdict_rows

__all__ = ["COLUMNS", "FAIL_ON", "VERDICTS", "Expected", "Row", "compare", "failing",
           "format_table", "read_expected", "summary_line", "verdict_counts", "verdict_rows"]

VERDICTS = ("regressed", "behaviour changed", "moved", "gone", "expected", "baseline moved",
            "improved", "new", "not judged", "unchanged")  # display order
N1_MARGIN = 2.0  # threshold multiplier when a side has a single value (no noise estimate)
KEYS = ["task", "dataset", "key"]
FAIL_ON = ("regressed", "moved")


_STATE = {"column": False}


@dataclass
class Row:
    """One metric's comparison. The fields up to ``note`` are the frame's columns
    (``COLUMNS``); the rest are working state the verdict is built from."""

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
    test: str = "none"  # exact, t, threshold, factor, none
    exact: bool = False  # compared value by value
    ratio: float = math.nan  # timing: head/base medians
    q_value: float = math.nan
    mde: float = math.nan
    seeds_needed: int | None = None
    fails: bool = False
    note: str = ""
    # working state, not a column
    baseline: str | None = field(default=None, metadata=_STATE)  # the timing a ratio divides by
    beyond: bool = field(default=False, metadata=_STATE)  # beats the threshold or timing limit
    limit: float = field(default=math.inf, metadata=_STATE)  # timing: the factor to beat

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


def _direction_verdict(direction: str, change: float) -> str:
    if direction == HIGHER:
        return "improved" if change > 0 else "regressed"
    if direction == LOWER:
        return "improved" if change < 0 else "regressed"
    return "moved"


# --------------------------------------------------------------------------- compare

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
    """Both sides, pooled, with what decides how exact metrics may be compared."""

    b: pd.DataFrame
    h: pd.DataFrame
    same_env: bool  # exact metrics compare value by value
    same_cfg: set[str]  # tasks whose settings agree
    warnings: list[str]
    notes: list[str]


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
    return _Pair(b, h, same_env, same_cfg, warnings, notes_b + notes_h)


def compare(base, head, *, threshold: float = 0.05, alpha: float = 0.05,
            time_threshold: float = 0.20, fdr: float = 0.05,
            expected: list[Expected] | str | Path | None = None,
            allow_incomplete: bool = True, timing_spread: dict | str | Path | None = None,
            fail_on: str = "regressed", base_stored: bool = False) -> pd.DataFrame:
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
    ``task/key`` (dict or JSON file); ``fail_on``: ``regressed`` (default) or ``moved``;
    ``base_stored``: the base side is a stored run made at another time (the PR gate's
    store of main's runs), so raw timings read ``not judged`` (``_other_run_timings``);
    ratios taken inside one run are judged.

    Columns (``COLUMNS``, the fields of ``Row``): task, dataset, key, metric, unit,
    direction; base_/head_ mean, std (over seeds), n; ``change`` = head_mean − base_mean
    (the metric's unit), ``change_pct`` (% of |base_mean|); ``p_value`` (t-test, NaN where
    not tested); ``verdict``; ``kind``; ``headline``; ``test`` (exact, t, threshold, factor,
    none); ``exact`` (compared value by value); ``ratio`` (timing: head/base medians);
    ``q_value`` (BH); ``mde`` (minimal detectable change at alpha and 80% power, the metric's
    unit; 0 for an exact comparison); ``seeds_needed`` (per side, to detect a change of the
    threshold's size); ``fails`` (this row fails the gate); ``note``. ``df.attrs``:
    ``warnings`` (lines to print), ``chance`` (one line: alarms chance alone would give),
    ``tested``, ``fdr``, ``expected_unused``.
    """
    _check_options(threshold, alpha, time_threshold, fdr, fail_on)
    if isinstance(expected, (str, Path)):
        expected = read_expected(expected)
    expected = list(expected or [])
    spread = timing_spread if isinstance(timing_spread, dict) else \
        read_timing_spread(timing_spread)
    pair = _pair(base, head, allow_incomplete)
    groups_b = {k: g for k, g in pair.b.groupby(KEYS, sort=False)}
    groups_h = {k: g for k, g in pair.h.groupby(KEYS, sort=False)}
    rows = [_judge(k, groups_b.get(k), groups_h.get(k), pair, threshold, alpha,
                   time_threshold, spread)
            for k in list(groups_b) + [k for k in groups_h if k not in groups_b]]
    tested = _fdr_verdicts(rows, fdr)
    _baselines(rows)
    if base_stored:
        _other_run_timings(rows)
    unused = _expectations(rows, expected)
    for r in rows:
        r.fails = _fails(r, fail_on)
    df = pd.DataFrame([r.record() for r in rows], columns=COLUMNS)
    df.attrs["warnings"] = settings_warnings(base, head) + data_warnings(base, head) + \
        pair.warnings + \
        [f"warning: expected change not seen: {e.metric} ({e.reason})" for e in unused]
    df.attrs["tested"], df.attrs["fdr"], df.attrs["expected_unused"] = tested, fdr, unused
    df.attrs["notes"] = pair.notes  # seeds counted once (format_table prints them)
    df.attrs["sides"] = {"base": side_facts(pair.b), "head": side_facts(pair.h)}
    df.attrs["chance"] = (
        f"{tested} metric(s) tested statistically (t-test over seeds): chance alone would "
        f"flag about "
        f"{alpha * tested:.1f} of them at p ≤ {alpha:g}; with the false-discovery rate "
        f"controlled at q ≤ {fdr:g}, on average at most {fdr:.0%} of the flagged ones are "
        f"false alarms; {int((df['test'] == 'exact').sum())} exact metric(s) compared value "
        "by value (no false alarms)")
    return df


def _judge(k: tuple, gb, gh, pair: _Pair, threshold: float, alpha: float,
           time_threshold: float, spread: dict[str, float]) -> Row:
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
        row.verdict = "new" if len(vb) == 0 else "gone"
        return row
    row.change = change = row.head_mean - row.base_mean
    base_abs = abs(row.base_mean)
    row.change_pct = 100 * change / base_abs if base_abs > 0 else \
        (0.0 if change == 0 else math.copysign(math.inf, change))
    pb, ph = _per_seed(gb), _per_seed(gh)
    shared = sorted(set(pb) & set(ph), key=str) if pb is not None and ph is not None else []
    if kind == EXACT and pair.same_env and k[0] in pair.same_cfg and shared:
        diff = [s for s in shared if not same(pb[s], ph[s])]
        row.test, row.exact, row.mde = "exact", True, 0.0
        row.verdict = "behaviour changed" if diff else "unchanged"
        if diff:
            row.note = (f"seed {diff[0]}: {pb[diff[0]]:.10g} → {ph[diff[0]]:.10g}"
                        + (f" (and {len(diff) - 1} more seeds)" if len(diff) > 1 else ""))
    elif kind == TIMING:
        _timing(row, vb, vh, time_threshold, spread.get(f"{k[0]}/{k[2]}"))
    else:
        _stochastic(row, vb, vh, threshold, alpha)
    return row


def _fdr_verdicts(rows: list[Row], fdr: float) -> int:
    """Benjamini-Hochberg over the statistical tests' p-values, then the verdicts that
    waited for it; the number of metrics tested."""
    p = np.array([r.p_value if r.kind != TIMING else math.nan for r in rows], dtype=float)
    q = bh_q_values(p)
    for r, qi in zip(rows, q, strict=True):
        r.q_value = float(qi)
        if r.verdict is not None:
            continue
        sig = r.beyond and (r.kind == TIMING or not np.isfinite(qi) or qi <= fdr)
        r.verdict = _direction_verdict(r.direction, r.change) if sig else "unchanged"
    return int(np.isfinite(p).sum())


def _stochastic(row: Row, vb: np.ndarray, vh: np.ndarray, threshold: float,
                alpha: float) -> None:
    scale = max(abs(row.base_mean), PERCENT_FLOOR.get(row.unit, 0.0))
    t = threshold
    if len(vb) >= 2 and len(vh) >= 2:
        row.p_value = t_test_p(vb, vh)
        row.test = "t"
        s = row.base_std
        row.mde = mde(s, len(vb), len(vh), alpha)
        want = t * scale
        if np.isfinite(row.mde) and want > 0 and row.mde > want:
            row.seeds_needed = n = seeds_needed(s, want, alpha)
            row.note = (f"underpowered: detects ≥ {fmt_value(row.mde, row.unit)}; "
                        + (f"run {n} seeds a side for {fmt_value(want, row.unit)}"
                           if n else "more seeds needed"))
    else:
        t *= N1_MARGIN
        row.test = "threshold"
        row.note = "one value on a side: no spread, threshold only"
    row.beyond = bool(abs(row.change) > t * scale if scale > 0 else row.change != 0)


def _timing(row: Row, vb: np.ndarray, vh: np.ndarray, time_threshold: float,
            aa_sigma: float | None) -> None:
    mb, mh = float(np.median(vb)), float(np.median(vh))
    if not (mb > 0 and mh > 0):
        row.test, row.note = "none", "timing not positive: not compared"
        return
    ratio = mh / mb
    limit = timing_limit(vb, vh, time_threshold, aa_sigma)
    row.ratio, row.test, row.mde = ratio, "factor", (limit - 1) * mb
    if len(vb) >= 2 and len(vh) >= 2 and (vb > 0).all() and (vh > 0).all():
        row.p_value = t_test_p(np.log(vb), np.log(vh))
    row.beyond = max(ratio, 1 / ratio) > limit
    row.limit = limit
    if row.beyond and len(vb) >= 2 and len(vh) >= 2 and not (
            vh.min() > vb.max() or vh.max() < vb.min()):
        row.beyond = False  # the medians differ but the runs overlap: not a step
    row.note = f"×{ratio:.3g} (limit ×{limit:.3g})"


def _baselines(rows: list[Row]) -> None:
    """Timing ratios whose denominator moved beyond the timing rule read ``baseline moved``."""
    by = {(r.task, r.dataset, r.key): r for r in rows}
    for r in rows:
        base = by.get((r.task, r.dataset, r.baseline)) if r.baseline else None
        if base is None or not np.isfinite(base.ratio):
            continue
        if max(base.ratio, 1 / base.ratio) > base.limit:
            r.note = (f"baseline {r.baseline} moved ×{base.ratio:.3g}; " + r.note).rstrip("; ")
            if r.verdict in ("improved", "regressed", "moved"):
                r.verdict = "baseline moved"


def _expectations(rows: list[Row], expected: list[Expected]) -> list[Expected]:
    used = set()
    for r in rows:
        if r.verdict in ("unchanged", "new", "not judged"):
            continue
        for i, e in enumerate(expected):
            if e.matches(r.task, r.dataset, r.key):
                used.add(i)
                if e.agrees(r.base_mean, r.head_mean):
                    r.note = f"expected ({r.verdict}): {e.reason}"
                    r.verdict = "expected"
                else:
                    r.note = (f"listed as expected ({e.reason}) but not as "
                              f"{'any' if e.old is None else f'{e.old:g}'} → "
                              f"{'any' if e.new is None else f'{e.new:g}'}; " + r.note)
                break
    # asv benchmark entries are the nightly job's; a PR comparison never sees them
    return [e for i, e in enumerate(expected) if i not in used and not e.benchmark]


def _fails(r: Row, fail_on: str) -> bool:
    v = r.verdict
    if r.kind == TIMING:
        return v == "regressed" and bool(r.headline)
    if v == "regressed":
        return True
    if v not in ("behaviour changed", "moved", "gone"):
        return False
    return bool(r.headline) or (fail_on == "moved" and v != "gone")


def failing(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that fail the gate."""
    return df[df["fails"].astype(bool)]


def _other_run_timings(rows: list[Row]) -> None:
    """The base side came from another run (stored, made at another time, maybe on another
    machine of the same kind): a raw timing would compare the two runs' machines as much as
    the two commits, so it reads ``not judged``. A ratio of two timings taken inside one run
    (``baseline``: its denominator timed beside it) cancels the machine's speed and is
    judged as usual, still reading ``baseline moved`` when its denominator moved beyond the
    timing rule (``_baselines``, run before this): in a smoke A/A of one commit a PGD
    speed-up over a peer moved ×0.63 while the peer's own rate moved ×1.65, and without that
    guard a stored base made the A/A fail."""
    for r in rows:
        if r.kind == TIMING and not r.baseline and r.verdict not in ("new", "gone"):
            r.verdict, r.beyond = "not judged", False
            r.note = ("base stored from another run: a raw timing is judged only within one "
                      "run; " + r.note).rstrip("; ")
