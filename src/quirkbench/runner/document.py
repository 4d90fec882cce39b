"""A run's results document while the run writes it: where it goes, the one-writer lock,
opening it (new, or an existing one to resume, checked and never clobbered), and the
progress it records.

* the document records the whole invocation (``meta.invocation``), so
  ``quirkbench run --resume PATH`` needs nothing else;
* one writer per results file: an exclusive lock (``filelock``) next to it for the run's
  life; a second run on the same file stops with the holder's PID and start time;
* the output folder is checked for write access and free space before any training.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from ..config import to_dict
from ..errors import UserError
from ..tracking import results
from .plan import Unit, unique


def default_out(suite: str) -> Path:
    return Path("results") / f"{datetime.now().strftime('%Y%m%d-%H%M%S')}-{suite}.json"


def the_file(out: Path) -> Path:
    """The file a run at ``out`` writes and locks: the target of a symlink (the link stays a
    link, and a run through the link and one at the target contend for one lock). A file
    with several hard links is refused: a run replaces the file it writes, which would
    split the names into two documents."""
    if out.is_symlink():
        out = out.resolve()
    try:
        links = out.stat().st_nlink
    except OSError:
        return out
    if links > 1 and out.is_file():
        raise UserError(f"{out} has {links} hard links (names for one file); a run replaces "
                        "the file it writes, which would split them: copy it, or choose "
                        "another --out")
    return out


def resume_command(out: str | Path) -> str:
    """The command that resumes the run whose document is ``out``."""
    return f"quirkbench run --resume {shlex.quote(str(out))}"


def invocation(suite, tasks, datasets, seeds, overrides, device, data_root, download,
               executor, jobs=1, trust_data_root=False, model=None,
               unit_budget_s=None) -> dict[str, Any]:
    """Everything that decides a run's units and where they run, JSON-normalised."""
    return json.loads(json.dumps({
        "suite": suite, "tasks": unique(tasks), "datasets": unique(datasets),
        "seeds": seeds, "overrides": overrides or {}, "device": device,
        "data_root": data_root, "download": bool(download),
        "trust_data_root": bool(trust_data_root), "executor": executor, "jobs": jobs,
        "model": model, "unit_budget_s": unit_budget_s}))


# what decides the units
_SAME_UNITS = ("suite", "tasks", "datasets", "seeds", "overrides", "model")


def progress(doc: dict[str, Any], planned: list[str]) -> dict[str, int]:
    units = doc["units"]
    done = sum(units.get(k, {}).get("status") == "done" for k in planned)
    failed = sum(units.get(k, {}).get("status") == "failed" for k in planned)
    return {"planned": len(planned), "done": done, "failed": failed,
            "left": len(planned) - done - failed}


MIB = 1 << 20
MIN_FREE = 16 * MIB  # room for the document's rewrites, a report and a trace or two
PER_UNIT = 1 * MIB  # a unit's record (series, info) with room to spare


