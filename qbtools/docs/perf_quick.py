"""The quick suite's wall time per seed, as a user runs it, and the training step against its
matmul-bound limit: the performance page's "quick" and "step" parts.

``bench_quick`` runs ``quirkbench run --seeds 0`` (the quick suite is the default) three ways
on this checkout, and on an earlier commit when one is given (``--before``, checked out
into a temporary git worktree and run from its own ``src/``, without the environment's
plugins, which are written against the current API):

* ``plain``       no flags: what a new user types (the HTML report included; the other
                  two runs pass ``--no-report``);
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
import statistics
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


def _stub_plugins(folder: Path) -> Path:
    """A folder of empty modules standing in for the installed plugins' entry points (other
    distributions' ``quirkbench.*`` groups): an earlier commit, whose API they may not
    match, then runs without them. Its path, to put first on ``PYTHONPATH``."""
    from importlib.metadata import distributions

    for ep in (ep for dist in distributions() if dist.metadata["Name"] != "quirkbench"
               for ep in dist.entry_points if ep.group.startswith("quirkbench.")):
        parts = ep.module.split(".")
        for i in range(1, len(parts)):
            pkg = folder.joinpath(*parts[:i])
            pkg.mkdir(parents=True, exist_ok=True)
            (pkg / "__init__.py").touch()
        folder.joinpath(*parts[:-1], parts[-1] + ".py").touch()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _run(src: Path, args: list[str], out: Path, suite: str, seeds: str,
         tasks: list[str], stubs: Path | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    env["PYTHONPATH"] = str(src) if stubs is None else f"{stubs}{os.pathsep}{src}"
    cmd = ["run", "--suite", suite, "--seeds", seeds, *tasks, *args]
    # the plain run as a user types it, its HTML report included; the others without one
    extra = ["--no-report", "--quiet"] if args else []
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "quirkbench", *cmd, *extra, "--out", str(out)],
                       env=env, cwd=src.parent, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1):
        raise SystemExit(f"quirkbench {' '.join(cmd)} failed ({p.returncode}):\n"
                         f"{p.stdout[-1500:]}{p.stderr[-1500:]}")
    doc = json.loads(out.read_text())
    return {"cmd": "quirkbench " + " ".join(cmd + extra), "wall_s": wall, "rc": p.returncode,
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


def bench_quick(tiny: bool, before: str | None = None,
                before_modes: tuple[str, ...] | None = None) -> dict:
    """The three modes on this checkout and, with ``before``, on that commit (alternating;
    only ``before_modes`` there when given: a slow earlier commit on a busy machine)."""
    suite, seeds = ("smoke", "0") if tiny else ("quick", "0")
    tasks = ["--tasks", "dimensionality", "units"] if tiny else []
    sides = {"after": (ROOT / "src", _git("rev-parse", "--short=10", "HEAD"))}
    with tempfile.TemporaryDirectory() as d:
        if before:
            wt = Path(d) / "before"
            _git("worktree", "add", "--detach", str(wt), before)
            sides = {"before": (wt / "src", _git("rev-parse", "--short=10", before))} | sides
            stubs = _stub_plugins(Path(d) / "stubs")
        try:
            runs: dict[str, dict[str, dict]] = {side: {} for side in sides}
            for mode, args in MODES:
                for side, (src, _) in sides.items():
                    if side == "before" and before_modes and mode not in before_modes:
                        continue
                    out = Path(d) / f"{side}-{mode.replace(' ', '-')}.json"
                    runs[side][mode] = _run(src, args, out, suite, seeds, tasks,
                                            stubs if side == "before" else None)
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
             "the commits alternating; the plain run includes its HTML report, the other two "
             "pass `--no-report`. Goals: ≤ 60 s a seed on 2 cores; `--jobs auto` ≥ 1.3× "
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
        plain = runs["plain"]["wall_s"]
        diff = ", ".join(f"{k}: {v}" for k, v in s["differing_from_plain"].items())
        ratio = (runs["sequential"]["wall_s"] / runs["jobs auto"]["wall_s"]
                 if "sequential" in runs and "jobs auto" in runs else None)
        lines.append(f"- {side} (`{s['commit']}`): plain run **{plain:.1f} s** (goal ≤ 60 s: "
                     f"{'met' if plain <= 60 else 'not met'})"
                     + (f"; `--jobs auto` **{ratio:.2f}×** sequential (goal ≥ 1.3×: "
                        f"{'met' if ratio >= 1.3 else 'not met'})" if ratio else "")
                     + f"; of {s['exact_metrics']} exact metrics"
                     + (f", differing from the plain run's: {diff}." if diff else "."))
    lines += ["", "### Per unit (seconds, from each run's results document)", "",
              "| unit | " + " | ".join(f"{side} {mode}" for side in sides
                                       for mode in sides[side]["runs"]) + " |",
              "|---|" + "---|" * sum(len(s["runs"]) for s in sides.values())]
    keys = list(next(iter(next(iter(sides.values()))["runs"].values()))["units"])
    seq = next(s["runs"]["sequential"] for s in sides.values()
               if "sequential" in s["runs"])["units"]
    for k in sorted(keys, key=lambda k: -(seq.get(k) or 0)):
        cells = [sides[side]["runs"][mode]["units"].get(k) for side in sides
                 for mode in sides[side]["runs"]]
        lines.append(f"| {k} | " + " | ".join("–" if c is None else f"{c:.1f}" for c in cells)
                     + " |")
    return lines + [""]


def bench_step(tiny: bool) -> dict:
    """The training step of mlp-512 against its matmul-bound limit, one thread, as the
    throughput task measures it (``engine.train_speed.measure_training``): batch 128 (the
    goal's) and 1024, the engine, the bare step, the naive loop and the step's matmuls
    alone, interleaved; the FLOPs of a step (forward + backward matmuls)."""
    import torch

    from quirkbench.engine.train_speed import measure_training
    from quirkbench.tasks import get

    torch.set_num_threads(1)
    over = dict(models=("mlp-512",), batches=(128, 1024), steps=16, repeats=9, repeat_s=0.3,
                fused=True, many_k=())
    if tiny:
        over.update(batches=(16,), steps=2, repeats=2)
    cfg = get("throughput").make_config(None, over)
    rows = measure_training(cfg, torch.device("cpu"), 0, lambda m: None)
    out = {}
    for r in rows:
        mm = statistics.median(r["step_matmuls_s"])
        share = statistics.median(a / b for a, b in zip(r["step_matmuls_s"], r["repeats_s"],
                                                        strict=True))
        out.setdefault(str(r["batch"]), {})[r["variant"]] = {
            "step_ms": 1e3 * r["step_s"], "share_pct": 100 * share,
            "matmuls_ms": 1e3 * mm, "flops": r["flops"]}
    return {"model": "mlp-512", "threads": 1, "settings": over, "batches": out}


def render_step(s: dict) -> list[str]:
    lines = ["## The training step against its matmul-bound limit", "",
             f"`{s['model']}` (784 → 512 → 10), one thread, random data, SGD with momentum; "
             "the engine (`train.train`), the bare step (gather, forward, backward, torch's "
             "SGD: the least an exact step costs), the fused update (not bit-identical) and the "
             "DataLoader loop, each against the step's own matmuls alone at the same shapes "
             "(the matmul-bound limit: FLOPs of the forward and backward matmuls over this "
             "machine's rate at those shapes), timed interleaved (median of "
             f"{s['settings']['repeats']} repeats; shares: the median of per-repeat ratios). "
             "Goal: the engine ≥ 80% of the limit at batch 128.", "",
             "| batch | limit (matmuls alone) | variant | step | share of the limit |",
             "|---|---|---|---|---|"]
    notes = []
    for b, vs in s["batches"].items():
        eng = vs["engine"]
        limit = f"{eng['matmuls_ms']:.2f} ms ({eng['flops'] / eng['matmuls_ms'] / 1e6:.0f} " \
                f"GFLOP/s, {eng['flops'] / 1e6:.0f} MFLOP)"
        for v in ("engine", "bare", "fused-update", "naive"):
            if v in vs:
                lines.append(f"| {b} | {limit} | {v} | {vs[v]['step_ms']:.2f} ms | "
                             f"{vs[v]['share_pct']:.0f}% |")
        if b == "128":
            ceiling = vs["bare"]["share_pct"]
            notes.append(
                f"At batch 128 the engine reaches **{eng['share_pct']:.0f}%** of the limit "
                f"(goal ≥ 80%: {'met' if eng['share_pct'] >= 80 else 'not met'}); the bare "
                f"step reaches {ceiling:.0f}%"
                + (": the goal cannot be met on this machine with torch's update. The bare "
                   "step adds the SGD update (three memory-bound passes over the weights and "
                   "the momentum buffer) and the batch gather to the matmuls; no exact step "
                   "does less, and the fused update, which does, is not bit-identical."
                   if ceiling < 80 else "."))
    return lines + [""] + notes + [""]


HOT = ("memorization", "compression", "forgetting")  # the quick suite's longest units
STEP_NOTE = " (the recorded steps' time outside any torch operator: Python)"


def _sampled_profile(run, every: int = 500, active: int = 50) -> dict[str, list]:
    """``run()`` under ``torch.profiler``, recording ``active`` optimizer steps out of every
    ``every`` (and all that runs between them: probes, evaluations), one window at a time so
    memory stays bounded (a whole quick unit recorded at once took 13 GB). Operator → [calls,
    self CPU µs], summed over the windows."""
    from torch.optim.optimizer import register_optimizer_step_post_hook
    from torch.profiler import ProfilerActivity, profile, schedule

    acc: dict[str, list] = {}

    def ready(p):
        for e in p.key_averages():
            a = acc.setdefault(e.key, [0, 0.0])
            a[0] += e.count
            a[1] += e.self_cpu_time_total

    plan = schedule(wait=every - active - 1, warmup=1, active=active, repeat=0)
    with profile(activities=[ProfilerActivity.CPU], schedule=plan, on_trace_ready=ready) as prof:
        hook = register_optimizer_step_post_hook(lambda *a: prof.step())
        try:
            run()
        finally:
            hook.remove()
    return acc


def bench_profile(tiny: bool) -> dict:
    """``torch.profiler`` over the quick suite's longest units, seed 0, one thread, in this
    process: each unit's CPU seconds, its optimizer steps, and the operators that took most
    of the sampled steps' time (self time; one step in ten recorded)."""
    import torch

    from quirkbench.runner.plan import plan
    from quirkbench.tasks import Context

    torch.set_num_threads(1)
    suite, tasks = ("smoke", ["memorization"]) if tiny else ("quick", list(HOT))
    every, active = (20, 5) if tiny else (500, 50)
    out = {}
    for u in plan(suite, tasks=tasks, seeds=[0]):
        ctx = Context(u.dataset, u.seed, torch.device("cpu"))
        c0 = time.process_time()
        acc = _sampled_profile(lambda u=u, ctx=ctx: u.task.run(u.config, ctx), every, active)
        cpu = time.process_time() - c0
        top = sorted(acc.items(), key=lambda kv: -kv[1][1])[:8]
        out[u.task.name] = {"cpu_s": cpu, "ops_s": sum(v[1] for v in acc.values()) / 1e6,
                            "top": [{"op": k, "calls": v[0], "self_s": v[1] / 1e6}
                                    for k, v in top]}
        print(f"  profile {u.task.name}: {cpu:.1f} CPU s", flush=True)
    return {"suite": suite, "seed": 0, "every": every, "active": active, "units": out}


def render_profile(p: dict) -> list[str]:
    lines = ["### Where the longest units spend it (torch.profiler)", "",
             f"The {p['suite']} suite's longest units, seed {p['seed']}, one thread, each "
             "in one process under `torch.profiler`, which records "
             f"{p.get('active', 'all')} optimizer steps out of every {p.get('every', 1)} "
             "(and whatever runs between them: fit probes, evaluations): the operators with "
             "the most self time in those windows, and their share of the time torch's "
             "operators took there. The CPU seconds are the whole unit's, the profiler's "
             "cost included.", ""]
    for name, u in p["units"].items():
        lines += [f"**{name}**: {u['cpu_s']:.1f} CPU s; torch operators in the recorded "
                  f"windows {u['ops_s']:.1f} s.", "", "| operator | calls | self time | share |",
                  "|---|---|---|---|"]
        lines += [f"| `{o['op']}`{STEP_NOTE if o['op'] == 'ProfilerStep*' else ''} | "
                  f"{o['calls']:,} | {o['self_s']:.2f} s | "
                  f"{100 * o['self_s'] / u['ops_s']:.0f}% |" for o in u["top"]]
        lines.append("")
    return lines
