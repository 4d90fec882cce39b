"""``quirkbench run``: run a suite and write a results document (then the HTML report)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError
from ..terminal import table


def _overrides(pairs: list[str] | None) -> dict[str, dict]:
    """``--set task.key=value`` → {task: {key: value}} with values parsed as literals."""
    from ..config import parse_value

    out: dict[str, dict] = {}
    for pair in pairs or []:
        key, eq, value = pair.partition("=")
        task, dot, setting = key.partition(".")
        if not eq or not dot or not setting:
            raise UserError(f"--set takes TASK.KEY=VALUE (e.g. memorization.train.lr=0.05), "
                            f"got {pair!r}")
        out.setdefault(task, {})[setting] = parse_value(value)
    return out


def _seconds(text: str) -> float:
    """``--unit-budget``: a number of seconds ≥ 0."""
    import math

    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 <= value < math.inf:
        raise UserError(f"--unit-budget must be a number of seconds ≥ 0 (0: no limit), "
                        f"got {text!r}")
    return value


# --------------------------------------------------------------------------- commands

# jobs auto: one worker per physical core; a run of one unit, or on one core, stays in this
# process (the quick suite on 2 cores: ~1.5x a plain sequential run, the same metrics)
RUN_DEFAULTS = {"suite": "quick", "device": "auto", "executor": "local", "jobs": "auto"}
# what --resume takes from the document; giving one of these with it is a mistake
_FROM_DOCUMENT = ("suite", "tasks", "datasets", "seeds", "device", "out", "sets", "data_root",
                  "download", "trust_data_root", "model", "unit_budget")


def run(suite: str | None = None, tasks: list[str] | None = None,
        datasets: list[str] | None = None, seeds: str | None = None, device: str | None = None,
        out: str | None = None, sets: list[str] | None = None, data_root: str | None = None,
        download: bool = False, executor: str | None = None, report: bool = True,
        quiet: bool = False, resume: str | None = None, jobs: str | None = None,
        trust_data_root: bool = False, model: str | None = None,
        unit_budget: float | None = None) -> int:
    """Run a suite (or ``resume`` one from its document); exit status 1 if a unit failed."""
    from ..runner.suite import resume_from, run_suite

    log = (lambda m: None) if quiet else (lambda m: print(m, flush=True))
    if resume is not None:
        given = {"suite": suite, "tasks": tasks, "datasets": datasets, "seeds": seeds,
                 "device": device, "out": out, "sets": sets, "data_root": data_root,
                 "download": download or None, "trust_data_root": trust_data_root or None,
                 "model": model, "unit_budget": unit_budget}
        clash = [k for k in _FROM_DOCUMENT if given[k] is not None]
        if clash:
            flags = ", ".join("--" + {"datasets": "dataset", "sets": "set"}.get(k, k)
                              .replace("_", "-") for k in clash)
            raise UserError(f"--resume takes the run's arguments from {resume}; drop {flags} "
                            "(or start a new run with another --out)")
        path = resume_from(resume, executor=executor, jobs=jobs, argv=sys.argv[1:], log=log)
    else:
        path = run_suite(suite or RUN_DEFAULTS["suite"], tasks=tasks, datasets=datasets,
                         seeds=seeds, device=device or RUN_DEFAULTS["device"], out=out,
                         overrides=_overrides(sets), data_root=data_root, download=download,
                         executor=executor or RUN_DEFAULTS["executor"], argv=sys.argv[1:],
                         log=log, jobs=jobs or RUN_DEFAULTS["jobs"],
                         trust_data_root=trust_data_root, model=model, unit_budget_s=unit_budget)
    return _after_run(path, report, log)


def _after_run(path: Path, report: bool, log) -> int:
    """The summary, the report, then the failed units: exit status 1 if any unit failed, 2
    (one line on stderr) if one failed on bad input (a ``UserError`` only the task could
    raise: a setting out of range, a data file refused)."""
    from ..peers import notices
    from ..tracking.results import load_results, read

    df = load_results(path)
    print(format_summary(df))
    doc = read(path)
    for line in notices(doc["units"].values()):  # once per run, however many units met it
        print(line)
    print(f"\nresults: {path}")
    failed = [k for k, u in doc["units"].items() if u.get("status") != "done"]
    if report:
        _report_after_run(path, doc, log)
    if not failed:
        return 0
    print(f"{len(failed)} unit(s) failed: {', '.join(failed)} (their errors are in {path})")
    for k in failed:
        print(f"  {k}: {doc['units'][k].get('error')}")
    bad = [k for k in failed if doc["units"][k].get("bad_input")]
    if bad:
        error = str(doc["units"][bad[0]].get("error") or "")
        message = error.split(": ", 1)[-1]  # without the exception's type name
        more = f" (and {len(bad) - 1} more unit(s); see {path})" if len(bad) > 1 else ""
        raise UserError(f"{bad[0]}: {message}{more}")
    return 1


def _report_after_run(path: Path, doc: dict, log) -> None:
    try:
        from ..report import render_report
    except ImportError:
        print("see the numbers with: python -c "
              f"\"import quirkbench; print(quirkbench.load_results('{path}'))\"")
        return
    from .report import report_path

    target = report_path(path, doc)
    try:
        html = render_report([path], out=target)
    except OSError as e:
        raise UserError(f"cannot write the report {target}: {e.strerror} (the results are "
                        f"safe in {path}; make the report later with `quirkbench report "
                        f"{path}`)") from None
    print(f"report:  {html}")


def _first(m, column: str) -> str:
    """The first non-empty text of ``column`` among one metric's rows ("" when none)."""
    if column not in m:
        return ""
    found = m[column].dropna()
    return str(found.iloc[0]) if not found.empty and found.iloc[0] else ""