def preflight(folder: Path, n_units: int, what: str = "--out") -> None:
    """Before any training: ``folder`` exists or can be made, takes a file, and has room."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UserError(f"cannot create the folder for {what} {folder}: a file of that name "
                        "is in the way") from None
    except OSError as e:
        raise UserError(f"cannot create the folder for {what} {folder}: {e.strerror}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".quirkbench-write-test-") as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
    except OSError as e:
        raise UserError(f"cannot write in {folder} ({what}): {e.strerror}") from None
    need = MIN_FREE + PER_UNIT * n_units
    free = shutil.disk_usage(folder).free
    if free < need:
        raise UserError(f"not enough free space in {folder} ({what}): {free / MIB:.1f} MiB "
                        f"free, a run of {n_units} units needs about {need / MIB:.0f} MiB")


class RunLock:
    """The one-writer lock of a results file: ``.NAME.lock`` (``filelock``, released by the
    kernel when the holder dies, so a kill -9'd run leaves nothing to clean) and
    ``.NAME.holder`` (the holder's PID and start time, for the message a second run sees),
    next to the file itself (``the_file``: a symlink's target), so every path to one file
    meets one lock."""

    def __init__(self, out: Path):
        import filelock

        self.out = out
        self.holder = out.parent / f".{out.name}.holder"
        self.lock = filelock.FileLock(str(out.parent / f".{out.name}.lock"), timeout=0)
        self._timeout = filelock.Timeout
        self.stale: dict[str, Any] | None = None

    def _read_holder(self) -> dict[str, Any] | None:
        try:
            h = json.loads(self.holder.read_text())
            return h if isinstance(h, dict) else None
        except (OSError, ValueError, RecursionError):
            return None

    def acquire(self) -> RunLock:
        try:
            self.lock.acquire()
        except self._timeout:
            h = self._read_holder() or {}
            raise UserError(f"{self.out} is being written by another run (PID "
                            f"{h.get('pid', '?')}, started {h.get('started', '?')}); wait for "
                            "it to finish, or choose another --out") from None
        except OSError as e:
            raise UserError(f"cannot lock {self.out}: {e.strerror}") from None
        self.stale = self._read_holder()  # a holder file under a free lock: a killed run
        try:
            results.write_atomic(self.holder, {"pid": os.getpid(), "started": results.now()})
        except OSError:
            pass  # the lock itself holds; only the second writer's message loses detail
        return self

    def release(self) -> None:
        try:
            self.holder.unlink()
        except OSError:
            pass
        self.lock.release()


def _without_sources(config) -> Any:
    return {k: v for k, v in config.items() if k != "model_sources"} \
        if isinstance(config, dict) else config


def open_document(out: Path, inv: dict[str, Any], units: list[Unit], device, argv,
                  resume: bool, project: dict[str, Any] | None = None) -> dict[str, Any]:
    """A new document, or the existing one at ``out`` to resume (checked, never clobbered).
    ``project``: the user's project whose factory the run uses (``plan.project_of``),
    recorded as ``meta.project`` beside quirkbench's own commit."""
    suite = inv["suite"]
    planned = [u.key for u in units]
    if out.exists():
        doc = results.read(out)
        meta = doc["meta"]
        if meta.get("suite") != suite:
            raise UserError(f"{out} holds a {meta.get('suite')!r} run; resuming needs the "
                            f"same suite, or choose another --out")
        old = meta.get("invocation")
        if not resume and isinstance(old, dict) \
                and any(old.get(k) != inv[k] for k in _SAME_UNITS):
            diff = ", ".join(k for k in _SAME_UNITS if old.get(k) != inv[k])
            raise UserError(f"{out} holds a run with other settings ({diff}); resume it with "
                            f"`{resume_command(out)}`, or choose another --out")
        for u in units:
            rec = doc["units"].get(u.key)
            if rec and rec.get("status") == "done" and rec.get("config") != u.record_config():
                what = "another version of your model" if u.models and \
                    _without_sources(rec.get("config")) == to_dict(u.config) else "other settings"
                raise UserError(f"{out} already holds {u.key} with {what}; choose another "
                                "--out to run with these")
        for stale in ("interrupted_in", "error", "ended"):
            meta.pop(stale, None)
        meta["status"] = "running"
        meta["invocation"] = inv
        meta["planned"] = planned
        meta.setdefault("run_id", uuid.uuid4().hex[:8])
        meta["argv"] = list(argv) if argv is not None else meta.get("argv", [])
        meta.setdefault("resumed", []).append({"at": results.now(), "argv": meta["argv"],
                                               "pid": os.getpid()})
        meta["progress"] = progress(doc, planned)
        if project is not None:
            meta["project"] = project
        results.write_atomic(out, doc)
        return doc
    doc = results.new_document(suite=suite, seeds=sorted({u.seed for u in units}),
                               datasets=sorted({u.dataset for u in units}),
                               tasks=list(dict.fromkeys(u.task.name for u in units)),
                               device=device, argv=argv)
    doc["meta"].update(run_id=uuid.uuid4().hex[:8], pid=os.getpid(), invocation=inv,
                       planned=planned, progress=progress(doc, planned))
    if project is not None:
        doc["meta"]["project"] = project
    results.write_atomic(out, doc)
    return doc
