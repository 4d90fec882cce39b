"""Run documents: one schema-versioned JSON file per run, written atomically, resumable.

Layout::

    {"schema": "quirkbench.results/2",
     "meta":  {commit, dirty, quirkbench, torch, python, platform, device, suite, seeds,
               datasets, tasks, started, ended, status, argv},
     "units": {"memorization/mnist5k/0": {task, dataset, seed, config, status,
                                          started, ended, seconds, metrics: [...],
                                          series: {...}, info: {...}, error}}}

A unit (task × data set × seed) is written as soon as it finishes, so a killed run keeps
what it finished and, started again with the same ``--out``, resumes.

Schema 2 added each metric's ``kind`` (exact, stochastic, timing) and ``baseline`` (see
``quirkbench.metrics``). Documents of schema 1 still load: ``read`` upgrades them in memory,
giving each metric the kind ``legacy_kind`` infers from its name and unit (the only place a
kind is ever inferred; new documents carry the kind the task declared).
"""

from __future__ import annotations

import json
import math
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

# the format, its JSON Schema and the check of a document against it
from .schema import SCHEMA, UNIT_STATUSES, UNITS, ForeignDocument, validate  # noqa: F401
from .strict_json import parse

OLD_SCHEMAS = ("quirkbench.results/1",)  # still read, upgraded in memory by ``read``
LEGACY_TIME_UNITS = frozenset({"s", "ms", "us", "µs", "ns", "samples/s", "steps/s", "it/s",
                               "iters/s", "inputs/s", "GFLOP/s", "TFLOP/s"})
LEGACY_TIMING_NAMES = ("speedup_", "matmul_share", "gemm_share", "peak_share", "idle_fraction",
                       "op_self_time", "profiled_step_time", "host_time_per_step",
                       "busy_time_per_step", "device_time_per_step")


def legacy_kind(name: str, unit: str) -> str:
    """The kind of a metric in a schema-1 document, which did not record it: ``timing`` for a
    wall-clock unit (s, ms, samples/s, GFLOP/s, ...) or a name that schema-1 tasks derived
    from timings (``speedup_*``, ``*_share`` of time or peak, ``idle_fraction``, the profiler's
    per-step times and ``op_self_time``), else ``exact``."""
    if unit in LEGACY_TIME_UNITS or name.startswith(LEGACY_TIMING_NAMES):
        return "timing"
    return "exact"


def _upgrade(doc: dict[str, Any]) -> dict[str, Any]:
    """A schema-1 document as schema 2, in memory: each metric gets ``legacy_kind``
    (damaged parts are left for ``validate`` to name)."""
    units = doc.get("units")
    for unit in units.values() if isinstance(units, dict) else ():
        ms = unit.get("metrics") if isinstance(unit, dict) else None
        for m in ms if isinstance(ms, list) else ():
            if isinstance(m, dict) and "kind" not in m:
                m["kind"] = legacy_kind(str(m.get("name", "")), str(m.get("unit", "")))
    if isinstance(doc.get("meta"), dict):
        doc["meta"]["upgraded_from"] = doc["schema"]
    doc["schema"] = SCHEMA
    return doc


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


def run_commit(meta: dict[str, Any]) -> str | None:
    """The commit a run is tracked by: the user's project commit (``meta.project``, set when
    the run used the user's own model factory), else quirkbench's own."""
    project = meta.get("project") if isinstance(meta.get("project"), dict) else {}
    return project.get("commit") or meta.get("commit")


def run_dirty(meta: dict[str, Any]) -> bool | None:
    """Whether the tree of ``run_commit`` had uncommitted changes."""
    project = meta.get("project") if isinstance(meta.get("project"), dict) else {}
    return project.get("dirty") if project.get("commit") else meta.get("dirty")


