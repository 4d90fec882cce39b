"""Measure the performance goals and write docs/generated/performance.md.

    python -m qbtools.docs.performance [--out docs/generated/performance.md]
                                       [--only quick,profile,step,attacks,gate] [--tiny]
                                       [--before COMMIT]
                                       [--render-from results/performance.json]

One run of each benchmark (benchmarks, not tests; nothing here passes or fails):

* quick    the quick suite on seed 0 as a user runs it: a plain run, ``--jobs auto`` and
           ``--jobs 1``, default threads, on this checkout and (``--before``) an earlier
           commit, alternating; wall times, the per-unit breakdown, identical metrics
           (``qbtools.docs.perf_quick``);
* profile  ``torch.profiler`` over the quick suite's longest units (seed 0, one thread):
           their CPU seconds and the operators with the most self time
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
           input-iterations done per second, success rates, the speed-up over the fastest
           peer at equal work, and ours-full's and the floor's shares of the matmul-bound
           limit (the same matmuls alone, timed in the same loop);
* gate     ``scripts/pr_check.sh`` as the workflows run it (pr suite, seed 0, ``--jobs``
           auto): main's push filling the base store, the gate with that stored base (only
           the head runs), and the gate without a store (both sides run): wall times.

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
from qbtools.docs.perf_quick import (
    bench_profile,
    bench_quick,
    bench_step,
    render_profile,
    render_quick,
    render_step,
)

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


def _gate_run(args: list[str], env: dict) -> dict:
    """One ``scripts/pr_check.sh`` call: wall time, exit status, load before/after, the
    lines where it says what it did with the base side, its verdict line and the rows it
    failed on (from the rows it wrote to ``QB_OUT``)."""
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    p = subprocess.run(["bash", str(ROOT / "scripts" / "pr_check.sh"), *args], cwd=ROOT,
                       env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    store = env.get("QB_BASE_STORE")
    said = [(line.replace(store, "DIR") if store else line).lstrip("= ")
            for line in p.stdout.splitlines()
            if line.startswith(("== base:", "== ran", "== stored", "== commit", "== escalation"))]
    rows = Path(env.get("QB_OUT", "")) / "rows.json"
    if "QB_OUT" in env and rows.is_file():  # compare's --rows-json: its first line, its rows
        gate = json.loads(rows.read_text())
        said += [gate["gate"]] + [f"failed on {r['task']}/{r['key']} ({r['verdict']})"
                                  for r in gate["rows"] if r.get("fails")]
    return {"cmd": "scripts/pr_check.sh " + " ".join(args), "wall_s": wall, "rc": p.returncode,
            "load_before": load0, "load_after": os.getloadavg(), "said": said,
            "tail": p.stdout[-1500:] + p.stderr[-500:]}


def bench_gate(tiny: bool) -> dict:
    """The PR gate as the workflows run it (pr suite, seed 0, ``--jobs`` auto, the threads
    pr_check.sh sets): main's push stores its side (``--fill-store``), then a PR against it
    runs only its head (``QB_BASE_STORE``); and the same gate without a store (base and
    head both run), for comparison. HEAD is both base and head."""
    env = {**os.environ, "PYTHON": sys.executable, "QB_SEEDS": "0"}
    for k in ("PYTHONPATH", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "QB_JOBS"):
        env.pop(k, None)
    if tiny:
        env.update(QB_SUITE="smoke", QB_TASKS="dimensionality")
    runs = {}
    with tempfile.TemporaryDirectory() as d:
        stored = {**env, "QB_BASE_STORE": str(Path(d) / "store"), "QB_OUT": str(Path(d) / "s")}
        plain = {**env, "QB_OUT": str(Path(d) / "n")}
        for name, args, e in (("fill the store", ["--fill-store", "HEAD"], stored),
                              ("stored base", ["HEAD", "HEAD"], stored),
                              ("no store", ["HEAD", "HEAD"], plain)):
            runs[name] = _gate_run(args, e)
            print(f"  gate {name}: {runs[name]['wall_s']:.1f} s", flush=True)
    return {"suite": env.get("QB_SUITE", "pr"), "seeds": env["QB_SEEDS"], "jobs": "auto",
            "runs": runs}


def render_gate(g: dict) -> list[str]:
    """The PR gate's section; an older raw file (one run, no store) as it was."""
    if "runs" not in g:
        return ["## PR gate", "", f"`scripts/pr_check.sh HEAD HEAD` (suite {g['suite']}): "
                f"{g['wall_s']:.0f} s wall, exit status {g['rc']} (without a stored base).", ""]
    lines = ["## PR gate", "",
             f"`scripts/pr_check.sh` as the workflows run it: suite {g['suite']}, seeds "
             f"{g['seeds']}, `--jobs {g['jobs']}`, default environment. Main's push stores its "
             "side (`pr-base.yml`: `--fill-store`); a pull request then reuses it "
             "(`pr.yml`: `QB_BASE_STORE`) and runs only its head. HEAD is both sides here. "
             "Goal: the gate with a stored base ≤ 60 s on 2 cores. Load average (1 min) "
             "before/after each run in the last column.", "",
             "| run | command | wall time | exit status | what it did | load |",
             "|---|---|---|---|---|---|"]
    for name, r in g["runs"].items():
        env = "QB_BASE_STORE=DIR " if name != "no store" else ""
        lines.append(f"| {name} | `{env}{r['cmd']}` | {r['wall_s']:.1f} s | {r['rc']} | "
                     f"{'; '.join(r['said']) or '–'} | {r['load_before'][0]:.1f}/"
                     f"{r['load_after'][0]:.1f} |")
    s, n = g["runs"]["stored base"], g["runs"]["no store"]
    ok = s["rc"] in (0, 1)
    lines += ["", f"With a stored base: **{s['wall_s']:.1f} s** (goal ≤ 60 s: "
              f"{'met' if ok and s['wall_s'] <= 60 else 'not met'}); without: "
              f"{n['wall_s']:.1f} s ({n['wall_s'] / s['wall_s']:.2f}× as long).", ""]
    return lines


