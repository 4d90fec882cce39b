"""``quirkbench run --jobs N``: units in worker processes give the same document as one
process; a worker killed mid-unit fails that unit only; Ctrl-C then resume loses nothing.

Each test starts worker processes (spawn: each imports torch, seconds on a busy CPU), so
they are marked slow; they run tiny smoke units (dimensionality, units, landscape).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import quirkbench
from quirkbench.errors import UserError
from quirkbench.runner import pool
from quirkbench.tracking import results

SRC = str(Path(quirkbench.__file__).resolve().parents[1])
TIMING_UNITS = {"s", "ms", "µs", "samples/s", "steps/s", "GFLOP/s", "TFLOP/s"}


def _cli(*args: str, **kw) -> subprocess.Popen:
    """``python -m quirkbench ARGS`` in its own session (a Ctrl-C goes to its group)."""
    env = {**os.environ, "PYTHONPATH": SRC}
    return subprocess.Popen([sys.executable, "-m", "quirkbench", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=_default_sigint, **kw)


def _default_sigint() -> None:
    """A shell's background job (``pytest &``, ``nohup``) inherits SIGINT ignored, and Python
    then keeps ignoring it: the run under test must get the terminal's Ctrl-C as a user's does."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _without_timings(doc: dict) -> dict:
    """The document minus what differs between two identical runs: wall times, dates, the
    machine-speed control, how it was run (argv, jobs, executor), and timing metrics."""
    def timing(m):
        return m.get("kind") == "timing" or m.get("unit") in TIMING_UNITS

    meta = {k: v for k, v in doc["meta"].items()
            if k not in ("started", "ended", "seconds", "argv", "jobs", "resumed", "run_id",
                         "executor")}
    if isinstance(meta.get("invocation"), dict):  # the run's settings, but for --jobs
        meta["invocation"] = {k: v for k, v in meta["invocation"].items() if k != "jobs"}
    units = {k: {**{f: v for f, v in u.items()
                    if f not in ("started", "ended", "seconds", "control", "executor")},
                 "metrics": [m for m in u["metrics"] if not timing(m)]}
             for k, u in doc["units"].items()}
    return {"meta": meta, "units": units, "order": list(doc["units"])}


