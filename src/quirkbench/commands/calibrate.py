"""``quirkbench calibrate``: run a suite over many seeds and tabulate how often each check holds.

A ``holds`` check says a phenomenon reproduced. Its threshold is only trustworthy if it was
tuned on some seeds (0-9 by this project's rule) and then holds on seeds it never saw
(100-119). This command runs the suite on the given seeds through the ordinary runner (so an
interrupted calibration resumes and the executors work) and writes, per task × data set ×
metric:

- for every ``holds`` check: passes k/N over the seeds (a unit that failed counts as a
  failed check), whether k/N reaches the pass rate asked for (default 0.95 = 19/20);
- for every performance goal: met k/N;
- the value's median and its 5-95% range over the seeds;
- the coefficient of variation (std/|mean|, in %) of every headline metric.

Outputs in ``--out DIR``: ``results-SUITE[-TASKS]-sSEEDS.json`` (the run documents; every
``results-*.json`` of the folder feeds the table, so a calibration split over processes by
``--tasks`` shares one folder), ``calibration.csv``, ``calibration.json`` and
``calibration.md``; ``--markdown FILE`` also writes the Markdown page elsewhere (the docs'
generated table). ``--no-run`` rebuilds the table from the documents already there.
"""

from __future__ import annotations

import inspect
import math
import sys
from pathlib import Path
from typing import Any

from ..errors import UserError

PASS_RATE = 0.95  # 19 of 20 seeds


def required_passes(n: int, rate: float = PASS_RATE) -> int:
    """The fewest passes out of ``n`` that meet ``rate`` (19 of 20 at 0.95)."""
    return math.ceil(rate * n - 1e-9)


def _docs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("results-*.json") if not p.name.startswith("."))


def _units(folder: Path) -> list[dict[str, Any]]:
    """Every unit record of every results document in ``folder`` (last one wins per key)."""
    from ..tracking.results import read

    units: dict[str, dict[str, Any]] = {}
    for path in _docs(folder):
        for key, u in read(path)["units"].items():
            if key not in units or u.get("status") == "done":
                units[key] = {**u, "_run": path.name}  # the document the unit comes from
    return list(units.values())


def _meta(folder: Path) -> dict[str, Any]:
    """The last document's meta, plus ``sources``: tasks, seeds, commit and status of each
    document (a calibration split over processes or resumed at another commit says so)."""
    from ..tracking.results import read

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


