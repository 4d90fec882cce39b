"""The training step's speed, measured as the throughput task reports it.

For every model × batch, the engine's step (``train.train``) is timed interleaved with its
baselines (``timing``): the textbook DataLoader loop (``naive``), the bare step on
device-resident data (``bare``: gather, forward, backward, torch's SGD; the least an exact
step costs), the fused update and other variants, and, for an MLP, the step's own matmuls
alone at the same shapes (``matmul-step``): the **matmul-bound limit** of the step on
this machine. ``matmul_share`` = limit / step time (median of the per-repeat ratios).

The goals, each judged only where this machine can meet it, and otherwise stated with the
one-line reason (``Goal.not_judged``) instead of "missed":

* ``matmul_share`` of the engine at batch 128 on the first MLP ≥ 80%. Where even the bare
  step stays below 80% (its memory-bound SGD update and batch gather take more than a
  quarter of the matmul time), no exact loop with torch's update can meet it.
* ``speedup_vs_naive`` ≥ 1.5× at batch 128. No exact step with torch's update is faster
  than the bare one, so the speed-up over the naive loop is at most (naive step) / (bare
  step); where that ceiling is below 1.5× (the DataLoader's cost is small beside a
  matmul-bound CPU step), the goal cannot be met.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch

from ..metrics import HIGHER, TIMING, Goal, Metric, metric_key
from .models import make_model
from .profiling import input_shape_for, random_data
from .timing import (
    bare_stepper,
    engine_stepper,
    interleaved_samples,
    matmul_runner,
    median_log_se,
    naive_stepper,
    paired_ratio,
    paired_spread,
    step_flops,
    step_matmuls_runner,
    with_bf16,
    with_one_thread,
)

CONV_MODELS = ("lenet5", "convnet")
SHARE_GOAL = 80.0  # % of the step's matmul-bound limit, engine at batch 128
NAIVE_GOAL = 1.5  # × the naive loop at batch 128
YARDSTICKS = ("matmul", "matmul-step")  # timed beside the variants; not variants themselves


def _runs(cfg, model, x, y, b: int, dev: torch.device, conv: bool) -> dict:
    runs = {"engine": engine_stepper(model, x, y, b)}
    if cfg.naive:
        runs["naive"] = naive_stepper(model, x, y, b, dev)
    runs["bare"] = bare_stepper(model, x, y, b)
    if cfg.fused:
        runs["fused-update"] = engine_stepper(model, x, y, b, fused=True)
    if cfg.compile:
        runs["compiled"] = engine_stepper(torch.compile(model), x, y, b)
    if dev.type == "cpu" and cfg.one_thread and torch.get_num_threads() > 1:
        runs["1-thread"] = with_one_thread(engine_stepper(model, x, y, b))
    if dev.type == "cpu" and cfg.count_flops and not conv:
        runs["matmul"] = matmul_runner(cfg.matmul_n, dev)
    step_mm = step_matmuls_runner(model, b, dev)
    if step_mm is not None:
        runs["matmul-step"] = step_mm
    if dev.type == "cuda":
        runs["bf16"] = with_bf16(engine_stepper(model, x, y, b))
        runs["cudagraphs"] = engine_stepper(torch.compile(model, mode="reduce-overhead"),
                                            x, y, b)
    return runs


def measure_training(cfg, device: torch.device, seed: int,
                     log: Callable[[str], None]) -> list[dict]:
    """Rows {model, batch, variant, samples_per_s, step_s, repeats_s, flops, matmul_gflops,
    matmul_s, step_matmuls_s} for every model × batch of ``cfg`` (the throughput task's
    settings: models, batches, conv_batches, steps, repeats, warmup_steps, repeat_s, ...)."""
    rows = []
    for name in cfg.models:
        shape = input_shape_for(name)
        conv = name in CONV_MODELS
        for b in cfg.conv_batches if conv else cfg.batches:
            t0 = time.perf_counter()
            x, y = random_data(shape, 4 * b, device, seed)  # 4 steps per pass
            model = make_model(name, shape, 10, seed=seed).to(device)
            flops = step_flops(model, x[:b], y[:b]) if cfg.count_flops else None
            runs = _runs(cfg, model, x, y, b, device, conv)
            warm = max(cfg.warmup_steps, 3 if (cfg.compile or device.type == "cuda") else 1)
            samples = interleaved_samples(runs, cfg.steps, cfg.repeats, warm, cfg.repeat_s)
            mm_s = samples.pop("matmul", None)
            step_mm_s = samples.pop("matmul-step", None)
            mm = 2 * cfg.matmul_n**3 / statistics.median(mm_s) / 1e9 if mm_s else None
            for variant, v in samples.items():
                s = statistics.median(v)
                rows.append({"model": name, "batch": b, "variant": variant,
                             "samples_per_s": b / s, "step_s": s, "repeats_s": v,
                             "flops": flops, "matmul_gflops": mm, "matmul_s": mm_s,
                             "step_matmuls_s": step_mm_s})
            log(f"{name} b={b}: " + ", ".join(
                f"{r['variant']} {r['samples_per_s']:,.0f}" for r in rows[-len(samples):])
                + " samples/s" + (f", matmuls alone {b / statistics.median(step_mm_s):,.0f}"
                                  if step_mm_s else "")
                + f" ({time.perf_counter() - t0:.1f} s)")
    return rows


def _share(r: dict) -> float | None:
    """% of the step's matmul-bound limit: (its matmuls alone) / (the step), per repeat."""
    return 100 * paired_ratio(r["step_matmuls_s"], r["repeats_s"]) \
        if r.get("step_matmuls_s") else None


