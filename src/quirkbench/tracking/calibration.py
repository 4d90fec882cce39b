"""Calibration: how often each ``holds`` check passes over many seeds, and each metric's
spread, as a table (CSV, JSON) and a Markdown page.

A ``holds`` check says a phenomenon reproduced. Its threshold is only trustworthy if it was
tuned on some seeds (0-9 by this project's rule) and then holds on seeds it never saw
(100-119). ``quirkbench calibrate`` runs the suite on those seeds; this module turns the run
documents of its folder into, per task × data set × metric:

- for every ``holds`` check: passes k/N over the seeds (a unit that failed counts as a
  failed check), whether k/N reaches the pass rate asked for (default 0.95 = 19/20);
- for every performance goal: met k/N;
- the value's median and its 5-95% range over the seeds;
- the coefficient of variation (std/|mean|, in %) of every headline metric.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..metrics import LINEAR

PASS_RATE = 0.95  # 19 of 20 seeds


def required_passes(n: int, rate: float = PASS_RATE) -> int:
    """The fewest passes out of ``n`` that meet ``rate`` (19 of 20 at 0.95)."""
    return math.ceil(rate * n - 1e-9)


def _docs(folder: Path) -> list[Path]:
    """The folder's ``results-*.json``, oldest run first (by the start time in its meta, then
    by name), so that where two documents hold one unit the newest run's wins: a task
    recalibrated into the folder of an older whole-suite run replaces it whatever the file
    names (``results-pr-forgetting-...`` sorts before ``results-pr-s100-...``)."""
    import json

    def started(p: Path) -> str:
        try:
            return str(json.loads(p.read_text(encoding="utf-8"))["meta"].get("started") or "")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return ""  # a damaged document: reading it later says what is wrong

    paths = [p for p in folder.glob("results-*.json") if not p.name.startswith(".")]
    return sorted(paths, key=lambda p: (started(p), p.name))


def _units(folder: Path) -> list[dict[str, Any]]:
    """Every unit record of every results document in ``folder`` (last one wins per key)."""
    from .results import read

    units: dict[str, dict[str, Any]] = {}
    for path in _docs(folder):
        for key, u in read(path)["units"].items():
            if key not in units or u.get("status") == "done":
                units[key] = {**u, "_run": path.name}  # the document the unit comes from
    return list(units.values())


def _meta(folder: Path) -> dict[str, Any]:
    """The last document's meta, plus ``sources``: tasks, seeds, commit and status of each
    document (a calibration split over processes or resumed at another commit says so)."""
    from .results import read

    docs = _docs(folder)
    if not docs:
        return {}
    metas = [read(p)["meta"] for p in docs]
    meta = dict(metas[-1])
    meta["sources"] = [{"file": p.name, "tasks": m.get("tasks"), "seeds": m.get("seeds"),
                        "commit": m.get("commit"), "dirty": m.get("dirty"),
                        "status": m.get("status")} for p, m in zip(docs, metas, strict=True)]
    return meta


def _metric_key(m: dict[str, Any]) -> str:
    tags = m.get("tags") or {}
    if not tags:
        return m["name"]
    return m["name"] + "[" + ",".join(f"{k}={v}" for k, v in sorted(tags.items())) + "]"


def _value(v) -> float:
    if v is None:
        return math.nan
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def by_task(units: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(task, data set) → its unit records, sorted."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for u in units:
        groups.setdefault((u["task"], u["dataset"]), []).append(u)
    return dict(sorted(groups.items()))


def per_metric(us: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Metric key → {unit, direction, kind, scale, headline, values, holds, reasons, goal, met}
    over the finished units ``us`` of one task × data set; ``values``, ``holds``,
    ``reasons`` and ``met`` are keyed by seed."""
    per_key: dict[str, dict[str, Any]] = {}
    for u in us:
        reasons = (u.get("info") or {}).get("check_reasons") or {}
        for m in u.get("metrics", []) if u.get("status") == "done" else []:
            k = _metric_key(m)
            e = per_key.setdefault(k, {"unit": m.get("unit", ""), "headline": False,
                                       "direction": m.get("direction"), "kind": m.get("kind"),
                                       "scale": m.get("scale") or LINEAR,
                                       "values": {}, "holds": {}, "goal": None,
                                       "met": {}, "reasons": {}})
            e["values"][u["seed"]] = _value(m.get("value"))
            e["headline"] |= bool(m.get("headline"))
            if m.get("holds") is not None:
                e["holds"][u["seed"]] = bool(m["holds"])
                if not m["holds"] and k in reasons:
                    e["reasons"][u["seed"]] = str(reasons[k])
            g = m.get("goal")
            if g:
                e["goal"] = g
                e["met"][u["seed"]] = bool(g.get("met"))
    return per_key


