"""The asv throughput benchmarks (``bench/bench_throughput.py``) read the task's metrics the
right way up, on a hand-made metrics dict shaped like ``common.run_task``'s (no training)."""

from __future__ import annotations

import math

import pytest

from bench import bench_throughput as bt
from bench import common

D = "mnist5k"


def _m(name: str, value: float, unit: str, direction: str, **tags: str) -> tuple:
    return (D, common.key(name, **tags)), {"value": value, "unit": unit, "direction": direction}


@pytest.fixture
def metrics() -> dict:
    eng = dict(model="mlp-512", batch="128", variant="engine")
    return dict([
        _m("speedup_vs_naive", 2.0, "×", "higher", **eng),
        _m("matmul_share", 60.0, "%", "higher", **eng),
        _m("samples_per_s", 50_000.0, "samples/s", "higher", **eng),
        _m("speedup_vs_peer", 1.9, "×", "higher", attack="pgd-linf", batch="64", eps="0.1",
           model="lenet-300-100", peer="foolbox", steps="5", variant="ours"),
        _m("speedup_vs_fastest_peer", 1.6, "×", "higher", attack="pgd-linf", batch="64",
           eps="0.1", model="lenet-300-100", steps="5", variant="ours"),
        _m("speedup_vs_fastest_peer", 1.1, "×", "higher", attack="pgd-linf", batch="64",
           eps="0.1", model="lenet-300-100", steps="5", variant="ours-full"),
        _m("speedup_vs_fastest_peer", 1.3, "×", "higher", attack="pgd-l2", batch="64",
           eps="1.5", model="lenet-300-100", steps="5", variant="ours"),
        _m("speedup_vs_sequential", 1.25, "×", "higher", model="mlp-512", batch="128",
           variant="vmap-4"),
        _m("speedup_vs_sequential", 2.5, "×", "higher", model="mlp-512", batch="128",
           variant="vmap-8"),
        _m("gemm_share", 70.0, "%", "higher", model="mlp-512", batch="128", variant="profiled"),
        _m("speedup_ceiling_vs_naive", 1.7, "×", "none", **eng),
    ])


def test_training_values_oriented_up_is_worse(metrics):
    t = bt.ThroughputTraining()
    assert t.track_time_vs_naive(metrics, "128") == pytest.approx(0.5)  # 2× faster
    assert t.track_matmul_shortfall(metrics, "128") == pytest.approx(40.0)  # 100 − 60
    assert t.track_us_per_sample(metrics, "128") == pytest.approx(20.0)  # 1e6 / 50,000
    # a batch the suite did not run is NaN (asv: n/a), not an error
    assert all(math.isnan(f(metrics, "1024")) for f in
               (t.track_time_vs_naive, t.track_matmul_shortfall, t.track_us_per_sample))


def test_other_values(metrics):
    t = bt.Throughput()
    assert t.track_pgd_time_vs_peer(metrics) == pytest.approx(1 / 1.6)
    assert t.track_time_vs_sequential(metrics) == pytest.approx(1 / 2.5)  # the largest K
    assert t.track_non_gemm_share(metrics) == pytest.approx(30.0)
    assert t.track_speedup_ceiling_vs_naive(metrics) == pytest.approx(1.7)  # as it is
    assert all(math.isnan(f({})) for f in
               (t.track_pgd_time_vs_peer, t.track_time_vs_sequential,
                t.track_non_gemm_share, t.track_speedup_ceiling_vs_naive))


def test_classes_share_one_task_run():
    """asv keys setup_cache by the function's module and line: one key → one run."""
    base = pytest.importorskip("asv_runner.benchmarks._base")  # asv is the 'track' extra

    classes = (bt.Throughput, bt.ThroughputTraining)
    keys = {base.get_setup_cache_key(c().setup_cache) for c in classes}
    assert len(keys) == 1


def test_paired_ratio_times_the_two_back_to_back_and_takes_the_median():
    clock, calls = [0.0], []

    def timer():
        return clock[0]

    def run():  # 3 s, but 30 s in one repeat (a burst of load)
        calls.append("run")
        clock[0] += 30.0 if calls.count("run") == 4 else 3.0

    def reference():
        calls.append("ref")
        clock[0] += 2.0

    assert common.paired_ratio(run, reference, repeats=5, warmup=1, timer=timer) == 1.5
    assert calls == ["run", "ref"] * 6  # one warm-up pair, then run/reference alternating


def test_paired_epoch_track_times_the_engines_train_against_the_frozen_reference(monkeypatch):
    import quirkbench.engine.train as engine_train
    from bench import bench_core

    seen = []
    monkeypatch.setattr(engine_train, "train", lambda net, x, y, cfg: seen.append(cfg))
    monkeypatch.setattr(common, "paired_ratio",
                        lambda run, ref, repeats: (run(), ref(), repeats)[-1])
    b = bench_core.TrainEpochPaired()
    b.setup("mlp-512", "cpu")
    assert b.track_epoch_vs_reference("mlp-512", "cpu") == b.repeats
    assert len(seen) == 1 and seen[0].max_epochs == 1  # one epoch of the engine's train()
