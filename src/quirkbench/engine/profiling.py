"""torch.profiler around the hot loops: labelled steps, traces, a summary as metrics.

A *step* is a callable that does one unit of work and labels its phases with
``record_function`` (``data``, ``forward``, ``backward``, ``optimizer``, ``attack-step``).
``profile_steps`` runs it under ``torch.profiler.profile`` with a ``schedule(wait, warmup,
active)``; with an ``out_dir`` it writes

* ``<worker>.<ns>.pt.trace.json`` via ``tensorboard_trace_handler`` (the format the
  torch-tb-profiler TensorBoard plugin reads: ``tensorboard --logdir <parent of out_dir>``);
* ``trace.json``, the same Chrome trace-event JSON (``export_chrome_trace`` under the hood),
  for https://ui.perfetto.dev or ``chrome://tracing``;
* ``hta/rank0.json``, the trace as Holistic Trace Analysis reads it
  (``TraceAnalysis(trace_dir="<out_dir>/hta")``): a folder holding one trace per rank and
  nothing else, the rank in ``distributedInfo``; on a CPU, each top-level aten operator is
  also written as an event on a "CPU compute" device track (stream 7), because HTA's
  temporal and idle-time breakdowns read device kernels only: the operators are what a CPU
  step computes (the summary's busy time), the gaps between them the glue;
* ``summary.json``, the summary's metrics;
* ``profiler.log``, the profiler's native log lines (Kineto's ``USDT: ... profiler_start``),
  which would otherwise reach the terminal even under ``--quiet``; without ``out_dir`` they
  are dropped.

The summary (per active step, milliseconds): wall time, host time (CPU time spent inside
torch calls), busy time (GPU: kernel time on the device; CPU: time inside aten operators,
i.e. compute without the Python/framework glue between them), the idle fraction
1 − busy / wall, the GEMM time (matmuls and convolutions: the work no loop can skip) and its
share of the wall time, and the top operators by self time (device time on a GPU, CPU time
otherwise). ``quirkbench profile`` (``commands/profile.py``) is the command-line face.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import DeviceType
from torch.profiler import (
    ProfilerActivity,
    profile,
    record_function,
    schedule,
    tensorboard_trace_handler,
)

from ..errors import UserError
from ..metrics import HIGHER, LOWER, NONE, TIMING, Metric

LABELS = ("data", "forward", "backward", "optimizer", "attack-step")
# the step's essential arithmetic: aten matmul/convolution operators (on a GPU, the kernels
# they launch)
GEMM_OPS = re.compile(r"^aten::(mm|addmm|bmm|baddbmm|addbmm|_?convolution(_backward)?|"
                      r"mkldnn_convolution|cudnn_convolution.*|_scaled_mm)$")
WHATS = ("train", "attack")


def input_shape_for(model: str) -> tuple[int, ...]:
    """Synthetic input shape for a model: the convnet is built for 3×32×32, the rest 1×28×28."""
    return (3, 32, 32) if model == "convnet" else (1, 28, 28)


def random_data(shape: tuple[int, ...], n: int, device: torch.device, seed: int = 0,
                num_classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """x (n, *shape) uniform in [0, 1), y (n,) random labels; throughput ignores content."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *shape), generator=g)
    y = torch.randint(0, num_classes, (n,), generator=g)
    return x.to(device), y.to(device)


# --------------------------------------------------------------------------- labelled steps

def train_step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int,
                  lr: float = 0.05, seed: int = 0) -> Callable[[], None]:
    """One SGD step per call, labelled. It mirrors ``train.train``'s inner loop (index
    gather from device-resident data, forward, backward, step) with the labels added, so
    the profile shows the engine's step without adding labels to the engine's hot loop."""
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    g = torch.Generator(device=x.device).manual_seed(seed)
    model.train()

    def step():
        with record_function("data"):
            idx = torch.randint(0, len(x), (batch,), generator=g, device=x.device)
            xb, yb = x[idx], y[idx]
        with record_function("forward"):
            loss = F.cross_entropy(model(xb), yb)
        with record_function("backward"):
            opt.zero_grad(set_to_none=True)
            loss.backward()
        with record_function("optimizer"):
            opt.step()

    return step