def table(units: list[dict[str, Any]], rate: float = PASS_RATE) -> list[dict[str, Any]]:
    """One row per (task, data set, metric) that is a check, a goal or a headline."""
    rows = []
    for (task, dataset), us in by_task(units).items():
        seeds = sorted({u["seed"] for u in us})
        runs = sorted({u["_run"] for u in us if u.get("_run")})
        failed_units = sorted(u["seed"] for u in us if u.get("status") != "done")
        for k, e in per_metric(us).items():
            if e["holds"] or e["goal"] or e["headline"]:
                rows.append(_row(task, dataset, k, e, seeds, runs, rate))
        if failed_units:
            rows.append({"task": task, "dataset": dataset, "metric": "(unit failed)", "unit": "",
                         "headline": False, "check": True, "n_seeds": len(seeds),
                         "passes": len(seeds) - len(failed_units),
                         "required": required_passes(len(seeds), rate),
                         "ok": len(failed_units) <= len(seeds) - required_passes(len(seeds), rate),
                         "failing_seeds": failed_units, "goal": None, "goal_met": None,
                         "median": math.nan, "p5": math.nan, "p95": math.nan, "mean": math.nan,
                         "std": math.nan, "cv_pct": math.nan, "reasons": {}, "runs": runs})
    return rows


def _row(task: str, dataset: str, k: str, e: dict[str, Any], seeds: list[int],
         runs: list[str], rate: float) -> dict[str, Any]:
    """The table's row for metric ``k`` (``per_metric``'s record ``e``) over ``seeds``."""
    import numpy as np

    is_check = bool(e["holds"])
    vals = np.array([v for v in e["values"].values() if math.isfinite(v)])
    n = len(seeds)
    row: dict[str, Any] = {
        "task": task, "dataset": dataset, "metric": k, "unit": e["unit"],
        "headline": e["headline"], "check": is_check, "n_seeds": n,
        "passes": None, "required": None, "ok": None, "failing_seeds": [],
        "goal": None, "goal_met": None,
        "median": float(np.median(vals)) if len(vals) else math.nan,
        "p5": float(np.percentile(vals, 5)) if len(vals) else math.nan,
        "p95": float(np.percentile(vals, 95)) if len(vals) else math.nan,
        "mean": float(vals.mean()) if len(vals) else math.nan,
        "std": float(vals.std(ddof=1)) if len(vals) > 1 else math.nan,
        "cv_pct": math.nan, "reasons": {}, "runs": runs}
    if len(vals) > 1 and row["mean"] != 0:
        row["cv_pct"] = 100.0 * row["std"] / abs(row["mean"])
    if is_check:
        # a seed whose unit failed, or whose metric is missing, did not pass
        passes = sum(1 for s in seeds if e["holds"].get(s) is True)
        row.update(passes=passes, required=required_passes(n, rate),
                   failing_seeds=[s for s in seeds if e["holds"].get(s) is not True])
        row["ok"] = passes >= row["required"]
        row["reasons"] = {str(s): r for s, r in sorted(e["reasons"].items())}
    if e["goal"]:
        g = e["goal"]
        row["goal"] = f"{'≥' if g.get('at_least', True) else '≤'} {g['target']:g}"
        row["goal_met"] = sum(1 for s in seeds if e["met"].get(s) is True)
    return row


def _fmt(v: float) -> str:
    if v is None or not math.isfinite(v):
        return "n/a" if v is None or math.isnan(v) else str(v)
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 100:
        return f"{v:.1f}"
    if abs(v) >= 1:
        return f"{v:.2f}"
    return f"{v:.3g}"


def _md_escape(text: str) -> str:
    import html

    return html.escape(str(text), quote=False).replace("|", "\\|").replace("\n", " ")


