"""The GitHub workflows are valid (check-jsonschema's GitHub-workflows schema, the check CI
can run without downloading actionlint) and do what docs/nightly.md says; the nightly
scripts parse; nightly.sh refuses to measure a stale install."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
SCRIPTS = ["scripts/nightly.sh", "scripts/bench_gate.sh", "scripts/pr_check.sh",
           "qbtools/nightly/sim.sh", "qbtools/gate/bench_calibrate.sh"]


def _check_jsonschema():
    exe = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    if not Path(exe).exists():
        pytest.skip("check-jsonschema is not installed (the 'test' extra)")
    return exe


def _validate(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_check_jsonschema(), "--builtin-schema", "vendor.github-workflows",
                           str(path)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_workflow_passes_the_schema(path):
    r = _validate(path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path):
    doc = yaml.safe_load((ROOT / ".github/workflows/nightly.yml").read_text())
    doc["jobs"]["nightly"]["steps"][0]["uses"] = 3  # not a string
    doc["jobs"]["nightly"]["timeout-minutes"] = "soon"
    bad = tmp_path / "bad.yml"
    bad.write_text(yaml.safe_dump(doc))
    assert _validate(bad).returncode != 0


def test_nightly_workflow_installs_gpu_torch_keeps_results_and_passes_device():
    doc = yaml.safe_load((ROOT / ".github/workflows/nightly.yml").read_text())
    steps = doc["jobs"]["nightly"]["steps"]
    text = "\n".join(str(s.get("run", "")) for s in steps)
    assert "TORCH_INDEX" in text and "/whl/cu" in doc["env"]["TORCH_INDEX"]
    assert 'pip install -e ".[track]"' in text  # the checkout, not a stale install
    assert "torch.cuda.is_available()" in text  # refuses a runner without the GPU
    assert "git push origin nightly-results" in text and "nightly-results" in text
    env = next(s for s in steps if s.get("run") == "scripts/nightly.sh")["env"]
    assert env["QB_DEVICE"] == "cuda" and env["QB_SUITE"] == "nightly"
    assert env["QB_REQUIRE_CUDA"] == "1"
    assert doc["permissions"]["contents"] == "write"


def test_pr_workflow_benchmark_step_can_fail():
    doc = yaml.safe_load((ROOT / ".github/workflows/pr.yml").read_text())
    runs = [s.get("run", "") for j in doc["jobs"].values() for s in j["steps"]]
    assert any("scripts/bench_gate.sh" in r for r in runs)
    assert not any("--benchmark-autosave" in r for r in runs)  # the informative-only step


def test_main_stores_the_base_side_the_pr_gate_restores_with_the_same_key_inputs():
    """pr-base.yml runs the gate's base side on every push to main and caches it by commit;
    pr.yml restores it into QB_BASE_STORE. The key holds the environment and the settings,
    so both must install the same way and pass the same settings, or nothing is reused."""
    pr = yaml.safe_load((ROOT / ".github/workflows/pr.yml").read_text())
    fill = yaml.safe_load((ROOT / ".github/workflows/pr-base.yml").read_text())
    assert fill[True]["push"]["branches"] == ["main"]  # yaml reads the key 'on' as True
    pr_steps, fill_steps = pr["jobs"]["gate"]["steps"], fill["jobs"]["store"]["steps"]

    def step(steps, pred):
        return next(s for s in steps if pred(s))

    install = [step(s, lambda x: "pip install -e" in str(x.get("run")))["run"]
               for s in (pr_steps, fill_steps)]
    assert install[0] == install[1]
    gate = step(pr_steps, lambda x: "scripts/pr_check.sh" in str(x.get("run")))
    store = step(fill_steps, lambda x: "pr_check.sh --fill-store" in str(x.get("run")))
    keys = ("QB_SUITE", "QB_TASKS", "QB_SEEDS", "QB_SETS", "QB_JOBS", "OMP_NUM_THREADS",
            "QB_NOISE_MODEL")
    assert {k: gate["env"].get(k) for k in keys} == {k: store["env"].get(k) for k in keys}
    saved = step(fill_steps, lambda x: "cache/save" in str(x.get("uses")))["with"]
    restored = step(pr_steps, lambda x: "cache/restore" in str(x.get("uses")))["with"]
    assert saved["path"] == restored["path"] == gate["env"]["QB_BASE_STORE"] \
        == store["env"]["QB_BASE_STORE"]
    assert saved["key"] == "pr-base-${{ github.sha }}"
    assert restored["key"] == "pr-base-${{ github.event.pull_request.base.sha }}"
    assert pr_steps.index(step(pr_steps, lambda x: "cache/restore" in str(x.get("uses")))) \
        < pr_steps.index(gate)


def test_nightly_hands_its_results_document_to_asv_and_nothing_runs_the_suite_twice():
    """asv's tracks read the document the night's suite run wrote (bench/bench_tracks.py):
    the suite runs once, into $out, and asv is told that file."""
    text = (ROOT / "scripts" / "nightly.sh").read_text()
    runs = [ln for ln in text.splitlines() if "-m quirkbench run " in ln]
    assert len(runs) == 1 and '--out "$out"' in runs[0]
    assert 'export QB_ASV_RESULTS="$out"' in text
    assert text.index('export QB_ASV_RESULTS="$out"') < text.index("-m asv run ")


@pytest.mark.parametrize("name", SCRIPTS)
def test_scripts_parse(name):
    r = subprocess.run(["bash", "-n", str(ROOT / name)], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr


def test_nightly_refuses_a_stale_install(tmp_path):
    """A python whose quirkbench is not the checkout's: exit 2 before running anything."""
    fake = tmp_path / "site" / "quirkbench"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("")
    shim = tmp_path / "python"
    shim.write_text(f"#!/bin/sh\nPYTHONPATH={tmp_path / 'site'} exec {sys.executable} -S \"$@\"\n")
    shim.chmod(0o755)
    env = {**os.environ, "PYTHON": str(shim), "QB_NIGHTLY_DIR": str(tmp_path / "store"),
           "QB_ALLOW_DIRTY": "1"}
    r = subprocess.run(["bash", str(ROOT / "scripts" / "nightly.sh")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "not from this checkout" in r.stderr
    assert not (tmp_path / "store" / "results").exists()  # nothing ran
