"""``quirkbench list [KIND | TASK]``: the tasks, data sets, models, attacks and suites, or
every setting of one task with its default, unit, meaning and per-suite value.

Read from the catalog (``_catalog``): no torch import unless plugins are installed."""

from __future__ import annotations

import json

from ..errors import UserError, choices, did_you_mean
from ..terminal import entry, fill, table, width
from ._catalog import catalog

KINDS = ("tasks", "datasets", "models", "attacks", "suites")


def _names(specs) -> int:
    """The name column's width: the longest name, up to 22 (longer ones go on their own
    line, their text below)."""
    return min(22, max((len(s["name"]) for s in specs), default=8))


def _tasks(c: dict) -> list[str]:
    suites = [s["name"] for s in c["suites"]]
    out = ["tasks (quirkbench list TASK: its settings):"]
    for t in c["tasks"]:
        listed = ",".join(s for s in suites if s in t["suites"])
        out.append(entry(t["name"], f"{t['description']} [suites: {listed}]",
                         name_width=_names(c["tasks"])))
    return out


def _datasets(c: dict) -> list[str]:
    return ["data sets:"] + [
        entry(d["name"], f"{d['description']} "
                         f"({'embedded' if d['embedded'] else '--data-root'})",
              name_width=_names(c["datasets"]))
        for d in c["datasets"]]


def _models(c: dict) -> list[str]:
    return ["models:"] + [
        entry(", ".join([m["name"]] + ([m["variant_syntax"]] if m["variant_syntax"] else [])),
              m["description"]) for m in c["models"]]


def _attacks(c: dict) -> list[str]:
    return ["attacks (a name runs in each of its norms; name-norm in that one):"] + [
        entry(a["name"], f"[norms: {','.join(a['norms'])}] {a['description']}",
              name_width=_names(c["attacks"]))
        for a in c["attacks"]]


def _suites(c: dict) -> list[str]:
    out = ["suites:"]
    for s in c["suites"]:
        names = ",".join(t["name"] for t in c["tasks"] if s["name"] in t["suites"])
        out.append(entry(s["name"], f"{s['description']}; seeds "
                                    f"{','.join(map(str, s['seeds']))}; budget "
                                    f"{s['budget_s']} s; tasks: {names}",
                         name_width=_names(c["suites"])))
    return out


SHOW = {"tasks": _tasks, "datasets": _datasets, "models": _models, "attacks": _attacks,
        "suites": _suites}


def _value(v) -> str:
    return v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


def settings(t: dict) -> str:
    """One task: its line, suites and data sets, and a table of every setting."""
    sets = t["datasets"]
    lines = (f"suites: {', '.join(t['suites'])}; data sets: "
             f"{', '.join(sets) if sets else 'any registered'} (default {t['default_dataset']})",
             f"settings (--set {t['name']}.KEY=VALUE; 'in suites': where a suite sets another "
             "value):")
    head = [entry(t["name"], t["description"], indent=0, name_width=len(t["name"])),
            *(fill(line) for line in lines), ""]
    rows = [(s["key"], _value(s["default"]), "–" if s["unit"] in ("", "1") else s["unit"],
             "; ".join(f"{k}: {_value(v)}" for k, v in s["suites"].items()), s["meaning"])
            for s in t["settings"]]
    header = ("setting", "default", "unit", "in suites", "meaning")
    total = width()
    if total is None or len(table(header, rows, total=10**6).splitlines()[1]) <= total:
        return "\n".join(head) + "\n" + table(header, rows)
    return "\n".join(head + [line for row in rows for line in _block(row, total)])


def _block(row: tuple[str, ...], total: int) -> list[str]:
    """One setting where the table would not fit: ``key = default [unit]`` on its line,
    the meaning and the suites' values indented below it."""
    key, default, unit, suites, meaning = row
    first = f"{key} = {default}" + ("" if unit == "–" else f"  [{unit}]")
    out = [fill(first, total, indent=4), fill(meaning, total, indent=4, first=4)]
    if suites:
        out.append(fill(f"in suites: {suites}", total, indent=4, first=4))
    return out


def run(kind: str | None = None) -> int:
    """Print every kind (default), one kind, or one task's settings."""
    c = catalog()
    tasks = {t["name"]: t for t in c["tasks"]}
    if kind in tasks:
        print(settings(tasks[kind]))
        return 0
    if kind is not None and kind not in KINDS:
        valid = [*KINDS, *tasks]
        raise UserError(f"unknown kind or task {kind!r}{did_you_mean(kind, valid)}; valid: "
                        f"{choices(KINDS)}, or a task: {choices(tasks)}")
    lines = []
    for k in [kind] if kind else KINDS:
        lines += SHOW[k](c)
    print("\n".join(lines))
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("list", help="list tasks, data sets, models, attacks and suites, or a "
                                    "task's settings")
    p.add_argument("kind", nargs="?", metavar="KIND|TASK",
                   help=f"only one kind: {', '.join(KINDS)}; or a task's name: every setting "
                        "with its default, unit and meaning (default: all kinds)")
    p.set_defaults(func=run)
