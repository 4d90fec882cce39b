"""The Ray executor.

Fast tests drive ``RayExecutor`` with a stand-in ``ray`` module (its bookkeeping: a lost
worker gives a failed unit, never a lost one; a unit's error gives the same one-line record
as the local executor). The slow tests start a real local Ray (``ray.init(num_cpus=2)``)
and skip, saying why, where a local Ray cannot start.
"""

from __future__ import annotations

import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from quirkbench.errors import UserError
from quirkbench.metrics import Metric
from quirkbench.runner import suite
from quirkbench.runner.unit import one_line
from quirkbench.tasks import REGISTRY, Task, TaskOutput, register
from quirkbench.tracking import results

TINY = dict(tasks=["dimensionality"], datasets=["digits"], device="cpu",
            overrides={"dimensionality": {"n_points": 40, "n_data": 60, "dims": [2, 8]}},
            log=lambda m: None)


# --------------------------------------------------------------------------- test tasks

@dataclass(frozen=True)
class FaultConfig:
    mode: str = "ok"  # ok | user-error | kill-once | kill-always
    marker: str = ""  # a file counting the attempts (kill-once)


def _fault_run(cfg: FaultConfig, ctx) -> TaskOutput:
    if cfg.mode == "user-error":
        raise UserError("the data set is not where --data-root says\nsecond line")
    if cfg.mode.startswith("kill"):
        attempts = Path(cfg.marker)
        n = int(attempts.read_text()) if attempts.exists() else 0
        attempts.write_text(str(n + 1))
        if cfg.mode == "kill-always" or n == 0:
            os.kill(os.getpid(), signal.SIGKILL)  # the worker dies mid-unit
    return TaskOutput([Metric("value", float(ctx.seed), "1")])


@pytest.fixture
def fault_task():
    task = register(Task("faulty", "raises or kills its worker on purpose (tests)", FaultConfig,
                         _fault_run, {"smoke": {}}, default_dataset="digits"))
    yield task
    REGISTRY.unregister(task.name)


def _run(executor, out, mode, seeds="0", marker=""):
    suite.run_suite("smoke", tasks=["faulty"], seeds=seeds, device="cpu", out=out,
                    executor=executor, log=lambda m: None,
                    overrides={"faulty": {"mode": mode, "marker": str(marker)}})
    return results.read(out)


# --------------------------------------------------------------------------- a stand-in Ray

class _Ref:
    def __init__(self, fn, unit, lost):
        self.fn, self.unit, self.lost = fn, unit, lost