def attack_step_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float = 0.1,
                   step_size: float | None = None) -> Callable[[], None]:
    """One PGD-L∞ iteration per call on the whole batch x (B, ...), labelled: ``forward``,
    ``backward`` (gradient w.r.t. the input) and ``attack-step`` (signed step, then one clamp
    onto the ε-box ∩ [0, 1], as ``attacks.PGD`` does it). The iterate carries over."""
    model.eval()
    step_size = 2.5 * eps / 40 if step_size is None else step_size
    lo, hi = (x - eps).clamp_(min=0.0), (x + eps).clamp_(max=1.0)
    state = {"x_adv": x.clone()}

    def step():
        with record_function("forward"):
            xa = state["x_adv"].detach().requires_grad_(True)
            loss = F.cross_entropy(model(xa), y, reduction="sum")
        with record_function("backward"):
            (grad,) = torch.autograd.grad(loss, xa)
        with record_function("attack-step"):
            with torch.no_grad():
                state["x_adv"].add_(grad.sign_(), alpha=step_size).clamp_(lo, hi)

    return step


# --------------------------------------------------------------------------- profiling

@dataclass
class ProfileSummary:
    """Per active step, in milliseconds. ``device_ms`` is None on a CPU (host = device)."""

    device: str  # "cpu" or the GPU's name
    steps: int  # active (recorded) steps
    step_ms: float  # wall time per step (synchronised), mean over the active steps
    host_ms: float  # CPU time inside torch calls per step
    busy_ms: float  # GPU: kernel time; CPU: time inside aten operators
    device_ms: float | None
    idle_fraction: float  # 1 − busy / wall, in [0, 1]
    gemm_ms: float = 0.0  # self time of matmul/convolution operators (GPU: kernels)
    top_ops: list[tuple[str, float]] = field(default_factory=list)  # (name, self ms per step)
    traces: list[str] = field(default_factory=list)  # files written (empty without out_dir)

    def metrics(self, tags: dict[str, str] | None = None) -> list[Metric]:
        """Timing metrics of the profiled step. Operator times are reported by group (matmuls
        and convolutions, everything else), so the same keys appear in every run: the ranking
        of the top operators (``top_ops``, kept in the summary) changes from run to run."""
        t = dict(tags or {})
        out = [
            Metric("profiled_step_time", self.step_ms, "ms", LOWER, t, kind=TIMING),
            Metric("host_time_per_step", self.host_ms, "ms", LOWER, t, kind=TIMING),
            Metric("busy_time_per_step", self.busy_ms, "ms", NONE, t, kind=TIMING),
            Metric("idle_fraction", 100 * self.idle_fraction, "%", LOWER, t, kind=TIMING),
        ]
        if self.device_ms is not None:
            out.append(Metric("device_time_per_step", self.device_ms, "ms", NONE, t, kind=TIMING))
        if self.step_ms > 0:  # the rest of the step is overhead a faster loop could remove
            out.append(Metric("gemm_share", 100 * self.gemm_ms / self.step_ms, "%", HIGHER, t,
                              kind=TIMING))
        if self.top_ops:
            out += [Metric("op_self_time", self.gemm_ms, "ms", NONE, t | {"op": "gemm"},
                           kind=TIMING),
                    Metric("op_self_time", max(self.busy_ms - self.gemm_ms, 0.0), "ms", NONE,
                           t | {"op": "other"}, kind=TIMING)]
        return out

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def profile_steps(step: Callable[[], None], device: torch.device | str = "cpu", *,
                  wait: int = 1, warmup: int = 1, active: int = 3,
                  out_dir: str | Path | None = None, worker: str = "quirkbench",
                  top: int = 5) -> ProfileSummary:
    """Run ``step`` wait + warmup + active times under the profiler and summarise the
    active ones; with ``out_dir`` also write the traces (see the module docstring)."""
    device = torch.device(device)
    if wait < 0 or warmup < 0 or active < 1:
        raise UserError(f"profiler schedule needs wait ≥ 0, warmup ≥ 0, active ≥ 1; "
                        f"got {wait}, {warmup}, {active}")
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    handler = None
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        handler = tensorboard_trace_handler(str(out_dir), worker_name=worker)
    walls: list[float] = []
    n = wait + warmup + active
    with native_log(out_dir / "profiler.log" if out_dir is not None else None), \
            profile(activities=activities,
                    schedule=schedule(wait=wait, warmup=warmup, active=active, repeat=1),
                    on_trace_ready=handler) as prof:
        for i in range(n):
            _sync(device)
            t0 = time.perf_counter()
            step()
            _sync(device)
            if i >= wait + warmup:
                walls.append(time.perf_counter() - t0)
            prof.step()
    summary = summarize(prof, walls, device, top)
    if out_dir is not None:
        summary.traces = _finish_traces(out_dir, worker, summary)
    return summary