def verdict_text(m) -> str:
    """The holds column of one metric's rows (one per seed): yes, NO, or why the run's budget
    cannot show it (its ``not_shown``), or "" where there is no check."""
    holds = m["holds"].dropna()
    if not holds.empty:
        return "yes" if holds.astype(bool).all() else "NO"
    return _first(m, "not_shown")


def goal_text(m) -> str:
    """The goal column: "≥ 1.5 met", "≥ 1.5 missed", or the goal and why the run cannot judge
    it (its ``not_judged``), or "" where there is no goal."""
    if "goal" not in m or not m["goal"].notna().any():
        return ""
    goal = m["goal"].dropna().iloc[0]
    why = _first(m, "goal_not_judged")
    if why:
        return f"{goal}: {why}"
    return f"{goal} {'met' if m['goal_met'].astype(bool).all() else 'missed'}"


def format_summary(df) -> str:
    """Headline metrics (all metrics where a task has no headline), mean ± std over seeds."""
    from ..metrics import fmt_value

    if df.empty:
        return "no metrics"
    rows = []
    for (task, dataset), g in df.groupby(["task", "dataset"], sort=False):
        pick = g[g["headline"]] if g["headline"].any() else g
        for key, m in pick.groupby("key", sort=False):
            v = m["value"]
            unit = m["unit"].iloc[0]
            val = fmt_value(v.mean(), unit)
            if len(v) > 1:
                val += f" ± {fmt_value(v.std(ddof=1), unit)}"
            anchor = m["anchor"].iloc[0]
            rows.append((f"{task}/{dataset}", key, val, anchor if isinstance(anchor, str) else "",
                         verdict_text(m), goal_text(m)))
    head = ("task", "metric", "value", "anchor (paper)", "holds", "goal")
    return table(head, rows, wrap=range(6))  # fits the terminal: long cells wrap




def add_parser(sub) -> None:
    r = sub.add_parser("run", help="run a suite and write a results document")
    r.add_argument("--suite", help="smoke | pr | quick (default) | nightly")
    r.add_argument("--tasks", nargs="+", metavar="TASK",
                   help="run only these tasks (space or comma separated; repeats count once)")
    r.add_argument("--dataset", dest="datasets", nargs="+", metavar="NAME",
                   help="data set(s) (default: each task's own, mnist5k)")
    r.add_argument("--model", metavar="NAME|PKG.MOD:FACTORY",
                   help="the model of every task in the run (its model settings): a zoo name "
                        "(mlp-256, lenet5, ...) or your own factory(input_shape, num_classes) "
                        "as package.module:factory")
    r.add_argument("--seeds", help="e.g. 0,1,2 or 0-4 (default: the suite's)")
    r.add_argument("--device", help="auto (default) | cpu | cuda | cuda:N")
    r.add_argument("--out", help="results file; an existing one from the same arguments is "
                                 "resumed (default results/DATE-SUITE.json)")
    r.add_argument("--resume", metavar="RESULTS",
                   help="resume the run in this results file with the arguments it records")
    r.add_argument("--set", dest="sets", action="append", metavar="TASK.KEY=VALUE",
                   help="override a task setting, e.g. memorization.train.lr=0.05 (repeatable)")
    r.add_argument("--data-root", help="folder with full data sets (mnist, fashion-mnist, cifar10)")
    r.add_argument("--download", action="store_true",
                   help="download missing full data sets (HTTPS, SHA-256 verified)")
    r.add_argument("--trust-data-root", action="store_true",
                   help="use files under --data-root that are not the official ones (your own "
                        "IDX files); their hashes are still recorded in the results")
    r.add_argument("--executor", help="local (default) | ray (see docs/running.md)")
    add_jobs_argument(r)
    r.add_argument("--unit-budget", type=_seconds, metavar="SECONDS",
                   help="stop a unit that runs longer than this and record it as failed "
                        "(default: the suite's, 120 s for smoke, 600 s for pr, 1800 s for "
                        "quick; 0: no limit)")
    r.add_argument("--no-report", dest="report", action="store_false", help="skip the HTML report")
    r.add_argument("-q", "--quiet", action="store_true", help="only the summary")

    r.set_defaults(func=run)


def add_jobs_argument(parser) -> None:
    """``--jobs``, the same default and meaning for every command that runs a suite."""
    parser.add_argument("--jobs", "-j", nargs="?", const="auto", metavar="N",
                        help="run N units at once in worker processes, one torch thread each "
                             "on the CPU, one GPU each on CUDA; --jobs alone or 'auto': one per "
                             "physical core (or GPU), the default; 1: one after another in "
                             "this process. The metrics are the same whatever N")
