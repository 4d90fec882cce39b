"""Measure the performance goals and write docs/generated/performance.md.

    python -m qbtools.docs.performance [--out docs/generated/performance.md]
                                       [--only quick,step,attacks,gate] [--tiny]
                                       [--before COMMIT]
                                       [--render-from results/performance.json]

One run of each benchmark (benchmarks, not tests; nothing here passes or fails):

* quick    the quick suite on seed 0 as a user runs it: a plain run, ``--jobs auto`` and
           ``--jobs 1``, default threads, on this checkout and (``--before``) an earlier
           commit, alternating; wall times, the per-unit breakdown, identical metrics
           (``qbtools.docs.perf_quick``);
* step     the training step of mlp-512 at batch 128 and 1024 against its matmul-bound
           limit (the step's matmuls alone at its shapes), with the bare step and the naive
           loop, one thread, interleaved (``engine.train_speed``);
* jobs     (on request) the quick suite with 2 seeds, one after another in one process with
           one torch thread vs ``--jobs 2``: wall time of each, their ratio, and whether
           every non-timing metric is identical;
* attacks  PGD-L∞ and PGD-L2 on the adversarial task's model (mlp-100-100, briefly trained,
           parameters frozen), 1,000 inputs × 40 steps, ours vs every installed peer
           library, interleaved in this process (``tasks.throughput.measure_attacks``):
           input-iterations/s, success rates, speedup over the fastest peer, and the share
           of the matmul-bound limit (the same matmuls alone, timed in the same loop);
* gate     ``scripts/pr_check.sh`` on HEAD vs HEAD (the pr suite, its seeds, ``--jobs``
           auto on both sides): wall time.

The machine (CPU, cores, load average before and after, torch) and the git commit are
recorded in the file. ``--tiny`` shrinks everything (a smoke test of this script).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from qbtools import ROOT, require_checkout
from qbtools.docs.perf_quick import bench_quick, bench_step, render_quick, render_step

TIMING_UNITS = {"s", "ms", "µs", "samples/s", "steps/s", "GFLOP/s", "TFLOP/s"}


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in
                Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) \
        if Path("/proc/cpuinfo").exists() else platform.processor()
    import torch

    from quirkbench.runner.pool import physical_cores

    return {"cpu": cpu, "logical_cpus": os.cpu_count(), "physical_cores": physical_cores(),
            "torch": torch.__version__, "python": platform.python_version(),
            "load_before": os.getloadavg()}


def commit() -> str:
    def git(*a):
        return subprocess.run(["git", "-C", str(ROOT), *a], capture_output=True,
                              text=True).stdout.strip()
    dirty = " (with uncommitted changes)" if git("status", "--porcelain", "--untracked-files=no") \
        else ""
    return git("rev-parse", "--short=10", "HEAD") + dirty


def _cli(args: list[str], env_extra: dict | None = None) -> tuple[float, int, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1",
           **(env_extra or {})}
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "quirkbench", *args], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    return time.perf_counter() - t0, p.returncode, p.stdout[-2000:] + p.stderr[-2000:]


def _strip(doc: dict) -> dict:
    """Non-timing content of a results document, for an identical-metrics check."""
    keep = {}
    for k, u in doc["units"].items():
        keep[k] = sorted((m["name"], json.dumps(m["tags"], sort_keys=True), m["value"])
                         for m in u["metrics"]
                         if m.get("kind") != "timing" and m.get("unit") not in TIMING_UNITS)
    return keep


def bench_jobs(tiny: bool) -> dict:
    suite, seeds = ("smoke", "0") if tiny else ("quick", "0,1")
    tasks = ["--tasks", "dimensionality", "units"] if tiny else []
    out = {}
    with tempfile.TemporaryDirectory() as d:
        for name, jobs in (("sequential", "1"), ("jobs2", "2")):
            path = Path(d) / f"{name}.json"
            cmd = ["run", "--suite", suite, "--seeds", seeds, *tasks, "--device", "cpu",
                   "--no-report", "--quiet", "--jobs", jobs, "--out", str(path)]
            wall, rc, tail = _cli(cmd)
            doc = json.loads(path.read_text())
            out[name] = {"wall_s": wall, "rc": rc, "cmd": "quirkbench " + " ".join(cmd[:-2]),
                         "units": len(doc["units"]),
                         "failed": [k for k, u in doc["units"].items() if u["status"] != "done"],
                         "metrics": _strip(doc)}
            if rc not in (0, 1):
                raise SystemExit(f"{name} run failed ({rc}):\n{tail}")
    a, b = out["sequential"]["metrics"], out["jobs2"]["metrics"]
    diff = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    n = sum(len(v) for v in a.values())
    for v in out.values():
        del v["metrics"]
    return {"suite": suite, "seeds": seeds, "runs": out, "non_timing_metrics": n,
            "units_differing": diff,
            "ratio": out["sequential"]["wall_s"] / out["jobs2"]["wall_s"]}


def bench_attacks(tiny: bool) -> dict:
    import torch

    from quirkbench.tasks import Context, get

    torch.set_num_threads(1)
    over = dict(pgd_model="mlp-100-100", pgd_n=1000, pgd_steps=40, pgd_train_steps=300,
                repeats=5)
    if tiny:
        over.update(pgd_n=64, pgd_steps=5, pgd_train_steps=10, repeats=2)
    from quirkbench.tasks import throughput

    cfg = get("throughput").make_config(None, over)
    lines: list[str] = []
    res = throughput.measure_attacks(cfg, Context("mnist5k", 0, torch.device("cpu")),
                                     log=lines.append)
    return {"settings": over, "results": res, "log": lines}


def bench_gate(tiny: bool) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHON": sys.executable}
    env.setdefault("QB_SEEDS", "0")  # as the PR workflow runs it: one seed a side
    env.pop("PYTHONPATH", None)
    if tiny:
        env.update(QB_SUITE="smoke", QB_TASKS="dimensionality", QB_SEEDS="0")
    with tempfile.TemporaryDirectory() as d:
        env["QB_OUT"] = d
        t0 = time.perf_counter()
        p = subprocess.run(["bash", str(ROOT / "scripts" / "pr_check.sh"), "HEAD", "HEAD"],
                           cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    ran = next((line for line in p.stdout.splitlines() if line.startswith("== ran both")), "")
    return {"wall_s": wall, "rc": p.returncode, "ran": ran,
            "suite": env.get("QB_SUITE", "pr"), "jobs": env.get("QB_JOBS", "auto"),
            "seeds": env["QB_SEEDS"],
            "tail": p.stdout[-1500:] + p.stderr[-500:]}


def _loads(xs) -> str:
    return ", ".join(f"{x:.1f}" for x in xs)


def render(m: dict, sha: str, r: dict, when: str) -> str:
    lines = ["# Performance (generated)", "",
             f"Generated by `python -m qbtools.docs.performance` at {when} UTC on commit `{sha}`.",
             "", f"Machine: {m['cpu']}, {m['physical_cores']} physical cores "
             f"({m['logical_cpus']} logical), torch {m['torch']}, Python {m['python']}. "
             f"Load average (1, 5, 15 min) before: {_loads(m['load_before'])}; "
             f"after: {_loads(m['load_after'])}. One run of each "
             "benchmark; on a shared machine the absolute times move with the load, the "
             "ratios (measured interleaved where possible) less so."
             + (f" The {', '.join(m['earlier']['parts'])} part(s) come from the run of "
                f"{m['earlier']['when']} UTC on commit `{m['earlier']['commit']}`."
                if m.get("earlier") else ""), ""]
    if "quick" in r:
        lines += render_quick(r["quick"])
    if "step" in r:
        lines += render_step(r["step"])
    if "jobs" in r:
        j = r["jobs"]
        s, p = j["runs"]["sequential"], j["runs"]["jobs2"]
        lines += ["## Units in parallel (`--jobs`)", "",
                  f"The {j['suite']} suite, seeds {j['seeds']}, {s['units']} units, one torch "
                  "thread per process (the deterministic reference). Goal: ≥ 1.3× with 2 "
                  "workers on 2 cores, identical metrics.", "",
                  "| run | command | wall time | failed units |", "|---|---|---|---|",
                  f"| sequential | `{s['cmd']}` | {s['wall_s']:.1f} s | {len(s['failed'])} |",
                  f"| 2 workers | `{p['cmd']}` | {p['wall_s']:.1f} s | {len(p['failed'])} |", "",
                  f"Speedup: **{j['ratio']:.2f}×** (goal ≥ 1.3×: "
                  f"{'met' if j['ratio'] >= 1.3 else 'not met'}). Non-timing metrics compared: "
                  f"{j['non_timing_metrics']}; units whose metrics differ: "
                  f"{', '.join(j['units_differing']) or 'none'}"
                  + (" (that task reports wall-clock speedups and shares in × and %, which "
                     "this filter by unit does not exclude; every other unit is identical)"
                     if j["units_differing"] and
                     all(k.startswith("throughput/") for k in j["units_differing"]) else "")
                  + ".", ""]
    if "attacks" in r:
        a = r["attacks"]
        st = a["settings"]
        lines += ["## Attack iterations", "",
                  f"PGD on `{st['pgd_model']}` (the adversarial task's model, "
                  f"{st['pgd_train_steps']} SGD steps on mnist5k), {st['pgd_n']} inputs × "
                  f"{st['pgd_steps']} steps, step 2.5·ε/steps, random start, parameters frozen "
                  "for every library; median of "
                  f"{st['repeats']} interleaved repeats in one process, one thread (speed-ups "
                  "and the share: the median of the per-repeat ratios). Rates are "
                  "nominal input-iterations/s (inputs × steps / wall time). `ours` stops per "
                  "input once it is flipped (as the tasks run it); `ours-full` does every step "
                  "for every input (the peers' work). Goals: ≥ 1.5× the fastest peer at equal "
                  "success; ≥ 70% of the matmul-bound limit.", ""]
        for norm, res in a["results"].items():
            peers = {k: v for k, v in res["rate"].items() if k not in ("ours", "ours-full")}
            best = max(peers, key=peers.get) if peers else None
            lines += [f"### PGD-{norm}, ε = {res['eps']:g}", "",
                      "| variant | input-iterations/s | success rate | vs fastest peer |",
                      "|---|---|---|---|"]
            t = res.get("times")  # per repeat: speed-ups and shares as the task takes them

            def ratio(num, den, t=t, res=res):
                if t:
                    return statistics.median(a / b for a, b in zip(t[num], t[den], strict=True))
                return res["rate"][den] / res["rate"][num]  # an older raw file: medians

            if t and peers:  # the bar: the peer leaving the smallest speed-up, as the task
                best = min(peers, key=lambda p: ratio(p, "ours-full"))
            for k, v in res["rate"].items():
                vs = f"{ratio(best, k):.2f}×" if best else "–"
                lines.append(f"| {k} | {v:,.0f} | {res['success'][k]:.2f}% | {vs} |")
            flops, work = res["flops"], st["pgd_n"] * st["pgd_steps"]
            share = (100 * ratio("gemm", "ours-full") if t else
                     100 * res["gemm_s"] / res["iter_s"]) if res["gemm_s"] else None
            lines += ["", f"Fastest peer: {best or 'none installed'}"
                      + (f" (skipped: {'; '.join(res['skipped'].values())})"
                         if res["skipped"] else "") + ". "
                      f"One iteration: {flops / 1e6:.0f} MFLOP (torch.utils.flop_counter); "
                      f"ours-full {flops / res['iter_s'] / 1e9:.1f} GFLOP/s"
                      + (f"; the same matmuls alone {flops / res['gemm_s'] / 1e9:.1f} GFLOP/s; "
                         f"share of the matmul-bound limit **{share:.0f}%**" if share else "")
                      + f"; ours did {100 * res['work_ours'] / work:.0f}% "
                      "of the input-iterations.", ""]
    if "gate" in r:
        g = r["gate"]
        finished = g["rc"] in (0, 1)
        wall = (f"**{g['wall_s']:.0f} s** wall, exit status {g['rc']}" if finished else
                f"stopped after **{g['wall_s']:.0f} s** without finishing (exit status "
                f"{g['rc']}): the wall time is a lower bound")
        met = finished and g["wall_s"] <= 180
        lines += ["## PR gate", "",
                  f"`scripts/pr_check.sh HEAD HEAD` (suite {g['suite']}, "
                  f"{'seeds ' + g['seeds'] if g.get('seeds') else 'its seeds'}, "
                  f"QB_JOBS={g['jobs']}): {wall} (goal ≤ 180 s: {'met' if met else 'not met'}). "
                  f"{g['ran'].lstrip('= ')}", ""]
    return "\n".join(lines)


def main() -> None:
    require_checkout()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "generated" / "performance.md"))
    ap.add_argument("--only", default="quick,step,attacks,gate")
    ap.add_argument("--before", metavar="COMMIT",
                    help="quick: also time this earlier commit (a temporary git worktree)")
    ap.add_argument("--tiny", action="store_true")
    ap.add_argument("--render-from", metavar="JSON",
                    help="only render the page from the raw numbers of an earlier run")
    ap.add_argument("--update", action="store_true",
                    help="keep the other parts' numbers from the last run's raw file and "
                         "measure only --only")
    a = ap.parse_args()
    raw = ROOT / "results" / "performance.json"  # the raw numbers (git-ignored)
    if a.render_from:
        d = json.loads(Path(a.render_from).read_text())
        m, sha, r, when = d["machine"], d["commit"], d["results"], d["when"]
    else:
        m, sha = machine(), commit()
        when = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
        r = {}
        if a.update and raw.is_file():  # the parts not measured now keep their numbers
            old = json.loads(raw.read_text())
            r = {k: v for k, v in old["results"].items() if k not in a.only.split(",")}
            m["earlier"] = {"commit": old["commit"], "when": old["when"], "parts": sorted(r)}
        for name in a.only.split(","):
            t0 = time.perf_counter()
            r[name] = {"jobs": bench_jobs, "attacks": bench_attacks, "gate": bench_gate,
                       "quick": lambda tiny: bench_quick(tiny, a.before),
                       "step": bench_step}[name](a.tiny)
            print(f"{name}: {time.perf_counter() - t0:.0f} s", flush=True)
            m["load_after"] = os.getloadavg()
            raw.parent.mkdir(exist_ok=True)  # after every part: a stopped run keeps the rest
            raw.write_text(json.dumps({"machine": m, "commit": sha, "when": when,
                                       "results": r}, indent=1, default=str))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(render(m, sha, r, when) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
