"""Planted-regression matrix: does the gate catch real breakages, naming the right metric?

Copies this checkout's HEAD commit (``git archive``) into scratch folders, plants one
breakage in each copy, runs a suite on the unchanged copy (the base), on a second unchanged
copy (an A/A control) and on every broken copy, then runs ``quirkbench compare`` (this
checkout's) of each against the same base. Sides run seed by seed, interleaved, in separate
processes on one thread, one results document per seed in a folder per copy. Writes a
table (Markdown, with machine and commit) to ``--md``.

    python -m qbtools.gate.planted [--suite smoke] [--seeds 0,1] [--plants all] [--md FILE]

The five breakages (text edits that must apply to the code, else the script stops):
  pgd-step        PGD's step size halved (a weaker attack on the same model)
  compression-ft  fine-tuning after every pruning cut cut to one step
  forgetting      each continual-learning task's training budget halved (before any extra
                  steps its learned criterion asks for)
  memorization    the random-labels condition trains on the true labels
  slow-train      the training loop evaluates every batch twice more after its step (timing
                  only; one extra forward costs only ×0.83 of the pr headline speed at batch
                  128, inside the timing rule's ×1.2, so the gate passes it by design; two cost
                  about ×0.6-0.7)
Each must fail the gate (exit 1) naming a metric of its task as "regressed beyond noise" or
"phenomenon lost" (or "moved beyond noise" for a direction-none headline); the A/A must pass.
The sides are judged with the suite's noise model (bench/noise/SUITE.json, when there is one)
as the PR gate does. The "beyond noise" column counts the non-timing rows judged beyond seed
noise over all seeds, and over the first seed alone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

from qbtools import ROOT, require_checkout

# name → (file under src/quirkbench, old text, new text, task the gate must name, metric regex)
PLANTS = {
    "pgd-step": (
        "methods/attacks/pgd.py",
        "step = 2.5 * eps / self.steps if self.step_size is None else self.step_size",
        "step = 0.5 * (2.5 * eps / self.steps if self.step_size is None else self.step_size)",
        "adversarial",
        r"steps_to_success|success_rate|robust_accuracy|transfer_rate|min_distortion"),
    "compression-ft": (
        "methods/pruning.py",
        "r = train(self.model, self.ds.x_train, self.ds.y_train, self.finetune,",
        "r = train(self.model, self.ds.x_train, self.ds.y_train, __import__('dataclasses')"
        ".replace(self.finetune, max_steps=1),",
        "compression", r"compression_ratio|test_acc"),
    "forgetting": (
        "methods/continual.py",
        "r = train(model, x, y, cfg, seed=seed, loss_fn=loss_fn, penalty=penalty, head=head)",
        "r = train(model, x, y, replace(cfg, max_steps=max(1, (cfg.max_steps or "
        "cfg.max_epochs * -(-len(x) // cfg.batch_size)) // 2)), seed=seed, loss_fn=loss_fn, "
        "penalty=penalty, head=head)",
        "forgetting",
        r"forgetting_pct|average_accuracy|learning_accuracy|budget_steps|train_steps"),
    "memorization": (
        "tasks/memorization.py",
        "return x, torch.randint(0, num_classes, (n,), generator=g).to(dev), x_test, y_test",
        "return x, y, x_test, y_test",
        "memorization", r"steps_to_fit|test_acc|slowdown"),
    "slow-train": (
        "engine/train.py",
        "            opt.step()\n            if mask_list:",
        "            opt.step()\n            with torch.no_grad():\n"
        "                for _ in range(2):\n                    model(xb)  # planted\n"
        "            if mask_list:",
        "*", r"samples_per_s|steps_per_s|speedup_vs_naive|matmul_share|ms_per_step|gflops"),
}
TASKS = ["adversarial", "compression", "forgetting", "memorization", "throughput"]


def sh(*args, **kw) -> str:
    return subprocess.run(args, check=True, capture_output=True, text=True, **kw).stdout.strip()


def export_head(dest: Path) -> str:
    """HEAD's tracked files into ``dest``; returns the commit."""
    commit = sh("git", "-C", str(ROOT), "rev-parse", "HEAD")
    data = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", commit],
                          check=True, capture_output=True).stdout
    # our own commit's archive; filter= where this Python has it (3.10.12+, 3.11.4+, 3.12+)
    safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(dest, **safe)
    return commit