def markdown(rows: list[dict[str, Any]], meta: dict[str, Any], seeds: list[int],
             rate: float = PASS_RATE) -> str:
    """The calibration page: checks, goals, headline CVs; machine and commit recorded."""
    sources = meta.get("sources") or []
    # a table built from several run documents names, on every row, the run(s) it came from
    number = {src["file"]: i for i, src in enumerate(sources, 1)} if len(sources) > 1 else {}
    runs = _RunColumn(number, sources)
    lines = _page_head(rows, meta, seeds, rate, number, sources)
    lines += _checks_section(rows, runs)
    lines += _goals_section(rows)
    lines += _headline_section(rows, runs)
    if number:
        lines += _runs_section(rows, sources)
    return "\n".join(lines) + "\n"


class _RunColumn:
    """The "run" column of a page built from several run documents (none from one)."""

    def __init__(self, number: dict[str, int], sources: list[dict[str, Any]]):
        self.number, self.sources = number, sources
        self.head, self.rule = (" run |", " --- |") if number else ("", "")

    def cell(self, r: dict[str, Any]) -> str:
        if not self.number:
            return ""
        return " " + ", ".join(
            f"{self.number[f]} "
            f"(`{_md_escape(_short(self.sources[self.number[f] - 1].get('commit')))}`)"
            for f in r.get("runs") or [] if f in self.number) + " |"


def _page_head(rows: list[dict[str, Any]], meta: dict[str, Any], seeds: list[int],
               rate: float, number: dict[str, int], sources: list[dict[str, Any]]) -> list[str]:
    checks = [r for r in rows if r["check"]]
    bad = [r for r in checks if not r["ok"]]
    commit = meta.get("commit") or "unknown"
    dirty = " (with uncommitted changes)" if meta.get("dirty") else ""
    return [
        f"# Calibration: `{meta.get('suite', '?')}` suite over seeds {seed_text(seeds)}",
        "",
        "Generated by `quirkbench calibrate`; do not edit by hand.",
        "",
        f"- commit: `{_md_escape(commit)}`{dirty}" if not number else
        f"- built from {len(sources)} run documents: every row names its run and that run's "
        "commit; the runs are listed under *Runs* at the end",
        f"- machine: {_md_escape(meta.get('platform', '?'))}, "
        f"{_md_escape(meta.get('device_name', '') or '')} ({_md_escape(meta.get('device', '?'))}), "
        f"torch {_md_escape(meta.get('torch', '?'))}, python {_md_escape(meta.get('python', '?'))}",
        f"- pass rule: a check holds on at least {rate:.0%} of the seeds "
        f"({required_passes(len(seeds), rate)} of {len(seeds)})",
        f"- checks: {len(checks)}, meeting the rule: {len(checks) - len(bad)}"
        + (f"; NOT meeting it: {', '.join(_md_escape(r['task'] + ' ' + r['metric']) for r in bad)}"
           if bad else ""),
    ]


