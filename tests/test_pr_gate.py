"""The PR gate end to end: scripts/pr_check.sh on a throw-away clone of this repository.

A planted regression (memorization trains on a quarter of its data: true-label test accuracy
drops) must fail the gate naming the metric; an A/A run of one commit must pass. The runs
use a tiny smoke setting (200 images, one condition) on one seed, as the PR workflow runs
the gate, so each side takes a few seconds of CPU; on a loaded machine the wall time is
dominated by waiting for a core. (Two seeds a side would go to the t-test, whose power at
n = 2 is poor: it printed an MDE of 16 pp and missed this 19.5 pp drop at q = 0.08.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "pr_check.sh"
TINY = {"QB_SUITE": "smoke", "QB_TASKS": "memorization", "QB_SEEDS": "0",
        "QB_SETS": "memorization.n_train=200 memorization.n_test=200 "
                   "memorization.conditions=['true-labels'] memorization.train.batch_size=50",
        # wall-clock noise on a shared CI box reaches ±50% between processes with 2 seeds:
        # these tests judge the deterministic metrics; the A/A false-positive rate at the
        # default time threshold is measured by qbtools/gate/aa.py
        "QB_COMPARE": "--time-threshold 1.0",
        "OMP_NUM_THREADS": "1"}
PLANT = ("r = train(model, x, y, cfg.train,",
         "r = train(model, x[: len(x) // 4], y[: len(y) // 4], cfg.train,")
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("git") is None or shutil.which("bash") is None,
                                 reason="needs git and bash")]


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> Path:
    """A clone of this repository's HEAD plus one commit that plants the regression."""
    repo = tmp_path_factory.mktemp("gate") / "repo"
    subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(repo)], check=True)
    git(repo, "config", "user.email", "gate@example.invalid")
    git(repo, "config", "user.name", "gate test")
    git(repo, "branch", "-f", "base")
    task = repo / "src" / "quirkbench" / "tasks" / "memorization.py"
    text = task.read_text()
    assert PLANT[0] in text, "the line the test plants a regression into has changed"
    task.write_text(text.replace(PLANT[0], PLANT[1]))
    git(repo, "commit", "--quiet", "-am", "planted regression: train on a quarter of the data")
    return repo


def gate(repo: Path, base: str, head: str, out: Path,
         store: Path | None = None, **extra: str) -> subprocess.CompletedProcess:
    # each side runs its own worktree's source; the comparison runs this checkout's
    env = {**os.environ, **TINY, "QB_OUT": str(out), "PYTHON": sys.executable,
           "PYTHONPATH": str(ROOT / "src"), **extra}
    env.pop("QB_BASE_STORE", None)
    if store is not None:
        env["QB_BASE_STORE"] = str(store)
    return subprocess.run(["bash", str(SCRIPT), base, head], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=600)


def test_planted_regression_fails_naming_the_metric(clone, tmp_path):
    r = gate(clone, "base", "HEAD", tmp_path)
    print(r.stdout)  # the gate's table, shown with pytest -s
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.count("GATE FAIL: ") == 2  # the first line of the table and the last
    # one seed, no noise model for these settings: the factor rule finds the accuracy drop
    assert any("memorization/mnist5k test_acc[condition=true-labels]" in ln
               for ln in _failing(r.stdout))
    md = (tmp_path / "compare.md").read_text()
    # names are escaped for GitHub Markdown (\_ and \[ render as _ and [)
    assert ("regressed beyond noise | memorization/mnist5k | "
            "test\\_acc\\[condition=true-labels\\]") in md
    assert not git(clone, "worktree", "list").count("\n"), "worktrees were not removed"


