"""pytest-benchmark micro-benchmarks of the hot loops: one training step, one attack step.

Skipped by plain ``pytest`` (``--benchmark-skip`` in pyproject). Run and save, then compare a
later commit against the saved run and fail on a slowdown::

    pytest tests/bench/test_bench_core.py --benchmark-only --benchmark-autosave
    pytest tests/bench/test_bench_core.py --benchmark-only \
        --benchmark-compare --benchmark-compare-fail=mean:25%

CUDA variants synchronize inside the timed function (kernels are asynchronous) and are
skipped without a GPU.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from quirkbench.engine.data import load
from quirkbench.engine.models import make_model
from quirkbench.engine.train import TrainConfig, make_optimizer

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))]
BATCH = 128  # the engine's default batch size


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.fixture(scope="module")
def mnist():
    return load("mnist5k", seed=0, n_train=1000, n_test=256)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model_name", ["mlp-512", "lenet5"])
def test_train_step(benchmark, mnist, model_name, device):
    """forward + backward + SGD update on one batch of 128 (the body of ``train``'s loop)."""
    x, y = mnist.x_train[:BATCH].to(device), mnist.y_train[:BATCH].to(device)
    model = make_model(model_name, mnist.input_shape, mnist.num_classes, seed=0).to(device)
    opt = make_optimizer(model.parameters(), TrainConfig())

    def step():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        _sync(device)
        return loss.item()

    for _ in range(3):  # warm-up: allocator, thread pool, cuDNN autotune
        step()
    loss = benchmark(step)
    assert loss > 0


@pytest.mark.parametrize("device", DEVICES)
def test_pgd_step(benchmark, mnist, device):
    """One PGD-L∞ iteration (ε = 0.1, random start) on 256 test images."""
    attacks = pytest.importorskip("quirkbench.methods.attacks")
    x, y = mnist.x_test.to(device), mnist.y_test.to(device)
    model = make_model("mlp-512", mnist.input_shape, mnist.num_classes, seed=0).to(device)
    attack = attacks.PGD(0.1, norm="linf", steps=1)

    def step():
        out = attack(model, x, y)
        _sync(device)
        return out

    step()
    x_adv = benchmark(step)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
