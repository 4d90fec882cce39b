"""Results documents → the plain dicts and lists the templates show.

Nothing here recomputes a metric: values come from the documents as the tasks wrote them;
the only arithmetic is the mean ± sample std over seeds that every summary shows, and the
change vs a baseline comes from ``quirkbench.compare``.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from ..metrics import fmt_value, shown_unit
from ..tracking.results import load_results, metrics_of, pool, read
from . import plots

VERDICTS = {  # verdict → (symbol, css class); the word is always shown beside the symbol
    "phenomenon lost": ("‼", "bad"), "regressed beyond noise": ("▼", "bad"),
    "moved beyond noise": ("◆", "warn"), "gone": ("✖", "warn"),
    "improved beyond noise": ("▲", "good"), "within noise": ("≈", "same"),
    "identical": ("=", "same"), "expected": ("✔", "same"), "not judged": ("?", "warn"),
    "new": ("✚", "same"), "timings moved": ("◆", "same"),
}
META_ORDER = ("commit", "dirty", "suite", "started", "ended", "seconds", "status", "device",
              "device_name", "torch", "python", "quirkbench", "platform", "cpu_threads", "seeds",
              "datasets", "tasks", "argv")


def number(value: float) -> str:
    """A value without its unit (the unit has its own column)."""
    return fmt_value(value, "")


def load(paths: list[Path], label: str = "RESULTS") -> tuple[list[dict], Any, list[str]]:
    """(documents with their path under ``"path"``, oldest first; the tidy metrics frame of
    them all, pooled honestly (``results.pool``: one suite and one setting per task, each
    seed counted once); the notes on seeds counted once)."""
    import pandas as pd

    docs = sorted(({**read(p), "path": str(p)} for p in paths),
                  key=lambda d: str(d["meta"].get("started") or ""))
    frames = [load_results(p) for p in paths]
    df = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    df, notes = pool(df, label)
    return docs, df, notes


def _first_text(m, column: str) -> str:
    """The first non-empty text in ``column`` of one metric's rows ("" when none)."""
    return next((str(t) for t in m.get(column, ()) if isinstance(t, str) and t), "")


def tally(rows: list[dict]) -> dict:
    """How many phenomenon checks hold and how many goals were met, over every metric row
    (a row holds, or meets its goal, when it does on every seed): {holds, checks, met,
    goals, failing: per task, how many checks do not hold; missed: per task, how many goals
    were missed}."""
    checked = [r for r in rows if r["holds"] is not None]
    goals = [r for r in rows if r["goal"] and not r.get("goal_not_judged")]

    def by_task(bad: list[dict]) -> list[dict]:  # [{task, n, href}] in the page's order
        n = Counter(r["task"] for r in bad)
        return [{"task": t, "n": k, "href": f"#task-{section_id(t)}"} for t, k in n.items()]

    return {"holds": sum(r["holds"] for r in checked), "checks": len(checked),
            # checks the run's budget cannot show, goals it cannot judge: neither counted
            "not_shown": sum(bool(r.get("not_shown")) for r in rows),
            "not_judged": sum(bool(r.get("goal_not_judged")) for r in rows),
            "met": sum(bool(r["goal_met"]) for r in goals), "goals": len(goals),
            "failing": by_task([r for r in checked if not r["holds"]]),
            "missed": by_task([r for r in goals if not r["goal_met"]])}