def plant(tree: Path, name: str) -> None:
    rel, old, new, _, _ = PLANTS[name]
    f = tree / "src" / "quirkbench" / rel
    text = f.read_text()
    if text.count(old) != 1:
        raise SystemExit(f"planted_matrix: the line to break for {name} is not (once) in "
                         f"{rel}; update PLANTS")
    f.write_text(text.replace(old, new))


def run_side(tree: Path, out: Path, suite: str, tasks: list[str], seed: int,
             sets: list[str], log) -> None:
    args = [sys.executable, "-m", "quirkbench.cli", "run", "--suite", suite, "--out", str(out),
            "--no-report", "--quiet", "--seeds", str(seed), "--device", "cpu",
            "--tasks", *tasks]
    for s in sets:
        args += ["--set", s]
    env = {**os.environ, "PYTHONPATH": str(tree / "src"), "OMP_NUM_THREADS": "1"}
    t0 = time.time()
    r = subprocess.run(args, cwd=tree, env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"planted_matrix: the run of {tree.name} seed {seed} failed:\n"
                         + (r.stdout + r.stderr)[-2000:])
    log(f"  {tree.name:15s} seed {seed}: {time.time() - t0:.0f} s")


def side(out: Path, v: str) -> Path:
    """A variant's results: its folder of one document per seed (or an older single file)."""
    return out / f"{v}.json" if (out / f"{v}.json").exists() else out / v


def one_seed(doc_path: Path, seed: int) -> Path:
    """The document with only ``seed``'s units."""
    if doc_path.is_dir():
        return doc_path / f"seed{seed}.json"
    doc = json.loads(doc_path.read_text())
    doc["units"] = {k: u for k, u in doc["units"].items() if u.get("seed") == seed}
    doc["meta"]["seeds"] = [seed]
    out = doc_path.with_name(f"{doc_path.stem}.seed{seed}.json")
    out.write_text(json.dumps(doc))
    return out


BEYOND = ("phenomenon lost", "regressed beyond noise", "moved beyond noise",
          "improved beyond noise")


def judge(base: Path, head: Path, task: str | None, pattern: str | None,
          spread: str | None = None, base_stored: bool = False,
          noise_model: str | None = None) -> dict:
    from quirkbench.tracking.compare import compare, failing

    df = compare(base, head, allow_incomplete=False, timing_spread=spread,
                 base_stored=base_stored, noise_model=noise_model)
    bad = failing(df)
    right = None
    if task:
        in_task = bad["task"] == task if task != "*" else bad["task"].notna()
        right = bool((in_task & bad["key"].str.contains(pattern)).any())
    timing_flags = df[(df["kind"] == "timing")
                      & ~df["verdict"].isin(("identical", "within noise"))]
    return {"fails": bool(len(bad)), "failing": [f"{r.task}/{r.key} ({r.verdict})"
                                                 for r in bad.itertuples()],
            "right": right,
            "changed": int(((df["kind"] != "timing") & df["verdict"].isin(BEYOND)).sum()),
            "timing_flags": [f"{r.task}/{r.key} {r.verdict} ×{r.ratio:.2f}"
                             for r in timing_flags.itertuples()],
            "rows": len(df)}