def summarize(prof: profile, walls: list[float], device: torch.device,
              top: int = 5) -> ProfileSummary:
    """Fold ``prof.key_averages()`` (times in µs) into per-step milliseconds."""
    cuda = device.type == "cuda"
    k = max(len(walls), 1)
    rows = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    ops = [e for e in rows if e.key not in LABELS]  # the labels' self time is Python glue
    host_us = sum(e.self_cpu_time_total for e in rows)
    if cuda:
        # busy = the device-side events (kernels, copies); the labels also appear there as
        # GPU annotations spanning their kernels, so they are left out. A host operator's
        # self device time is the time of the kernels it launched itself: ranking operators
        # by it names them as aten ops, and does not count a kernel twice.
        busy_us = sum(e.self_device_time_total for e in ops if e.device_type != DeviceType.CPU)
        ops = [e for e in ops if e.device_type == DeviceType.CPU]
        self_of = lambda e: e.self_device_time_total  # noqa: E731
    else:
        # aten operators only: the optimizer's own label (Optimizer.step#SGD.step) and the
        # autograd nodes' self time are Python/framework glue, not compute
        busy_us = sum(e.self_cpu_time_total for e in ops if e.key.startswith("aten::"))
        self_of = lambda e: e.self_cpu_time_total  # noqa: E731
    gemm_us = sum(self_of(e) for e in ops if GEMM_OPS.match(e.key))
    step_ms = 1e3 * sum(walls) / k if walls else float("nan")  # mean: the sums below are totals
    busy_ms = busy_us / 1e3 / k
    ranked = sorted(ops, key=self_of, reverse=True)[:top]
    return ProfileSummary(
        device=torch.cuda.get_device_name(device) if cuda else "cpu", steps=len(walls),
        step_ms=step_ms, host_ms=host_us / 1e3 / k, busy_ms=busy_ms,
        device_ms=busy_ms if cuda else None,
        idle_fraction=min(1.0, max(0.0, 1 - busy_ms / step_ms)) if step_ms > 0 else float("nan"),
        gemm_ms=gemm_us / 1e3 / k,
        top_ops=[(e.key, self_of(e) / 1e3 / k) for e in ranked if self_of(e) > 0])


NATIVE_LINE = re.compile(r"^(USDT:|STAGE:|\[[WIE] \S*kineto|.*ActivityProfiler|.*libkineto)")


@contextmanager
def native_log(path: Path | None):
    """Route what native code writes to stderr (file descriptor 2) during the block: the
    profiler's own log lines (``NATIVE_LINE``: Kineto's ``USDT: ... profiler_start``) go to
    ``path`` (dropped when ``None``), every other line back to stderr after the block, so
    a real warning is never lost."""
    import os
    import sys
    import tempfile

    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (embedded interpreters): nothing to route
        yield
        return
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            lines = tmp.read().decode("utf-8", "replace").splitlines(keepends=True)
            native = [ln for ln in lines if NATIVE_LINE.match(ln)]
            other = [ln for ln in lines if not NATIVE_LINE.match(ln)]
            if native and path is not None:
                with open(path, "a", encoding="utf-8") as f:
                    f.writelines(native)
            if other:
                sys.stderr.write("".join(other))
                sys.stderr.flush()