def metric_rows(df, changes: dict | None, headline_only: bool) -> list[dict]:
    """One row per (task, data set, metric key): mean ± std over seeds and its context.

    ``headline_only``: a task's headline metrics (all of them where it marks none).
    """
    rows: list[dict] = []
    if df.empty:
        return rows
    for (task, dataset), g in df.groupby(["task", "dataset"], sort=False):
        if headline_only and g["headline"].any():
            g = g[g["headline"]]
        for key, m in g.groupby("key", sort=False):
            v = m["value"].astype(float)
            n = int(v.notna().sum())
            spread = float(v.std(ddof=1)) if n > 1 else None
            holds = m["holds"].dropna()
            goal_met = m["goal_met"].dropna() if "goal_met" in m else m["holds"].iloc[:0]
            first = m.iloc[0]
            tags = key[len(first["metric"]) + 1:-1] if key != first["metric"] else ""
            rows.append({
                "task": task, "dataset": dataset, "key": key, "name": first["metric"],
                "tags": tags.replace(",", ", ").replace("=", " = "), "n": n,
                "value": number(v.mean()) if n else "n/a",
                "spread": number(spread) if spread is not None and math.isfinite(spread) else None,
                "unit": shown_unit(first["unit"]), "direction": first["direction"],
                "anchor": first["anchor"] if isinstance(first["anchor"], str) else "",
                "holds": None if holds.empty else bool(holds.astype(bool).all()),
                "goal": first["goal"] if isinstance(first.get("goal"), str) else "",
                "goal_met": None if goal_met.empty else bool(goal_met.astype(bool).all()),
                "goal_not_judged": _first_text(m, "goal_not_judged"),
                "not_shown": _first_text(m, "not_shown"),
                "change": (changes or {}).get((task, dataset, key)),
            })
    return rows


def comparison(baseline: list[Path], heads: list[Path], sections: dict[str, str]) -> dict:
    """The verdict first: ``quirkbench.compare`` of the baseline documents against these,
    as {banner counts, both sides' facts, the verdict table (every metric that did not stay
    unchanged, regressions first, largest effect first; each row links to its task's
    plots), per-metric changes for the tables below, notes}."""
    from ..tracking.compare import compare
    from ..tracking.summary import evidence_line, gate_line, passed
    from ..tracking.table import verdict_counts, verdict_rows

    base = baseline[0] if len(baseline) == 1 else load(baseline, "BASELINE")[1]
    head = heads[0] if len(heads) == 1 else load(heads)[1]
    table = compare(base, head)
    rows = verdict_rows(table, changed_only=True)
    for r in rows:
        r["symbol"], r["css"] = VERDICTS.get(r["verdict"], ("◆", "warn"))
        r["href"] = f"#fig-{sections[r['task']]}" if r["task"] in sections else None
    changes = {}
    for r in verdict_rows(table, changed_only=False):
        symbol, css = VERDICTS.get(r["verdict"], ("◆", "warn"))
        changes[(r["task"], r["dataset"], r["key"])] = {
            "pct": "" if r["verdict"] == "identical" else " ".join(
                x for x in (r["change"], f"({r['relative']})" if r["relative"] else "") if x),
            "verdict": r["verdict"], "symbol": symbol, "css": css}
    counts = verdict_counts(table)
    gone = [f"{r['task']}/{r['dataset']} {r['key']}" for r in rows if r["verdict"] == "gone"]
    notes = list(table.attrs.get("warnings", ())) + list(table.attrs.get("notes", ()))
    if gone:
        notes.append(f"✖ gone: {len(gone)} metric(s) of the baseline missing here: "
                     f"{'; '.join(gone)}")
    sides = table.attrs.get("sides", {})
    datasets = {r["dataset"] for r in rows}
    return {"dataset": datasets.pop() if len(datasets) == 1 else None,
            "mde": any(r["mde"] for r in rows),
            "counts": [(k, n, VERDICTS.get(k, ("◆", "warn"))[1] if n else "same")
                       for k, n in counts.items()],
            "failed": not passed(table), "gate": gate_line(table),
            "evidence": evidence_line(table), "rows": rows, "changes": changes,
            "notes": notes, "sides": [(name, f,
                                       ", ".join(map(str, baseline)) if name == "base"
                                       else ", ".join(map(str, heads)))
                                      for name, f in sides.items()]}


def series_of(units: list[dict]) -> dict[str, list[dict]]:
    """Every unit's series merged per name, each record tagged with its ``seed``."""
    merged: dict[str, list[dict]] = defaultdict(list)
    for u in units:
        for name, recs in (u.get("series") or {}).items():
            merged[name] += [{"seed": u.get("seed"), **r} for r in recs if isinstance(r, dict)]
    return dict(merged)


