"""pytest-benchmark: one PGD-L∞ iteration on a batch (ours, and Foolbox 3's for comparison).

Skipped in the plain test run (``--benchmark-skip`` in pyproject); run with
``pytest tests/bench/test_bench_attack.py --benchmark-only`` and compare commits with
``--benchmark-autosave`` / ``--benchmark-compare-fail=mean:10%``. Throughput is
batch × iterations / time: 256 inputs per iteration here.
"""

import pytest
import torch

from quirkbench.engine.models import make_model
from quirkbench.methods.attacks import PGD

BATCH = 256


@pytest.fixture(scope="module")
def setup():
    """An untrained mlp-100-100 (an iteration costs the same trained or not) and a batch."""
    g = torch.Generator().manual_seed(0)
    model = make_model("mlp-100-100", (1, 28, 28), 10, seed=0).eval()
    x = torch.rand(BATCH, 1, 28, 28, generator=g)
    y = torch.randint(0, 10, (BATCH,), generator=g)
    return model, x, y


def test_pgd_linf_iteration(benchmark, setup):
    model, x, y = setup
    attack = PGD(0.3, "linf", steps=1)
    benchmark.extra_info["inputs_x_iterations"] = BATCH
    out = benchmark(attack, model, x, y)
    assert out.shape == x.shape and attack.iterations == 1


def test_foolbox_pgd_linf_iteration(benchmark, setup):
    fb = pytest.importorskip("foolbox")
    model, x, y = setup
    fmodel = fb.PyTorchModel(model, bounds=(0, 1))
    attack = fb.attacks.LinfPGD(steps=1, rel_stepsize=2.5)
    benchmark.extra_info["inputs_x_iterations"] = BATCH
    benchmark(attack, fmodel, x, y, epsilons=[0.3])