def _loads(xs) -> str:
    return ", ".join(f"{x:.1f}" for x in xs)


def _median_ratio(a: list[float], b: list[float]) -> float:
    """The median of the per-repeat ratios a/b (interleaved repeats: one machine state each)."""
    return statistics.median(x / y for x, y in zip(a, b, strict=True))


def render_attacks(a: dict) -> list[str]:
    """PGD per norm: every variant's input-iterations done per second, its speed-up over the
    fastest peer at equal work (per repeat: the peer's time over ours, times ours' work
    over the peer's; the median), and ours-full's and the floor's shares of the
    matmul-bound limit."""
    st = a["settings"]
    lines = ["## Attack iterations", "",
             f"PGD on `{st['pgd_model']}` (the adversarial task's model, {st['pgd_train_steps']} "
             f"SGD steps on mnist5k), {st['pgd_n']} inputs × {st['pgd_steps']} steps, step "
             "2.5·ε/steps, random start, parameters frozen for every library; median of "
             f"{st['repeats']} interleaved repeats in one process, one thread. Rates are the "
             "input-iterations each call did per second; speed-ups are at equal work (per "
             "repeat: the peer's time over ours × ours' work over the peer's; the median). "
             "`ours` stops per input once it is flipped (as the tasks run it); `ours-full` "
             "does every step for every input (the peers' work). Shares of the matmul-bound "
             "limit: the same matmuls alone (`gemm`) over ours-full, timed in the same loop; "
             "the floor is the least a PGD call costs (random start, the matmuls, the "
             "update's elementwise passes). Goals (the throughput task's): ours-full ≥ 1.0× "
             "the fastest peer at equal success; ours-full ≥ 85% of the limit where the "
             "floor allows it.", ""]
    for norm, res in a["results"].items():
        t, work = res["times"], res.get("work") or {}
        peers = [k for k in res["rate"] if k not in ("ours", "ours-full")]

        def speedup(peer, k, t=t, work=work):
            return _median_ratio(t[peer], t[k]) * work.get(k, 1) / work.get(peer, 1)

        best = min(peers, key=lambda p: speedup(p, "ours-full")) if peers else None
        lines += [f"### PGD-{norm}, ε = {res['eps']:g}", "",
                  "| variant | input-iterations/s | success rate | vs fastest peer, equal work |",
                  "|---|---|---|---|"]
        for k, v in res["rate"].items():
            vs = f"{speedup(best, k):.2f}×" if best else "–"
            lines.append(f"| {k} | {v:,.0f} | {res['success'][k]:.2f}% | {vs} |")
        share = {k: 100 * _median_ratio(t["gemm"], t[k]) for k in ("ours-full", "floor")
                 if "gemm" in t and k in t}
        flops, full = res["flops"], st["pgd_n"] * st["pgd_steps"]
        lines += ["", f"Fastest peer: {best or 'none installed'}"
                  + (f" (skipped: {'; '.join(res['skipped'].values())})" if res["skipped"]
                     else "") + f". One iteration: {flops / 1e6:.0f} MFLOP; ours-full "
                  f"{flops / res['iter_s'] / 1e9:.1f} GFLOP/s"
                  + (f", the same matmuls alone {flops / res['gemm_s'] / 1e9:.1f} GFLOP/s: "
                     f"ours-full at **{share['ours-full']:.0f}%** of the matmul-bound limit"
                     + (f", the floor at {share['floor']:.0f}%" if "floor" in share else "")
                     if share else "")
                  + (f"; ours did {100 * work['ours'] / full:.0f}% of the input-iterations"
                     if "ours" in work else "") + "." + _share_goal(share), ""]
    return lines