def table(units: list[dict[str, Any]], rate: float = PASS_RATE) -> list[dict[str, Any]]:
    """One row per (task, data set, metric) that is a check, a goal or a headline."""
    import numpy as np

    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for u in units:
        groups.setdefault((u["task"], u["dataset"]), []).append(u)
    rows = []
    for (task, dataset), us in sorted(groups.items()):
        seeds = sorted({u["seed"] for u in us})
        runs = sorted({u["_run"] for u in us if u.get("_run")})
        failed_units = sorted(u["seed"] for u in us if u.get("status") != "done")
        per_key: dict[str, dict[str, Any]] = {}
        for u in us:
            reasons = (u.get("info") or {}).get("check_reasons") or {}
            for m in u.get("metrics", []) if u.get("status") == "done" else []:
                k = _metric_key(m)
                e = per_key.setdefault(k, {"unit": m.get("unit", ""), "headline": False,
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
        for k, e in per_key.items():
            is_check = bool(e["holds"])
            if not (is_check or e["goal"] or e["headline"]):
                continue
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
            rows.append(row)
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
    checks = [r for r in rows if r["check"]]
    bad = [r for r in checks if not r["ok"]]
    commit = meta.get("commit") or "unknown"
    dirty = " (with uncommitted changes)" if meta.get("dirty") else ""
    sources = meta.get("sources") or []
    # a table built from several run documents names, on every row, the run(s) it came from
    number = {src["file"]: i for i, src in enumerate(sources, 1)} if len(sources) > 1 else {}
    run_head, run_rule = (" run |", " --- |") if number else ("", "")

    def run_cell(r: dict[str, Any]) -> str:
        if not number:
            return ""
        return " " + ", ".join(
            f"{number[f]} (`{_md_escape(_short(sources[number[f] - 1].get('commit')))}`)"
            for f in r.get("runs") or [] if f in number) + " |"

    lines = [
        f"# Calibration: `{meta.get('suite', '?')}` suite over seeds {_seed_text(seeds)}",
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
        "",
        "## Checks (`holds`)",
        "",
        "| task | data set | check | passes | rule | median | 5-95% | CV | failing seeds |"
        + run_head,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |" + run_rule,
    ]
    for r in checks:
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
            f"| {_md_escape(fails)} |" + run_cell(r))
    goals = [r for r in rows if r["goal"]]
    if goals:
        lines += ["", "## Performance goals (not phenomenon checks)", "",
                  "| task | data set | metric | goal | met | median | 5-95% |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        for r in goals:
            lines.append(
                f"| {_md_escape(r['task'])} | {_md_escape(r['dataset'])} "
                f"| {_md_escape(r['metric'])} | {_md_escape(r['goal'])} "
                f"| {r['goal_met']}/{r['n_seeds']} | {_fmt(r['median'])} "
                f"{_unit(r['unit'])} | {_fmt(r['p5'])} – {_fmt(r['p95'])} |")
    heads = [r for r in rows if r["headline"]]
    lines += ["", "## Headline metrics: spread over seeds", "",
              "| task | data set | metric | median | 5-95% | mean ± std | CV |" + run_head,
              "| --- | --- | --- | --- | --- | --- | --- |" + run_rule]
    for r in heads:
        lines.append(
            f"| {_md_escape(r['task'])} | {_md_escape(r['dataset'])} | {_md_escape(r['metric'])} "
            f"| {(_fmt(r['median']) + ' ' + _unit(r['unit'])).strip()} "
            f"| {_fmt(r['p5'])} – {_fmt(r['p95'])} | {_fmt(r['mean'])} ± {_fmt(r['std'])} "
            f"| {_cv(r['cv_pct'])} |" + run_cell(r))
    if number:
        used = {f for r in rows for f in r.get("runs") or []}
        lines += ["", "## Runs", "",
                  "A unit (task, data set, seed) found in several documents is taken from the "
                  "last one (by file name) in which it finished.", "",
                  "| run | document | tasks | seeds | commit | status |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for i, src in enumerate(sources, 1):
            status = str(src.get("status") or "?") + (
                "" if src["file"] in used else ", every unit superseded by a later run")
            lines.append(
                f"| {i} | {_md_escape(src['file'])} "
                f"| {_md_escape(', '.join(src.get('tasks') or []) or 'all')} "
                f"| {_md_escape(_seed_text(sorted(src.get('seeds') or [])))} "
                f"| `{_md_escape(src.get('commit') or 'unknown')}`"
                + (" (with uncommitted changes)" if src.get("dirty") else "")
                + f" | {_md_escape(status)} |")
    return "\n".join(lines) + "\n"


def _short(commit: str | None) -> str:
    return (commit or "unknown")[:7]


def _unit(unit: str) -> str:
    return "" if unit in ("", "1") else _md_escape(unit)


def _cv(v: float) -> str:
    """The coefficient of variation; n/a where the mean is 0 or one seed only."""
    return "n/a" if v is None or not math.isfinite(v) else f"{_fmt(v)}%"


def _seed_text(seeds: list[int]) -> str:
    if not seeds:
        return "(none)"
    if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2:
        return f"{seeds[0]}-{seeds[-1]}"
    return ",".join(map(str, seeds))


def write_outputs(folder: Path, rate: float = PASS_RATE,
                  markdown_path: str | Path | None = None) -> list[dict[str, Any]]:
    """(Re)build the table from every results document in ``folder``."""
    import pandas as pd

    from ..tracking.results import write_atomic

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


def run(suite: str = "quick", seeds: str = "100-119", out: str | None = None,
        tasks: list[str] | None = None, datasets: list[str] | None = None,
        sets: list[str] | None = None, device: str = "auto", executor: str = "local",
        jobs: int = 1, markdown: str | None = None, pass_rate: float = PASS_RATE,
        no_run: bool = False, quiet: bool = False) -> int:
    """Run (or resume) the suite on ``seeds`` into ``out``, then write the table.

    Exit status 0 when every check meets the pass rate, 1 otherwise."""
    from ..runner.suite import parse_seeds, run_suite
    from .run import _overrides

    if not out:
        raise UserError("calibrate needs --out DIR (the folder for the runs and the table)")
    if not 0 < pass_rate <= 1:
        raise UserError(f"--pass-rate is a fraction in (0, 1], got {pass_rate}")
    if jobs < 1:
        raise UserError(f"--jobs must be ≥ 1, got {jobs}")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"--out {folder} is a file; calibrate writes a folder")
    log = (lambda m: None) if quiet else (lambda m: print(m, flush=True))
    if not no_run:
        seed_list = parse_seeds(seeds)
        # one document per (tasks, seeds) call: calls split over processes never share one
        name = (f"results-{suite}" + ("-" + "-".join(sorted(tasks)) if tasks else "")
                + f"-s{_seed_text(seed_list).replace(',', '_')}.json")
        kw: dict[str, Any] = {}
        if "jobs" in inspect.signature(run_suite).parameters:
            kw["jobs"] = jobs
        elif jobs > 1:
            log("note: this quirkbench has no process pool; running the units one at a time")
        run_suite(suite, tasks=tasks, datasets=datasets, seeds=seed_list, device=device,
                  out=folder / name, overrides=_overrides(sets), executor=executor,
                  argv=sys.argv[1:], log=log, **kw)
    rows = write_outputs(folder, pass_rate, markdown)
    checks = [r for r in rows if r["check"]]
    bad = [r for r in checks if not r["ok"]]
    for r in checks:
        log(f"{'ok   ' if r['ok'] else 'BELOW'} {r['passes']:>3}/{r['n_seeds']:<3} "
            f"{r['task']}/{r['dataset']} {r['metric']}")
    print(f"{len(checks) - len(bad)} of {len(checks)} checks hold on ≥ {pass_rate:.0%} of the "
          f"seeds; table: {folder / 'calibration.md'}"
          + (f", {markdown}" if markdown else ""))
    return 1 if bad else 0


def add_parser(sub) -> None:
    c = sub.add_parser("calibrate", help="run a suite over many seeds; tabulate how often each "
                                         "holds check passes and each metric's spread")
    c.add_argument("--suite", default="quick", help="smoke | pr | quick (default) | nightly")
    c.add_argument("--seeds", default="100-119",
                   help="validation seeds, e.g. 100-119 (default); never the tuning seeds 0-9")
    c.add_argument("--out", required=True, metavar="DIR",
                   help="folder for the run documents and the table (an existing one resumes)")
    c.add_argument("--tasks", nargs="+", metavar="TASK", help="only these tasks")
    c.add_argument("--dataset", dest="datasets", nargs="+", metavar="NAME",
                   help="data set(s) (default: each task's own)")
    c.add_argument("--set", dest="sets", action="append", metavar="TASK.KEY=VALUE",
                   help="override a task setting (repeatable)")
    c.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    c.add_argument("--executor", default="local", help="local (default) | ray")
    c.add_argument("--jobs", type=int, default=1, help="units run at once (process pool)")
    c.add_argument("--markdown", metavar="FILE",
                   help="also write the Markdown table here (e.g. docs/generated/"
                        "calibration-quick.md)")
    c.add_argument("--pass-rate", type=float, default=PASS_RATE,
                   help="fraction of seeds a check must hold on (default 0.95 = 19/20)")
    c.add_argument("--no-run", action="store_true",
                   help="only rebuild the table from the documents already in --out")
    c.add_argument("-q", "--quiet", action="store_true", help="only the summary")
    c.set_defaults(func=run)
