"""Timing helpers for throughput: synchronised timers, interleaved repeats, FLOP counts, peaks.

A *runner* is ``run(n) -> seconds per step`` over n steps; ``interleaved_samples`` alternates
the repeats of several runners so load from other processes hits them alike; ``interleaved``
takes each runner's median and ``paired_ratio`` the median of repeat-by-repeat ratios (what
every speed-up and share here is). ``engine_stepper`` times the one training engine
(``train.train``), ``naive_stepper`` the textbook DataLoader loop, ``many_stepper``
``train.train_many``; ``matmul_runner`` an n×n matmul, the CPU's yardstick. ``PEAK_TFLOPS``
holds GPU peaks by device name. ``control_seconds`` times a fixed small workload: the runner
records it just before and just after every unit, so the gate can see the machine's speed
move during a run.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset
from torch.utils.flop_counter import FlopCounterMode

from .train import TrainConfig, train, train_many

# Dense peak TFLOP/s (no sparsity) by a substring of torch.cuda.get_device_name: (bf16, fp32).
# First match wins, so the more specific names come first. Vendor data sheets.
PEAK_TFLOPS: tuple[tuple[str, float, float], ...] = (
    ("H100 PCIe", 756.0, 51.0),
    ("H100", 989.0, 67.0),  # SXM
    ("H200", 989.0, 67.0),
    ("GH200", 989.0, 67.0),
    ("A100", 312.0, 19.5),
    ("L40S", 362.0, 91.6),
    ("L4", 121.0, 30.3),
    ("A10G", 70.0, 31.2),
    ("A10", 125.0, 31.2),
)

def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Seconds for one call of ``fn``: CUDA events on a GPU, perf_counter on a CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def matmul_runner(n: int, device: torch.device,
                  dtype: torch.dtype = torch.float32) -> Callable[[int], float]:
    """A runner for ``interleaved``: ``run(_)`` → seconds of one n×n @ n×n matmul (2n³ FLOPs)."""
    a = torch.rand(n, n, device=device, dtype=dtype)
    b = torch.rand(n, n, device=device, dtype=dtype)
    return lambda _: timed(lambda: a @ b, device)


def matmul_gflops(n: int, device: torch.device, repeats: int = 3) -> float:
    """Achieved GFLOP/s of an n×n @ n×n fp32 matmul, median of ``repeats`` after a warm-up."""
    s = interleaved({"mm": matmul_runner(n, device)}, 1, repeats, 1)["mm"]
    return 2 * n**3 / s / 1e9


def step_flops(model: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor) -> int:
    """FLOPs of one forward + backward (matmuls and convolutions; the update is negligible)."""
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(model(xb), yb).backward()
    model.zero_grad(set_to_none=True)
    return fc.get_total_flops()


def peak_tflops(device: torch.device) -> tuple[float, float] | None:
    """(bf16, fp32) dense peak TFLOP/s of a known GPU, else None."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next(((bf, fp) for key, bf, fp in PEAK_TFLOPS if key in name), None)


def engine_stepper(model, x, y, batch: int, fused: bool = False) -> Callable[[int], float]:
    """``run(n)`` → seconds per step of ``train.train`` over n steps (its own synchronised
    wall clock, which starts after the optimizer is built); ``fused``: the fused update."""
    calls = [0]

    def run(n: int) -> float:
        calls[0] += 1
        tc = TrainConfig(lr=0.01, batch_size=batch, max_epochs=10**6, max_steps=n,
                         target_train_acc=None, eval_test=False, fused=fused)
        r = train(model, x, y, tc, seed=calls[0], final_train_eval=False)
        return r.seconds / r.steps

    return run


