"""Profiler: labelled steps, trace files (TensorBoard + Chrome/Perfetto JSON), the summary."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest
import torch

from quirkbench.cli import main
from quirkbench.engine.models import make_model
from quirkbench.engine.profiling import (
    CPU_STREAM,
    LABELS,
    attack_step_fn,
    native_log,
    profile_steps,
    random_data,
    train_step_fn,
)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@pytest.fixture(scope="module")
def tiny():
    model = make_model("mlp-32", (1, 28, 28), 10, seed=0)
    x, y = random_data((1, 28, 28), 64, torch.device("cpu"), seed=0)
    return model, x, y


@pytest.fixture(scope="module")
def traced(tiny, tmp_path_factory):
    model, x, y = tiny
    out = tmp_path_factory.mktemp("prof") / "run"
    s = profile_steps(train_step_fn(model, x, y, 16), "cpu", wait=1, warmup=1, active=2,
                      out_dir=out, worker="tiny")
    return s, out


def test_trace_files_parse_as_chrome_json(traced):
    s, out = traced
    tb = list(out.glob("tiny.*.pt.trace.json"))
    assert len(tb) == 1, "tensorboard_trace_handler writes one trace per active cycle"
    for path in (tb[0], out / "trace.json"):
        doc = json.loads(path.read_text())
        assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    names = {e.get("name") for e in json.loads((out / "trace.json").read_text())["traceEvents"]}
    assert {"data", "forward", "backward", "optimizer"} <= names
    assert any(n and n.startswith("ProfilerStep#") for n in names)


def test_hta_folder_holds_one_rank_trace_with_a_cpu_compute_track(traced):
    _, out = traced
    assert [p.name for p in (out / "hta").iterdir()] == ["rank0.json"]  # nothing else in it
    doc = json.loads((out / "hta" / "rank0.json").read_text())
    assert doc["distributedInfo"]["rank"] == 0
    events = doc["traceEvents"]
    kernels = [e for e in events if e.get("cat") == "kernel"]
    ops = {e["args"]["correlation"]: e for e in events
           if e.get("cat") == "cpu_op" and "correlation" in e.get("args", {})}
    assert kernels and len(kernels) == len(ops)
    for k in kernels:  # each device event is a top-level operator, linked to it
        op = ops[k["args"]["correlation"]]
        assert k["args"]["stream"] == CPU_STREAM and k["pid"] == 0
        assert (k["name"], k["ts"], k["dur"]) == (op["name"], op["ts"], op["dur"])
    spans = sorted((k["ts"], k["ts"] + k["dur"]) for k in kernels)
    assert all(a[1] <= b[0] + 1e-3 for a, b in zip(spans, spans[1:], strict=False))  # no nesting


def test_summary_metrics_present(traced):
    s, out = traced
    assert s.steps == 2 and s.device == "cpu" and s.device_ms is None
    assert s.step_ms > 0 and s.host_ms > 0 and s.busy_ms > 0
    assert 0.0 <= s.idle_fraction <= 1.0
    assert s.top_ops and all(name not in LABELS for name, _ in s.top_ops)
    assert s.top_ops == sorted(s.top_ops, key=lambda t: -t[1])
    by = {m.name: m for m in s.metrics({"model": "mlp-32"})}
    assert {"profiled_step_time", "host_time_per_step", "busy_time_per_step", "idle_fraction",
            "op_self_time"} <= set(by)
    assert by["profiled_step_time"].unit == "ms" and by["idle_fraction"].unit == "%"
    ops = [m for m in s.metrics({"model": "mlp-32"}) if m.name == "op_self_time"]
    # keyed by operator group, never by which operators made the top list this run: the
    # same keys in every run, and the groups add up to the aten time
    assert [m.tags["op"] for m in ops] == ["gemm", "other"]
    assert sum(m.value for m in ops) == pytest.approx(s.busy_ms)
    assert all("rank" not in m.tags for m in ops)
    assert all(m.kind == "timing" for m in s.metrics({"model": "mlp-32"}))
    assert all(m.tags["model"] == "mlp-32" and m.unit == "ms" for m in ops)
    # an MLP step is matmuls plus glue: the GEMM time is part of the aten time, not all of it
    assert 0 < s.gemm_ms < s.busy_ms
    assert by["gemm_share"].unit == "%" and 0 < by["gemm_share"].value < 100
    doc = json.loads((out / "summary.json").read_text())
    assert {m["name"] for m in doc["metrics"]} >= {"profiled_step_time", "idle_fraction"}
    assert str(out / "trace.json") in doc["summary"]["traces"]


def test_no_files_without_out_dir(tiny, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    model, x, y = tiny
    s = profile_steps(train_step_fn(model, x, y, 16), "cpu", wait=0, warmup=1, active=1)
    assert s.traces == [] and list(tmp_path.iterdir()) == []


def test_attack_step_is_labelled_and_stays_in_the_ball(tiny, tmp_path):
    model, x, y = tiny
    step = attack_step_fn(model, x[:8], y[:8], eps=0.05)
    s = profile_steps(step, "cpu", wait=0, warmup=1, active=2, out_dir=tmp_path, worker="atk")
    events = json.loads((tmp_path / "trace.json").read_text())["traceEvents"]
    names = {e.get("name") for e in events}
    assert {"forward", "backward", "attack-step"} <= names
    assert s.steps == 2


def test_cli_profile_writes_traces(tmp_path, capfd):
    out = tmp_path / "p"
    rc = main(["profile", "--model", "mlp-16", "--batch", "8", "--device", "cpu",
               "--wait", "0", "--warmup", "1", "--active", "1", "--out", str(out)])
    assert rc == 0
    assert json.loads((out / "trace.json").read_text())["traceEvents"]
    printed = capfd.readouterr()
    assert "idle_fraction" in printed.out
    # the profiler's native lines (Kineto's USDT ... profiler_start) go to the log file
    assert "USDT" not in printed.out + printed.err and "profiler_st" not in printed.err
    log = out / "profiler.log"
    assert not log.exists() or all(ln.startswith("USDT") or "kineto" in ln.lower()
                                   for ln in log.read_text().splitlines())


def test_native_log_routes_profiler_lines_and_keeps_the_rest(tmp_path, capfd):
    import os

    with native_log(tmp_path / "profiler.log"):
        os.write(2, b"USDT:2026 1:1 SyncActivityProfilerHandler.cpp:52] profiler_start\n")
        os.write(2, b"a real warning\n")
    err = capfd.readouterr().err
    assert "a real warning" in err and "USDT" not in err
    assert "profiler_start" in (tmp_path / "profiler.log").read_text()
    with native_log(None):  # no log file: dropped
        os.write(2, b"USDT: profiler_stop\n")
    assert "USDT" not in capfd.readouterr().err


def test_hta_breakdowns_on_a_cpu_trace(tmp_path, caplog):
    """Holistic Trace Analysis reads the CPU trace `quirkbench profile` writes, as the docs
    show: its temporal and idle-time breakdowns run, with no rank warning."""
    pytest.importorskip("hta", reason="HolisticTraceAnalysis is not installed: "
                                      "pip install 'quirkbench[profile]'")
    from hta.trace_analysis import TraceAnalysis

    out = tmp_path / "p"
    assert main(["profile", "--model", "mlp-16", "--batch", "8", "--device", "cpu",
                 "--wait", "1", "--warmup", "1", "--active", "3", "--out", str(out)]) == 0
    analysis = TraceAnalysis(trace_dir=str(out / "hta"))
    temporal = analysis.get_temporal_breakdown(visualize=False)
    row = temporal.iloc[0]
    assert row["rank"] == 0 and row["compute_time(us)"] > 0
    assert 0 <= row["idle_time_pctg"] <= 100
    assert abs(row["idle_time_pctg"] + row["compute_time_pctg"]
               + row["non_compute_time_pctg"] - 100) < 0.5
    idle, _ = analysis.get_idle_time_breakdown(visualize=False)
    assert set(idle["stream"]) == {CPU_STREAM} and idle["idle_time"].sum() > 0
    assert "distributedInfo" not in caplog.text  # the rank is in the trace


@pytest.mark.parametrize("args", [["--what", "inference"], ["--batch", "0"], ["--active", "0"],
                                  ["--model", "nonsense"], ["--batch", "x"]])
def test_cli_profile_bad_input_exit_2(args, tmp_path, capsys):
    rc = main(["profile", "--device", "cpu", "--out", str(tmp_path / "p"), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("quirkbench: error:") and "\n" not in err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cli_profile_cuda_without_gpu_exit_2(tmp_path, capsys):
    assert main(["profile", "--device", "cuda", "--out", str(tmp_path / "p")]) == 2
    assert "CUDA" in capsys.readouterr().err


@cuda
def test_profile_on_cuda_reports_device_time(tiny):
    model, x, y = tiny
    dev = torch.device("cuda")
    s = profile_steps(train_step_fn(model.to(dev), x.to(dev), y.to(dev), 16), dev, active=2)
    assert s.device_ms is not None and s.device_ms > 0
    assert "device_time_per_step" in {m.name for m in s.metrics()}
    model.cpu()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_tensorboard_plugin_lists_the_run(traced):
    """Real client: TensorBoard with torch-tb-profiler serves the run we wrote."""
    pytest.importorskip("torch_tb_profiler", reason="pip install 'quirkbench[profile]'")
    tb = shutil.which("tensorboard") or shutil.which("tensorboard", path=str(
        __import__("pathlib").Path(sys.executable).parent))
    if tb is None:
        pytest.skip("tensorboard is not installed: pip install 'quirkbench[profile]'")
    _, out = traced
    port = _free_port()
    proc = subprocess.Popen([tb, "--logdir", str(out.parent), "--host", "127.0.0.1",
                             "--port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}/data/plugin/pytorch_profiler"

    def ask(path):
        return json.loads(urllib.request.urlopen(f"{api}/{path}", timeout=5).read())

    try:
        runs, deadline = [], time.time() + 60
        while time.time() < deadline and out.name not in runs:
            time.sleep(1)
            try:
                runs = ask("runs")["runs"]
            except (OSError, ValueError, KeyError):
                continue
        assert out.name in runs
        assert ask(f"workers?run={out.name}&view=Overview") == ["tiny"]
        overview = ask(f"overview?run={out.name}&worker=tiny&span=1")
        assert len(overview["steps"]["rows"]) == 2  # the two active steps
    finally:
        proc.terminate()
        proc.wait(timeout=10)
