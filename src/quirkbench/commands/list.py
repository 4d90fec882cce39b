"""``quirkbench list [KIND]``: the registered tasks, data sets, models, attacks and suites."""

from __future__ import annotations

KINDS = ("tasks", "datasets", "models", "attacks", "suites")


def _tasks() -> None:
    from ..runner.suite import SUITES
    from ..tasks import load_all

    print("tasks:")
    for t in load_all().values():
        suites = ",".join(s for s in SUITES if s in t.suites)
        print(f"  {t.name:14s} {t.description} [suites: {suites}]")


def _datasets() -> None:
    from ..engine import data

    print("data sets:")
    for d in data.REGISTRY.values():
        where = "embedded" if d.embedded else "--data-root"
        print(f"  {d.name:14s} {d.description} ({where})")


def _models() -> None:
    from ..engine import models

    print("models:")
    for m in models.REGISTRY.values():
        names = ", ".join([m.name] + ([m.variant_syntax] if m.variants else []))
        print(f"  {names:14s} {m.description}")


def _attacks() -> None:
    from ..methods import attacks

    print("attacks (a name runs in each of its norms; name-norm in that one):")
    for a in attacks.REGISTRY.values():
        norms = ",".join(a.norms)
        print(f"  {a.name:14s} [norms: {norms}] {a.description}")


def _suites() -> None:
    from ..runner.suite import SUITES
    from ..tasks import load_all

    tasks = load_all()
    print("suites:")
    for s in SUITES.values():
        names = ",".join(t.name for t in tasks.values() if s.name in t.suites)
        print(f"  {s.name:8s} {s.description}; seeds {','.join(map(str, s.seeds))}; "
              f"budget {s.budget_s} s; tasks: {names}")


SHOW = {"tasks": _tasks, "datasets": _datasets, "models": _models, "attacks": _attacks,
        "suites": _suites}


def run(kind: str | None = None) -> int:
    for k in [kind] if kind else KINDS:
        SHOW[k]()
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list tasks, data sets, models, attacks and suites")
    p.add_argument("kind", nargs="?", choices=KINDS, metavar="KIND",
                   help=f"only one kind: {', '.join(KINDS)} (default: all)")
    p.set_defaults(func=run)
