"""Noise-aware comparison of two result sets: ``quirkbench compare BASE HEAD``.

Each side is a results document, a folder of them, or a tidy frame from
``quirkbench.load_results``. Values of one metric (task × data set × key) are pooled over
seeds and runs; a change is flagged only when it is beyond BOTH

* a relative threshold: ``|head_mean - base_mean| > t · max(|base_mean|, floor)``, with
  ``t = threshold`` (default 5%) or ``t = time_threshold`` (default 25%) for time-like units
  (``s``, ``ms``, ``samples/s``, ...: wall clock on a shared CI machine moves 10-20% between
  identical runs). ``floor`` keeps percentages near zero from turning tiny moves into huge
  relative ones: 20 for ``%``/``pp`` (so 5% means at least 1 percentage point);
* the noise: with ≥ 2 values on each side, the two-sided Mann-Whitney U test
  (``scipy.stats.mannwhitneyu``, exact for small n) must give ``p ≤ alpha``. Three seeds
  against three can never reach p ≤ 0.05 (the smallest exact p is 0.1), so where the
  sample sizes cannot reach ``alpha`` the rule is the strongest one those sizes allow: the
  two samples do not overlap at all (every head value beyond every base value);
* with only one value on a side (n = 1) there is no noise estimate: the threshold alone
  decides, widened ``N1_MARGIN`` = 2× (10% / 50% by default), and ``p_value`` is NaN.

Verdicts follow the metric's direction: ``improved`` / ``regressed`` for higher- or
lower-is-better metrics, ``moved`` for direction-none phenomenon values that changed
beyond noise either way, ``unchanged`` otherwise, ``new`` / ``gone`` for metrics present on
one side only.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from ..metrics import HIGHER, LOWER, fmt_value

VERDICTS = ("regressed", "moved", "improved", "new", "gone", "unchanged")  # display order
TIME_UNITS = frozenset({"s", "ms", "us", "µs", "ns", "samples/s", "steps/s", "it/s",
                        "iters/s", "inputs/s", "GFLOP/s", "TFLOP/s"})  # wall-clock based
PERCENT_FLOOR = {"%": 20.0, "pp": 20.0}  # relative changes of % measured against ≥ 20
N1_MARGIN = 2.0  # threshold multiplier when a side has a single value (no noise estimate)
KEYS = ["task", "dataset", "key"]
REQUIRED = {"task", "dataset", "key", "metric", "value", "unit", "direction"}
COLUMNS = ["task", "dataset", "key", "metric", "unit", "direction", "base_mean", "base_std",
           "base_n", "head_mean", "head_std", "head_n", "change", "change_pct", "p_value",
           "verdict"]


def _frame(x, side: str) -> pd.DataFrame:
    if isinstance(x, pd.DataFrame):
        df = x
    elif isinstance(x, (str, Path)):
        from .results import load_results

        df = load_results(x)
    else:
        raise UserError(f"{side} must be a results file, a folder or a DataFrame, "
                        f"got {type(x).__name__}")
    missing = REQUIRED - set(df.columns)
    if len(df) and missing:
        raise UserError(f"{side} is not a quirkbench results table (missing columns: "
                        f"{', '.join(sorted(missing))})")
    if df.empty:
        raise UserError(f"{side} holds no finished metrics")
    return df


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


def _suites(df: pd.DataFrame) -> set[str]:
    return set(df["suite"].dropna().astype(str)) if "suite" in df.columns else set()


def min_mwu_p(n1: int, n2: int) -> float:
    """The smallest two-sided exact Mann-Whitney p that samples of sizes n1, n2 can give."""
    return min(1.0, 2.0 / math.comb(n1 + n2, n1))


def beyond_noise(base: np.ndarray, head: np.ndarray, alpha: float) -> tuple[bool, float]:
    """(is the difference beyond the spread?, p-value) for two samples of ≥ 2 values each."""
    from scipy.stats import mannwhitneyu

    if np.all(base == base[0]) and np.all(head == base[0]):
        return False, 1.0  # identical values (deterministic metrics): nothing moved
    p = float(mannwhitneyu(head, base, alternative="two-sided", method="auto").pvalue)
    if min_mwu_p(len(base), len(head)) > alpha:  # too few values for the test to reach alpha
        return bool(head.min() > base.max() or head.max() < base.min()), p
    return p <= alpha, p


def relative_threshold(unit: str, threshold: float, time_threshold: float) -> float:
    return time_threshold if unit in TIME_UNITS else threshold


def _verdict(direction: str, change: float, significant: bool) -> str:
    if not significant:
        return "unchanged"
    if direction == HIGHER:
        return "improved" if change > 0 else "regressed"
    if direction == LOWER:
        return "improved" if change < 0 else "regressed"
    return "moved"


def compare(base, head, *, threshold: float = 0.05, alpha: float = 0.05,
            time_threshold: float = 0.25) -> pd.DataFrame:
    """One row per (task, dataset, key): the change from ``base`` to ``head`` and its verdict.

    ``base``/``head``: a results file, a folder of them, or a ``load_results`` frame.
    ``threshold``: relative change that counts (fraction, default 0.05 = 5%);
    ``time_threshold``: the same for time-like units (default 0.25); ``alpha``: significance
    level of the Mann-Whitney U test over seeds/repeats. Columns: see ``COLUMNS``;
    ``change`` = head_mean − base_mean in the metric's unit, ``change_pct`` in % of
    |base_mean|. Bad input (missing file, not a results table, different suites) raises
    ``UserError``.
    """
    if not threshold >= 0 or not time_threshold >= 0:
        raise UserError(f"thresholds are fractions ≥ 0 (0.05 = 5%), got {threshold}, "
                        f"{time_threshold}")
    if not 0 < alpha < 1:
        raise UserError(f"alpha is a significance level in (0, 1), got {alpha}")
    b, h = _frame(base, "BASE"), _frame(head, "HEAD")
    sb, sh = _suites(b), _suites(h)
    if sb and sh and sb != sh:
        raise UserError(f"BASE is a {'/'.join(sorted(sb))} run and HEAD a {'/'.join(sorted(sh))} "
                        "run; compare runs of the same suite")
    groups_b = {k: g for k, g in b.groupby(KEYS, sort=False)}
    groups_h = {k: g for k, g in h.groupby(KEYS, sort=False)}
    rows = []
    for k in list(groups_b) + [k for k in groups_h if k not in groups_b]:
        gb, gh = groups_b.get(k), groups_h.get(k)
        ref = gh if gh is not None else gb
        vb = _values(gb)
        vh = _values(gh)
        row = dict(zip(KEYS, k, strict=True), metric=ref["metric"].iloc[0],
                   unit=ref["unit"].iloc[0], direction=ref["direction"].iloc[0],
                   **_stats("base", vb), **_stats("head", vh))
        if len(vb) == 0 or len(vh) == 0:
            row.update(change=math.nan, change_pct=math.nan, p_value=math.nan,
                       verdict="new" if len(vb) == 0 else "gone")
            rows.append(row)
            continue
        change = row["head_mean"] - row["base_mean"]
        base_abs = abs(row["base_mean"])
        scale = max(base_abs, PERCENT_FLOOR.get(row["unit"], 0.0))
        t = relative_threshold(row["unit"], threshold, time_threshold)
        if len(vb) >= 2 and len(vh) >= 2:
            noisy_ok, p = beyond_noise(vb, vh, alpha)
        else:
            t *= N1_MARGIN
            noisy_ok, p = True, math.nan
        big = abs(change) > t * scale if scale > 0 else change != 0
        row.update(change=change,
                   change_pct=100 * change / base_abs if base_abs > 0 else
                   (0.0 if change == 0 else math.copysign(math.inf, change)),
                   p_value=p, verdict=_verdict(row["direction"], change, big and noisy_ok))
        rows.append(row)
    df = pd.DataFrame(rows, columns=COLUMNS)
    df.attrs["warnings"] = settings_warnings(base, head) + data_warnings(base, head)
    return df


def _values(g) -> np.ndarray:
    if g is None:
        return np.array([])
    v = pd.to_numeric(g["value"], errors="coerce").to_numpy(dtype=float)
    return v[np.isfinite(v)]


def _stats(side: str, v: np.ndarray) -> dict:
    return {f"{side}_mean": float(v.mean()) if len(v) else math.nan,
            f"{side}_std": float(v.std(ddof=1)) if len(v) > 1 else math.nan,
            f"{side}_n": len(v)}


# --------------------------------------------------------------------------- the table

MARK = {"regressed": "✗", "moved": "~", "improved": "✓", "new": "+", "gone": "-", "unchanged": " "}


def summary_line(df: pd.DataFrame) -> str:
    counts = df["verdict"].value_counts()
    return ", ".join(f"{int(counts.get(v, 0))} {v}" for v in VERDICTS)


def _cell(mean: float, std: float, n: int, unit: str) -> str:
    if n == 0:
        return "—"
    s = fmt_value(mean, unit)
    if n > 1 and np.isfinite(std):
        s += f" ± {fmt_value(std, unit)}"
    return f"{s} (n={n})"


def _rows(df: pd.DataFrame, changed_only: bool) -> list[tuple[str, ...]]:
    order = {v: i for i, v in enumerate(VERDICTS)}
    d = df.assign(_o=df["verdict"].map(order)).sort_values("_o", kind="stable")
    if changed_only:
        d = d[d["verdict"] != "unchanged"]
    out = []
    for r in d.itertuples(index=False):
        pct = "" if not np.isfinite(r.change_pct) else f"{r.change_pct:+.1f}%"
        chg = "" if not np.isfinite(r.change) else fmt_value(r.change, r.unit)
        if chg and r.change > 0:
            chg = "+" + chg
        p = "" if not np.isfinite(r.p_value) else f"{r.p_value:.3g}"
        out.append((f"{MARK[r.verdict]} {r.verdict}", f"{r.task}/{r.dataset}", r.key,
                    _cell(r.base_mean, r.base_std, r.base_n, r.unit),
                    _cell(r.head_mean, r.head_std, r.head_n, r.unit), chg, pct, p,
                    {"higher": "↑ better", "lower": "↓ better"}.get(r.direction, "stay")))
    return out


HEADER = ("verdict", "task", "metric", "base", "head", "change", "change %", "p", "direction")


def format_table(df: pd.DataFrame, fmt: str = "text", *, changed_only: bool = False) -> str:
    """The comparison as an aligned terminal table (``fmt="text"``) or a Markdown table for a
    PR comment (``fmt="markdown"``), worst verdicts first, with a one-line count."""
    if fmt not in ("text", "markdown"):
        raise UserError(f"table format {fmt!r}; valid: text, markdown")
    rows = _rows(df, changed_only)
    if fmt == "markdown":
        esc = lambda s: str(s).replace("|", "\\|")  # noqa: E731
        lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
        lines += ["| " + " | ".join(esc(c) for c in r) + " |" for r in rows]
        warn = [f"> ⚠ {w}" for w in df.attrs.get("warnings", ())]
        return "\n".join([f"**quirkbench compare**: {summary_line(df)}", "",
                          *(warn + [""] if warn else []), *lines])
    widths = [max(len(str(r[i])) for r in [HEADER, *rows]) for i in range(len(HEADER))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(HEADER), line(tuple("-" * w for w in widths)), *map(line, rows),
                      "", summary_line(df), *df.attrs.get("warnings", ())])
