"""The example plugin package (examples/quirkbench-example-plugin): its model and its task
reach quirkbench through the entry points alone, and its model runs through the five tasks
that take a user's model, on the smoke suite.

CI installs the package (``pip install -e examples/quirkbench-example-plugin``). Where it is
not installed, the test installs it for one subprocess only: the package's folder on
PYTHONPATH plus a ``.dist-info`` with its entry points (what pip would write), so the shared
environment is left alone."""

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "quirkbench-example-plugin"
FIVE = ("adversarial", "compression", "forgetting", "memorization", "throughput")


def _env(tmp_path) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    paths = [str(ROOT / "src")]
    tomllib = pytest.importorskip("tomllib", reason="needs Python 3.11 (tomllib)")
    meta = tomllib.loads((PLUGIN / "pyproject.toml").read_text())["project"]
    # installed with this checkout's entry points (an install made before one was added
    # lacks it; then this checkout's package and metadata go first on the path)
    installed = all(any(ep.name == k and ep.value == v for ep in entry_points(group=group))
                    for group, eps in meta["entry-points"].items() for k, v in eps.items())
    if not installed:
        dist = tmp_path / "site" / f"quirkbench_example_plugin-{meta['version']}.dist-info"
        dist.mkdir(parents=True)
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\n"
                                       f"Version: {meta['version']}\n")
        lines = []
        for group, eps in meta["entry-points"].items():
            lines += [f"[{group}]"] + [f"{k} = {v}" for k, v in eps.items()] + [""]
        (dist / "entry_points.txt").write_text("\n".join(lines))
        paths += [str(PLUGIN), str(tmp_path / "site")]
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return env


def qb(env, *args, timeout=900):
    return subprocess.run([sys.executable, "-m", "quirkbench", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=timeout, cwd=env["QB_CWD"])


@pytest.mark.slow
def test_plugin_model_and_task_run_through_every_task_on_smoke(tmp_path):
    env = {**_env(tmp_path), "QB_CWD": str(tmp_path)}
    listed = qb(env, "list")
    assert listed.returncode == 0, listed.stderr
    assert "example-cnn" in listed.stdout and "example_margin" in listed.stdout
    assert "example-fgm" in listed.stdout  # the attack, through quirkbench.attacks
    out = tmp_path / "r.json"
    r = qb(env, "run", "--suite", "smoke", "--tasks", *FIVE, "example_margin", "--model",
           "example-cnn", "--device", "cpu", "--out", out, "--no-report", "-q")
    assert r.returncode == 0, r.stderr[-2000:]
    units = json.loads(out.read_text())["units"]
    assert {u["task"] for u in units.values()} == {*FIVE, "example_margin"}
    assert all(u["status"] == "done" for u in units.values())
    for u in units.values():  # --model reached every model setting (not the student)
        cfg = u["config"]
        named = [v for k, v in cfg.items() if k == "model" or k.endswith("_model")]
        assert named and all(v in ("example-cnn", None) for v in named), (u["task"], cfg)


@pytest.mark.slow
def test_plugin_factory_works_by_reference_without_registration(tmp_path):
    env = {**_env(tmp_path), "QB_CWD": str(tmp_path)}
    env["PYTHONPATH"] = os.pathsep.join([str(PLUGIN), env["PYTHONPATH"]])
    out = tmp_path / "r.json"
    r = qb(env, "run", "--suite", "smoke", "--tasks", "memorization", "--dataset", "digits",
           "--model", "qb_example_plugin.models:small_cnn", "--device", "cpu", "--out", out,
           "--no-report", "-q")
    assert r.returncode == 0, r.stderr[-2000:]
    (unit,) = json.loads(out.read_text())["units"].values()
    assert unit["status"] == "done" and unit["config"]["model"].endswith(":small_cnn")