def _share_goal(share: dict) -> str:
    """The verdict on the throughput task's goal for ours-full's share of the limit, with
    the reason when the floor says no PGD with these elementwise passes can meet it here."""
    from quirkbench.tasks.throughput import SHARE_GOAL as ATTACK_SHARE_GOAL

    if "ours-full" not in share:
        return ""
    met = share["ours-full"] >= ATTACK_SHARE_GOAL
    out = f" Goal ≥ {ATTACK_SHARE_GOAL:.0f}% of the limit: {'met' if met else 'not met'}"
    if not met and share.get("floor", 100.0) < ATTACK_SHARE_GOAL:
        out += (f"; it cannot be met on this machine: the floor, which does nothing but the "
                f"random start, the matmuls and the update's elementwise passes, reaches only "
                f"{share['floor']:.0f}%")
    return out + "."


def _earlier(e) -> list[dict]:
    """The groups {commit, when, parts} of parts kept from earlier runs (a raw file of an
    older version of this script holds one group as a dict)."""
    return [] if not e else [e] if isinstance(e, dict) else e


def kept_origins(old: dict, parts: list[str]) -> list[dict]:
    """Where each of ``parts``, kept from the raw file ``old``, was measured: the run that
    wrote ``old``, unless ``old`` itself had kept it from an earlier run. Grouped by run."""
    origin = {p: (g["commit"], g["when"]) for g in _earlier(old["machine"].get("earlier"))
              for p in g["parts"]}
    groups: dict[tuple, list[str]] = {}
    for p in parts:
        groups.setdefault(origin.get(p, (old["commit"], old["when"])), []).append(p)
    return [{"commit": c, "when": w, "parts": ps}
            for (c, w), ps in sorted(groups.items(), key=lambda kv: kv[0][1])]


def render(m: dict, sha: str, r: dict, when: str) -> str:
    lines = ["# Performance (generated)", "",
             f"Generated by `python -m qbtools.docs.performance` at {when} UTC on commit `{sha}`.",
             "", f"Machine: {m['cpu']}, {m['physical_cores']} physical cores "
             f"({m['logical_cpus']} logical), torch {m['torch']}, Python {m['python']}. "
             f"Load average (1, 5, 15 min) before: {_loads(m['load_before'])}; "
             f"after: {_loads(m['load_after'])}. One run of each "
             "benchmark; on a shared machine the absolute times move with the load, the "
             "ratios (measured interleaved where possible) less so."
             + "".join(f" The {', '.join(e['parts'])} part(s) come from the run of "
                       f"{e['when']} UTC on commit `{e['commit']}`."
                       for e in _earlier(m.get("earlier"))), ""]
    if "quick" in r:
        lines += render_quick(r["quick"])
    if "profile" in r:
        lines += render_profile(r["profile"])
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
        lines += render_attacks(r["attacks"])
    if "gate" in r:
        lines += render_gate(r["gate"])
    return "\n".join(lines)


def main() -> None:
    require_checkout()
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "generated" / "performance.md"))
    ap.add_argument("--only", default="quick,profile,step,attacks,gate")
    ap.add_argument("--before", metavar="COMMIT",
                    help="quick: also time this earlier commit (a temporary git worktree)")
    ap.add_argument("--before-modes", type=lambda v: tuple(v.split(",")), metavar="MODES",
                    help="quick: only these runs of --before (plain, jobs auto, sequential)")
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
            m["earlier"] = kept_origins(old, sorted(r))
        for name in a.only.split(","):
            t0 = time.perf_counter()
            r[name] = {"jobs": bench_jobs, "attacks": bench_attacks, "gate": bench_gate,
                       "profile": bench_profile,
                       "quick": lambda tiny: bench_quick(tiny, a.before, a.before_modes),
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
