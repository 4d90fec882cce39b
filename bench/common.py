"""Seeded, cached getters shared by the asv benchmarks (numpy's ``benchmarks/common.py`` style).

Everything here calls the library the way the CLI does; no metric is computed only here.

Direction (asv counts an *increase* as a regression, asv#1617): each tracked value is
reported so that up = worse, and its name says so:

* lower-is-better metrics (seconds, forgetting %) are tracked as they are;
* higher-is-better percentages are tracked as their shortfall from 100
  (``test_acc`` 86% → ``track_test_error`` 14%), other higher-is-better values negated
  (``worse_up``), or inverted where that reads better (samples/s → s per sample);
* direction-none phenomenon values (steps to fit, slowdown ×, success rate %) are tracked as
  they are: asv then shows an increase as "regressed" and a decrease as "improved", but both
  mean the phenomenon *moved*; ``quirkbench compare`` says "moved" for them.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import time
import timeit

import torch

#: the checkout whose code must be measured (scripts/nightly.sh sets it): asv drops PYTHONPATH,
#: and an installed quirkbench from elsewhere would be measured under this commit's name
if os.environ.get("QB_CHECKOUT_SRC"):
    import quirkbench

    _where = os.path.realpath(quirkbench.__file__)
    if not _where.startswith(os.path.realpath(os.environ["QB_CHECKOUT_SRC"]) + os.sep):
        raise ImportError(f"asv imports quirkbench from {_where}, not from the checkout "
                          f"{os.environ['QB_CHECKOUT_SRC']}")

#: suite whose settings the track_* benchmarks use (smoke on a CPU, nightly on the GPU runner)
SUITE = os.environ.get("QB_ASV_SUITE", "smoke")
SEED = 0
#: clock of the time_* benchmarks (``QB_ASV_TIMER``): ``wall`` (default; the GPU runner) or
#: ``process`` (CPU time of the one-threaded process: what the code costs on a shared CPU,
#: where wall time also counts the wait for a core; scripts/nightly.sh picks it on a CPU)
TIMER = time.process_time if os.environ.get("QB_ASV_TIMER") == "process" \
    else timeit.default_timer
#: seeds of the phenomenon tracks (``QB_ASV_SEEDS``, default 0,1,2): each seed is its own asv
#: series, so asv's step detection reads a deterministic value per seed, not a mean
SEEDS = [s.strip() for s in os.environ.get("QB_ASV_SEEDS", "0,1,2").split(",") if s.strip()]
#: benchmarks without a direction (fnmatch patterns of asv's names): the nightly gate
#: (``quirkbench nightly --either-way``) fails a move either way, not only a rise
EITHER_WAY = (
    "*.Memorization.track_steps_to_fit*", "*.Memorization.track_slowdown*",
    "*.Adversarial.track_*", "bench_beyond.*", "*.Throughput.track_speedup_ceiling_vs_naive*",
)


def run_task(task: str, datasets: tuple[str, ...] = ("mnist5k",), suite: str = SUITE,
             seed: int = SEED) -> dict[tuple[str, str], dict]:
    """Run one task of a suite once (what ``quirkbench run --suite S --tasks T`` does) and
    return {(dataset, metric key): {value, unit, direction}} — picklable, for setup_cache."""
    from quirkbench import load_results, run_suite

    with tempfile.TemporaryDirectory() as tmp:
        path = run_suite(suite, tasks=[task], datasets=list(datasets), seeds=[seed],
                         device=os.environ.get("QB_ASV_DEVICE", "cpu"),
                         out=os.path.join(tmp, "run.json"), log=lambda m: None)
        df = load_results(path)
    return {(r.dataset, r.key): {"value": r.value, "unit": r.unit, "direction": r.direction}
            for r in df.itertuples()}


def run_seeds(task: str, **kw) -> dict[str, dict]:
    """``run_task`` once per seed in ``SEEDS``: {seed: metrics}, for a ``setup_cache`` whose
    tracks take ``seed`` as their last parameter."""
    return {s: run_task(task, seed=int(s), **kw) for s in SEEDS}


def key(name: str, **tags: str) -> str:
    """The metric key ``name[k=v,...]`` (tags sorted), as ``quirkbench.Metric.key`` makes it."""
    from quirkbench import Metric

    return Metric(name, 0.0, "1", tags=tags).key


def value(metrics: dict, dataset: str, name: str, **tags: str) -> float:
    """The metric's value from ``run_task``'s dict; NaN when the run did not produce it
    (asv then shows n/a)."""
    m = metrics.get((dataset, key(name, **tags)))
    if m is None or m["value"] is None or not math.isfinite(m["value"]):
        return math.nan
    return float(m["value"])


def worse_up(metrics: dict, dataset: str, name: str, **tags: str) -> float:
    """The value oriented so that an increase is worse, from the metric's direction:
    lower-is-better as it is, higher-is-better % as 100 − value, other higher-is-better
    negated, direction none as it is (asv then shows a move either way)."""
    v = value(metrics, dataset, name, **tags)
    m = metrics.get((dataset, key(name, **tags)), {})
    if m.get("direction") == "higher":
        return 100.0 - v if m["unit"] == "%" else -v
    return v


@functools.cache
def data(name: str = "mnist5k", n_train: int = 1000, n_test: int = 200, seed: int = SEED,
         device: str = "cpu"):
    """A seeded, class-balanced subset on ``device`` (cached per process)."""
    from quirkbench.engine.data import load

    return load(name, seed=seed, device=device, n_train=n_train, n_test=n_test)


def model(name: str = "mlp-512", dataset: str = "mnist5k", seed: int = SEED,
          device: str = "cpu") -> torch.nn.Module:
    from quirkbench.engine.models import make_model

    ds = data(dataset, device=device)
    return make_model(name, ds.input_shape, ds.num_classes, seed=seed).to(device)


def reference_epoch(net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 128,
                    lr: float = 0.01) -> None:
    """One epoch of the textbook loop, frozen here as the yardstick of the paired timings
    (``bench_core.TrainEpochPaired``): a random permutation, index the resident tensors,
    forward, cross-entropy, backward, SGD with momentum 0.9. It does the engine epoch's work
    (same model, data, batch) and none of its code, so a change to the engine moves the
    engine's time and not this one's, while the machine's drift moves both."""
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9)
    perm = torch.randperm(len(x), device=x.device)
    for i in range(0, len(x) - batch + 1, batch):
        idx = perm[i:i + batch]
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(net(x[idx]), y[idx]).backward()
        opt.step()


def paired_ratio(run, reference, repeats: int, warmup: int = 2, timer=None) -> float:
    """Median over ``repeats`` of time(run) / time(reference), the two timed back to back
    in every repeat (run, reference, run, reference, ...) after ``warmup`` unrecorded calls
    of each: load or clock drift that slows one repeat slows both of its timings alike and
    cancels in the ratio (``quirkbench.engine.timing.paired_ratio``, which the throughput
    task's ``speedup_vs_naive`` uses, on whole calls timed by ``timer``)."""
    from quirkbench.engine.timing import paired_ratio as median_of_ratios

    timer = timer or TIMER
    for _ in range(warmup):
        run()
        reference()
    runs, refs = [], []
    for _ in range(repeats):
        t0 = timer()
        run()
        t1 = timer()
        reference()
        t2 = timer()
        runs.append(t1 - t0)
        refs.append(max(t2 - t1, 1e-12))
    return median_of_ratios(runs, refs)


def device_or_skip(device: str) -> str:
    """asv skips a benchmark whose setup raises NotImplementedError (e.g. no GPU)."""
    if device == "cuda" and not torch.cuda.is_available():
        raise NotImplementedError("needs a CUDA GPU")
    return device


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
