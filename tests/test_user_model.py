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


# --------------------------------------------------------------------------- your project

PROJECT_MOD = "qb_test_project_model"
PROJECT_SOURCE = '''
import math
from torch import nn


def factory(input_shape, num_classes):
    return nn.Sequential(nn.Flatten(), nn.Linear(math.prod(input_shape), WIDTH), nn.ReLU(),
                         nn.Linear(WIDTH, num_classes))


def raises(input_shape, num_classes):
    return helper(input_shape)


def helper(shape):
    raise ValueError(f"cannot take {shape}")


WIDTH = 16
'''


def _git(repo, *args):
    import subprocess

    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                           text=True).stdout.strip()


@pytest.fixture
def project(tmp_path, monkeypatch):
    """The user's own git repository holding their factory module, on the import path."""
    repo = tmp_path / "myproject"
    repo.mkdir()
    (repo / f"{PROJECT_MOD}.py").write_text(PROJECT_SOURCE)
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "-c", "user.email=u@example.org", "-c", "user.name=u", "commit", "-qm", "model")
    monkeypatch.syspath_prepend(str(repo))
    monkeypatch.delitem(sys.modules, PROJECT_MOD, raising=False)
    monkeypatch.setattr(models, "_VALIDATED", {})
    return repo


def _run_project(run_cli, out, ref=f"{PROJECT_MOD}:factory"):
    return run_cli("run", "--suite", "smoke", "--tasks", "landscape", "--dataset", "digits",
                   "--model", ref, "--device", "cpu", "--out", out, "--no-report", "-q")


def test_a_run_records_the_users_project_commit_beside_quirkbenchs(run_cli, project, tmp_path):
    out = tmp_path / "r.json"
    code, _, err = _run_project(run_cli, out)
    assert code == 0, err
    meta = results.read(out)["meta"]
    assert meta["project"]["commit"] == _git(project, "rev-parse", "HEAD")
    assert meta["project"]["dirty"] is False and meta["project"]["model"].endswith(":factory")
    assert meta["commit"] != meta["project"]["commit"]  # quirkbench's own stays beside it
    df = results.load_results(out)
    assert set(df["project_commit"]) == {meta["project"]["commit"]}
    assert results.run_commit(meta) == meta["project"]["commit"]
    from quirkbench.commands.export import _params
    from quirkbench.report.history import commit_label
    from quirkbench.tracking.changepoints import history_series

    assert history_series(tmp_path)[0]["commits"] == [meta["project"]["commit"]]
    assert commit_label(meta) == meta["project"]["commit"][:7]  # the history page's axis
    assert _params({"meta": meta, "units": {}})["project_commit"] == meta["project"]["commit"]
    # an uncommitted edit: the same commit, a dirty tree
    (project / f"{PROJECT_MOD}.py").write_text(PROJECT_SOURCE + "\n# edited\n")
    sys.modules.pop(PROJECT_MOD, None)
    code, _, err = _run_project(run_cli, tmp_path / "r2.json")
    assert code == 0, err
    assert results.read(tmp_path / "r2.json")["meta"]["project"]["dirty"] is True


def test_an_edited_model_is_never_resumed_into_old_results(run_cli, project, tmp_path):
    out = tmp_path / "r.json"
    assert _run_project(run_cli, out)[0] == 0
    first = results.read(out)["units"]["landscape/digits/0"]["config"]["model_sources"]
    assert set(first) == {"model"} and len(first["model"]["digest"]) == 16
    assert _run_project(run_cli, out)[0] == 0  # the same model: resumed, nothing to do
    (project / f"{PROJECT_MOD}.py").write_text(PROJECT_SOURCE.replace("WIDTH = 16",
                                                                      "WIDTH = 24"))
    sys.modules.pop(PROJECT_MOD, None)
    models._VALIDATED.clear()
    code, _, err = _run_project(run_cli, out)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "already holds landscape/digits/0 with another version of your model" in err


def test_a_factory_error_names_the_users_frame_and_writes_nothing(run_cli, project, tmp_path):
    out = tmp_path / "r.json"
    code, stdout, err = _run_project(run_cli, out, f"{PROJECT_MOD}:raises")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "raised ValueError: cannot take (1, 8, 8)" in err
    assert f"{PROJECT_MOD}.py:16 in helper)" in err  # the line in the user's own code
    assert not out.exists() and not stdout.strip()


def test_a_wrong_shape_names_where_the_factory_is_defined():
    with pytest.raises(UserError, match=rf"\(wrong_shape at .*{MOD}\.py:\d+\)"):
        models.validate_model(f"{MOD}:wrong_shape", (1, 8, 8), 10, "cpu")
