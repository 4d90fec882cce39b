"""asv ``track_*`` benchmarks for the throughput task (its performance goals, tracked per commit).

The task runs ONCE per commit: both classes inherit ``setup_cache`` from ``_ThroughputRun``,
and asv keys its cache by the function's module and line (``asv_runner``'s
``get_setup_cache_key``), so ``ThroughputTraining`` and ``Throughput`` share one run.

Every value is oriented up = worse (asv counts an increase as a regression, asv#1617):
speedups (higher is better) are tracked inverted, as the time of ours over the baseline's
(``time_vs_naive`` 0.67 = the engine takes two thirds of the naive loop's time, 1.5×
faster); shares of a peak (higher is better) as their shortfall from 100%; samples/s as
µs per sample. A value the suite did not measure (batch 1024 in the smoke suite, the PGD
part without Foolbox) is NaN: asv shows n/a.

These are wall-clock ratios measured interleaved in one process, so they are steadier
than raw timings, but still move ±10-20% on a loaded machine.
"""

from . import common

D = "mnist5k"
MODEL = "mlp-512"  # the headline model of every suite (the task's first MLP)


def _inverse(v: float) -> float:
    """1 / v (speedup → time ratio); NaN stays NaN."""
    return 1.0 / v if v == v and v != 0 else float("nan")


class _ThroughputRun:
    """Shared ``setup_cache``: one ``quirkbench run --tasks throughput`` per commit."""

    timeout = 600

    def setup_cache(self):
        return common.run_task("throughput")


class ThroughputTraining(_ThroughputRun):
    """Training steps of mlp-512 through the one engine, per batch size."""

    params = (["128", "1024"],)
    param_names = ["batch"]

    def track_time_vs_naive(self, m, batch):
        """Engine step time / naive DataLoader loop's, × (1 / ``speedup_vs_naive``; goal
        ≤ 0.67 at batch 128; up = slower than before)."""
        return _inverse(common.value(m, D, "speedup_vs_naive", model=MODEL, batch=batch,
                                     variant="engine"))

    track_time_vs_naive.unit = "×"

    def track_matmul_shortfall(self, m, batch):
        """100 − ``matmul_share``: how far a training step's GFLOP/s is below the CPU's own
        n×n matmul rate, % (goal ≤ 30 at batch 1024; up = worse)."""
        return common.worse_up(m, D, "matmul_share", model=MODEL, batch=batch,
                               variant="engine")

    track_matmul_shortfall.unit = "%"

    def track_us_per_sample(self, m, batch):
        """Engine wall time per training example, µs (1e6 / ``samples_per_s``; raw wall
        clock, the noisiest value here; up = slower)."""
        return 1e6 * _inverse(common.value(m, D, "samples_per_s", model=MODEL, batch=batch,
                                           variant="engine"))

    track_us_per_sample.unit = "µs"


class Throughput(_ThroughputRun):
    """Everything else the task's headline covers: PGD vs the fastest peer, K models at once, and
    the profiler's view of one mlp-512 step at batch 128."""

    def track_pgd_time_vs_peer(self, m):
        """Our PGD-L∞ time / the fastest installed peer library's (torchattacks, Foolbox,
        ART) for the same work, × (1 / ``speedup_vs_fastest_peer``; goal ≤ 0.67; up =
        worse)."""
        v = next((r["value"] for (d, k), r in m.items()
                  if d == D and k.startswith("speedup_vs_fastest_peer[attack=pgd-linf,")
                  and k.endswith(",variant=ours]")), float("nan"))
        return _inverse(v)

    track_pgd_time_vs_peer.unit = "×"

    def track_time_vs_sequential(self, m):
        """``train_many`` (vmap, K models at once) time / K sequential ``train`` runs', at
        the suite's largest K, × (1 / ``speedup_vs_sequential``; up = worse)."""
        ks = [(int(k.split("variant=vmap-")[1].rstrip("]")), r["value"])
              for (d, k), r in m.items()
              if d == D and k.startswith("speedup_vs_sequential[") and "variant=vmap-" in k]
        return _inverse(max(ks)[1]) if ks else float("nan")

    track_time_vs_sequential.unit = "×"

    def track_non_gemm_share(self, m):
        """100 − ``gemm_share``: % of a profiled mlp-512 batch-128 step spent outside matrix
        multiplies (overhead the loop could still cut; up = worse)."""
        return common.worse_up(m, D, "gemm_share", model=MODEL, batch="128",
                               variant="profiled")

    track_non_gemm_share.unit = "%"

    def track_speedup_ceiling_vs_naive(self, m):
        """Naive step time / the step's matmul time, × (direction none: the most any loop
        doing these matmuls could beat the naive one by; a move means the model, the
        naive loop or the BLAS changed, not the engine)."""
        return common.value(m, D, "speedup_ceiling_vs_naive", model=MODEL, batch="128",
                            variant="engine")

    track_speedup_ceiling_vs_naive.unit = "×"
