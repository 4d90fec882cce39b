"""The repository's tools (``qbtools/``): a package that never edits the import path, refuses
a quirkbench other than this checkout's, and one command that knows every generated page."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from qbtools.docs.__main__ import PAGES

ROOT = Path(__file__).resolve().parents[1]


def _qbtools(*args, env=None, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, **(env or {})}, timeout=120, **kw)


def test_no_tool_edits_the_import_path():
    offenders = [str(p.relative_to(ROOT)) for folder in ("qbtools", "scripts")
                 for p in (ROOT / folder).rglob("*.py")
                 if re.search(r"sys\.path\s*(\.insert|\.append|\[|\+?=)", p.read_text())]
    assert offenders == []


def test_every_generated_file_has_one_page_entry():
    tracked = subprocess.run(["git", "ls-files", "docs/generated", "docs/images"], cwd=ROOT,
                             capture_output=True, text=True).stdout.split()
    if not tracked:  # not a git checkout: the folder as it is
        tracked = [str(p.relative_to(ROOT)) for d in ("docs/generated", "docs/images")
                   for p in (ROOT / d).glob("*")]
    named = [f"docs/{f}" for p in PAGES for f in p.files]
    assert len(named) == len(set(named))  # no file has two generators
    assert sorted(set(tracked) - set(named)) == []  # every page says how it is made
    assert len({p.name for p in PAGES}) == len(PAGES)


def test_a_page_from_a_long_run_is_skipped_naming_that_run_until_its_data_is_here(tmp_path):
    env = {"QB_CAL_DIR": str(tmp_path / "cal")}
    r = _qbtools("qbtools.docs", "--dry-run", "bench-calibration", "data-hashes", env=env)
    assert r.returncode == 0, r.stderr
    assert ("bench-calibration: skipped: needs " + str(tmp_path / "cal" / "out-planted")) \
        in r.stdout
    assert "qbtools/gate/bench_calibrate.sh" in r.stdout  # the run that makes its data
    assert "data-hashes: would run python -m qbtools.docs.data_hashes" in r.stdout
    (tmp_path / "cal" / "out-planted").mkdir(parents=True)
    r = _qbtools("qbtools.docs", "--dry-run", "bench-calibration", env=env)
    assert "bench-calibration: would run python -m qbtools.docs.bench_calibration " \
           + str(tmp_path / "cal") in r.stdout


def test_an_unknown_page_is_one_line_and_exit_2():
    r = _qbtools("qbtools.docs", "no-such-page")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [r.stderr.strip()]
    assert "unknown page 'no-such-page'; valid: reference, data-hashes" in r.stderr


def test_a_tool_refuses_a_quirkbench_that_is_not_this_checkouts(tmp_path):
    fake = tmp_path / "site" / "quirkbench"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    r = _qbtools("qbtools.docs.power", str(tmp_path / "none.json"),
                 env={"PYTHONPATH": str(tmp_path / "site")})
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not this checkout's" in r.stderr and "Traceback" not in r.stderr


def test_the_nightly_simulation_page_is_rebuilt_from_the_runs_folder(tmp_path):
    from test_changepoints import COMMITS, asv_store

    from qbtools.docs import nightly_sim

    def run(sim, secs, meta):
        (sim / "store" / "results" / "ledger").mkdir(parents=True)
        rows = [f"| {i + 1} | {COMMITS[i][:7]} | base | good | a \\| b | {s} |"
                for i, s in enumerate(secs)]
        (sim / "table.md").write_text("| night | commit | change | verdict | failing | s |\n"
                                      "|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n")
        (sim / "steps.txt").write_text("no steps\n")
        nights = [{"commit": COMMITS[i]} for i in range(len(secs))]
        (sim / "store" / "results" / "ledger" / "nightly.json").write_text(
            json.dumps({"nights": nights}))
        asv_store(sim / "store" / "asv", {COMMITS[i]: (0.04, 60.0) for i in range(len(secs))})
        if meta:
            (sim / "sim.json").write_text(json.dumps({
                "base": COMMITS[0], "date": "2026-12-05", "plan": "plants", "nights": 2,
                "suite": "smoke", "tasks": "adversarial", "asv_bench": "T|bench_tracks\\.",
                "asv_machine": "m", "spread_used": "", "asv_files": 2, "machine": "x86_64, 2",
                "python_torch": "Python 3, torch 2", "load_start": 1.5, "load_end": 2.25,
                "wall_s": 61}))

    run(tmp_path / "after", [25, 24], True)
    run(tmp_path / "before", [40, 39], False)  # an older sim.sh: no sim.json
    out = tmp_path / "page.md"
    assert nightly_sim.main([str(tmp_path / "after"), "--before", str(tmp_path / "before"),
                             "--out", str(out)]) == 0
    text = out.read_text()
    assert "Wall time: nights 25 + 24 = 49 s (61 s in all, 1-minute load average 1.5 at " \
           "the start and 2.2 at the end)" in text
    assert "at the commit before (run on the same machine, one after the other): nights " \
           "40 + 39 = 79 s" in text
    assert "`T.time_epoch(cpu)`" in text and "a \\| b" in text  # asv's table; the rows kept
    # a folder without a run: one line, exit 2
    assert nightly_sim.main([str(tmp_path / "before")]) == 2


def test_the_quick_part_of_the_performance_page_says_goals_and_differing_metrics():
    """The quick suite's section: the three runs per commit, whether ≤ 60 s and ≥ 1.3× were
    met, how many exact metrics differ from the plain run, and one row per unit, the
    longest first; timing metrics never count as differing."""
    from qbtools.docs.perf_quick import _differing, exact_metrics, render_quick

    def doc(v, t):
        return {"units": {"a/m/0": {"metrics": [{"name": "x", "tags": {}, "value": v},
                                                {"name": "s", "kind": "timing", "value": t}]}}}

    assert exact_metrics(doc(1.0, 9.0)) == {"a/m/0 x[]": 1.0}
    runs = {k: {"exact": exact_metrics(doc(v, t))}
            for k, v, t in (("plain", 1.0, 1.0), ("jobs auto", 1.0, 2.0), ("sequential", 2.0, 3.0))}
    assert _differing(runs) == {"jobs auto": 0, "sequential": 1}

    def run(wall, units):
        return {"cmd": "quirkbench run", "wall_s": wall, "rc": 0, "load_before": [1.0],
                "load_after": [1.2], "jobs": 2, "threads": 1, "units": units, "failed": []}

    side = {"commit": "abc", "exact_metrics": 381,
            "differing_from_plain": {"jobs auto": 0, "sequential": 0},
            "runs": {"plain": run(45.0, {"a": 30.0, "b": 10.0}),
                     "jobs auto": run(45.0, {"a": 30.0, "b": 10.0}),
                     "sequential": run(72.0, {"a": 31.0, "b": 11.0})}}
    text = "\n".join(render_quick({"suite": "quick", "seeds": "0", "sides": {"after": side}}))
    assert "plain run **45.0 s** (goal ≤ 60 s: met)" in text
    assert "**1.60×** sequential (goal ≥ 1.3×: met)" in text
    assert "of 381 exact metrics, differing from the plain run's: jobs auto: 0" in text
    assert text.index("| a | 30.0") < text.index("| b | 10.0")


def test_the_step_part_says_whether_80_percent_is_reachable_here():
    """Below 80% with the bare step below it too: the page says the goal cannot be met on
    this machine with torch's update (not just 'not met')."""
    from qbtools.docs.perf_quick import render_step

    def v(step, share):
        return {"step_ms": step, "share_pct": share, "matmuls_ms": 1.5, "flops": 209e6}

    s = {"model": "mlp-512", "settings": {"repeats": 9},
         "batches": {"128": {"engine": v(2.6, 57.0), "bare": v(2.4, 62.0), "naive": v(2.9, 52)}}}
    text = "\n".join(render_step(s))
    assert "| 128 | 1.50 ms (139 GFLOP/s, 209 MFLOP) | engine | 2.60 ms | 57% |" in text
    assert "engine reaches **57%** of the limit (goal ≥ 80%: not met)" in text
    assert "cannot be met on this machine" in text
    s["batches"]["128"]["bare"] = v(1.8, 83.0)
    assert "cannot be met" not in "\n".join(render_step(s))


