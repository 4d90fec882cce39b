"""How a comparison is SHOWN: one "verdict table" of every metric that did not stay
unchanged, regressions first, largest effect first, used by the terminal table, the Markdown
PR comment and the HTML comparison page alike. It reads whatever columns ``compare`` gives
(kind, abs_change, q_value, mde when present) and never recomputes a verdict."""

from __future__ import annotations

import math

import pandas as pd

from ..errors import UserError
from ..metrics import TIMING, fmt_value
from ..terminal import fill, table
from .stats import PERCENT_FLOOR
from .summary import evidence_line, expected_entries, gate_line, stale_lines
from .verdicts import (
    EXPECTED,
    GONE,
    IDENTICAL,
    IMPROVED,
    LOST,
    MOVED,
    NEW,
    NOT_JUDGED,
    REGRESSED,
    SEVERITY,
    WITHIN,
)

MARK = {LOST: "‼", REGRESSED: "✗", MOVED: "~", GONE: "-", IMPROVED: "✓", WITHIN: "≈",
        IDENTICAL: "=", EXPECTED: "✔", NOT_JUDGED: "?", NEW: "+"}
RANK = {v: i for i, v in enumerate(SEVERITY)}  # display order, loudest first
BANNER = (LOST, REGRESSED, IMPROVED, WITHIN, IDENTICAL)


def verdict_counts(df: pd.DataFrame) -> dict[str, int]:
    """Metrics per verdict, loudest first, verdicts with none left out. A timing that moved
    beyond noise is counted apart as ``timings moved``: wall clock that moved is speed or
    noise, never a change of what the network does."""
    v = df["verdict"].astype(str)
    timing = (df["kind"].astype(str) == TIMING) if "kind" in df else pd.Series(False, v.index)
    moved_timing = (v == MOVED) & timing
    out = {k: int(((v == k) & ~moved_timing).sum()) for k in SEVERITY}
    out = {k: n for k, n in out.items() if n}
    if moved_timing.any():
        out["timings moved"] = int(moved_timing.sum())
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
    e = _get(r, "effect", "effect_size", "z")
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
    """What the verdict rests on, shortly: "exact" (compared value by value), "z=−5.1 (±3.7)"
    (the noise model), "q=0.003" (the t-test, FDR-adjusted; "p=" without BH), "×1.31 (limit
    ×1.2)" (a timing), "factor" (the factor rule), "holds"."""
    test = str(r.get("test"))
    if test == "exact" or (not isinstance(r.get("test"), str) and str(r.get("kind")) == "exact"):
        return "exact"
    z, crit = _get(r, "z"), _get(r, "critical")
    if test == "noise" and math.isfinite(z):
        return f"z={z:+.1f} (±{crit:.2g})" if math.isfinite(crit) else f"z={z:+.1f}"
    ratio = _get(r, "ratio")
    if str(r.get("kind")) == TIMING and math.isfinite(ratio):
        return f"×{ratio:.3g}"
    q, p = _get(r, "q_value"), _get(r, "p_value")
    if math.isfinite(q):
        return f"q={q:.2g}"
    if math.isfinite(p):
        return f"p={p:.2g}"
    if test in ("factor", "holds"):
        return test
    return ""


def verdict_rows(df: pd.DataFrame, changed_only: bool = True) -> list[dict]:
    """Every row of ``compare``'s frame that is not identical nor quietly not judged (all
    rows with ``changed_only=False``), the failing ones first, then by verdict (loudest first), then
    by effect (|z| where the noise model judged), as display strings: {verdict, mark, task,
    dataset, key, metric, unit, base, head, change, relative, p, mde, kind, effect, fails,
    note}."""
    rows = []
    for r in df.to_dict("records"):
        verdict = str(r.get("verdict"))
        # the quiet rows: identical, and not judged unless it fails (--strict); the not judged
        # are summed up by reason in the evidence line (a stored base leaves dozens)
        if changed_only and (verdict == IDENTICAL or verdict == NOT_JUDGED
                             and not r.get("fails")):
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
            "kind": str(r.get("kind") or ""), "effect": effect_size(r),
            "fails": bool(r.get("fails")), "note": str(r.get("note") or "")})
    rows.sort(key=lambda x: (not x["fails"], RANK.get(x["verdict"], 3), -x["effect"]))
    return rows


HEADER = ("verdict", "task", "metric", "base mean ± sd (n)", "head mean ± sd (n)", "change",
          "relative", "evidence")


def _cells(r: dict, mde: bool = False) -> tuple[str, ...]:
    """A row's cells under ``HEADER`` (plus the minimal detectable change with ``mde``)."""
    cells = (f"{r['mark']} {r['verdict']}", f"{r['task']}/{r['dataset']}", r["key"], r["base"],
             r["head"], r["change"], r["relative"], r["p"])
    return (*cells, r["mde"]) if mde else cells


