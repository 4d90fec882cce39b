"""What ``quirkbench list`` shows, without importing torch.

The registries (tasks, data sets, models, attacks) fill themselves by importing their
modules, and those import torch: 3-5 s before a line is printed. So the built-in names,
descriptions and settings are kept in ``catalog.json`` beside this module, generated from
the registries (``python -m quirkbench.commands._catalog`` rewrites it; a test fails when it
is stale). ``catalog()`` reads that file, unless another package adds tasks, data sets,
models or attacks through entry points (they must be imported to be known) or this process
has already loaded the registries (a test that registered its own task): then it asks the
registries themselves.

Chosen over making every import lazy: a task registers by importing its module, which
builds on the engine, which needs torch at import; keeping that chain free of torch would
touch every task and engine module, for a listing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FILE = Path(__file__).with_name("catalog.json")
GROUPS = ("quirkbench.tasks", "quirkbench.datasets", "quirkbench.models",
          "quirkbench.attacks")  # entry-point groups whose specs ``list`` shows


def _ours(fn) -> bool:
    return getattr(fn, "__module__", "").startswith("quirkbench.")


def build(builtin_only: bool = False) -> dict[str, Any]:
    """The catalog from the registries themselves (imports torch and every plugin);
    ``builtin_only``: quirkbench's own specs (what the shipped file holds)."""
    from ..config import describe
    from ..engine import data, models
    from ..methods import attacks
    from ..runner.suite import SUITES
    from ..tasks import load_all

    def plain(v):
        return json.loads(json.dumps(v, default=str))

    keep = (lambda fn: _ours(fn)) if builtin_only else (lambda fn: True)
    tasks = []
    for t in (t for t in load_all().values() if keep(t.run)):
        settings = []
        for s in describe(t.config()):
            over = {}
            for suite in t.suites:
                value = describe(t.make_config(suite))
                over[suite] = next(x.default for x in value if x.key == s.key)
            settings.append({"key": s.key, "default": plain(s.default), "unit": s.unit,
                             "meaning": s.meaning,
                             "suites": {k: plain(v) for k, v in over.items()
                                        if plain(v) != plain(s.default)}})
        tasks.append({"name": t.name, "description": t.description, "suites": list(t.suites),
                      "datasets": list(t.datasets) if t.datasets else None,
                      "default_dataset": t.default_dataset, "settings": settings})
    return {
        "tasks": tasks,
        "datasets": [{"name": d.name, "description": d.description, "embedded": d.embedded}
                     for d in data.REGISTRY.values() if keep(d.loader)],
        "models": [{"name": m.name, "description": m.description,
                    "variant_syntax": m.variant_syntax if m.variants else ""}
                   for m in models.REGISTRY.values() if keep(m.factory)],
        "attacks": [{"name": a.name, "norms": list(a.norms), "description": a.description}
                    for a in attacks.REGISTRY.values() if keep(a)],
        "suites": [{"name": s.name, "description": s.description, "seeds": list(s.seeds),
                    "budget_s": s.budget_s} for s in SUITES.values()],
    }


def plugins() -> list[str]:
    """The installed entry points that add tasks, data sets, models or attacks."""
    from importlib.metadata import entry_points

    return [f"{g}:{ep.name}" for g in GROUPS for ep in entry_points(group=g)]


def _names(c: dict[str, Any]) -> dict[str, set[str]]:
    return {k: {s["name"] for s in c[k]} for k in ("tasks", "datasets", "models", "attacks")}


def _registered() -> dict[str, set[str]]:
    """The names in this process's registries (already loaded: no import cost)."""
    from ..engine import data, models
    from ..methods import attacks
    from ..tasks import load_all

    return {"tasks": set(load_all()), "datasets": set(data.REGISTRY),
            "models": set(models.REGISTRY), "attacks": set(attacks.REGISTRY)}


def catalog() -> dict[str, Any]:
    """The catalog ``list`` shows: the shipped file, or the registries where the file cannot
    know everything: plugins installed, or registries loaded in this process that hold
    names the file lacks (a test that registered its own task)."""
    if plugins() or not FILE.is_file():
        return build()
    shipped = json.loads(FILE.read_text(encoding="utf-8"))
    loaded = "quirkbench.tasks" in sys.modules and "torch" in sys.modules
    if loaded and _registered() != _names(shipped):
        return build()
    return shipped


def write(path: Path = FILE) -> None:
    path.write_text(json.dumps(build(builtin_only=True), indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")


if __name__ == "__main__":
    write()
    print(f"wrote {FILE}")