def main(argv=None) -> int:
    require_checkout()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", default="smoke")
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--plants", default="all",
                    help="comma-separated names, all, or none (the A/A alone)")
    ap.add_argument("--burn", type=int, default=0, metavar="N",
                    help="N CPU-burning processes (`yes > /dev/null`) beside every run and "
                         "comparison, started first and stopped at the end")
    ap.add_argument("--tasks", nargs="*", help="tasks to run (default: the planted ones')")
    ap.add_argument("--set", action="append", default=[], dest="sets",
                    help="TASK.KEY=VALUE for every run (e.g. smaller settings)")
    ap.add_argument("--out", default=str(ROOT / "results" / "planted"))
    ap.add_argument("--md", default=str(ROOT / "docs" / "generated" / "planted.md"))
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("--base-stored", action="store_true",
                    help="judge as the PR gate does with a stored base (compare --base-stored: "
                         "raw timings not judged)")
    ap.add_argument("--noise-model",
                    help="the noise model compare weighs changes against (default: "
                         "bench/noise/SUITE.json when it exists, as pr_check.sh; '' for none)")
    ap.add_argument("--judge-only", action="store_true",
                    help="compare the runs already in --out again (no new runs)")
    ap.add_argument("--timing-spread",
                    help="A/A spread JSON for compare (python -m qbtools.gate.aa --spread; "
                         "default: bench/timing-spread/SUITE.json when it exists, as pr_check.sh; "
                         "'' for none)")
    a = ap.parse_args(argv)
    a.argv = [x for x in (sys.argv[1:] if argv is None else argv)]
    if a.timing_spread is None:
        default = ROOT / "bench" / "timing-spread" / f"{a.suite}.json"
        a.timing_spread = str(default) if default.is_file() else None
    a.timing_spread = a.timing_spread or None
    if a.noise_model is None:
        default = ROOT / "bench" / "noise" / f"{a.suite}.json"
        a.noise_model = str(default) if default.is_file() else None
    a.noise_model = a.noise_model or None
    loads = []
    names = {"all": list(PLANTS), "none": []}.get(a.plants, a.plants.split(","))
    unknown = [n for n in names if n not in PLANTS]
    if unknown:
        ap.error(f"unknown plant(s) {unknown}; valid: {', '.join(PLANTS)}")
    wanted = {PLANTS[n][3] if PLANTS[n][3] != "*" else "throughput" for n in names}
    tasks = a.tasks or [t for t in TASKS if t in wanted] or suite_tasks(a.suite)
    seeds = [int(s) for s in a.seeds.split(",")]
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log = lambda m: print(m, flush=True)  # noqa: E731
    t_start = time.time()
    burners = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(a.burn)]
    try:
        return _matrix(a, names, tasks, seeds, out, log, loads, t_start)
    finally:
        for b in burners:
            b.kill()
            b.wait()


def _matrix(a, names, tasks, seeds, out: Path, log, loads: list, t_start: float) -> int:
    if a.judge_only:
        commit = json.loads((out / "commit.json").read_text())["commit"]
    else:
        commit = run_all(names, tasks, seeds, out, a, log, loads)
        (out / "commit.json").write_text(json.dumps({"commit": commit}))
    results = {}
    for v in ["aa", *names]:
        task, pattern = (None, None) if v == "aa" else PLANTS[v][3:5]
        base, head = side(out, "base"), side(out, v)
        r = judge(base, head, task, pattern, a.timing_spread, a.base_stored, a.noise_model)
        r1 = judge(one_seed(base, seeds[0]), one_seed(head, seeds[0]), task, pattern,
                   a.timing_spread, a.base_stored, a.noise_model)
        r["one_seed_changed"] = r1["changed"]
        r["one_seed_fails"] = r1["fails"]
        results[v] = r
        log(f"{v:15s} fails={r['fails']} right={r['right']} changed={r['changed']} "
            f"one-seed changed={r1['changed']} failing: {', '.join(r['failing'][:4])}")
    ok = (not results["aa"]["fails"]) and all(results[n]["fails"] and results[n]["right"]
                                               for n in names)
    write_md(Path(a.md), results, names, commit, a, tasks, seeds, time.time() - t_start, ok,
             loads)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))
    verdict = ("all breakages caught, " if names else "") + "A/A passed"
    log(f"{verdict if ok else 'NOT all as expected'}; "
        f"table in {a.md} ({time.time() - t_start:.0f} s)")
    return 0 if ok else 1