def task_of(name: str):
    """The registered task ``name`` (its blurb and figure hints), or ``None`` where this
    installation lacks it: its section still shows, with plots drawn by series name."""
    from ..tasks import load_all

    return load_all().get(name)


def figures(units: list[dict], base_units: list[dict], task=None) -> list[dict]:
    """[{title, svg, series, n}] per series; a series with no plot function gets no svg.

    ``task``: the registered task, whose ``figure(series)`` names the plot and its options."""
    out = []
    base = series_of(base_units)
    config = next((u["config"] for u in units if isinstance(u.get("config"), dict)), {})
    for name, recs in series_of(units).items():
        fig = task.figure(name) if task is not None else None
        plot_name = fig.plot_name if fig is not None else name
        if plot_name not in plots.PLOTS:  # no plot: its records are listed as data
            out.append({"title": name, "svg": None, "series": name, "n": len(recs),
                        "error": None, "wide": True, "data": data_table(recs)})
            continue
        title, fn = plots.PLOTS[plot_name].title, plots.PLOTS[plot_name].fn
        try:
            kw = fig.options(config) if fig is not None and fig.options else {}
            svg, error = fn(recs, base.get(name), **kw), None
        except Exception as e:  # records a plot does not expect must not lose the whole page
            svg, error = None, f"{type(e).__name__}: {e}"
        out.append({"title": title, "svg": svg, "series": name, "n": len(recs), "error": error,
                    "wide": svg_width(svg) > plots.NARROW, "data": None})
    return out


MAX_DATA_ROWS = 50  # records of an unplotted series shown in its table


def data_table(records: list[dict]) -> dict:
    """A series that no plot draws, as a table: {columns, rows (cells as text), more}.
    Columns are every record field (``seed`` first), cells ``number``-formatted."""
    cols = list(dict.fromkeys(k for r in records for k in r))
    cols.sort(key=lambda k: k != "seed")
    shown = records[:MAX_DATA_ROWS]
    def cell(v) -> str:
        if isinstance(v, float):
            return number(v)
        return "" if v is None else str(v)

    return {"columns": cols, "rows": [[cell(r.get(k)) for k in cols] for r in shown],
            "more": len(records) - len(shown)}


def svg_width(svg: str | None) -> float:
    """The width (px) a plot is drawn for (``plots.to_svg`` writes it as a max-width)."""
    import re

    m = re.search(r'max-width: (\d+)px', svg or "")
    return float(m.group(1)) if m else 0.0


