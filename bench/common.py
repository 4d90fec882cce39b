"""Seeded, cached getters shared by the asv benchmarks (numpy's ``benchmarks/common.py`` style).

Everything here calls the library the way the CLI does; no metric is computed only here.
The phenomenon tracks (``bench_tracks``) read the night's results document and orient
their values in the library (``quirkbench.tracking.tracks``).
"""

from __future__ import annotations

import functools
import os
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

SEED = 0  # the seed of the timing benchmarks' data and models
#: clock of the time_* benchmarks (``QB_ASV_TIMER``): ``wall`` (default; the GPU runner) or
#: ``process`` (CPU time of the one-threaded process: what the code costs on a shared CPU,
#: where wall time also counts the wait for a core; scripts/nightly.sh picks it on a CPU)
TIMER = time.process_time if os.environ.get("QB_ASV_TIMER") == "process" \
    else timeit.default_timer
#: benchmarks without a direction (fnmatch patterns of asv's names): the nightly gate
#: (``quirkbench nightly --either-way``) fails a move either way, not only a rise
EITHER_WAY = ("bench_tracks.*.track_undirected*",)


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