def test_the_gate_part_times_the_gate_with_a_stored_base():
    """The PR gate's section: the store filled, the gate with the stored base (judged
    against ≤ 60 s) and without, each with its command, what pr_check said and the load."""
    from qbtools.docs.performance import render_gate

    def run(cmd, wall, said):
        return {"cmd": cmd, "wall_s": wall, "rc": 0, "said": said, "load_before": [1.0],
                "load_after": [1.5]}

    g = {"suite": "pr", "seeds": "0", "jobs": "auto", "runs": {
        "fill the store": run("scripts/pr_check.sh --fill-store HEAD", 31.0, ["stored DIR/x"]),
        "stored base": run("scripts/pr_check.sh HEAD HEAD", 45.0,
                           ["base: reused the stored run", "ran (seeds 0) in 30 s"]),
        "no store": run("scripts/pr_check.sh HEAD HEAD", 90.0, ["base: ran base"])}}
    text = "\n".join(render_gate(g))
    assert "| stored base | `QB_BASE_STORE=DIR scripts/pr_check.sh HEAD HEAD` | 45.0 s | 0 | " \
           "base: reused the stored run; ran (seeds 0) in 30 s | 1.0/1.5 |" in text
    assert "| no store | `scripts/pr_check.sh HEAD HEAD` | 90.0 s |" in text
    assert "With a stored base: **45.0 s** (goal ≤ 60 s: met); without: 90.0 s (2.00× as " \
           "long)" in text
    g["runs"]["stored base"]["wall_s"] = 61.0
    assert "(goal ≤ 60 s: not met)" in "\n".join(render_gate(g))