def scalar_info(units: list[dict]) -> list[tuple[str, str]]:
    """Short scalar ``info`` entries of a task's first unit (data set, model, chance...)."""
    for u in units:
        info = u.get("info") or {}
        return [(k, f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in info.items()
                if isinstance(v, str | int | float | bool) and k != "trace_dir"
                and len(str(v)) < 200]
    return []


def link(target: str, page: Path) -> str:
    """A link from the page's folder to ``target`` (relative where both are on one drive)."""
    t = Path(target)
    try:
        return Path(os.path.relpath(t.resolve(), page.resolve().parent)).as_posix()
    except ValueError:
        return t.resolve().as_uri()


def _ms(v) -> str:
    return f"{v:.3g}" if isinstance(v, int | float) else "–"


def profiles(docs: list[dict], page: Path) -> list[dict]:
    """Units with a profiler summary (``info.profile``, from ``profiling.ProfileSummary``)
    and/or trace files (``info.trace_dir``, ``info.profile.traces``): times per step in ms,
    top operators, links to the traces."""
    out = []
    for d in docs:
        for key, u in d["units"].items():
            info = u.get("info") or {}
            prof = info.get("profile") if isinstance(info.get("profile"), dict) else {}
            paths = [str(info["trace_dir"])] if info.get("trace_dir") else []
            paths += [str(t) for t in prof.get("traces") or []]
            if not prof and not paths:
                continue
            idle = prof.get("idle_fraction")
            out.append({
                "unit": key, "device": str(prof.get("device", "")),
                "step_ms": _ms(prof.get("step_ms")), "host_ms": _ms(prof.get("host_ms")),
                "busy_ms": _ms(prof.get("busy_ms")), "device_ms": _ms(prof.get("device_ms")),
                "idle": f"{100 * idle:.1f}" if isinstance(idle, int | float) else "–",
                "top_ops": [(str(op[0]), _ms(op[1])) for op in prof.get("top_ops") or []
                            if isinstance(op, list | tuple) and len(op) == 2],
                "traces": [{"path": t, "href": link(t, page)} for t in paths],
                "info": [(k, v) for k, v in scalar_info([u]) if "trace" not in k]})
    return out


def meta_rows(meta: dict) -> list[tuple[str, str]]:
    keys = [k for k in META_ORDER if k in meta] + [k for k in meta if k not in META_ORDER]
    def fmt(v) -> str:
        if isinstance(v, list):
            return " ".join(map(str, v))
        return f"{v:.1f}" if isinstance(v, float) else str(v)

    return [(k, fmt(meta[k])) for k in keys]


def header(docs: list[dict]) -> dict:
    meta = docs[-1]["meta"] if docs else {}  # the newest
    commit = meta.get("commit") or "unknown"
    seconds = meta.get("seconds")
    return {"commit": commit[:10] + (" (dirty)" if meta.get("dirty") else ""),
            "date": (meta.get("started") or "")[:19].replace("T", " "),
            "device": f"{meta.get('device', '?')} ({meta.get('device_name', '')})",
            "torch": meta.get("torch", "?"), "suite": meta.get("suite", "?"),
            "status": meta.get("status", "?"),
            "seconds": f"{seconds:.1f} s" if isinstance(seconds, int | float) else "?",
            "runs": len(docs)}


def section_id(task: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in task)


def report_context(paths: list[Path], out: Path, baseline: list[Path] | None) -> dict:
    docs, df, notes = load(paths)
    base_docs = load(baseline, "BASELINE")[0] if baseline else []
    units_by_task: dict[str, dict[tuple, dict]] = defaultdict(dict)
    failed = []
    for d in docs:  # oldest first: a seed in several documents is drawn once, the newest
        for key, u in d["units"].items():
            if u.get("status") == "done":
                units_by_task[u["task"]][u["dataset"], u["seed"]] = u
            else:
                failed.append({"unit": key, "error": u.get("error") or u.get("status")})
    base_units: dict[str, dict[tuple, dict]] = defaultdict(dict)
    for d in base_docs:
        for u in d["units"].values():
            if u.get("status") == "done":
                base_units[u["task"]][u["dataset"], u["seed"]] = u
    ids = {task: section_id(task) for task in units_by_task}
    verdict = comparison(baseline, paths, ids) if baseline else None
    changes = verdict["changes"] if verdict else None
    rows = metric_rows(df, changes, headline_only=False)
    summary = metric_rows(df, changes, headline_only=True)
    sections = []
    for task, by_seed in units_by_task.items():
        units = list(by_seed.values())
        task_rows = [r for r in rows if r["task"] == task]
        registered = task_of(task)
        sections.append({
            "task": task, "id": "task-" + ids[task], "fig_id": "fig-" + ids[task],
            "blurb": registered.blurb if registered else "", "info": scalar_info(units),
            "seeds": sorted({u.get("seed") for u in units}, key=str),
            "datasets": sorted({u.get("dataset") for u in units}, key=str),
            "figures": figures(units, list(base_units.get(task, {}).values()), registered),
            "rows": task_rows, "n_metrics": sum(len(metrics_of(u)) for u in units),
        })
    return {"header": header(docs), "summary": summary, "tally": tally(rows),
            "has_goals": any(r["goal"] for r in rows),
            "sections": sections, "failed": failed, "profiles": profiles(docs, out),
            "environment": [{"path": d["path"], "meta": meta_rows(d["meta"])} for d in docs],
            "baseline": ", ".join(map(str, baseline)) if baseline else None,
            "verdict": verdict, "pool_notes": notes, "has_changes": changes is not None}