def _header(rows: list[dict]) -> tuple[tuple[str, ...], bool]:
    """The table's header, with an "MDE" column (the smallest change the row's test would
    call beyond noise) when ``compare`` gives one for any row."""
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


def format_table(df: pd.DataFrame, fmt: str = "text", *, changed_only: bool = True,
                 color: bool = False) -> str:
    """The comparison for a terminal (``fmt="text"``; ``color``: the first line in red or
    green) or a PR comment (``fmt="markdown"``), verdict first: the ``GATE FAIL``/``GATE
    PASS`` line; what the judgement rested on; the failing rows, each with its reason; a
    ready-to-paste expected-changes entry per failing row; every other change, loudest
    first; the two sides; notes. ``changed_only=False`` also lists the identical metrics."""
    if fmt not in ("text", "markdown"):
        raise UserError(f"table format {fmt!r}; valid: text, markdown")
    rows = verdict_rows(df, changed_only=True)
    bad, rest = [r for r in rows if r["fails"]], [r for r in rows if not r["fails"]]
    same = [] if changed_only else [r for r in verdict_rows(df, changed_only=False)
                                    if r["verdict"] in (IDENTICAL, NOT_JUDGED)
                                    and not r["fails"]]
    notes = [*df.attrs.get("warnings", ()), *df.attrs.get("notes", ()), *stale_lines(df),
             *([df.attrs["chance"]] if df.attrs.get("chance") else [])]
    facts = [*_facts_lines(df), *([df.attrs["identity"]] if df.attrs.get("identity") else [])]
    if fmt == "markdown":
        return _markdown(df, bad, rest, same, facts, notes)
    lines = [fill(gate_line(df, color)), fill(evidence_line(df)), *map(fill, facts)]
    if bad:
        lines += ["", f"failing ({len(bad)}):", *_aligned(bad), "", "why:"]
        lines += [fill(f"{r['verdict']}: {r['task']}/{r['dataset']} {r['key']}: {r['note']}",
                       indent=4, first=2) for r in bad]
        lines += ["", "to approve a failing change, paste its entry into the expected-changes "
                  "file (quirkbench compare --expect FILE) and replace the reason:", "",
                  *"\n\n".join(expected_entries(df)).splitlines()]
    lines += ["", f"other changes ({len(rest)}):", *_aligned(rest)] if rest else \
        ["", "No other metric changed."]
    if same:
        lines += ["", f"identical or not judged ({len(same)}):", *_aligned(same)]
    return "\n".join([*lines, *([""] + [fill(n) for n in notes] if notes else [])])


def _aligned(rows: list[dict]) -> list[str]:
    header, mde = _header(rows)
    cells = [_cells(r, mde) for r in rows]
    return table(header, cells, wrap=range(len(header)), lead=3).splitlines()  # fits


def _md_table(rows: list[dict]) -> list[str]:
    header, mde = _header(rows)
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return out + ["| " + " | ".join(md_escape(c) for c in _cells(r, mde)) + " |" for r in rows]


def _pre(text: str) -> str:
    """Text shown verbatim and copyable on GitHub, safe whatever a metric's name holds."""
    import html

    return html.escape(text, quote=False).replace("`", "&#96;")


def _markdown(df: pd.DataFrame, bad: list[dict], rest: list[dict], same: list[dict],
              facts: list[str], notes: list[str]) -> str:
    mark = "🔴" if bad else "🟢"
    lines = [f"## {mark} {md_escape(gate_line(df))}", "", md_escape(evidence_line(df)), ""]
    lines += [f"- {md_escape(f)}" for f in facts] + ([""] if facts else [])
    if bad:
        lines += [f"### Failing ({len(bad)})", "", *_md_table(bad), ""]
        lines += [f"- **{md_escape(r['verdict'])}**: {md_escape(r['task'])}/"
                  f"{md_escape(r['dataset'])} {md_escape(r['key'])}: {md_escape(r['note'])}"
                  for r in bad]
        lines += ["", "To approve a failing change, paste its entry into the expected-changes "
                  "file (<code>quirkbench compare --expect FILE</code>) and replace the reason:",
                  "", "<pre>", _pre("\n\n".join(expected_entries(df))), "</pre>", ""]
    lines += [f"### Other changes ({len(rest)})", "", *_md_table(rest)] if rest else \
        ["No other metric changed."]
    if same:
        lines += ["", f"<details><summary>{len(same)} identical or not judged metrics</summary>",
                  "",
                  *_md_table(same), "", "</details>"]
    lines += [""] + [f"> {'⚠ ' if n.startswith('warning') else ''}{md_escape(n)}"
                     for n in notes] if notes else []
    return "\n".join(lines)
