"""The two sides of a comparison: loading them, and the warnings about how they differ.

Each side is a results document, a folder of them, or a tidy frame from
``quirkbench.load_results``. A side's documents carry an environment fingerprint (the fields
of ``FINGERPRINT``): when base and head agree on it, exact metrics may be compared value by
value. Warnings name what differs: incomplete runs, environments, task settings, the data
read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import UserError

REQUIRED = {"task", "dataset", "key", "metric", "value", "unit", "direction"}
# the fingerprint fields that must agree for exact metrics to be compared value by value
# (the job count and the executor are not in it: they do not decide the numbers)
FINGERPRINT = ("quirkbench", "torch", "python", "device", "device_name", "cpu", "cpu_capability",
               "cpu_threads", "unit_threads", "deterministic", "data")
CONTROL_LIMIT = 0.10  # the machine-speed control may move ±10% before timings are not judged

@dataclass
class Side:
    """One side of the comparison: its metrics frame and, for documents, their meta."""

    name: str  # BASE or HEAD
    df: pd.DataFrame
    metas: list[dict]  # one per document (empty for a frame)
    units: dict[str, dict]  # unit key → record (documents only)
    files: list[str]

    @property
    def fingerprint(self) -> dict[str, object] | None:
        """The environment fields of FINGERPRINT, or None when unknown or mixed."""
        if not self.metas:
            return None
        prints = []
        for m in self.metas:
            fp = {k: m.get(k) for k in FINGERPRINT}
            data = m.get("data") if isinstance(m.get("data"), dict) else {}
            fp["data"] = json.dumps({name: rec.get("sha256") if isinstance(rec, dict) else None
                                     for name, rec in data.items()}, sort_keys=True)
            if fp["deterministic"] is None:  # documents from before the field: CPU kernels are
                fp["deterministic"] = not str(m.get("device", "")).startswith("cuda")
            prints.append(fp)
        if not all(p == prints[0] for p in prints):
            return None
        # the threads each unit ran with (the runner records them): they decide the numbers
        threads = sorted({int(u["threads"]) for u in self.units.values()
                          if isinstance(u.get("threads"), int)})
        return {**prints[0], "unit_threads": ",".join(map(str, threads)) or None}


def load_side(x, name: str) -> Side:
    """One side (``name``: BASE or HEAD) from a results file, a folder or a frame; a one-line
    ``UserError`` for anything else, or for a table without metrics."""
    if isinstance(x, pd.DataFrame):
        df, metas, units, files = x, [], {}, []
    elif isinstance(x, (str, Path)):
        from .results import find_documents, load_results, read

        files = [str(f) for f in find_documents(x)]
        docs = [read(f) for f in files]
        metas = [d["meta"] for d in docs]
        units = {k: u for d in docs for k, u in d["units"].items()}
        df = load_results(x)
    else:
        raise UserError(f"{name} must be a results file, a folder or a DataFrame, "
                        f"got {type(x).__name__}")
    missing = REQUIRED - set(df.columns)
    if len(df) and missing:
        raise UserError(f"{name} is not a quirkbench results table (missing columns: "
                        f"{', '.join(sorted(missing))})")
    if df.empty:
        raise UserError(f"{name} holds no finished metrics")
    df = df.copy()
    if "kind" not in df.columns:  # a frame without kinds: the schema-1 rule
        from .results import legacy_kind

        df["kind"] = [legacy_kind(str(m), str(u)) for m, u in zip(df["metric"], df["unit"],
                                                                   strict=True)]
    for col, default in (("headline", False), ("baseline", None), ("seed", None),
                         ("spread", None)):
        if col not in df.columns:
            df[col] = default
    df["headline"] = df["headline"].fillna(False).astype(bool)
    return Side(name, df, metas, units, files)


def incomplete_units(side: Side) -> list[str]:
    """Unit keys of a document side that were planned but are not done: failed or missing
    units, judged from each document's planned tasks × seeds (data sets as run)."""
    missing = []
    for meta in side.metas:
        seeds = meta.get("seeds") or []
        for task in meta.get("tasks") or []:
            sets = sorted({u.get("dataset") for u in side.units.values()
                           if u.get("task") == task} - {None}) or list(meta.get("datasets") or [])
            for d in sets:
                for s in seeds:
                    k = f"{task}/{d}/{s}"
                    if side.units.get(k, {}).get("status") != "done":
                        missing.append(k)
    missing += [k for k, u in side.units.items()
                if u.get("status") != "done" and k not in missing]
    return sorted(set(missing))


