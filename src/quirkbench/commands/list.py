"""``quirkbench list``: the registered tasks, data sets, models and suites."""

from __future__ import annotations


def run() -> int:
    from ..engine import data, models
    from ..runner.suite import SUITES
    from ..tasks import load_all

    tasks = load_all()
    print("tasks:")
    for t in tasks.values():
        suites = ",".join(s for s in SUITES if s in t.suites)
        print(f"  {t.name:14s} {t.description} [suites: {suites}]")
    print("data sets:")
    for d in data.REGISTRY.values():
        where = "embedded" if d.embedded else "--data-root"
        print(f"  {d.name:14s} {d.description} ({where})")
    print("models:")
    for m in models.REGISTRY.values():
        names = ", ".join([m.name] + ([m.variant_syntax] if m.variants else []))
        print(f"  {names:14s} {m.description}")
    print("suites:")
    for s in SUITES.values():
        names = ",".join(t.name for t in tasks.values() if s.name in t.suites)
        print(f"  {s.name:8s} {s.description}; seeds {','.join(map(str, s.seeds))}; "
              f"budget {s.budget_s} s; tasks: {names}")
    return 0


def add_parser(sub) -> None:
    sub.add_parser("list", help="list tasks, data sets, models and suites").set_defaults(func=run)
