"""pytest-benchmark: the forgetting task's training (smoke configuration: 3 protocols × 3
strategies × 3 tasks) with the one engine, beside a prototype-style plain loop doing the same
work — a ``DataLoader`` over a ``TensorDataset`` and a per-step Python callback that logs
``loss.item()`` and the batch accuracy (a host sync every step), as research prototypes do.

Both use the same protocols, the same Fisher and replay memory, the same number of steps per
task; only the loop differs. Skipped in plain pytest (``--benchmark-skip`` in pyproject); run::

    pytest tests/bench/test_bench_forgetting.py --benchmark-only

The plain-loop test also times the engine in the same process and stores
``plain_over_engine`` (wall) and ``plain_over_engine_cpu`` (process CPU time, steadier on a
shared machine) in ``extra_info`` (kept by ``--benchmark-json``) and prints them (``-s``).
"""

from __future__ import annotations

import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from quirkbench.engine.data import load
from quirkbench.engine.models import make_model
from quirkbench.engine.train import make_optimizer
from quirkbench.methods import continual as C
from quirkbench.tasks import get


def _setup():
    cfg = get("forgetting").make_config("smoke")
    ds = load("mnist5k", seed=0, n_train=cfg.n_train, n_test=cfg.n_test)
    protocols = [C.make_protocol(p, ds, cfg.n_tasks, 0, cfg.classes_per_task)
                 for p in cfg.protocols]
    return cfg, ds, protocols


def engine_training(cfg, ds, protocols) -> None:
    """What the task does: ``run_sequence`` (the one engine) per protocol × strategy."""
    for prot in protocols:
        for s in cfg.strategies:
            model = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=0)
            C.run_sequence(prot, s, model, cfg.train, seed=0, ewc_lambda=cfg.ewc_lambda,
                           fisher_samples=cfg.fisher_samples,
                           memory_per_task=cfg.memory_per_task)


def _plain_task(model, prot, x, y, tcfg, penalty, callback) -> None:
    opt = make_optimizer(model.parameters(), tcfg)
    loader = DataLoader(TensorDataset(x, y), batch_size=tcfg.batch_size, shuffle=True,
                        drop_last=len(x) > tcfg.batch_size)
    step = 0
    while step < tcfg.max_steps:
        for xb, yb in loader:
            logits = model(xb)
            loss = prot.loss(logits, yb)
            if penalty is not None:
                loss = loss + penalty(model)
            opt.zero_grad()
            loss.backward()
            opt.step()
            callback(step, loss.item(), (logits.argmax(1) == yb).float().mean().item())
            step += 1
            if step >= tcfg.max_steps:
                break


def plain_training(cfg, ds, protocols) -> list[float]:
    """The same sequences in a prototype-style loop; returns the logged losses."""
    logged: list[float] = []
    callback = lambda step, loss, acc: logged.append(loss)  # noqa: E731
    for prot in protocols:
        for s in cfg.strategies:
            model = make_model(cfg.model, ds.input_shape, ds.num_classes, seed=0)
            pen = C.EWCPenalty(cfg.ewc_lambda) if s == "ewc" else None
            mem_x, mem_y = [], []
            for i, task in enumerate(prot.tasks):
                x, y = task.x_train, task.y_train
                if mem_x:
                    x, y = torch.cat([x, *mem_x]), torch.cat([y, *mem_y])
                _plain_task(model, prot, x, y, cfg.train, pen if pen and pen.tasks else None,
                            callback)
                if s == "ewc":
                    fx, fy = C.memory_sample(task.x_train, task.y_train, cfg.fisher_samples, i)
                    pen.add(model, C.fisher_diagonal(model, fx, fy, prot.loss))
                if s == "replay":
                    mx, my = C.memory_sample(task.x_train, task.y_train, cfg.memory_per_task, i)
                    mem_x.append(mx)
                    mem_y.append(my)
                [prot.accuracy(model, j) for j in range(len(prot.tasks))]  # same evaluation
    return logged


def test_bench_forgetting_engine(benchmark):
    cfg, ds, protocols = _setup()
    engine_training(cfg, ds, protocols)  # warm-up: allocator, thread pool, lazy imports
    benchmark.pedantic(engine_training, args=(cfg, ds, protocols), rounds=3, iterations=1)


def _timed(fn, *args) -> tuple[float, float]:
    """(wall s, CPU s of this process): CPU time is the steadier one on a shared machine."""
    w, c = time.perf_counter(), time.process_time()
    fn(*args)
    return time.perf_counter() - w, time.process_time() - c


def test_bench_forgetting_plain_loop(benchmark):
    cfg, ds, protocols = _setup()
    engine_training(cfg, ds, protocols)  # warm-up
    engine_wall, engine_cpu = _timed(engine_training, cfg, ds, protocols)
    plain_wall, plain_cpu = _timed(plain_training, cfg, ds, protocols)
    benchmark.pedantic(plain_training, args=(cfg, ds, protocols), rounds=3, iterations=1)
    ratio = benchmark.stats.stats.mean / engine_wall
    benchmark.extra_info.update(engine_seconds=engine_wall, plain_over_engine=ratio,
                                engine_cpu_seconds=engine_cpu, plain_cpu_seconds=plain_cpu,
                                plain_over_engine_cpu=plain_cpu / engine_cpu)
    print(f"\nforgetting smoke training: engine {engine_wall:.2f} s wall / {engine_cpu:.2f} s CPU, "
          f"plain loop {benchmark.stats.stats.mean:.2f} s wall (3 rounds) / {plain_cpu:.2f} s CPU; "
          f"ratio {ratio:.2f}× wall, {plain_cpu / engine_cpu:.2f}× CPU")