def check_complete(side: Side, allow_incomplete: bool) -> list[str]:
    """Refuse (``UserError``) a side whose run did not finish, unless allowed; the warning
    lines listing what is missing otherwise."""
    if not side.metas:
        return []
    status = sorted({str(m.get("status")) for m in side.metas} - {"done"})
    missing = incomplete_units(side)
    if not status and not missing:
        return []
    what = (f"status {'/'.join(status)}" if status else "status done") + \
        (f", {len(missing)} unit(s) not done" if missing else "")
    if not allow_incomplete:
        raise UserError(f"{side.name} {', '.join(side.files)} is an incomplete run ({what}); "
                        f"finish it (quirkbench run resumes) or pass --allow-incomplete")
    shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12
                                       else "")
    return [f"warning: {side.name} is incomplete ({what})" + (f": {shown}" if missing else "")]


def environment_warnings(b: Side, h: Side) -> tuple[bool, list[str]]:
    """(do the environments agree, so exact metrics compare value by value?, warnings)."""
    fb, fh = b.fingerprint, h.fingerprint
    lines = []
    if b.metas and fb is None or h.metas and fh is None:
        lines.append("note: the documents of one side ran in different environments; "
                     "exact metrics are judged by identity and against the seed noise")
        return False, lines
    if fb is None or fh is None:
        return False, lines  # frames: no fingerprint, statistics only
    diff = fingerprint_diff(fb, fh)
    if diff:
        lines.append(f"note: environments differ ({'; '.join(diff)}): exact metrics are "
                     "judged by identity and against the seed noise")
    if not fb.get("deterministic"):
        lines.append("note: nondeterministic kernels (a GPU without deterministic "
                     "algorithms): exact metrics are judged against the seed noise")
        return False, lines
    return not diff, lines


def fingerprint_diff(fb: dict, fh: dict, keys: tuple[str, ...] = FINGERPRINT) -> list[str]:
    """["torch 2.13.0 → 2.14.1", ...] for the fields of ``keys`` that differ; a field a side
    does not record (a document from before quirkbench recorded it) reads "unrecorded"."""
    shown = lambda v: "unrecorded" if v is None else v  # noqa: E731
    return [f"{k} {shown(fb.get(k))} → {shown(fh.get(k))}" for k in keys
            if fb.get(k) != fh.get(k)]


def suites(df: pd.DataFrame) -> set[str]:
    return set(df["suite"].dropna().astype(str)) if "suite" in df.columns else set()


def datasets(df: pd.DataFrame) -> set[str]:
    return set(df["dataset"].dropna().astype(str))


def _flatten(d: dict, prefix: str = "") -> dict[str, str]:
    """Nested config → {"train.lr": "0.05", ...}, leaves as canonical JSON text."""
    out: dict[str, str] = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, sort_keys=True, ensure_ascii=False)
    return out


def task_configs(x) -> dict[str, list[dict[str, str]]]:
    """task → its distinct flattened configs on one side (JSON-normalised, so a tuple and a
    list are the same). ``x``: results file or folder (configs read from the documents'
    units) or a frame (its ``config`` column when it has one, dicts or JSON text)."""
    pairs = []
    if isinstance(x, pd.DataFrame):
        if "config" in x.columns and "task" in x.columns:
            pairs = [(t, json.loads(c) if isinstance(c, str) else c)
                     for t, c in zip(x["task"], x["config"], strict=True)]
    elif isinstance(x, (str, Path)):
        from .results import find_documents, read

        for file in find_documents(x):
            pairs += [(u["task"], u.get("config")) for u in read(file)["units"].values()
                      if u.get("status") == "done"]
    seen: dict[str, dict[str, dict[str, str]]] = {}
    for task, cfg in pairs:
        if isinstance(cfg, dict):
            flat = _flatten(json.loads(json.dumps(cfg)))
            seen.setdefault(task, {})[json.dumps(flat, sort_keys=True)] = flat
    return {t: list(v.values()) for t, v in seen.items()}


def _values_text(vals: list[str | None]) -> str:
    s = " / ".join("(absent)" if v is None else v for v in vals)
    return s if len(s) <= 60 else s[:57] + "..."


def settings_warnings(base, head) -> list[str]:
    """One line per task whose settings differ between ``base`` and ``head`` (same inputs
    as ``compare``), naming each differing config key: its value(s) in BASE → in HEAD."""
    cb, ch = task_configs(base), task_configs(head)
    lines = []
    for task in sorted(set(cb) & set(ch)):
        diffs = []
        keys = sorted({k for c in cb[task] + ch[task] for k in c})
        for k in keys:
            vb = sorted({c.get(k) for c in cb[task]}, key=str)
            vh = sorted({c.get(k) for c in ch[task]}, key=str)
            if vb != vh:
                diffs.append(f"{k} {_values_text(vb)} → {_values_text(vh)}")
        if diffs:
            lines.append(f"warning: {task} settings differ between base and head: "
                         f"{'; '.join(diffs)}; differences may not be regressions")
    return lines


