"""How a comparison is SHOWN: one "verdict table" of every metric that did not stay
unchanged, regressions first, largest effect first, used by the terminal table, the Markdown
PR comment and the HTML comparison page alike. It reads whatever columns ``compare`` gives
(kind, abs_change, q_value, mde when present) and never recomputes a verdict."""

from __future__ import annotations

import math

import pandas as pd

from ..errors import UserError
from ..metrics import fmt_value
from .stats import PERCENT_FLOOR

MARK = {"regressed": "✗", "behaviour changed": "≠", "changed": "≠", "moved": "~",
        "improved": "✓", "new": "+", "gone": "-", "unchanged": " ", "expected": "=",
        "baseline moved": "÷", "not judged": "·"}
RANK = {"regressed": 0, "behaviour changed": 1, "changed": 1, "moved": 2, "improved": 3,
        "baseline moved": 3, "new": 4, "gone": 5, "expected": 6, "not judged": 8,
        "unchanged": 9}  # display order; unknown verdicts after moved
BANNER = ("regressed", "improved", "behaviour changed", "unchanged")
QUIET = ("unchanged", "not judged")  # listed with the unchanged rows, not in the verdict table


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
    out.update({k: int((v == k).sum()) for k in ("new", "gone", "baseline moved", "not judged")
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
        if changed_only and verdict in QUIET:
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
                                    if r["verdict"] in QUIET]
    warnings = list(df.attrs.get("warnings", ())) + list(df.attrs.get("notes", ()))
    quiet = "unchanged" + (" or not judged" if any(r["verdict"] != "unchanged" for r in same)
                           else "")
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
            lines += ["", f"<details><summary>{len(same)} {quiet} metrics</summary>", "",
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
        lines += ["", f"{quiet} ({len(same)}):", *aligned(same)]
    return "\n".join([*lines, *([""] + warnings if warnings else [])])
