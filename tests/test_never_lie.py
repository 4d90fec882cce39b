"""Runs that never lie: training that diverges with a finite loss, or never trains, fails its
unit with the step named; a check that needs a trained model never passes on a dead one; a
runaway unit is stopped by its wall-clock budget; torch's CUDA probe stays off a CPU-only
user's terminal. (The command-line faults are rows of tests/test_faults.py's matrix.)"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from types import SimpleNamespace

import pytest
import torch

from quirkbench.engine import data
from quirkbench.engine.models import make_model
from quirkbench.engine.train import TrainConfig, train, train_many
from quirkbench.errors import DidNotTrainError, DivergenceError
from quirkbench.metrics import Metric
from quirkbench.runner import suite
from quirkbench.tasks import REGISTRY, Task, TaskOutput, register
from quirkbench.tasks.memorization import at_chance_after_training
from quirkbench.tracking import results


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", n_train=500, n_test=200)


def _cfg(lr, target=1.0, epochs=40):
    return TrainConfig(lr=lr, batch_size=128, max_epochs=epochs, target_train_acc=target,
                       check_every=4)


def test_a_finite_explosion_is_divergence_at_its_step(digits):
    """lr=1e6: the loss leaps from 2.3 to ~1e10 at once and the network dies with a finite
    loss (no NaN ever): diverged, at the step where the loss passed 1000× the first one."""
    model = make_model("mlp-128", digits.input_shape, 10, seed=0)
    with pytest.raises(DivergenceError, match=r"^diverged at step 2 \(loss .*e\+\d+, over "
                                              r"1000× the first step's 2\.\d+\)$"):
        train(model, digits.x_train, digits.y_train, _cfg(1e6))
    models = [make_model("mlp-128", digits.input_shape, 10, seed=s) for s in (0, 1)]
    with pytest.raises(DivergenceError, match="over 1000× the first step's"):
        train_many(models, digits.x_train, digits.y_train, _cfg(1e6, None, 3), seeds=[0, 1])


def test_a_dead_network_aiming_for_a_target_did_not_train(digits):
    """lr=5: the loss rises 2-10× (no explosion), the ReLUs die, accuracy sits at chance."""
    model = make_model("mlp-128", digits.input_shape, 10, seed=0)
    with pytest.raises(DidNotTrainError, match=r"^did not train: after \d+ steps \(20 epochs\) "
                                               r"the training accuracy .* is chance"):
        train(model, digits.x_train, digits.y_train, _cfg(5), stall_check=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_labels_learn_slowly_but_are_never_called_dead(digits, seed):
    """Random labels sit near chance for a while, then memorize: at the stall budget (20
    epochs) their accuracy is off chance and their loss down (digits: 20-25% at epoch 25)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 10, digits.y_train.shape, generator=g)
    model = make_model("mlp-128", digits.input_shape, 10, seed=seed)
    r = train(model, digits.x_train, y, _cfg(0.1, epochs=25), seed=seed, stall_check=True)
    assert r.train_acc > 0.15 and r.curve[-1]["train_loss"] < 2.2


def test_a_sane_run_is_untouched(digits):
    model = make_model("mlp-128", digits.input_shape, 10, seed=0)
    r = train(model, digits.x_train, digits.y_train, _cfg(0.1, epochs=40), stall_check=True)
    assert r.fitted or r.train_acc > 0.9


def test_a_fixed_budget_never_calls_a_slow_start_dead():
    """Without a target (sensitivity's ×0.01 init stalls at chance on purpose) only a
    divergence stops training."""
    x, y = torch.randn(256, 5), torch.randint(0, 3, (256,))
    model = torch.nn.Linear(5, 3)
    with torch.no_grad():
        model.weight.zero_()
    r = train(model, x, y, TrainConfig(lr=1e-9, batch_size=8, max_epochs=25,
                                       target_train_acc=None))
    assert r.steps == 25 * 32


def test_random_labels_at_chance_count_only_on_a_model_that_trained():
    trained = SimpleNamespace(test_acc=0.101, train_acc=1.0)
    dead = SimpleNamespace(test_acc=0.101, train_acc=0.102)  # at chance on what it was taught
    assert at_chance_after_training(trained, 10.0, 5.0)
    assert not at_chance_after_training(dead, 10.0, 5.0)