def cpu_model() -> str:
    """The CPU's model name (``AMD EPYC``, ``Intel(R) Xeon(R) ...``) where the system says it,
    else the machine type: with the same torch, two x86_64 CPUs can round differently."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_capability() -> str | None:
    """The vector instructions torch's CPU kernels dispatch to (``AVX512``, ``AVX2``,
    ``DEFAULT``): they decide the rounding of CPU results."""
    import torch

    get = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", None)
    return str(get()) if get else None


def environment(device) -> dict[str, Any]:
    import torch

    from .. import __version__

    dev = str(device)
    name = torch.cuda.get_device_name(device) if dev.startswith("cuda") \
        else platform.processor() or platform.machine()
    return {"quirkbench": __version__, "torch": torch.__version__,
            "python": platform.python_version(),
            "platform": platform.platform(), "device": dev, "device_name": name,
            "cpu_threads": torch.get_num_threads(),
            # what else decides the numbers on the CPU: the same torch on an Intel and an AMD
            # x86_64 gave different exact metrics on a quarter of a pr calibration's values
            "cpu": cpu_model(), "cpu_capability": cpu_capability(),
            # exact metrics repeat bit for bit only where the kernels are deterministic
            "deterministic": not dev.startswith("cuda")
            or torch.are_deterministic_algorithms_enabled()}


def new_document(*, suite: str, seeds, datasets, tasks, device, argv=None) -> dict[str, Any]:
    meta = {**git_info(), **environment(device), "suite": suite, "seeds": list(seeds),
            "datasets": list(datasets), "tasks": list(tasks), "started": now(), "ended": None,
            "status": "running", "argv": list(argv if argv is not None else sys.argv[1:])}
    return {"schema": SCHEMA, "meta": meta, "units": {}}


def finite(obj: Any, path: str = "", reasons: dict[str, str] | None = None) -> Any:
    """``obj`` with every NaN or infinity replaced by ``None`` (strict JSON has neither);
    ``reasons`` (if given) collects ``{"dotted.path": "nan"}`` for each replacement."""
    if isinstance(obj, float) and not math.isfinite(obj):
        if reasons is not None:
            reasons[path or "."] = repr(obj)
        return None
    if isinstance(obj, dict):
        return {k: finite(v, f"{path}.{k}" if path else str(k), reasons) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite(v, f"{path}[{i}]", reasons) for i, v in enumerate(obj)]
    return obj


def _umask() -> int:
    mask = os.umask(0o22)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, doc: dict[str, Any]) -> None:
    """Write strict JSON (no NaN) to a temporary file in the same folder, fsync, then rename
    over ``path``; the file gets the usual mode (0644 under the usual umask)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as f:
            try:
                json.dump(doc, f, indent=1, allow_nan=False)
            except ValueError:  # a NaN slipped past unit_record: null it rather than fail
                f.seek(0)
                f.truncate()
                json.dump(finite(doc), f, indent=1, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read(path: str | Path) -> dict[str, Any]:
    """Read and validate a results document (see ``validate``); a missing, unreadable,
    foreign or damaged file is a ``UserError`` naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"results file {path} does not exist")
    try:
        with open(path, encoding="utf-8") as f:
            st = os.fstat(f.fileno())  # the file as read: a rewrite is a new inode or mtime
            doc = parse(f.read(), path)  # strict JSON, nesting bounded
    except (OSError, UnicodeDecodeError) as e:
        raise UserError(f"{path} is not a readable results document ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else 'empty'})") from None
    if isinstance(doc, dict) and doc.get("schema") in OLD_SCHEMAS:
        doc = _upgrade(doc)
    seen = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
    if seen not in _VALID:  # readers read a file several times; it is checked once
        validate(doc, path)
        _VALID.add(seen)
    return doc


_VALID: set[tuple] = set()  # (device, inode, mtime, size) of files that passed ``validate``


def unit_record(task: str, dataset: str, seed: int, config: dict, started: str | None,
                seconds: float | None, output=None, *,
                error: BaseException | str | None = None,
                traceback: str | None = None) -> dict[str, Any]:
    """The record of one unit in a results document: the one place its keys are spelled.

    Finished: ``output`` (a ``TaskOutput``), status ``done``. Failed: ``error`` (the
    exception it raised, written on one line as ``Type: first line of the message``, or that
    line itself) and its ``traceback``, status ``failed``, no metrics.
    Strict JSON: a NaN or infinity in the metrics, series or info becomes ``null`` and
    ``non_finite`` says where and what it was (``{"info.loss": "nan"}``).
    """
    if (output is None) == (error is None):
        raise ValueError("a unit record takes an output (done) or an error (failed)")
    reasons: dict[str, str] = {}
    metrics = [m.to_dict() for m in output.metrics] if output is not None else []
    for m, d in zip(output.metrics if output is not None else [], metrics, strict=True):
        if not math.isfinite(m.value):
            reasons[f"metrics.{m.key}"] = repr(m.value)
            d["value"] = None
    if error is not None and not isinstance(error, str):
        lines = str(error).strip().splitlines()
        error = f"{type(error).__name__}: {lines[0] if lines else ''}".rstrip(": ")
    rec = {"task": task, "dataset": dataset, "seed": seed, "config": config,
           "status": "done" if error is None else "failed",
           "started": started, "ended": now(), "seconds": seconds,
           "metrics": finite(metrics),
           "series": finite(output.series, "series", reasons) if output is not None else {},
           "info": finite(output.info, "info", reasons) if output is not None else {},
           "error": error}
    if traceback is not None:
        rec["traceback"] = traceback
    if reasons:
        rec["non_finite"] = reasons
    return rec


def metrics_of(unit: dict[str, Any]) -> list[Metric]:
    return [Metric.from_dict(m) for m in unit.get("metrics", [])]


_warned: set[str] = set()


def warn(message: str) -> None:
    """One warning line on stderr, once per message per process."""
    if message not in _warned:
        _warned.add(message)
        print(f"quirkbench: warning: {message}", file=sys.stderr)


def find_documents(path: str | Path, skipped: list[str] | None = None) -> list[Path]:
    """A results file, or every ``*.json`` results document in a folder (sorted by name).

    In a folder, JSON that is not a quirkbench results document (no ``schema`` key, or
    another tool's schema) is skipped with a warning line on stderr; a damaged quirkbench
    document is an error (never silently dropped). ``skipped`` collects the warnings."""
    path = Path(path)
    if path.is_dir():
        files = []
        for p in sorted(p for p in path.glob("*.json") if not p.name.startswith(".")):
            try:
                read(p)
            except ForeignDocument as e:
                warn(f"skipped {e}")
                if skipped is not None:
                    skipped.append(f"skipped {e}")
                continue
            files.append(p)
        if not files:
            raise UserError(f"no results documents (*.json) in {path}")
        return files
    if not path.exists():
        raise UserError(f"results path {path} does not exist")
    return [path]


def load_results(path: str | Path):
    """A tidy ``pandas.DataFrame``: one row per metric per task per data set per seed.

    ``path`` is a results document or a folder of them. Columns: run, commit (quirkbench's),
    project_commit and project_dirty (the user's project, for a run of their own model factory;
    else None), suite,
    device, started, task, dataset, seed, metric, key, value, unit, direction, kind,
    baseline, holds, not_shown (why the run's budget cannot show the check, else None),
    spread (a timing's standard error of ln(value) over its repeats, else None),
    headline, goal (e.g. ``≥ 1.5``, None where none), goal_met, goal_not_judged, anchor,
    anchor_value, file (the document's path), machine (device name), config (the unit's
    settings as canonical JSON), plus one column per tag (e.g. condition, attack, eps).
    """
    import pandas as pd

    rows = []
    for file in find_documents(path):
        doc = read(file)
        meta = doc["meta"]
        machine = meta.get("device_name") or meta.get("device")
        for unit in doc["units"].values():
            if unit.get("status") != "done":
                continue
            config = json.dumps(unit.get("config") or {}, sort_keys=True, ensure_ascii=False)
            for m in metrics_of(unit):
                rows.append({
                    "run": file.stem, "commit": meta.get("commit"), "suite": meta.get("suite"),
                    "project_commit": (meta.get("project") or {}).get("commit"),
                    "project_dirty": (meta.get("project") or {}).get("dirty"),
                    "device": meta.get("device"), "started": meta.get("started"),
                    "file": str(file), "machine": machine, "config": config,
                    "task": unit["task"], "dataset": unit["dataset"], "seed": unit["seed"],
                    "metric": m.name, "key": m.key, "value": m.value, "unit": m.unit,
                    "direction": m.direction, "kind": m.kind, "baseline": m.baseline,
                    "holds": m.holds, "headline": m.headline,
                    "goal": m.goal.describe() if m.goal else None,
                    "goal_met": m.goal.met if m.goal else None,
                    "goal_not_judged": m.goal.not_judged or None if m.goal else None,
                    "not_shown": m.not_shown or None, "spread": m.spread,
                    "anchor": m.anchor.describe() if m.anchor else None,
                    "anchor_value": m.anchor.value if m.anchor else None, **m.tags})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- pooling

def _short(files) -> str:
    names = [Path(str(f)).name for f in files]
    return ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")


def pool(df, label: str = "results"):
    """Check that the documents in one tidy frame may be pooled, and count each seed once.

    Runs of different suites, or of one task and data set with different settings, are
    never pooled: a ``UserError`` names them. A (task, data set, metric, seed) present in
    several documents is counted once, from the newest document (by start time); returns
    ``(frame, notes)``, one note per set of documents that share seeds. A frame without the
    ``file`` column (built by hand) is returned as it is.
    """
    if df.empty or "file" not in df.columns:
        return df, []
    files = df["file"].astype(str)
    if files.nunique() < 2:
        return df, []
    if "suite" in df.columns:
        suites = df.groupby(df["suite"].astype(str))["file"].unique()
        if len(suites) > 1:
            which = "; ".join(f"{s}: {_short(fs)}" for s, fs in suites.items())
            raise UserError(f"{label} mixes suites ({which}); runs of different suites are "
                            "never pooled, give one suite's documents")
    if "config" in df.columns:
        for (task, dataset), g in df.groupby(["task", "dataset"], sort=False):
            configs = g.groupby(g["config"].astype(str))["file"].unique()
            if len(configs) > 1:
                which = " vs ".join(_short(fs) for fs in configs.values)
                raise UserError(f"{label} mixes {task}/{dataset} runs with different settings "
                                f"({which}); runs of different settings are never pooled")
    order = df["started"].astype(str) if "started" in df.columns else files
    d = df.assign(_order=order).sort_values(["_order", "file"], kind="stable")
    keys = ["task", "dataset", "key", "seed"]
    dup = d.duplicated(keys, keep="last")
    if not dup.any():
        return df, []
    notes = []
    shared = d[d.duplicated(keys, keep=False)]
    by_seed = shared.groupby(keys, sort=False)["file"].apply(lambda f: tuple(sorted(set(f))))
    for docs, grp in by_seed.groupby(by_seed, sort=False):
        seeds = sorted({k[3] for k in grp.index})
        kept = d[d["file"].isin(docs)].iloc[-1]["file"]
        notes.append(f"note: {label}: seed(s) {', '.join(map(str, seeds))} appear in "
                     f"{len(docs)} documents ({_short(docs)}): {len(grp)} metric value(s) "
                     f"counted once, from the newest ({Path(str(kept)).name})")
    out = d[~dup].drop(columns="_order").sort_index()
    out.attrs.update(df.attrs)
    return out, notes
