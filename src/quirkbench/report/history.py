"""The history page: headline metrics over commits, from every results document in a folder.

Runs are ordered by start time and grouped by suite (a smoke value and a nightly value of
the same metric are not comparable); the figures' x axis names each run's commit. A run
whose task settings differ from the previous run's is listed with what changed, and the
figures of those tasks mark it with a dashed line, so a step that a settings change
explains is not mistaken for a regression of the code. Each consecutive pair of runs of
one suite goes through ``quirkbench.compare``; the points it calls ``regressed`` are marked. Step
changes in each metric's history (``quirkbench.tracking.changepoints``) are listed with
the first commit after each step, and the nightly ledger's newest verdict (when the folder
has one) names the first bad commit of every regression that stands.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from ..errors import UserError
from ..metrics import shown_unit
from ..tracking.results import find_documents, load_results, read, run_commit, run_dirty
from . import plots
from .view import VERDICTS, number

MAX_TABLE_RUNS = 8  # newest runs shown in the table (the plots show all): fits a laptop screen


def _compare_pairs(paths: list[Path]) -> tuple[dict, str | None]:
    """{(run index, task, dataset, key): verdict} for consecutive runs, via quirkbench.compare."""
    try:
        from ..tracking.compare import compare
    except ImportError:
        return {}, "regression marks need quirkbench.compare, which this version lacks"
    out = {}
    for i in range(1, len(paths)):
        for r in compare(paths[i - 1], paths[i]).to_dict("records"):
            out[(i, r["task"], r["dataset"], r["key"])] = r.get("verdict")
    return out, None


def history_context(results_dir: Path) -> dict:
    runs, skipped = [], []
    for p in find_documents(results_dir, skipped):  # other tools' JSON: skipped, said so
        doc = read(p)
        runs.append({"path": p, "meta": doc["meta"], "started": doc["meta"].get("started") or "",
                     "settings": settings_of(doc)})
    runs.sort(key=lambda r: r["started"])
    notes = set(skipped)
    by_suite: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        by_suite[str(r["meta"].get("suite"))].append(r)
    suites = []
    for suite, rs in by_suite.items():
        paths = [r["path"] for r in rs]
        verdicts, note = _compare_pairs(paths)
        if note:
            notes.add(note)
        commits = [commit_label(r["meta"]) for r in rs]
        labels = [f"{i}: {c}" for i, c in enumerate(commits)]
        changes = settings_changes(rs, labels)
        changed_at = {c["x"]: c["tasks"] for c in changes}
        series: dict[tuple, dict] = {}
        for i, p in enumerate(paths):
            df = load_results(p)
            if df.empty:
                continue
            # a task's headline metrics, all of them where it marks none (as the summary)
            head = df[df["headline"] | ~df.groupby("task")["headline"].transform("any")]
            for (task, dataset, key), m in head.groupby(["task", "dataset", "key"], sort=False):
                v = m["value"].astype(float)
                s = series.setdefault((task, dataset, key),
                                      {"unit": m["unit"].iloc[0], "points": []})
                spread = float(v.std(ddof=1)) if v.notna().sum() > 1 else None
                s["points"].append({"x": i, "value": float(v.mean()), "spread": spread,
                                    "verdict": verdicts.get((i, task, dataset, key))})
        metrics, regressions, steps = [], [], []
        shown = list(range(max(0, len(rs) - MAX_TABLE_RUNS), len(rs)))
        for (task, dataset, key), s in series.items():
            at = {p["x"]: p for p in s["points"]}
            cells = []
            for i in shown:
                p = at.get(i)
                if p is None:
                    cells.append({"text": "–", "verdict": None})
                    continue
                sym, css = VERDICTS.get(p["verdict"], ("", ""))
                cells.append({"text": number(p["value"]) if math.isfinite(p["value"]) else "n/a",
                              "verdict": p["verdict"], "symbol": sym, "css": css})
                if p["verdict"] in ("regressed beyond noise", "phenomenon lost"):
                    regressions.append({"run": labels[i], "task": task, "dataset": dataset,
                                        "key": key, "value": number(p["value"]),
                                        "unit": shown_unit(s["unit"])})
            steps += [{"task": task, "dataset": dataset, "key": key, "label": st.label,
                       "text": st.describe(s["unit"])}
                      for st in _steps(s["points"], labels, len(rs), notes)]
            metrics.append({"task": task, "dataset": dataset, "key": key,
                            "unit": shown_unit(s["unit"]),
                            "cells": cells,
                            "changed": [x for x, t in changed_at.items() if task in t],
                            "svg": plots.history(s["points"], commits, s["unit"], [
                                x for x, t in changed_at.items() if task in t])})
        runs_list = [{"label": labels[i], "started": r["started"][:19].replace("T", " "),
                      "path": str(r["path"])} for i, r in enumerate(rs)]
        suites.append({"suite": suite, "runs": runs_list,
                       "shown": [labels[i] for i in shown], "metrics": metrics,
                       "regressions": regressions, "steps": steps, "changes": changes})
    return {"folder": str(results_dir), "n_runs": len(runs), "suites": suites,
            "nightly": _nightly(results_dir, notes), "notes": sorted(notes)}


def commit_label(meta: dict) -> str:
    """A run's commit as the axis and the table show it: 7 hex digits, ``*`` when dirty;
    the user's project commit for a run of their own model factory (``run_commit``)."""
    return (run_commit(meta) or "unknown")[:7] + ("*" if run_dirty(meta) else "")