def data_digests(x) -> dict[str, set[str]]:
    """data set → the distinct digests of the data it was read from, over one side's
    documents (``meta.data``); empty for a frame or for documents that predate it."""
    if not isinstance(x, (str, Path)):
        return {}
    from .results import find_documents, read

    out: dict[str, set[str]] = {}
    for file in find_documents(x):
        for name, rec in (read(file)["meta"].get("data") or {}).items():
            sha = rec.get("sha256") if isinstance(rec, dict) else None
            if isinstance(sha, dict):
                out.setdefault(name, set()).add(json.dumps(sha, sort_keys=True))
    return out


def data_warnings(base, head) -> list[str]:
    """One line per data set whose recorded digests differ between ``base`` and ``head``."""
    db, dh = data_digests(base), data_digests(head)
    lines = []
    for name in sorted(set(db) & set(dh)):
        if db[name] != dh[name]:
            files = sorted({k for s in db[name] | dh[name] for k in json.loads(s)})
            lines.append(f"warning: data set {name} was read from different data in base and "
                         f"head (SHA-256 of {', '.join(files)} differ); differences may not be "
                         "regressions")
    return lines


def side_facts(df: pd.DataFrame) -> dict[str, str]:
    """commit(s), date(s), machine(s), seeds of one side of a comparison (a tidy frame)."""
    def uniq(col: str, short: int | None = None) -> str:
        if col not in df.columns:
            return "?"
        vals = sorted({str(v)[:short] if short else str(v) for v in df[col].dropna()})
        return ", ".join(vals) if vals else "?"

    seeds = sorted({int(s) for s in df["seed"].dropna()}) if "seed" in df.columns else []
    machine = uniq("machine") if "machine" in df.columns else uniq("device")
    commit = uniq("commit", 10)
    if "project_commit" in df.columns and df["project_commit"].notna().any():
        commit = f"{uniq('project_commit', 10)} (your project; quirkbench {commit})"
    return {"commit": commit, "date": uniq("started", 10),
            "machine": machine, "seeds": ", ".join(map(str, seeds)) or "?",
            "runs": str(df["run"].nunique()) if "run" in df.columns else "?"}


def _positive(u: dict, field: str) -> float | None:
    """``unit["control"][field]`` when it is a positive number, else None."""
    c = u.get("control")
    v = c.get(field) if isinstance(c, dict) else None
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0
    return float(v) if ok else None


def _control(u: dict) -> tuple[float, float] | None:
    b, a = _positive(u, "before_s"), _positive(u, "after_s")
    return (b, a) if b is not None and a is not None else None


def machine_drift(b: Side, h: Side) -> dict[tuple[str, str], float]:
    """(task, data set) → how far the machine's speed moved while its units ran, as a
    fraction (0.14: ±14%), from the control workload the runner times before and after
    each unit (``unit["control"]``: ``before_s``, ``after_s``): the largest of the drift
    within a unit and the change of the control's mean between base and head; and from the
    CPU share a unit got (``cpu_share``): a unit that had 67% of its core ran 1 / 0.67 − 1
    = ±49% slower than the machine can, which the 1 ms control, timed between other
    processes' turns, does not see. Units without a control are left out; a task with none
    on a side is not in the result."""
    import numpy as np

    def per_task(side: Side) -> dict[tuple[str, str], list[tuple[float, float]]]:
        out: dict[tuple[str, str], list[tuple[float, float]]] = {}
        for u in side.units.values():
            c = _control(u)
            if c is not None and u.get("status") == "done":
                out.setdefault((u.get("task"), u.get("dataset")), []).append(c)
        return out

    def least_share(side: Side) -> dict[tuple[str, str], float]:
        out: dict[tuple[str, str], float] = {}
        for u in side.units.values():
            s = _positive(u, "cpu_share")
            if s is not None and u.get("status") == "done":
                k = (u.get("task"), u.get("dataset"))
                out[k] = min(out.get(k, 1.0), s)
        return out

    cb, ch = per_task(b), per_task(h)
    sb, sh = least_share(b), least_share(h)
    drift = {}
    for k in set(cb) & set(ch):
        within = max(max(a / b_, b_ / a) - 1 for b_, a in cb[k] + ch[k])
        mb = float(np.mean([x for c in cb[k] for x in c]))
        mh = float(np.mean([x for c in ch[k] for x in c]))
        busy = 1 / min(sb.get(k, 1.0), sh.get(k, 1.0), 1.0) - 1
        drift[k] = max(within, max(mh / mb, mb / mh) - 1, busy)
    return drift