def run_all(names, tasks, seeds, out: Path, a, log, loads: list) -> str:
    """Run base, aa and every planted copy, seed by seed, interleaved; the commit."""
    with tempfile.TemporaryDirectory(prefix="qb-planted-") as tmp:
        trees = {}
        for v in ["base", "aa", *names]:
            trees[v] = Path(tmp) / v
            commit = export_head(trees[v])
            if v in PLANTS:
                plant(trees[v], v)
            shutil.rmtree(out / v, ignore_errors=True)
        log(f"planted matrix: {len(trees)} copies of {commit[:10]}, suite {a.suite}, seeds "
            f"{seeds}, tasks {' '.join(tasks)}")
        order = list(trees)
        for i, seed in enumerate(seeds):  # interleaved; the order reverses every seed
            for v in (order if i % 2 == 0 else order[::-1]):
                run_side(trees[v], out / v / f"seed{seed}.json", a.suite, tasks, seed, a.sets,
                         log)
                loads.append(os.getloadavg()[0])
    return commit


def write_md(path: Path, results: dict, names: list[str], commit: str, a, tasks, seeds,
             seconds: float, ok: bool, loads: list | None = None) -> None:
    def esc(s):
        return str(s).replace("|", "\\|")

    lines = [
        "# Planted regressions: what the gate catches",
        "",
        f"Generated by `python -m qbtools.gate.planted {' '.join(a.argv)}` — do not edit by "
        "hand.",
        "",
        f"- commit `{commit[:12]}`, suite `{a.suite}`, seeds {seeds}, tasks {', '.join(tasks)}"
        + (f", settings {' '.join(a.sets)}" if a.sets else "")
        + (f"; timing limits from the A/A spread in `{Path(a.timing_spread).name}`"
           if a.timing_spread else "; timing limits from the runs' own seeds (no A/A spread)")
        + (f"; noise model `{Path(a.noise_model).name}`" if a.noise_model
           else "; no noise model (one-seed changes below the factor rule are not judged)"),
        f"- machine: {platform.machine()} {platform.processor() or ''} "
        f"({os.cpu_count()} CPUs"
        + (f"; 1-minute load average after each run {min(loads):.1f}–{max(loads):.1f}"
           if loads else "") + "), Python "
        f"{platform.python_version()}, one torch thread"
        + ("; judged as with a stored base (raw timings not judged)" if a.base_stored
           else "")
        + (f"; **{a.burn} CPU-burning processes (`yes > /dev/null`) beside every run and "
           "comparison**" if a.burn else "")
        + ("; runs of an earlier invocation, judged again" if a.judge_only
           else f"; {seconds / 60:.0f} min in all"),
        "- result: " + (("the A/A passed" if ok else "**the A/A failed**: see below")
                        if not names else
                        "every breakage failed the gate naming its task, the A/A passed"
                        if ok else "NOT every breakage was caught, or the A/A failed: see below"),
        "",
        "| breakage | gate | names the right metric | beyond noise (all seeds / seed "
        f"{seeds[0]} alone) | failing metrics (first 4) | timing rows flagged |",
        "|---|---|---|---|---|---|",
    ]
    for v in ["aa", *names]:
        r = results[v]
        what = "A/A (no change)" if v == "aa" else f"`{v}`"
        gate = "**fails**" if r["fails"] else "passes"
        right = "—" if r["right"] is None else ("yes" if r["right"] else "**no**")
        fl = ", ".join(f"`{esc(x)}`" for x in r["failing"][:4]) + \
            (f" and {len(r['failing']) - 4} more" if len(r["failing"]) > 4 else "")
        tf = ", ".join(f"`{esc(x)}`" for x in r["timing_flags"][:3]) + \
            (f" and {len(r['timing_flags']) - 3} more" if len(r["timing_flags"]) > 3 else "")
        lines.append(f"| {what} | {gate} | {right} | {r['changed']} / {r['one_seed_changed']} "
                     f"| {fl or '—'} | {tf or '—'} |")
    lines += ["", "The breakages (file: the line changed):", ""] if names else [""]
    lines += [f"- `{n}`: {PLANTS[n][0]}: `{PLANTS[n][1].strip().splitlines()[0][:70]}` → "
              f"`{_new_line(n)[:70]}`" for n in names]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def suite_tasks(suite: str) -> list[str]:
    from quirkbench.tasks import load_all

    return [t.name for t in load_all().values() if suite in t.suites]


def _new_line(name: str) -> str:
    old = PLANTS[name][1].splitlines()
    return next((ln.strip() for ln in PLANTS[name][2].splitlines() if ln not in old), "")


if __name__ == "__main__":
    raise SystemExit(main())