def _flat(config, prefix: str = "") -> dict[str, str]:
    """A unit's settings as dotted keys (``train.lr``) → canonical JSON of each value."""
    if not isinstance(config, dict):
        return {prefix.rstrip("."): json.dumps(config, sort_keys=True)} if prefix else {}
    out: dict[str, str] = {}
    for k, v in config.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, dict)
                   else {f"{prefix}{k}": json.dumps(v, sort_keys=True)})
    return out


def settings_of(doc: dict) -> dict[str, dict[str, str]]:
    """{task/dataset: its flattened settings} over a document's units (the first seed's)."""
    out: dict[str, dict[str, str]] = {}
    for u in doc["units"].values():
        out.setdefault(f"{u['task']}/{u['dataset']}", _flat(u.get("config") or {}))
    return out


def settings_changes(runs: list[dict], labels: list[str], most: int = 6) -> list[dict]:
    """Every run whose settings differ from the previous run's of its suite:
    [{x, label, tasks: the task names that changed, what: ["task/dataset key: old → new",
    ...], more: how many items beyond ``most``}]. A task/data set only one of the two runs
    has is not a change of settings (the tables show it as missing)."""
    out = []
    for i in range(1, len(runs)):
        before, after = runs[i - 1]["settings"], runs[i]["settings"]
        items, tasks = [], set()
        for unit in (u for u in after if u in before):
            old, new = before[unit], after[unit]
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    items.append(f"{unit} {key}: {old.get(key, '(unset)')} → "
                                 f"{new.get(key, '(unset)')}")
                    tasks.add(unit.split("/")[0])
        if items:
            out.append({"x": i, "label": labels[i], "tasks": tasks, "what": items[:most],
                        "more": len(items) - most if len(items) > most else 0})
    return out


def _steps(points: list[dict], labels: list[str], n: int, notes: set) -> list:
    """Step changes of one metric over the runs (NaN where a run lacks it)."""
    from ..tracking.changepoints import detect

    values = [math.nan] * n
    for p in points:
        values[p["x"]] = p["value"]
    try:
        return detect(values, labels)
    except UserError as e:  # asv (the step detection) not installed
        notes.add(f"no step detection: {e}")
        return []


def _nightly(results_dir: Path, notes: set) -> dict | None:
    """The nightly ledger's newest verdict, if the folder has a ledger."""
    from ..tracking import nightly

    path = nightly.ledger_path(results_dir)
    if not path.exists():
        return None
    try:
        nights = nightly.load_ledger(path)
    except UserError as e:
        notes.add(str(e))
        return None
    if not nights:
        return None
    last = nights[-1]
    return {"commit": last["commit"][:10], "started": last["started"][:19].replace("T", " "),
            "status": last["status"], "baseline": (last.get("baseline_commit") or "")[:10],
            "failures": [{**f, "first_bad_commit": f["first_bad_commit"][:10]}
                         for f in last["failures"]],
            "n_red": sum(n["status"] == nightly.RED for n in nights), "n": len(nights)}
