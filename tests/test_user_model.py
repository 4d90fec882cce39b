"""Bring your own model: ``--model package.module:factory`` anywhere a model name is accepted,
checked up front with one line per failure."""

import sys
import textwrap

import pytest
import torch

from quirkbench.engine import models
from quirkbench.errors import UserError
from quirkbench.tracking import results

MOD = "qb_test_user_models"
SOURCE = '''
import math
from torch import nn


def good(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), 32), nn.ReLU(),
                         nn.Linear(32, num_classes))


def wrong_shape(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), num_classes + 1))


def raises(input_shape, num_classes):
    raise ValueError("this factory is broken")


def not_a_module(input_shape, num_classes):
    return lambda x: x


def bad_forward(input_shape, num_classes):
    return nn.Linear(7, num_classes)  # no Flatten, wrong width: fails on a real batch


class Stuck(nn.Module):
    """Ignores .to(): its weights stay on the meta device."""

    def __init__(self, n, c):
        super().__init__()
        self.lin = nn.Linear(n, c, device="meta")

    def _apply(self, fn, recurse=True):
        return self

    def forward(self, x):
        return self.lin(x.flatten(1))


def stuck(input_shape, num_classes):
    return Stuck(math.prod(input_shape), num_classes)


NOT_CALLABLE = 42
'''


@pytest.fixture(scope="module", autouse=True)
def user_module(tmp_path_factory):
    d = tmp_path_factory.mktemp("usermods")
    (d / f"{MOD}.py").write_text(textwrap.dedent(SOURCE))
    (d / "qb_test_broken_module.py").write_text("raise RuntimeError('boom at import')\n")
    sys.path.insert(0, str(d))
    yield
    sys.path.remove(str(d))
    for m in (MOD, "qb_test_broken_module"):
        sys.modules.pop(m, None)


BAD = [  # (factory reference, fragment of the one-line error)
    ("qb_no_such_module_xyz:f", "cannot import module 'qb_no_such_module_xyz'"),
    ("qb_test_broken_module:f", "RuntimeError: boom at import"),
    (f"{MOD}:missing", "has no attribute 'missing'"),
    (f"{MOD}:NOT_CALLABLE", "NOT_CALLABLE is a int, not callable"),
    (f"{MOD}:", "package.module:factory"),
    (f"{MOD}:raises", "raised ValueError: this factory is broken"),
    (f"{MOD}:not_a_module", "not a torch.nn.Module"),
    (f"{MOD}:wrong_shape", "expected logits of shape (2, 10)"),
    (f"{MOD}:bad_forward", "failed on a dummy batch of shape (2, 1, 8, 8)"),
    (f"{MOD}:stuck", "parameters not on the device cpu"),
]


@pytest.mark.parametrize("ref,fragment", BAD, ids=[r.split(":")[-1] or "empty" for r, _ in BAD])
def test_bad_factory_is_one_line_exit_2(run_cli, tmp_path, ref, fragment):
    code, _, err = run_cli("run", "--suite", "smoke", "--tasks", "memorization", "--dataset",
                           "digits", "--model", ref, "--device", "cpu", "--out",
                           tmp_path / "r.json", "--no-report", "-q")
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert fragment in err and ref in err


def test_bad_reference_in_set_fails_before_any_unit_runs(run_cli, tmp_path):
    code, _, err = run_cli("run", "--suite", "smoke", "--tasks", "memorization", "adversarial",
                           "--set", f"adversarial.model={MOD}:missing", "--device", "cpu",
                           "--out", tmp_path / "r.json", "--no-report", "-q")
    assert code == 2 and "has no attribute 'missing'" in err
    assert not (tmp_path / "r.json").exists()  # refused while planning: nothing ran


def test_validation_accepts_a_good_factory_and_leaves_the_rng_alone():
    state = torch.get_rng_state()
    models.validate_model(f"{MOD}:good", (1, 8, 8), 10, "cpu")
    assert torch.equal(state, torch.get_rng_state())
    m = models.make_model(f"{MOD}:good", (1, 8, 8), 10, seed=3)
    m2 = models.make_model(f"{MOD}:good", (1, 8, 8), 10, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(m.parameters(), m2.parameters(), strict=True))
    with pytest.raises(UserError, match=r"expected logits of shape \(2, 10\)"):
        models.validate_model(f"{MOD}:wrong_shape", (1, 8, 8), 10, "cpu")


def test_model_settings_are_declared_and_the_flag_skips_the_student():
    from quirkbench.config import model_settings
    from quirkbench.tasks import get

    assert model_settings(get("compression").config()) == {
        "model": ("lenet-300-100", True), "student": ("mlp-100", False)}
    follows = {k for k, (_, f) in model_settings(get("throughput").config()).items() if f}
    assert follows == {"pgd_model", "many_model", "profile_model"}


@pytest.mark.parametrize("how", ["--model", "--set"])
def test_user_model_runs_through_a_task(run_cli, tmp_path, how):
    out = tmp_path / "r.json"
    arg = ["--model", f"{MOD}:good"] if how == "--model" else \
        ["--set", f"memorization.model={MOD}:good"]
    code, _, err = run_cli("run", "--suite", "smoke", "--tasks", "memorization", "--dataset",
                           "digits", *arg, "--device", "cpu", "--out", out, "--no-report", "-q",
                           "--set", "memorization.n_train=200", "--set",
                           "memorization.n_test=100")
    assert code == 0, err
    unit = results.read(out)["units"]["memorization/digits/0"]
    assert unit["status"] == "done" and unit["config"]["model"] == f"{MOD}:good"


def test_profile_checks_a_factory_too(run_cli, tmp_path):
    code, _, err = run_cli("profile", "--model", f"{MOD}:wrong_shape", "--device", "cpu",
                           "--out", tmp_path / "p")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "expected logits of shape (2, 10)" in err and not (tmp_path / "p").exists()