class FakeRay:
    """What RayExecutor uses of ``ray``, run in this process; units named in ``lost`` behave
    as if their worker died on every retry."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        class RayError(Exception):
            pass

        class WorkerCrashedError(RayError):
            pass

        class RayTaskError(RayError):
            pass

    def __init__(self, lost=(), broken=()):
        self.lost, self.broken = set(lost), set(broken)
        self.options, self.cancelled = None, []

    def is_initialized(self):
        return True

    def remote(self, **options):
        self.options = options
        fake = self

        class Remote:
            def remote(self, fn, unit):
                ref = _Ref(fn, unit, unit.key in fake.lost)
                ref.broken = unit.key in fake.broken
                return ref

        return lambda f: Remote()

    def wait(self, refs, num_returns=1, timeout=None):
        return refs[-num_returns:], refs[:-num_returns]  # not in submission order

    def get(self, ref):
        if ref.lost:
            raise self.exceptions.WorkerCrashedError("The worker died unexpectedly")
        if ref.broken:  # e.g. quirkbench not installed on that node
            raise self.exceptions.RayTaskError("ModuleNotFoundError: No module named "
                                               "'quirkbench'\n  traceback lines")
        return ref.fn(ref.unit)

    def cancel(self, ref, force=False):
        self.cancelled.append(ref)


def test_a_lost_worker_fails_its_unit_and_loses_none(tmp_path, monkeypatch, fault_task):
    fake = FakeRay(lost={"faulty/digits/1"}, broken={"faulty/digits/2"})
    monkeypatch.setitem(sys.modules, "ray", fake)
    doc = _run("ray", tmp_path / "r.json", "ok", seeds="0-2")
    assert fake.options == {"num_gpus": 0, "max_retries": 1}  # retried once by Ray
    assert sorted(doc["units"]) == ["faulty/digits/0", "faulty/digits/1", "faulty/digits/2"]
    lost = doc["units"]["faulty/digits/1"]
    assert lost["status"] == "failed" and lost["metrics"] == []
    assert lost["error"] == ("WorkerCrashedError: the Ray worker running this unit was lost "
                             "(tried 2 times)")
    assert doc["units"]["faulty/digits/2"]["error"] == \
        "RayTaskError: ModuleNotFoundError: No module named 'quirkbench'"  # its own words
    assert doc["meta"]["status"] == "failed"
    assert doc["meta"]["progress"] == {"planned": 3, "done": 1, "failed": 2, "left": 0}


def test_a_unit_error_is_the_same_one_line_record_under_ray(tmp_path, monkeypatch, fault_task):
    local = _run("local", tmp_path / "l.json", "user-error")["units"]["faulty/digits/0"]
    monkeypatch.setitem(sys.modules, "ray", FakeRay())
    ray = _run("ray", tmp_path / "r.json", "user-error")["units"]["faulty/digits/0"]
    assert local["error"] == ray["error"] == \
        "UserError: the data set is not where --data-root says"
    assert local["status"] == ray["status"] == "failed"


def test_ray_missing_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(UserError, match=r"needs Ray: pip install 'quirkbench\[ray\]'"):
        suite.run_suite("smoke", executor="ray", out=tmp_path / "r.json", **TINY)
    assert not (tmp_path / "r.json").exists()


# --------------------------------------------------------------------------- a real Ray

@pytest.fixture(scope="module")
def real_ray():
    ray = pytest.importorskip("ray")
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test tasks travel
    if not ray.is_initialized():
        try:
            # the workers import this module by name to find the test task's functions
            here = str(Path(__file__).resolve().parent)
            path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
            env = {"env_vars": {"PYTHONPATH": path}}
            if os.environ.get("RAY_ADDRESS"):  # a cluster started with `ray start --head`
                ray.init(logging_level="ERROR", runtime_env=env)
            else:
                ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR",
                         runtime_env=env)
        except Exception as e:  # e.g. a loaded machine where the raylet times out
            pytest.skip(f"a local Ray cluster could not start here: {one_line(e)}")
    yield ray
    ray.shutdown()


def _values(doc):
    return {k: [(m["name"], m["tags"], m["value"]) for m in u["metrics"]]
            for k, u in doc["units"].items()}


@pytest.mark.slow
def test_ray_gives_the_local_results(tmp_path, real_ray):
    local = suite.run_suite("smoke", seeds="0,1", out=tmp_path / "l.json", **TINY)
    remote = suite.run_suite("smoke", seeds="0,1", out=tmp_path / "r.json", executor="ray",
                             **TINY)
    a, b = results.read(local), results.read(remote)
    assert a["meta"]["status"] == b["meta"]["status"] == "done"
    assert _values(a) == _values(b)


@pytest.mark.slow
def test_ray_worker_killed_mid_unit_is_retried(tmp_path, real_ray, fault_task):
    marker = tmp_path / "attempts"
    doc = _run("ray", tmp_path / "r.json", "kill-once", marker=marker)
    assert marker.read_text() == "2"  # killed once, run again
    assert doc["units"]["faulty/digits/0"]["status"] == "done"


@pytest.mark.slow
def test_ray_worker_killed_every_time_is_failed_not_lost(tmp_path, real_ray, fault_task):
    marker = tmp_path / "attempts"
    doc = _run("ray", tmp_path / "r.json", "kill-always", marker=marker)
    unit = doc["units"]["faulty/digits/0"]
    assert unit["status"] == "failed" and "was lost (tried 2 times)" in unit["error"]
    assert doc["meta"]["status"] == "failed"


@pytest.mark.slow
def test_ray_unit_error_is_one_line(tmp_path, real_ray, fault_task):
    unit = _run("ray", tmp_path / "r.json", "user-error")["units"]["faulty/digits/0"]
    assert unit["error"] == "UserError: the data set is not where --data-root says"


@pytest.mark.slow
@pytest.mark.parametrize("sig, code, word", [(signal.SIGTERM, 143, "terminated"),
                                             (signal.SIGINT, 130, "interrupted")],
                         ids=["SIGTERM", "SIGINT"])
def test_a_ray_run_stopped_by_a_signal_is_interrupted_and_resumable(tmp_path, real_ray, sig,
                                                                    code, word):
    """As under the local executors: status interrupted, the units in flight named, the
    resume command printed, exit 143 or 130 (``ray.init`` sets SIGTERM to ``sys.exit``, and
    Ray re-raises Ctrl-C as a plain KeyboardInterrupt: neither may decide the outcome)."""
    import subprocess
    import time

    src = str(Path(suite.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": src, "PYTHONUNBUFFERED": "1",
           "RAY_ADDRESS": real_ray.get_runtime_context().gcs_address}
    out = tmp_path / "r.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "quirkbench", "run", "--suite", "smoke", "--tasks",
         "memorization", "--dataset", "digits", "--seeds", "0-3", "--device", "cpu",
         "--no-report", "--executor", "ray", "--out", str(out),
         "--set", "memorization.n_train=300"], env=env, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        # a shell's background job inherits SIGINT ignored, and Python keeps it so
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if "units on cpu" in line:
            break
    time.sleep(1.0)
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == f"quirkbench: {word}" and "Traceback" not in stderr
    assert f"; resume with: quirkbench run --resume {out}" in stdout
    meta = results.read(out)["meta"]
    assert meta["status"] == "interrupted" and "memorization/digits/" in meta["interrupted_in"]
