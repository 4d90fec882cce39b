"""The PR gate end to end: scripts/pr_check.sh on a throw-away clone of this repository.

A planted regression (memorization trains on a quarter of its data: true-label test accuracy
drops) must fail the gate naming the metric; an A/A run of one commit must pass. The runs
use a tiny smoke setting (200 images, one condition) on one seed, as the PR workflow runs
the gate, so each side takes a few seconds of CPU; on a loaded machine the wall time is
dominated by waiting for a core. (Two seeds a side would go to the t-test, whose power at
n = 2 is poor: it printed an MDE of 16 pp and missed this 19.5 pp drop at q = 0.08.)
"""

from __future__ import annotations

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
         store: Path | None = None) -> subprocess.CompletedProcess:
    # each side runs its own worktree's source; the comparison runs this checkout's
    env = {**os.environ, **TINY, "QB_OUT": str(out), "PYTHON": sys.executable,
           "PYTHONPATH": str(ROOT / "src")}
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