def test_the_docs_divergence_example_fails_fast_and_the_other_unit_finishes(tmp_path):
    """docs/running.md, as written (mnist5k, the smoke suite's settings)."""
    out = suite.run_suite("smoke", tasks=["memorization", "dimensionality"], device="cpu",
                          overrides={"memorization": {"train.lr": 1e6}}, out=tmp_path / "r.json",
                          log=lambda m: None)
    units = results.read(out)["units"]
    mem, dim = units["memorization/mnist5k/0"], units["dimensionality/mnist5k/0"]
    assert mem["status"] == "failed" and mem["metrics"] == []
    # as documented: a finite loss that exploded, at step 2 (no NaN ever appears)
    assert mem["error"].startswith("DivergenceError: diverged at step 2 (loss "), mem["error"]
    assert "over 1000× the first step's 2.3" in mem["error"]
    assert mem["seconds"] < 10
    assert dim["status"] == "done" and dim["metrics"]


# --------------------------------------------------------------------------- the unit budget

@dataclass(frozen=True)
class SleepConfig:
    seconds: float = 0.0


def _sleep(cfg: SleepConfig, ctx) -> TaskOutput:
    time.sleep(cfg.seconds)
    return TaskOutput([Metric("slept", cfg.seconds, "s")])


@pytest.fixture
def sleeper():
    task = register(Task("sleeper", "sleeps (tests)", SleepConfig, _sleep, {"smoke": {}},
                         default_dataset="digits"))
    yield task
    REGISTRY.unregister(task.name)


def test_a_runaway_unit_is_stopped_at_its_budget_and_the_others_run(tmp_path, sleeper):
    t0 = time.perf_counter()
    out = suite.run_suite("smoke", tasks=["sleeper", "dimensionality"], datasets=["digits"],
                          device="cpu", overrides={"sleeper": {"seconds": 60.0}},
                          out=tmp_path / "r.json", log=lambda m: None, unit_budget_s=1.5)
    assert time.perf_counter() - t0 < 30
    doc = results.read(out)
    runaway, other = doc["units"]["sleeper/digits/0"], doc["units"]["dimensionality/digits/0"]
    assert runaway["status"] == "failed" and runaway["error"] == (
        "UnitBudgetExceeded: ran past its wall-clock budget of 1.5 s (--unit-budget)")
    assert other["status"] == "done"
    assert doc["meta"]["invocation"]["unit_budget_s"] == 1.5  # --resume keeps it


def test_each_suite_has_a_unit_budget_and_zero_means_none():
    assert all(s.unit_budget_s >= 6 * s.budget_s or s.unit_budget_s >= 600
               for s in suite.SUITES.values())
    assert suite.unit_budget("smoke", None) == 120.0
    assert suite.unit_budget("smoke", 0) is None


# --------------------------------------------------------------------------- the CUDA probe

def test_what_native_code_prints_during_the_probe_stays_off_the_terminal(capfd):
    with data._quiet_stderr():
        os.write(2, b"gpuGetDeviceCount failed with code 35\n")
    os.write(2, b"after\n")
    assert capfd.readouterr().err == "after\n"


def test_a_cpu_only_torch_is_not_probed(monkeypatch):
    monkeypatch.setattr(data, "_GPUS", [])
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: pytest.fail("probed"))
    assert data.cuda_device_count() == 0
    assert data.resolve_device("auto") == torch.device("cpu")


def test_a_machine_without_the_nvidia_driver_is_not_probed(monkeypatch):
    monkeypatch.setattr(data, "_GPUS", [])
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(torch.version, "hip", None)
    monkeypatch.setattr(data.Path, "exists", lambda self: False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: pytest.fail("probed"))
    assert data.cuda_device_count() == 0


def test_the_probe_is_silenced_where_it_runs(monkeypatch, capfd):
    def noisy():
        os.write(2, b"gpuGetDeviceCount failed with code 35\n")
        return False

    monkeypatch.setattr(data, "_GPUS", [])
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setattr(data.Path, "exists", lambda self: True)
    monkeypatch.setattr(torch.cuda, "is_available", noisy)
    assert data.cuda_device_count() == 0
    assert capfd.readouterr().err == ""