def naive_stepper(model, x, y, batch: int, device: torch.device) -> Callable[[int], float]:
    """``run(n)`` → seconds per step of the textbook loop: DataLoader(TensorDataset) from
    host memory, ``.to(device)`` per batch, default modes, a fresh iterator per pass."""
    loader = DataLoader(TensorDataset(x.cpu(), y.cpu()), batch_size=batch, shuffle=True,
                        drop_last=True, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def steps(n):
        done = 0
        while done < n:
            for xb, yb in loader:
                xb, yb = xb.to(device), yb.to(device)
                opt.zero_grad()
                F.cross_entropy(model(xb), yb).backward()
                opt.step()
                done += 1
                if done == n:
                    break

    return lambda n: timed(lambda: steps(n), device) / n


def many_stepper(models, x, y, batch: int) -> Callable[[int], float]:
    """``run(n)`` → seconds per step of ``train.train_many`` on all K models at once."""
    k, calls = len(models), [0]

    def run(n: int) -> float:
        calls[0] += 1
        tc = TrainConfig(lr=0.01, batch_size=batch, max_epochs=10**6, max_steps=n,
                         target_train_acc=None, eval_test=False)
        r = train_many(models, x, y, tc, seeds=[calls[0] * k + j for j in range(k)])[0]
        return r.seconds / r.steps

    return run


def interleaved_samples(runs: dict[str, Callable[[int], float]], steps: int, repeats: int,
                        warmup: int, repeat_s: float | None = None) -> dict[str, list[float]]:
    """Seconds per step of each runner, one value per repeat; the repeats alternate between
    the runners (A B C, A B C, ...) so a burst of load from other processes hits all of them
    alike, and repeat i of every runner was taken at about the same moment (``paired_ratio``).
    With ``repeat_s``, a repeat runs at most ``steps`` steps but only as many as fill about
    ``repeat_s`` seconds of the first runner (judged from its warm-up; at least one)."""
    warm = [run(warmup) for run in runs.values()] if warmup else []
    if repeat_s is not None and warm:
        steps = max(1, min(steps, round(repeat_s / max(warm[0], 1e-9))))
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for k, run in runs.items():
            times[k].append(run(steps))
    return times


def interleaved(runs: dict[str, Callable[[int], float]], steps: int, repeats: int,
                warmup: int, repeat_s: float | None = None) -> dict[str, float]:
    """Median seconds per step of each runner over ``interleaved_samples``' repeats."""
    return {k: statistics.median(v)
            for k, v in interleaved_samples(runs, steps, repeats, warmup, repeat_s).items()}


def paired_ratio(num: list[float], den: list[float]) -> float:
    """Median over repeats of num[i] / den[i]: a ratio of two interleaved timings taken
    repeat by repeat, so load that slows both in one repeat cancels (a ratio of the two
    medians would pair a fast repeat of one with a slow repeat of the other)."""
    if len(num) != len(den) or not num:
        raise ValueError(f"paired_ratio needs two equally long non-empty lists, got "
                         f"{len(num)} and {len(den)}")
    return statistics.median(a / b for a, b in zip(num, den, strict=True))


def median_log_se(values: list[float]) -> float | None:
    """The standard error of ln(median) of repeated positive timings (or per-repeat ratios):
    1.2533 · sd(ln v) / √n, the median's large-sample error for a normal spread; None for
    fewer than two repeats or a value that is not positive. How far the value's own repeats
    say it could have landed elsewhere in the same run: on a quiet machine a few %, beside
    other busy processes often more than the 20% a timing must move to count."""
    if len(values) < 2 or not all(v > 0 for v in values):
        return None
    logs = [math.log(v) for v in values]
    return 1.2533 * statistics.stdev(logs) / math.sqrt(len(logs))


def paired_spread(num: list[float], den: list[float]) -> float | None:
    """``median_log_se`` of the per-repeat ratios num[i] / den[i] (``paired_ratio``'s)."""
    return median_log_se([a / b for a, b in zip(num, den, strict=True)])


def with_one_thread(run: Callable[[int], float]) -> Callable[[int], float]:
    """The runner with torch's intra-op pool at one thread (restored after): on a CPU shared
    with other busy processes, OpenMP threads waiting for each other can cost more than the
    second core gains."""
    def wrapped(n: int) -> float:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return run(n)
        finally:
            torch.set_num_threads(before)
    return wrapped


CONTROL_N = 96  # the control's matrices: 96×96 fp32, 1.8 MFLOP a product, in L2 cache
CONTROL_PRODUCTS = 64  # products in one timed block (about 1 ms at one thread here)
CONTROL_REPEATS = 5  # blocks; the control reads their median


def control_seconds() -> float:
    """Seconds of a fixed small CPU workload (``CONTROL_PRODUCTS`` chained 96×96 matmuls,
    the median of ``CONTROL_REPEATS`` blocks; 5-8 ms a call here, at one thread):
    the machine's speed at that moment, for telling a slower machine from slower code. It
    draws no random numbers, so it leaves every RNG as it was."""
    a = torch.linspace(-1.0, 1.0, CONTROL_N * CONTROL_N).reshape(CONTROL_N, CONTROL_N)
    a = a / CONTROL_N  # keeps the chained products bounded
    times = []
    for _ in range(CONTROL_REPEATS):
        t0 = time.perf_counter()
        x = a
        for _ in range(CONTROL_PRODUCTS):
            x = x @ a + a
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def with_bf16(run: Callable[[int], float]) -> Callable[[int], float]:
    def wrapped(n: int) -> float:
        with torch.autocast("cuda", dtype=torch.bfloat16):
            return run(n)
    return wrapped


def step_matmuls_runner(model: torch.nn.Module, batch: int,
                        device: torch.device) -> Callable[[int], float] | None:
    """``run(n)`` → seconds of the matmuls of one training step of an MLP at ``batch``,
    alone, into preallocated buffers: per Linear the forward ``addmm``, the weight gradient
    ``mm`` and, past the first layer (whose input needs no gradient), the input gradient
    ``mm`` — the shapes and layouts autograd uses. The step's matmul-bound limit on this
    machine; None for a model with other layers that compute (convolutions)."""
    lins = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not lins or any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        return None
    w = [(m.weight.detach(), m.bias.detach() if m.bias is not None else None) for m in lins]
    ins = [torch.rand(batch, m.in_features, device=device) for m in lins]
    outs = [torch.rand(batch, m.out_features, device=device) for m in lins]  # also dY
    acts = [torch.empty_like(o) for o in outs]
    dw = [torch.empty_like(wt) for wt, _ in w]
    dx = [torch.empty_like(h) for h in ins]

    def one():
        for (wt, b), h, a in zip(w, ins, acts, strict=True):
            if b is None:
                torch.mm(h, wt.t(), out=a)
            else:
                torch.addmm(b, h, wt.t(), out=a)
        for j, ((wt, _), h, g) in enumerate(zip(w, ins, outs, strict=True)):
            torch.mm(g.t(), h, out=dw[j])
            if j:
                torch.mm(g, wt, out=dx[j])

    return lambda n: timed(lambda: [one() for _ in range(n)], device) / n


def bare_stepper(model, x, y, batch: int) -> Callable[[int], float]:
    """``run(n)`` → seconds per step of the textbook step on device-resident data and
    nothing else: index gather, forward, cross-entropy, backward, torch's SGD with momentum
    (as the engine's); no running accuracy, no loss kept, no per-epoch check. The least an
    exact step with torch's update costs here: the engine's floor."""
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    g = torch.Generator(device=x.device).manual_seed(0)
    spe = max(1, len(x) // batch)

    def steps(n):
        done = 0
        while done < n:
            perm = torch.randperm(len(x), generator=g, device=x.device)
            for i in range(min(spe, n - done)):
                idx = perm[i * batch:(i + 1) * batch]
                loss = F.cross_entropy(model(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            done += min(spe, n - done)

    return lambda n: timed(lambda: steps(n), x.device) / n