def test_aa_run_of_one_commit_passes(clone, tmp_path):
    r = gate(clone, "base", "base", tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "GATE PASS: " in r.stdout and "GATE FAIL" not in r.stdout
    assert "escalat" not in r.stdout  # every row identical: nothing to escalate


def _failing(stdout: str) -> list[str]:
    """The "why:" lines: one per failing row, with its verdict and reason."""
    block = stdout.split("\nwhy:\n")[1].split("\n\n")[0]
    return sorted(ln.strip() for ln in block.splitlines() if ln.strip())


def test_a_stored_base_is_reused_and_gives_the_same_verdict(clone, tmp_path):
    """The first gate runs both sides and stores the base; the second finds it (same commit,
    environment, settings and noise model), runs the head only, and fails the same rows."""
    store = tmp_path / "store"
    first = gate(clone, "base", "HEAD", tmp_path / "first", store)
    assert first.returncode == 1, first.stdout + first.stderr
    assert "== base: ran base" in first.stdout and "no stored run matched key" in first.stdout
    second = gate(clone, "base", "HEAD", tmp_path / "second", store)
    assert second.returncode == 1, second.stdout + second.stderr
    assert "== base: reused the stored run of base" in second.stdout
    assert "== base seed" not in second.stdout and "== head seed 0" in second.stdout
    assert _failing(second.stdout) == _failing(first.stdout)
    md = (tmp_path / "second" / "compare.md").read_text().splitlines()
    assert md[0] == "## 🔴 GATE FAIL: 1 regression beyond noise"  # the verdict first
    assert md[2].startswith("Base side: reused the stored run of base")


# a change of behaviour the size of a seed swap: the training's batch order from another seed
SWAP = ("cfg.train, seed=seed, x_test=xt, y_test=yt)",
        "cfg.train, seed=seed + 2, x_test=xt, y_test=yt)")


@pytest.fixture(scope="module")
def swapped(clone) -> str:
    """A branch off ``base`` whose memorization trains in another batch order: seed 0's
    true-label test accuracy moves 79.0 → 78.5%, well inside the factor rule's reach, and
    the smoke suite has no noise model for these settings, so one seed cannot judge it."""
    git(clone, "checkout", "--quiet", "-b", "swapped", "base")
    task = clone / "src" / "quirkbench" / "tasks" / "memorization.py"
    text = task.read_text()
    assert SWAP[0] in text, "the line the test changes has changed"
    task.write_text(text.replace(SWAP[0], SWAP[1]))
    git(clone, "commit", "--quiet", "-am", "another batch order")
    git(clone, "checkout", "--quiet", "-")
    return "swapped"


def test_no_noise_model_escalates_to_more_seeds_on_both_sides(clone, swapped, tmp_path):
    """The headline not judged at one seed (no noise model) makes the gate run 2 more seeds
    on both sides and decide it by the t-test; with a store, the base's extra seeds are
    stored and a second gate reuses them (only the head's run)."""
    store = tmp_path / "store"
    first = gate(clone, "base", swapped, tmp_path / "first", store, QB_ESCALATE_SEEDS="2")
    print(first.stdout)
    assert first.returncode in (0, 1), first.stdout + first.stderr
    assert "== escalation: 1 row: 1 with no usable noise model (memorization/mnist5k " \
        "test_acc[condition=true-labels])" in first.stdout
    for side in ("base", "head"):
        for seed in (1, 2):
            assert f"== {side} seed {seed} (escalation): " in first.stdout, (side, seed)
    line = next(ln for ln in first.stdout.splitlines() if ln.startswith("GATE "))
    assert line.endswith("; escalated 1 row (1 with no usable noise model) to 3 seeds a side: "
                         "decided by the t-test"), line
    rows = json.loads((tmp_path / "first" / "rows.json").read_text())["rows"]
    acc = next(r for r in rows if r["key"] == "test_acc[condition=true-labels]")
    assert acc["test"] == "t" and acc["base_n"] == acc["head_n"] == 3 and acc["mde"] > 0
    md = (tmp_path / "first" / "compare.md").read_text().splitlines()
    assert md[0].endswith("decided by the t-test")
    assert "escalation: ran the base's seeds 1,2 beside the head's" in md[2]
    second = gate(clone, "base", swapped, tmp_path / "second", store, QB_ESCALATE_SEEDS="2")
    assert second.returncode == first.returncode, second.stdout + second.stderr
    assert "== base seed" not in second.stdout  # the base's seeds 0, 1 and 2 all stored
    assert "== head seed 2 (escalation): " in second.stdout
    assert "escalation: the base's seeds 1,2 reused from the store" in second.stdout + \
        (tmp_path / "second" / "compare.md").read_text()
    again = next(ln for ln in second.stdout.splitlines() if ln.startswith("GATE "))
    # the same escalation (the raw timings read not judged against a stored base)
    assert again.split("; escalated")[1] == line.split("; escalated")[1]
