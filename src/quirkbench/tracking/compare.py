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
    from .results import pool

    (b, notes_b), (h, notes_h) = pool(_frame(base, "BASE"), "BASE"), pool(_frame(head, "HEAD"),
                                                                           "HEAD")
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
    df.attrs["notes"] = notes_b + notes_h  # seeds counted once (format_table prints them)
    df.attrs["sides"] = {"base": side_facts(b), "head": side_facts(h)}  # banner facts
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
# How a comparison is SHOWN: one "verdict table" of every metric that did not stay
# unchanged, regressions first, largest effect first, used by the terminal table, the
# Markdown PR comment and the HTML comparison page alike. It reads whatever columns
# ``compare`` gives (kind, abs_change, q_value, mde when present) and never recomputes a
# verdict.

MARK = {"regressed": "✗", "behaviour changed": "≠", "changed": "≠", "moved": "~",
        "improved": "✓", "new": "+", "gone": "-", "unchanged": " "}
RANK = {"regressed": 0, "behaviour changed": 1, "changed": 1, "moved": 2, "improved": 3,
        "new": 4, "gone": 5, "unchanged": 9}  # display order; unknown verdicts after moved
BANNER = ("regressed", "improved", "behaviour changed", "unchanged")


def _is_changed_behaviour(verdict: str) -> bool:
    return verdict in ("behaviour changed", "changed", "moved")


def verdict_counts(df: pd.DataFrame) -> dict[str, int]:
    """{regressed, improved, behaviour changed, unchanged, new, gone}: metrics per verdict
    (``moved``, a direction-none value that changed, counts as behaviour changed)."""
    v = df["verdict"].astype(str)
    out = {"regressed": int((v == "regressed").sum()), "improved": int((v == "improved").sum()),
           "behaviour changed": int(v.map(_is_changed_behaviour).sum()),
           "unchanged": int((v == "unchanged").sum())}
    out.update({k: int((v == k).sum()) for k in ("new", "gone") if (v == k).any()})
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
    if str(r.get("kind")) == "exact" or str(r.get("test")) == "exact":
        return "exact"
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