def test_a_gate_run_says_its_verdict_and_the_rows_it_failed_on(tmp_path, monkeypatch):
    """The gate part names why a gate failed: compare's first line and each failing row,
    from the rows pr_check.sh wrote to QB_OUT (a failed A/A pair is otherwise a bare 1)."""
    import subprocess

    from qbtools.docs import performance

    rows = [{"task": "throughput", "key": "matmul_share[batch=128]", "verdict": "regressed",
             "fails": True},
            {"task": "units", "key": "top_k_purity", "verdict": "within noise", "fails": False}]
    (tmp_path / "rows.json").write_text(json.dumps(
        {"gate": "GATE FAIL: 1 regression beyond noise", "fails": True, "rows": rows}))
    done = subprocess.CompletedProcess([], 1, "== base: ran base x beside the head\n", "")
    monkeypatch.setattr(performance.subprocess, "run", lambda *a, **k: done)
    r = performance._gate_run(["HEAD", "HEAD"], {"QB_OUT": str(tmp_path)})
    assert r["rc"] == 1 and r["said"] == [
        "base: ran base x beside the head", "GATE FAIL: 1 regression beyond noise",
        "failed on throughput/matmul_share[batch=128] (regressed)"]


def test_the_attack_part_compares_at_equal_work():
    """Speed-ups over the fastest peer are per input-iteration done (ours, stopping early,
    did half the work: twice as fast per call is 1.0×), the fastest peer is the one that
    leaves ours-full the smallest speed-up, and the shares of the matmul-bound limit are
    the medians of the per-repeat ratios."""
    from qbtools.docs.performance import render_attacks

    res = {"eps": 0.1, "rate": {"ours": 1000.0, "ours-full": 1000.0, "ta": 800.0, "fb": 500.0},
           "success": {k: 50.0 for k in ("ours", "ours-full", "ta", "fb")},
           "work": {"ours": 50, "ours-full": 100, "ta": 100, "fb": 100},
           "times": {"ours": [1.0, 1.0, 1.0], "ours-full": [2.0, 2.0, 2.0],
                     "ta": [2.4, 2.5, 2.6], "fb": [4.0, 4.0, 4.0],
                     "gemm": [1.6, 1.7, 1.8], "floor": [1.8, 1.9, 2.0]},
           "flops": 1e6, "iter_s": 0.02, "gemm_s": 0.017, "skipped": {}}
    a = {"settings": {"pgd_model": "m", "pgd_train_steps": 1, "pgd_n": 10, "pgd_steps": 10,
                      "repeats": 3}, "results": {"linf": res}}
    text = "\n".join(render_attacks(a))
    assert "| ours-full | 1,000 | 50.00% | 1.25× |" in text
    assert "| ours | 1,000 | 50.00% | 1.25× |" in text  # half the time for half the work
    assert "| ta | 800 | 50.00% | 1.00× |" in text and "Fastest peer: ta." in text
    assert "ours-full at **85%** of the matmul-bound limit, the floor at 89%" in text
    assert "ours did 50% of the input-iterations. Goal ≥ 85% of the limit: met." in text
    res["times"]["ours-full"] = [2.4, 2.4, 2.4]  # 71%, and the floor at 89% allows 85%
    text = "\n".join(render_attacks(a))
    assert "Goal ≥ 85% of the limit: not met." in text
    res["times"]["floor"] = [2.3, 2.3, 2.3]  # the floor at 74%: no PGD meets 85% here
    text = "\n".join(render_attacks(a))
    assert ("Goal ≥ 85% of the limit: not met; it cannot be met on this machine: the floor, "
            "which does nothing but the random start, the matmuls and the update's "
            "elementwise passes, reaches only 74%.") in text