def _spread(num: dict, den: dict, key: str = "repeats_s") -> dict:
    """``spread=`` for a ratio of two rows' interleaved repeats (``paired_spread``)."""
    return {"spread": paired_spread(num[key], den["repeats_s"])}


def share_goal(r: dict, bare: dict | None) -> Goal:
    """The engine's ≥ 80% goal; where even the bare step stays below it, why not."""
    ceiling = _share(bare) if bare else None
    if ceiling is None or ceiling >= SHARE_GOAL:
        return Goal(SHARE_GOAL)
    return Goal(SHARE_GOAL, not_judged=(
        f"cannot be met on this machine: the bare step (gather, forward, backward, torch's "
        f"SGD, no bookkeeping) reaches only {ceiling:.0f}% of its matmul-bound limit at batch "
        f"{r['batch']}; the memory-bound update and gather take the rest"))


def naive_goal(naive: dict, bare: dict | None) -> Goal:
    """The engine's ≥ 1.5× the naive loop goal; where no exact loop can reach it, why not:
    no step with torch's update is faster than the bare one, so the naive loop's time over
    the bare step's is the ceiling of the speed-up."""
    ceiling = paired_ratio(naive["repeats_s"], bare["repeats_s"]) if bare else None
    if ceiling is None or ceiling >= NAIVE_GOAL:
        return Goal(NAIVE_GOAL)
    return Goal(NAIVE_GOAL, not_judged=(
        f"cannot be met on this machine: the naive loop takes only {ceiling:.2f}× the bare "
        "step (gather, forward, backward, torch's SGD), the floor of an exact step; "
        "matmul_share is the goal here"))


def training_metrics(cfg, rows: list[dict], peaks) -> list[Metric]:
    """Per model × batch × variant: samples/s, steps/s, achieved GFLOP/s; the engine vs the
    naive loop and vs the step's matmul-bound limit; the other variants vs the engine."""
    metrics: list[Metric] = []
    by = {(r["model"], r["batch"], r["variant"]): r for r in rows}
    mms = [r["matmul_gflops"] for r in rows if r["variant"] == "engine" and r["matmul_gflops"]]
    if mms:  # the n×n yardstick, measured beside every MLP × batch
        metrics.append(Metric("matmul_gflops", statistics.median(mms), "GFLOP/s", HIGHER,
                              {"n": cfg.matmul_n}, kind=TIMING))
    first_mlp = next((m for m in cfg.models if m.startswith(("mlp", "lenet-300"))), None)
    for r in rows:
        t = {"model": r["model"], "batch": r["batch"], "variant": r["variant"]}
        # a rate is the median of its repeats: their spread goes with it, so a change they
        # explain is not judged (the run's control catches a machine whose speed moved, not
        # one busy from start to end)
        own = {"spread": median_log_se(r["repeats_s"])}
        metrics += [Metric("samples_per_s", r["samples_per_s"], "samples/s", HIGHER, t,
                           kind=TIMING, **own),
                    Metric("steps_per_s", 1 / r["step_s"], "steps/s", HIGHER, t, kind=TIMING,
                           **own)]
        if r["variant"] == "naive":
            continue
        gflops = r["flops"] / r["step_s"] / 1e9 if r["flops"] else None
        if gflops is not None:
            metrics.append(Metric("achieved_gflops", gflops, "GFLOP/s", HIGHER, t, kind=TIMING,
                                  **own))
        head = r["model"] == first_mlp and r["batch"] == 128 and r["variant"] == "engine"
        share = _share(r)
        if share is not None and r["variant"] in ("engine", "bare"):
            metrics.append(Metric(
                "matmul_share", share, "%", HIGHER, t, headline=head, kind=TIMING,
                goal=share_goal(r, by.get((r["model"], r["batch"], "bare"))) if head
                else None, **_spread(r, r, "step_matmuls_s")))
        if r["variant"] == "engine":
            naive = by.get((r["model"], r["batch"], "naive"))
            if naive:
                metrics.append(Metric(
                    "speedup_vs_naive", paired_ratio(naive["repeats_s"], r["repeats_s"]), "×",
                    HIGHER, t, headline=head, kind=TIMING,
                    goal=naive_goal(naive, by.get((r["model"], r["batch"], "bare")))
                    if head else None,
                    baseline=metric_key("samples_per_s", t | {"variant": "naive"}),
                    **_spread(naive, r)))
        else:
            engine = by[(r["model"], r["batch"], "engine")]
            metrics.append(Metric("speedup_vs_engine",
                                  paired_ratio(engine["repeats_s"], r["repeats_s"]), "×",
                                  HIGHER, t, kind=TIMING,
                                  baseline=metric_key("samples_per_s",
                                                      t | {"variant": "engine"}),
                                  **_spread(engine, r)))
        if peaks and gflops is not None:
            peak = peaks[0] if r["variant"] in ("bf16",) else peaks[1]
            metrics += [Metric("achieved_tflops", gflops / 1e3, "TFLOP/s", HIGHER, t,
                               kind=TIMING),
                        Metric("peak_share", 100 * gflops / 1e3 / peak, "%", HIGHER, t,
                               kind=TIMING)]
    return metrics
