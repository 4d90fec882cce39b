"""Run documents: one schema-versioned JSON file per run, written atomically, resumable.

Layout::

    {"schema": "quirkbench.results/1",
     "meta":  {commit, dirty, quirkbench, torch, python, platform, device, suite, seeds,
               datasets, tasks, started, ended, status, argv},
     "units": {"memorization/mnist5k/0": {task, dataset, seed, config, status,
                                          started, ended, seconds, metrics: [...],
                                          series: {...}, info: {...}, error}}}

A unit (task × data set × seed) is written as soon as it finishes, so a killed run keeps
what it finished and, started again with the same ``--out``, resumes.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..metrics import Metric

SCHEMA = "quirkbench.results/1"


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def unit_key(task: str, dataset: str, seed: int) -> str:
    return f"{task}/{dataset}/{seed}"


def git_info(path: str | Path | None = None) -> dict[str, Any]:
    """Commit and dirty flag of the checkout holding ``path`` (the package, else the cwd)."""
    cwd = Path(path or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True,
                                text=True, timeout=10)
        if commit.returncode != 0:
            raise OSError
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, timeout=10)
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment(device) -> dict[str, Any]:
    import torch

    from .. import __version__

    dev = str(device)
    name = torch.cuda.get_device_name(device) if dev.startswith("cuda") \
        else platform.processor() or platform.machine()
    return {"quirkbench": __version__, "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(), "device": dev, "device_name": name,
            "cpu_threads": torch.get_num_threads()}


def new_document(*, suite: str, seeds, datasets, tasks, device, argv=None) -> dict[str, Any]:
    meta = {**git_info(), **environment(device), "suite": suite, "seeds": list(seeds),
            "datasets": list(datasets), "tasks": list(tasks), "started": now(), "ended": None,
            "status": "running", "argv": list(argv if argv is not None else sys.argv[1:])}
    return {"schema": SCHEMA, "meta": meta, "units": {}}


def write_atomic(path: str | Path, doc: dict[str, Any]) -> None:
    """Write JSON to a temporary file in the same folder, fsync, then rename over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1, allow_nan=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path: str | Path) -> dict[str, Any]:
    """Read and check a results document; a missing or corrupt file is a ``UserError``."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"results file {path} does not exist")
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path} is not a readable results document ({type(e).__name__}: "
                        f"{str(e).splitlines()[0]})") from None
    if not isinstance(doc, dict) or "schema" not in doc:
        raise UserError(f"{path} is not a quirkbench results document (no 'schema' key)")
    if doc["schema"] != SCHEMA:
        raise UserError(f"{path} has schema {doc['schema']!r}; this quirkbench reads {SCHEMA!r}")
    if not isinstance(doc.get("meta"), dict) or not isinstance(doc.get("units"), dict):
        raise UserError(f"{path} is a damaged results document (meta or units missing)")
    return doc


def unit_record(task: str, dataset: str, seed: int, config: dict, started: str, seconds: float,
                output) -> dict[str, Any]:
    return {"task": task, "dataset": dataset, "seed": seed, "config": config, "status": "done",
            "started": started, "ended": now(), "seconds": seconds,
            "metrics": [m.to_dict() for m in output.metrics],
            "series": output.series, "info": output.info, "error": None}


def metrics_of(unit: dict[str, Any]) -> list[Metric]:
    return [Metric.from_dict(m) for m in unit.get("metrics", [])]


def find_documents(path: str | Path) -> list[Path]:
    """A results file, or every ``*.json`` results document in a folder (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
        if not files:
            raise UserError(f"no results documents (*.json) in {path}")
        return files
    if not path.exists():
        raise UserError(f"results path {path} does not exist")
    return [path]


def load_results(path: str | Path):
    """A tidy ``pandas.DataFrame``: one row per metric per task per data set per seed.

    ``path`` is a results document or a folder of them. Columns: run, commit, suite,
    device, started, task, dataset, seed, metric, key, value, unit, direction, holds,
    headline, goal (e.g. ``≥ 1.5``, None where none), goal_met, anchor, anchor_value, plus
    one column per tag (e.g. condition, attack, eps).
    """
    import pandas as pd

    rows = []
    for file in find_documents(path):
        doc = read(file)
        meta = doc["meta"]
        for unit in doc["units"].values():
            if unit.get("status") != "done":
                continue
            for m in metrics_of(unit):
                rows.append({
                    "run": file.stem, "commit": meta.get("commit"), "suite": meta.get("suite"),
                    "device": meta.get("device"), "started": meta.get("started"),
                    "task": unit["task"], "dataset": unit["dataset"], "seed": unit["seed"],
                    "metric": m.name, "key": m.key, "value": m.value, "unit": m.unit,
                    "direction": m.direction, "holds": m.holds, "headline": m.headline,
                    "goal": m.goal.describe() if m.goal else None,
                    "goal_met": m.goal.met if m.goal else None,
                    "anchor": m.anchor.describe() if m.anchor else None,
                    "anchor_value": m.anchor.value if m.anchor else None, **m.tags})
    return pd.DataFrame(rows)
