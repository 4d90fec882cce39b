"""``quirkbench run``: run a suite and write a results document (then the HTML report)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import UserError


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


# --------------------------------------------------------------------------- commands

def run(suite: str = "quick", tasks: list[str] | None = None,
            datasets: list[str] | None = None, seeds: str | None = None, device: str = "auto",
            out: str | None = None, sets: list[str] | None = None, data_root: str | None = None,
            download: bool = False, executor: str = "local", report: bool = True,
            quiet: bool = False, jobs: str = "1", trust_data_root: bool = False,
            model: str | None = None) -> int:
    from ..runner.suite import run_suite
    from ..tracking.results import load_results

    log = (lambda m: None) if quiet else (lambda m: print(m, flush=True))
    path = run_suite(suite, tasks=tasks, datasets=datasets, seeds=seeds, device=device, out=out,
                     overrides=_overrides(sets), data_root=data_root, download=download,
                     executor=executor, argv=sys.argv[1:], jobs=jobs, log=log,
                     trust_data_root=trust_data_root, model=model)
    df = load_results(path)
    print(format_summary(df))
    print(f"\nresults: {path}")
    failed = _failed_units(path)
    if report:
        _report_after_run(path, log)
    if failed:
        print(f"{len(failed)} unit(s) failed: {', '.join(failed)} (their errors are in {path})")
        return 1
    return 0


def _failed_units(path) -> list[str]:
    from ..tracking.results import read

    return [k for k, u in read(path)["units"].items() if u.get("status") != "done"]


def _report_after_run(path: Path, log) -> None:
    try:
        from ..report import render_report
    except ImportError:
        print("see the numbers with: python -c "
              f"\"import quirkbench; print(quirkbench.load_results('{path}'))\"")
        return
    html = render_report([path], out=Path("reports") / (Path(path).stem + ".html"))
    print(f"report:  {html}")


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
            holds = m["holds"].dropna()
            verdict = "" if holds.empty else ("yes" if holds.astype(bool).all() else "NO")
            anchor = m["anchor"].iloc[0]
            goal = ""
            if "goal" in m and m["goal"].notna().any():
                goal = "met" if m["goal_met"].astype(bool).all() else "missed"
                goal = f"{m['goal'].dropna().iloc[0]} {goal}"
            rows.append((f"{task}/{dataset}", key, val, anchor if isinstance(anchor, str) else "",
                         verdict, goal))
    head = ("task", "metric", "value", "anchor (paper)", "holds", "goal")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(6)]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, rows)])




def add_parser(sub) -> None:
    r = sub.add_parser("run", help="run a suite and write a results document")
    r.add_argument("--suite", default="quick", help="smoke | pr | quick (default) | nightly")
    r.add_argument("--tasks", nargs="+", metavar="TASK", help="run only these tasks")
    r.add_argument("--dataset", dest="datasets", nargs="+", metavar="NAME",
                   help="data set(s) (default: each task's own, mnist5k)")
    r.add_argument("--model", metavar="NAME|PKG.MOD:FACTORY",
                   help="the model of every task in the run (its model settings): a zoo name "
                        "(mlp-256, lenet5, ...) or your own factory(input_shape, num_classes) "
                        "as package.module:factory")
    r.add_argument("--seeds", help="e.g. 0,1,2 or 0-4 (default: the suite's)")
    r.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    r.add_argument("--out", help="results file; an existing one is resumed "
                                 "(default results/DATE-SUITE.json)")
    r.add_argument("--set", dest="sets", action="append", metavar="TASK.KEY=VALUE",
                   help="override a task setting, e.g. memorization.train.lr=0.05 (repeatable)")
    r.add_argument("--data-root", help="folder with full data sets (mnist, fashion-mnist, cifar10)")
    r.add_argument("--download", action="store_true",
                   help="download missing full data sets (HTTPS, SHA-256 verified)")
    r.add_argument("--trust-data-root", action="store_true",
                   help="use files under --data-root that are not the official ones (your own "
                        "IDX files); their hashes are still recorded in the results")
    r.add_argument("--executor", default="local", help="local (default) | ray")
    r.add_argument("--jobs", "-j", nargs="?", const="auto", default="1", metavar="N",
                   help="run N units at once in worker processes, one torch thread each on "
                        "the CPU, one GPU each on CUDA; --jobs alone or 'auto': one per "
                        "physical core (or GPU). Default 1: one after another in this process")
    r.add_argument("--no-report", dest="report", action="store_false", help="skip the HTML report")
    r.add_argument("-q", "--quiet", action="store_true", help="only the summary")

    r.set_defaults(func=run)
