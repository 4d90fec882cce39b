"""What ``quirkbench list`` shows, without importing torch.

The registries (tasks, data sets, models, attacks) fill themselves by importing their
modules, and those import torch: 3-5 s before a line is printed. So the built-in names,
descriptions and settings are kept in ``catalog.json`` beside this module, generated from
the registries (``python -m quirkbench.commands._catalog`` rewrites it; a test fails when it
is stale). ``catalog()`` reads that file. Where another package adds tasks, data sets,
models or attacks through entry points, they must be imported to be known: the first
``list`` builds the catalog from the registries and keeps it in the cache folder
(``$QUIRKBENCH_CACHE``, else ``$XDG_CACHE_HOME/quirkbench``) under a key of the plugins'
versions and source files (``plugin_key``), so the next ``list`` imports nothing again
until a plugin changes. Where this process has already loaded names the catalog lacks
(a test that registered its own task), it asks the registries themselves.

Chosen over making every import lazy: a task registers by importing its module, which
builds on the engine, which needs torch at import; keeping that chain free of torch would
touch every task and engine module, for a listing.
"""

from __future__ import annotations

import json
import os
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
    # sorted by name: the registries fill in import order, which depends on who imported first
    for t in sorted((t for t in load_all().values() if keep(t.run)), key=lambda t: t.name):
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
                     for d in sorted(data.REGISTRY.values(), key=lambda d: d.name)
                     if keep(d.loader)],
        "models": [{"name": m.name, "description": m.description,
                    "variant_syntax": m.variant_syntax if m.variants else ""}
                   for m in sorted(models.REGISTRY.values(), key=lambda m: m.name)
                   if keep(m.factory)],
        "attacks": [{"name": a.name, "norms": list(a.norms), "description": a.description}
                    for a in sorted(attacks.REGISTRY.values(), key=lambda a: a.name)
                    if keep(a)],
        "suites": [{"name": s.name, "description": s.description, "seeds": list(s.seeds),
                    "budget_s": s.budget_s} for s in SUITES.values()],
    }


def plugins() -> list:
    """The installed entry points that add tasks, data sets, models or attacks."""
    from importlib.metadata import entry_points

    return [ep for g in GROUPS for ep in entry_points(group=g)]


def _files(module: str) -> list[Path]:
    """The source files of ``module``'s top-level package, found without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module.split(".")[0])
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return sorted(f for d in spec.submodule_search_locations for f in Path(d).rglob("*.py"))
    return [Path(spec.origin)] if spec.origin else []


def plugin_key(eps) -> str:
    """What the catalog of an install with plugins depends on: each entry point, its
    distribution's version, the size and time of every source file of its package (an
    editable plugin edited), and the shipped catalog (quirkbench's own specs)."""
    import hashlib

    h = hashlib.sha256(FILE.read_bytes() if FILE.is_file() else b"")
    for ep in eps:
        dist = getattr(ep, "dist", None)
        h.update(f"{ep.group} {ep.name} {ep.value} {dist and dist.name} "
                 f"{dist and dist.version}\n".encode())
        for f in _files(ep.value.split(":")[0]):
            st = f.stat()
            h.update(f"{f} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _cache_dir() -> Path:  # engine.data.cache_dir's (that module imports torch)
    import os

    if os.environ.get("QUIRKBENCH_CACHE"):
        return Path(os.environ["QUIRKBENCH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "quirkbench"


def _with_plugins(eps) -> dict[str, Any]:
    """The catalog with the plugins' specs: built once (importing them), then read from the
    cache while ``plugin_key`` stays the same."""
    path = _cache_dir() / f"catalog-{plugin_key(eps)}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    c = build()
    try:  # atomically: a reader never sees half a file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(c, ensure_ascii=False), encoding="utf-8")
        tmp.replace(path)
    except OSError:  # a read-only home: list still works, just not faster next time
        pass
    return c


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
    """The catalog ``list`` shows: the shipped file; with plugins installed, the registries'
    (cached: ``_with_plugins``); the registries' too when this process has loaded names the
    catalog lacks (a test that registered its own task)."""
    eps = plugins()
    if not FILE.is_file():
        return build()
    c = _with_plugins(eps) if eps else json.loads(FILE.read_text(encoding="utf-8"))
    loaded = "quirkbench.tasks" in sys.modules and "torch" in sys.modules
    if loaded and _registered() != _names(c):
        return build()
    return c


def write(path: Path = FILE) -> None:
    path.write_text(json.dumps(build(builtin_only=True), indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")


if __name__ == "__main__":
    write()
    print(f"wrote {FILE}")