CPU_STREAM = 7  # the device track's stream id (HTA counts streams > 0 as device streams)


def add_cpu_compute_track(events: list[dict]) -> list[dict]:
    """``events`` plus the top-level aten operators of each host thread copied as "kernel"
    events on one device stream (pid 0, stream ``CPU_STREAM``) of a "CPU compute" process,
    each linked to its operator by a ``correlation`` id (as a GPU kernel is to its launch),
    so that tools reading device kernels only (Holistic Trace Analysis) see what a CPU step
    computes; the gaps between them are the host's glue."""
    is_op = [e.get("ph") == "X" and e.get("cat") == "cpu_op"
             and str(e.get("name", "")).startswith("aten::")
             and isinstance(e.get("ts"), int | float) and isinstance(e.get("dur"), int | float)
             for e in events]
    order = sorted((i for i, ok in enumerate(is_op) if ok),
                   key=lambda i: (str(events[i].get("tid")), events[i]["ts"], -events[i]["dur"]))
    out = list(events)
    track: list[dict] = [{"ph": "M", "name": "process_name", "pid": 0, "tid": 0,
                          "args": {"name": "CPU compute (aten operators, quirkbench)"}},
                         {"ph": "M", "name": "thread_name", "pid": 0, "tid": CPU_STREAM,
                          "args": {"name": f"stream {CPU_STREAM}"}}]
    end: dict[str, float] = {}
    for k, i in enumerate(order):
        e = events[i]
        tid = str(e.get("tid"))
        if e["ts"] < end.get(tid, -1.0):  # inside a top-level operator of this thread
            continue
        end[tid] = e["ts"] + e["dur"]
        corr = 1_000_000 + k
        out[i] = {**e, "args": {**(e.get("args") or {}), "correlation": corr}}
        track.append({"ph": "X", "cat": "kernel", "name": e["name"], "pid": 0,
                      "tid": CPU_STREAM, "ts": e["ts"], "dur": e["dur"],
                      "args": {"device": 0, "stream": CPU_STREAM, "correlation": corr,
                               "External id": (e.get("args") or {}).get("External id", -1)}})
    return out + track


def hta_trace(tb_trace: Path, folder: Path, cpu: bool) -> Path:
    """Write ``folder/rank0.json``: the trace with its rank (``distributedInfo``) and, on a
    CPU, the ``cpu_compute_track``; ``folder`` holds nothing else (HTA reads every JSON in
    it as one rank's trace)."""
    doc = json.loads(tb_trace.read_text())
    doc.setdefault("distributedInfo", {"backend": "none", "rank": 0, "world_size": 1})
    if cpu:
        doc["traceEvents"] = add_cpu_compute_track(list(doc.get("traceEvents", [])))
    if folder.exists():
        for old in folder.glob("*.json"):
            old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / "rank0.json"
    out.write_text(json.dumps(doc))
    return out


def _finish_traces(out_dir: Path, worker: str, summary: ProfileSummary) -> list[str]:
    """Copy the newest TensorBoard trace to ``trace.json`` (a trace can be exported only
    once per profiler run), write the HTA folder and ``summary.json``."""
    tb = sorted(out_dir.glob(f"{worker}.*.pt.trace.json"), key=lambda p: p.stat().st_mtime)
    written = []
    if tb:
        shutil.copyfile(tb[-1], out_dir / "trace.json")
        hta = hta_trace(tb[-1], out_dir / "hta", cpu=summary.device == "cpu")
        written = [str(tb[-1]), str(out_dir / "trace.json"), str(hta)]
    body = {"summary": summary.to_dict() | {"traces": written},
            "metrics": [m.to_dict() for m in summary.metrics()]}
    (out_dir / "summary.json").write_text(json.dumps(body, indent=1))
    return written + [str(out_dir / "summary.json")]
