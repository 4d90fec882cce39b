"""pytest-benchmark micro-benchmarks of the hot loops, through the code users run: training
steps through ``quirkbench.engine.train.train`` (the one engine) and PGD iterations through
``quirkbench.methods.attacks.PGD``. Nothing here re-writes the library's loops: a change to
the engine or the attack is a change to what is timed. The one loop written here, the
control (``_textbook_loop``), is the yardstick, frozen on purpose.

Skipped by plain ``pytest`` (``--benchmark-skip`` in pyproject). Each benchmark runs
``WARMUP`` unrecorded rounds, then ``ROUNDS`` recorded ones; the gate compares medians.
Compare a change against its base with ``scripts/bench_gate.sh BASE [HEAD]``: it saves the
base's run and fails (``--benchmark-compare-fail=median:X%``) when a benchmark's median
slowed beyond its own threshold in ``tests/bench/thresholds.json``, set from the spread of
A/A reruns (docs/benchmarks.md). Timed there on ``bench.paired_clock.clock``: every round
in units of the control loop run (untimed) just before it, so the machine's drift between
the two runs cancels. By hand::

    pytest tests/bench/test_bench_core.py --benchmark-only --benchmark-save=base \\
        --benchmark-timer=bench.paired_clock.clock
    pytest tests/bench/test_bench_core.py --benchmark-only -k train --benchmark-compare \\
        --benchmark-compare-fail=median:15% --benchmark-timer=bench.paired_clock.clock

CUDA variants synchronize inside the timed call and skip without a GPU.
"""

from __future__ import annotations

import pytest
import torch

from quirkbench.engine.data import load
from quirkbench.engine.models import make_model
from quirkbench.engine.train import TrainConfig, train

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU"))]
BATCH = 128  # the engine's default batch size
STEPS = 16  # training steps per timed call (4 epochs of 512 examples)
WARMUP, ROUNDS = 2, 15


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.fixture(scope="module")
def mnist():
    return load("mnist5k", seed=0, n_train=4 * BATCH, n_test=256)


def _textbook_loop(x, y, device):
    """``STEPS`` steps of the textbook loop (index, forward, cross-entropy, backward, SGD) on
    an mlp-512, frozen in this file: the same code on both sides of the gate."""
    model = make_model("mlp-512", (1, 28, 28), 10, seed=0).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    g = torch.Generator(device=device).manual_seed(0)

    def steps():
        for _ in range(STEPS):
            idx = torch.randint(len(x), (BATCH,), generator=g, device=device)
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
        _sync(device)

    return steps


@pytest.fixture
def pair(mnist):
    """``setup`` for ``benchmark.pedantic``: one untimed call of the control before every
    round, which becomes the unit of ``bench.paired_clock.clock`` (the gate's timer), so
    each round is timed relative to the machine's speed a moment before. With another
    timer it only costs time."""
    from bench import paired_clock

    def make(device):
        control = _textbook_loop(mnist.x_train.to(device), mnist.y_train.to(device), device)
        return lambda: paired_clock.calibrate(control)

    return make


@pytest.mark.parametrize("device", DEVICES)
def test_reference_step(benchmark, mnist, pair, device):
    """The CONTROL, not the engine: the textbook loop itself (``_textbook_loop``), so the two
    sides of the gate run the same code here. On the paired clock it reads about 1 (the
    same work as its unit); when its median moved between base and head beyond
    ``_control_drift`` % (tests/bench/thresholds.json) the pairing did not hold and
    ``scripts/bench_gate.sh`` runs both sides again instead of believing the other ratios."""
    steps = _textbook_loop(mnist.x_train.to(device), mnist.y_train.to(device), device)
    benchmark.pedantic(steps, setup=pair(device), rounds=ROUNDS, warmup_rounds=WARMUP)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("model_name", ["mlp-512", "lenet5"])
def test_train_step(benchmark, mnist, pair, model_name, device):
    """``STEPS`` training steps of batch 128 through ``engine.train.train`` (no target, no
    test probe; it ends with one pass over the 512 training examples). Per step: / STEPS."""
    x, y = mnist.x_train.to(device), mnist.y_train.to(device)
    model = make_model(model_name, mnist.input_shape, mnist.num_classes, seed=0).to(device)
    cfg = TrainConfig(max_epochs=STEPS, max_steps=STEPS, target_train_acc=None,
                      eval_test=False)

    def steps():
        out = train(model, x, y, cfg)
        _sync(device)
        return out

    benchmark.extra_info["steps_per_call"] = STEPS
    out = benchmark.pedantic(steps, setup=pair(device), rounds=ROUNDS, warmup_rounds=WARMUP)
    assert out.steps == STEPS


@pytest.mark.parametrize("device", DEVICES)
def test_pgd_step(benchmark, mnist, pair, device):
    """Five PGD-L∞ iterations (ε = 0.1, random start) on 256 test images, through
    ``methods.attacks.PGD``."""
    from quirkbench.methods.attacks import PGD

    x, y = mnist.x_test.to(device), mnist.y_test.to(device)
    model = make_model("mlp-512", mnist.input_shape, mnist.num_classes, seed=0).to(device)
    attack = PGD(0.1, norm="linf", steps=5)

    def step():
        out = attack(model, x, y)
        _sync(device)
        return out

    benchmark.extra_info["iterations_per_call"] = 5
    x_adv = benchmark.pedantic(step, setup=pair(device), rounds=ROUNDS, warmup_rounds=WARMUP)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6