def test_an_updated_page_names_the_run_each_kept_part_came_from():
    """A part kept by ``--update`` from a raw file that had itself kept it from an older run
    is credited to that older run, not to the run that wrote the raw file."""
    from qbtools.docs.performance import kept_origins, render

    old = {"commit": "bbb", "when": "16:00", "machine": {"earlier": {
        "commit": "aaa", "when": "13:00", "parts": ["attacks", "profile", "step"]}}}
    groups = kept_origins(old, ["attacks", "gate", "profile", "quick"])
    assert groups == [{"commit": "aaa", "when": "13:00", "parts": ["attacks", "profile"]},
                      {"commit": "bbb", "when": "16:00", "parts": ["gate", "quick"]}]
    m = {"cpu": "c", "physical_cores": 2, "logical_cpus": 2, "torch": "t", "python": "p",
         "load_before": [1, 1, 1], "load_after": [1, 1, 1], "earlier": groups}
    head = render(m, "ccc", {}, "17:00")
    assert ("The attacks, profile part(s) come from the run of 13:00 UTC on commit `aaa`. "
            "The gate, quick part(s) come from the run of 16:00 UTC on commit `bbb`.") in head
    assert kept_origins({"commit": "bbb", "when": "16:00", "machine": {}}, ["gate"]) == [
        {"commit": "bbb", "when": "16:00", "parts": ["gate"]}]


def test_the_profile_part_lists_each_units_top_operators_with_their_share():
    from qbtools.docs.perf_quick import render_profile

    p = {"suite": "quick", "seed": 0, "units": {"memorization": {
        "cpu_s": 22.0, "ops_s": 16.0, "top": [
            {"op": "aten::addmm", "calls": 30_000, "self_s": 6.0},
            {"op": "aten::mm", "calls": 28_000, "self_s": 4.0}]}}}
    text = "\n".join(render_profile(p))
    assert "**memorization**: 22.0 CPU s; torch operators in the recorded windows 16.0 s." in text
    assert "| `aten::addmm` | 30,000 | 6.00 s | 38% |" in text
    assert text.index("aten::addmm") < text.index("aten::mm`")


def test_the_aa_tally_reads_the_line_pr_check_prints():
    """The A/A tally of the PR gate finds each pair's run line in pr_check.sh's log: the
    line as the script prints it now (rendered from its own echo) and as older logs had it."""
    from qbtools.gate.aa import ran_line

    echo = next(line for line in (ROOT / "scripts" / "pr_check.sh").read_text().splitlines()
                if line.strip().startswith('echo "== ran '))
    printed = (echo.strip()[len('echo "'):-1].replace("$seeds", "0,1")
               .replace("$((SECONDS - start))", "75").replace("${base_sha:0:10}", "e586171831")
               .replace("${head_sha:0:10}", "e586171831"))
    assert "$" not in printed, printed  # every variable of the line rendered
    m = ran_line(f"== base: ran base e586171831 beside the head\n{printed}\n")
    assert m is not None and m.groups() == ("0,1", "75", "e586171831")
    old = "== ran both sides (seeds 0) in 143 s; comparing base 939bdf1aaa → head 939bdf1aaa"
    assert ran_line(old).groups() == ("0", "143", "939bdf1aaa")
    assert ran_line("== base seed 0: quirkbench run --suite pr\n") is None
