"""The quick suite's wall time per seed, as a user runs it: the performance page's "quick" part.

``bench_quick`` runs ``quirkbench run --seeds 0`` (the quick suite is the default) three ways
on this checkout, and on an earlier commit when one is given (``--before``, checked out
into a temporary git worktree and run from its own ``src/``):

* ``plain``       no flags: what a new user types;
* ``jobs auto``   ``--jobs auto``: one worker per physical core;
* ``sequential``  ``--jobs 1``: one unit after another in one process;

all with the environment's defaults for threads (``OMP_NUM_THREADS`` and
``MKL_NUM_THREADS`` removed). The runs of the two commits alternate (before plain, after
plain, before auto, ...) so a change of the machine's load hits both sides alike; the load
average is recorded before and after every run. From each run's results document: the
wall time of every unit (the per-unit breakdown), and the exact (non-timing) metrics, to
say whether they are identical whatever the choice of workers and threads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qbtools import ROOT

MODES = (("plain", []), ("jobs auto", ["--jobs", "auto"]), ("sequential", ["--jobs", "1"]))
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


def exact_metrics(doc: dict) -> dict[str, object]:
    """unit key + metric name + tags → value, for every non-timing metric of a document."""
    out = {}
    for uk, u in doc["units"].items():
        for m in u.get("metrics") or []:
            if m.get("kind", "exact") != "timing":
                tags = ",".join(f"{k}={v}" for k, v in sorted(m.get("tags", {}).items()))
                out[f"{uk} {m['name']}[{tags}]"] = m["value"]
    return out


def _git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True,
                          check=True).stdout.strip()


def _run(src: Path, args: list[str], out: Path, suite: str, seeds: str,
         tasks: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = str(src)
    cmd = ["run", "--suite", suite, "--seeds", seeds, *tasks, *args]
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "quirkbench", *cmd, "--no-report", "--quiet",
                        "--out", str(out)], env=env, cwd=src.parent, capture_output=True,
                       text=True)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"quirkbench {' '.join(cmd)} failed ({p.returncode}):\n"
                         f"{p.stdout[-1500:]}{p.stderr[-1500:]}")
    doc = json.loads(out.read_text())
    return {"cmd": "quirkbench " + " ".join(cmd), "wall_s": wall, "rc": p.returncode,
            "load_before": load0, "load_after": os.getloadavg(),
            "jobs": doc["meta"].get("jobs"), "threads": doc["meta"].get("cpu_threads"),
            "units": {k: u.get("seconds") for k, u in doc["units"].items()},
            "failed": [k for k, u in doc["units"].items() if u["status"] != "done"],
            "exact": exact_metrics(doc)}


def _differing(runs: dict[str, dict]) -> dict[str, int]:
    """For each mode after the first: how many exact metrics differ from the first mode's."""
    first, *rest = runs
    a = runs[first]["exact"]
    return {k: sum(1 for m in a.keys() | runs[k]["exact"].keys()
                   if a.get(m) != runs[k]["exact"].get(m)) for k in rest}


def bench_quick(tiny: bool, before: str | None = None) -> dict:
    """The three modes on this checkout and, with ``before``, on that commit (alternating)."""
    suite, seeds = ("smoke", "0") if tiny else ("quick", "0")
    tasks = ["--tasks", "dimensionality", "units"] if tiny else []
    sides = {"after": (ROOT / "src", _git("rev-parse", "--short=10", "HEAD"))}
    with tempfile.TemporaryDirectory() as d:
        if before:
            wt = Path(d) / "before"
            _git("worktree", "add", "--detach", str(wt), before)
            sides = {"before": (wt / "src", _git("rev-parse", "--short=10", before))} | sides
        try:
            runs: dict[str, dict[str, dict]] = {side: {} for side in sides}
            for mode, args in MODES:
                for side, (src, _) in sides.items():
                    out = Path(d) / f"{side}-{mode.replace(' ', '-')}.json"
                    runs[side][mode] = _run(src, args, out, suite, seeds, tasks)
                    print(f"  {side} {mode}: {runs[side][mode]['wall_s']:.1f} s", flush=True)
        finally:
            if before:
                _git("worktree", "remove", "--force", str(wt))
    res = {"suite": suite, "seeds": seeds, "sides": {}}
    for side, (_, sha) in sides.items():
        diff = _differing(runs[side])
        n = len(next(iter(runs[side].values()))["exact"])
        for r in runs[side].values():
            del r["exact"]
        res["sides"][side] = {"commit": sha, "runs": runs[side], "exact_metrics": n,
                              "differing_from_plain": diff}
    return res


def render_quick(q: dict) -> list[str]:
    """The page's section: the modes per commit, the speed-up, the per-unit breakdown."""
    sides = q["sides"]
    lines = ["## The quick suite per seed", "",
             f"`quirkbench run --suite {q['suite']} --seeds {q['seeds']}` as a user runs it "
             "(threads as the environment leaves them: no `OMP_NUM_THREADS`), one run each, "
             "the commits alternating. Goals: ≤ 60 s a seed on 2 cores; `--jobs auto` ≥ 1.3× "
             "sequential; the exact metrics identical whatever the choice. Load average "
             "(1 min) before/after each run in the last column.", "",
             "| commit | run | command | workers × threads | wall time | failed units | "
             "load |", "|---|---|---|---|---|---|---|"]
    for side, s in sides.items():
        for mode, r in s["runs"].items():
            lines.append(f"| {side} `{s['commit']}` | {mode} | `{r['cmd']}` | "
                         f"{r['jobs']} × {r['threads']} | {r['wall_s']:.1f} s | "
                         f"{len(r['failed'])} | {r['load_before'][0]:.1f}/"
                         f"{r['load_after'][0]:.1f} |")
    lines.append("")
    for side, s in sides.items():
        runs = s["runs"]
        ratio = runs["sequential"]["wall_s"] / runs["jobs auto"]["wall_s"]
        plain = runs["plain"]["wall_s"]
        diff = ", ".join(f"{k}: {v}" for k, v in s["differing_from_plain"].items())
        lines.append(f"- {side} (`{s['commit']}`): plain run **{plain:.1f} s** (goal ≤ 60 s: "
                     f"{'met' if plain <= 60 else 'not met'}); `--jobs auto` "
                     f"**{ratio:.2f}×** sequential (goal ≥ 1.3×: "
                     f"{'met' if ratio >= 1.3 else 'not met'}); of {s['exact_metrics']} exact "
                     f"metrics, differing from the plain run's: {diff}.")
    lines += ["", "### Per unit (seconds, from each run's results document)", "",
              "| unit | " + " | ".join(f"{side} {mode}" for side in sides
                                       for mode in sides[side]["runs"]) + " |",
              "|---|" + "---|" * sum(len(s["runs"]) for s in sides.values())]
    keys = list(next(iter(next(iter(sides.values()))["runs"].values()))["units"])
    seq = next(iter(sides.values()))["runs"]["sequential"]["units"]
    for k in sorted(keys, key=lambda k: -(seq.get(k) or 0)):
        cells = [sides[side]["runs"][mode]["units"].get(k) for side in sides
                 for mode in sides[side]["runs"]]
        lines.append(f"| {k} | " + " | ".join("–" if c is None else f"{c:.1f}" for c in cells)
                     + " |")
    return lines + [""]
