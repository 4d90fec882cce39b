"""The planted-regression matrix, small: one breakage (memorization trains on the true labels
under the random-labels condition) against an unchanged base, and an A/A copy, on a tiny
memorization run of one seed. The breakage must fail the gate naming its metric as beyond
noise or its phenomenon lost; the A/A must pass. The full matrix: qbtools/gate/planted.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def test_every_plant_applies_once_to_the_code_and_names_its_metric():
    """Each breakage's line is in its file exactly once (else the matrix stops), and the
    metrics the gate must name for it match its pattern: the slow-train plant's headline
    timing rows (matmul_share and speedup_vs_naive at batch 128) included."""
    from qbtools.gate.planted import PLANTS

    for name, (rel, old, new, _task, _pattern) in PLANTS.items():
        assert (ROOT / "src" / "quirkbench" / rel).read_text().count(old) == 1, name
        assert new != old, name
    pattern = PLANTS["slow-train"][4]
    for key in ("matmul_share[batch=128,model=mlp-512,variant=engine]",
                "speedup_vs_naive[batch=128,model=mlp-512,variant=engine]"):
        assert re.search(pattern, key), key


@pytest.mark.slow
@needs_git
def test_small_planted_matrix(tmp_path):
    md, js = tmp_path / "planted.md", tmp_path / "planted.json"
    r = subprocess.run(
        [sys.executable, "-m", "qbtools.gate.planted", "--plants", "memorization",
         "--seeds", "0", "--out", str(tmp_path / "runs"), "--md", str(md), "--json", str(js),
         "--set", "memorization.n_train=200", "--set", "memorization.n_test=100",
         "--set", "memorization.conditions=['true-labels','random-labels']",
         "--set", "memorization.train.batch_size=50"],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stdout + r.stderr
    res = json.loads(js.read_text())
    assert not res["aa"]["fails"] and res["aa"]["changed"] == 0
    br = res["memorization"]
    assert br["fails"] and br["right"] and br["one_seed_changed"] > 0
    assert any(f.startswith("memorization/steps_to_fit[condition=random-labels] (")
               and ("phenomenon lost" in f or "beyond noise" in f) for f in br["failing"])
    text = md.read_text()
    assert "| `memorization` | **fails** | yes |" in text and "| A/A (no change) | passes |" in text
