"""pytest-benchmark: wall time of the compression task's smoke configuration.

Skipped in plain pytest (``--benchmark-skip`` in pyproject); run with
``pytest tests/bench/test_bench_compression.py --benchmark-only`` and compare commits with
``--benchmark-autosave`` / ``--benchmark-compare``.
"""

from __future__ import annotations

import torch

from quirkbench.tasks import Context, get


def test_bench_compression_smoke(benchmark):
    task = get("compression")
    cfg = task.make_config("smoke")
    ctx = Context("mnist5k", 0, torch.device("cpu"))
    task.run(cfg, ctx)  # warm-up: data cache, allocator, thread pool
    out = benchmark.pedantic(task.run, args=(cfg, ctx), rounds=3, iterations=1)
    assert any(m.name == "compression_ratio" for m in out.metrics)