@pytest.fixture
def caller_threads():
    """torch's thread count as the test found it, given back afterwards."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def _pid_alive(pid: int) -> bool:
    """Running (a zombie, exited but not yet reaped by its new parent, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


@pytest.mark.slow
def test_two_workers_write_the_same_document_as_one_process(run_cli, tmp_path, caller_threads):
    torch.set_num_threads(2)  # the caller's threads: the units compute with one all the same
    args = ["run", "--suite", "smoke", "--tasks", "dimensionality", "units", "--seeds", "0,1",
            "--device", "cpu", "--no-report", "--quiet"]
    assert run_cli(*args, "--out", tmp_path / "one.json", "--jobs", "1")[0] == 0
    assert run_cli(*args, "--out", tmp_path / "two.json", "--jobs", "2")[0] == 0
    one, two = results.read(tmp_path / "one.json"), results.read(tmp_path / "two.json")
    assert two["meta"]["jobs"] == 2 and one["meta"]["jobs"] == 1
    assert (one["meta"]["executor"], two["meta"]["executor"]) == ("local", "pool")
    assert torch.get_num_threads() == 2  # given back after the in-process units
    assert len(one["units"]) == 4 and all(u["status"] == "done" for u in two["units"].values())
    assert sum(len(u["metrics"]) for u in two["units"].values()) > 20
    assert _without_timings(two) == _without_timings(one)


@pytest.mark.slow
def test_a_worker_killed_mid_unit_fails_that_unit_and_the_run_completes(tmp_path):
    out = tmp_path / "r.json"
    p = _cli("run", "--suite", "smoke", "--tasks", "landscape", "dimensionality", "--seeds", "0",
             "--device", "cpu", "--no-report", "--jobs", "2", "--out", str(out))
    lines, killed = [], None
    for line in p.stdout:
        lines.append(line)
        if killed is None and "landscape/mnist5k/0: started" in line:
            killed = int(line.rsplit("pid ", 1)[1].rstrip(")\n"))
            os.kill(killed, signal.SIGKILL)
    assert p.wait(timeout=300) == 1, "".join(lines)  # 1: a unit failed
    assert killed is not None, "".join(lines)
    doc = results.read(out)
    assert doc["meta"]["status"] == "failed" and doc["meta"].get("ended")
    victim, other = doc["units"]["landscape/mnist5k/0"], doc["units"]["dimensionality/mnist5k/0"]
    assert victim["status"] == "failed" and "SIGKILL" in victim["error"], victim
    assert other["status"] == "done" and other["metrics"]
    assert "landscape/mnist5k/0 FAILED: WorkerDied" in "".join(lines)


@pytest.mark.slow
def test_ctrl_c_then_resume_with_two_workers_loses_nothing(tmp_path):
    out = tmp_path / "r.json"
    args = ("run", "--suite", "smoke", "--tasks", "dimensionality", "units", "--seeds", "0-2",
            "--device", "cpu", "--no-report", "--quiet", "--jobs", "2", "--out", str(out))
    p = _cli(*args[:-5], "--jobs", "2", "--out", str(out))  # not quiet: its progress lines
    pids, lines = set(), []
    for line in p.stdout:
        lines.append(line)
        if ": started (worker" in line:
            pids.add(int(line.rsplit("pid ", 1)[1].rstrip(")\n")))
        if line.startswith("[1/6]"):
            os.killpg(p.pid, signal.SIGINT)  # the terminal's Ctrl-C: the whole group
            break
    rest = p.communicate(timeout=120)[0]
    assert p.returncode == 130, "".join(lines) + rest
    doc = json.loads(out.read_text())
    assert doc["meta"]["status"] == "interrupted"
    done = {k: u["started"] for k, u in doc["units"].items() if u["status"] == "done"}
    assert 1 <= len(done) < 6 and all(u["status"] == "done" for u in doc["units"].values())
    deadline = time.monotonic() + 10
    while any(map(_pid_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(map(_pid_alive, pids)), "workers outlived the interrupted run"

    again = _cli(*args)
    assert again.wait(timeout=300) == 0, again.stdout.read()
    doc = json.loads(out.read_text())
    assert doc["meta"]["status"] == "done" and len(doc["units"]) == 6
    assert all(u["status"] == "done" and u["metrics"] for u in doc["units"].values())
    for k, started in done.items():  # finished before the Ctrl-C: kept, not run again
        assert doc["units"][k]["started"] == started


def test_jobs_are_checked_and_auto_means_one_per_physical_core():
    cpu = torch.device("cpu")
    assert pool.resolve_jobs("auto", cpu) == pool.physical_cores() >= 1
    assert pool.resolve_jobs(None, cpu) == pool.physical_cores()
    assert pool.resolve_jobs("3", cpu) == 3
    for bad in ("0", "-1", "two", "1.5", True):
        with pytest.raises(UserError, match="--jobs must be a whole number"):
            pool.resolve_jobs(bad, cpu)
    assert pool.physical_cores() <= len(os.sched_getaffinity(0))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_auto_is_one_worker_per_gpu():
    dev = torch.device("cuda")
    assert pool.resolve_jobs("auto", dev) == torch.cuda.device_count()
    assert [pool._worker_device(dev, i).index for i in range(torch.cuda.device_count())] \
        == list(range(torch.cuda.device_count()))


@pytest.mark.slow
def test_kill_9_of_the_run_leaves_no_worker_and_resume_completes(tmp_path):
    out = tmp_path / "r.json"
    args = ("run", "--suite", "smoke", "--tasks", "dimensionality", "units", "--seeds", "0-2",
            "--device", "cpu", "--no-report", "--jobs", "2", "--out", str(out))
    p = _cli(*args)
    pids = set()
    for line in p.stdout:
        if ": started (worker" in line:
            pids.add(int(line.rsplit("pid ", 1)[1].rstrip(")\n")))
        if line.startswith("[1/6]"):
            os.kill(p.pid, signal.SIGKILL)  # the parent only: its workers must notice
            break
    p.wait(timeout=60)
    deadline = time.monotonic() + 15
    while any(map(_pid_alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert pids and not any(map(_pid_alive, pids)), "workers outlived their killed parent"
    assert _cli(*args).wait(timeout=300) == 0
    doc = json.loads(out.read_text())
    assert doc["meta"]["status"] == "done" and len(doc["units"]) == 6
    assert all(u["status"] == "done" for u in doc["units"].values())


def test_speed_tasks_run_alone_after_the_others():
    from types import SimpleNamespace as NS

    from quirkbench.tasks import get

    assert get("throughput").exclusive and not get("adversarial").exclusive
    unit = lambda name, excl: NS(key=name, task=NS(exclusive=excl))  # noqa: E731
    a, t, b, c = unit("a", False), unit("throughput", True), unit("b", False), unit("c", False)
    assert [u.key for u in pool.schedule_order([a, t, b, c])] == ["a", "b", "c", "throughput"]
    assert pool.may_start(b, [a]) and pool.may_start(t, [])
    assert not pool.may_start(t, [c])  # waits for the pool to drain
    assert not pool.may_start(c, [t])  # nothing starts beside it


def test_the_longest_units_start_first_unknown_ones_before_them():
    """Longest-processing-time order: two workers then finish together. On the quick suite
    the plan's order (alphabetical) started memorization, the longest unit, eighth."""
    from types import SimpleNamespace as NS

    from quirkbench.runner.plan import plan

    unit = lambda name, cost, excl=False: NS(key=name, cost=cost, task=NS(exclusive=excl))  # noqa: E731
    units = [unit("a", 1.0), unit("t", 7.0, True), unit("b", 20.0), unit("u", None),
             unit("c", 5.0), unit("v", None)]
    assert [u.key for u in pool.schedule_order(units)] == ["u", "v", "b", "c", "a", "t"]
    quick = pool.schedule_order(plan("quick", seeds=[0, 1]))
    assert [u.task.name for u in quick[:4]] == ["memorization"] * 2 + ["forgetting"] * 2
    assert quick[-1].task.name == "throughput" and all(u.cost for u in quick)


@pytest.mark.slow
def test_a_plain_run_uses_one_worker_per_physical_core(run_cli, tmp_path):
    """The default run is the fast one: no flag gives --jobs auto (one worker per physical
    core; a single unit, or a single core, stays in this process)."""
    args = ["run", "--suite", "smoke", "--tasks", "dimensionality", "--device", "cpu",
            "--no-report", "--quiet"]
    assert run_cli(*args, "--seeds", "0,1", "--out", tmp_path / "plain.json")[0] == 0
    meta = results.read(tmp_path / "plain.json")["meta"]
    cores = pool.physical_cores()
    assert meta["jobs"] == cores and meta["invocation"]["jobs"] == "auto"
    assert meta["executor"] == ("pool" if cores > 1 else "local")
    assert run_cli(*args, "--seeds", "0", "--out", tmp_path / "one.json")[0] == 0
    assert results.read(tmp_path / "one.json")["meta"]["executor"] == "local"