def _checks_section(rows: list[dict[str, Any]], runs: _RunColumn) -> list[str]:
    lines = ["", "## Checks (`holds`)", "",
             "| task | data set | check | passes | rule | median | 5-95% | CV | failing seeds |"
             + runs.head,
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |" + runs.rule]
    for r in (r for r in rows if r["check"]):
        fails = ", ".join(str(s) for s in r["failing_seeds"][:10])
        if len(r["failing_seeds"]) > 10:
            fails += ", …"
        if r["reasons"]:
            fails += " (" + "; ".join(sorted(set(r["reasons"].values()))) + ")"
        lines.append(
            f"| {_md_escape(r['task'])} | {_md_escape(r['dataset'])} | {_md_escape(r['metric'])} "
            f"| {r['passes']}/{r['n_seeds']} | {'ok' if r['ok'] else '**below**'} "
            f"| {(_fmt(r['median']) + ' ' + _unit(r['unit'])).strip()} "
            f"| {_fmt(r['p5'])} – {_fmt(r['p95'])} | {_cv(r['cv_pct'])} "
            f"| {_md_escape(fails)} |" + runs.cell(r))
    return lines


def _goals_section(rows: list[dict[str, Any]]) -> list[str]:
    goals = [r for r in rows if r["goal"]]
    if not goals:
        return []
    lines = ["", "## Performance goals (not phenomenon checks)", "",
             "| task | data set | metric | goal | met | median | 5-95% |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in goals:
        lines.append(
            f"| {_md_escape(r['task'])} | {_md_escape(r['dataset'])} "
            f"| {_md_escape(r['metric'])} | {_md_escape(r['goal'])} "
            f"| {r['goal_met']}/{r['n_seeds']} | {_fmt(r['median'])} "
            f"{_unit(r['unit'])} | {_fmt(r['p5'])} – {_fmt(r['p95'])} |")
    return lines


def _headline_section(rows: list[dict[str, Any]], runs: _RunColumn) -> list[str]:
    lines = ["", "## Headline metrics: spread over seeds", "",
             "| task | data set | metric | median | 5-95% | mean ± std | CV |" + runs.head,
             "| --- | --- | --- | --- | --- | --- | --- |" + runs.rule]
    for r in (r for r in rows if r["headline"]):
        lines.append(
            f"| {_md_escape(r['task'])} | {_md_escape(r['dataset'])} | {_md_escape(r['metric'])} "
            f"| {(_fmt(r['median']) + ' ' + _unit(r['unit'])).strip()} "
            f"| {_fmt(r['p5'])} – {_fmt(r['p95'])} | {_fmt(r['mean'])} ± {_fmt(r['std'])} "
            f"| {_cv(r['cv_pct'])} |" + runs.cell(r))
    return lines


def _runs_section(rows: list[dict[str, Any]], sources: list[dict[str, Any]]) -> list[str]:
    used = {f for r in rows for f in r.get("runs") or []}
    lines = ["", "## Runs", "",
             "A unit (task, data set, seed) found in several documents is taken from the "
             "newest run (by its start time) in which it finished.", "",
             "| run | document | tasks | seeds | commit | status |",
             "| --- | --- | --- | --- | --- | --- |"]
    for i, src in enumerate(sources, 1):
        status = str(src.get("status") or "?") + (
            "" if src["file"] in used else ", every unit superseded by a later run")
        lines.append(
            f"| {i} | {_md_escape(src['file'])} "
            f"| {_md_escape(', '.join(src.get('tasks') or []) or 'all')} "
            f"| {_md_escape(seed_text(sorted(src.get('seeds') or [])))} "
            f"| `{_md_escape(src.get('commit') or 'unknown')}`"
            + (" (with uncommitted changes)" if src.get("dirty") else "")
            + f" | {_md_escape(status)} |")
    return lines


def _short(commit: str | None) -> str:
    return (commit or "unknown")[:7]


def _unit(unit: str) -> str:
    return "" if unit in ("", "1") else _md_escape(unit)


def _cv(v: float) -> str:
    """The coefficient of variation; n/a where the mean is 0 or one seed only."""
    return "n/a" if v is None or not math.isfinite(v) else f"{_fmt(v)}%"


def seed_text(seeds: list[int]) -> str:
    if not seeds:
        return "(none)"
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def write_outputs(folder: Path, rate: float = PASS_RATE,
                  markdown_path: str | Path | None = None) -> list[dict[str, Any]]:
    """(Re)build the table from every results document in ``folder``."""
    import pandas as pd

    from .results import write_atomic

    units = _units(folder)
    if not units:
        raise UserError(f"no results documents (results-*.json) with units in {folder}")
    rows = table(units, rate)
    seeds = sorted({u["seed"] for u in units})
    meta = _meta(folder)
    md = markdown(rows, meta, seeds, rate)
    write_atomic(folder / "calibration.json",
                 {"meta": {k: meta.get(k) for k in ("commit", "dirty", "suite", "platform",
                                                    "device", "device_name", "torch", "python",
                                                    "sources")},
                  "seeds": seeds, "pass_rate": rate,
                  "rows": _strict(rows)})
    df = pd.DataFrame(rows)
    df["failing_seeds"] = df["failing_seeds"].map(lambda s: " ".join(map(str, s)))
    df["reasons"] = df["reasons"].map(lambda d: "; ".join(f"{k}: {v}" for k, v in d.items()))
    _write_text(folder / "calibration.csv", df.to_csv(index=False))
    _write_text(folder / "calibration.md", md)
    if markdown_path:
        _write_text(Path(markdown_path), md)
    return rows


def _metas(folder: Path) -> list[dict[str, Any]]:
    from .results import read

    return [read(p)["meta"] for p in _docs(folder)]


def _strict(obj):
    """Strict JSON: NaN and ±inf become null."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _strict(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_strict(v) for v in obj]
    return obj


def _write_text(path: Path, text: str) -> None:
    import os
    import tempfile

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror}") from None
