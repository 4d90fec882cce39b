"""The adversarial task end to end (smoke settings) and its bad-input handling."""

import pytest

from quirkbench import cli
from quirkbench.tracking.results import load_results, read

SMALL = ["--set", "adversarial.n_attack=100", "--set", "adversarial.min_search_steps=4"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("adv") / "s.json"
    rc = cli.main(["run", "--suite", "smoke", "--tasks", "adversarial", "--out", str(out),
                   "--no-report", "-q", *SMALL])
    assert rc == 0
    return load_results(out), read(out)


def _value(df, key):
    row = df[df["key"] == key]
    assert len(row) == 1, key
    return row.iloc[0]


def test_phenomenon_and_units(smoke):
    df, _ = smoke
    assert _value(df, "success_rate[attack=pgd,eps=0,norm=linf]")["value"] == 0.0
    top = _value(df, "success_rate[attack=pgd,eps=0.3,norm=linf]")
    assert top["unit"] == "%" and top["value"] >= 90.0 and top["holds"]
    assert _value(df, "robust_accuracy[attack=pgd,eps=0.3,norm=linf]")["value"] <= 10.0
    noise = _value(df, "noise_success_rate[eps=0.1,norm=linf]")["value"]
    assert noise < _value(df, "success_rate[attack=pgd,eps=0.1,norm=linf]")["value"]
    dist = _value(df, "median_min_distortion_l2")
    assert dist["unit"] == "1" and 0.005 < dist["value"] < 0.2  # Szegedy: 0.058
    assert 2 <= int(df["headline"].sum()) <= 6
    assert set(df["unit"]) <= {"%", "1", "steps"}


def test_success_curve_series(smoke):
    _, doc = smoke
    unit = next(iter(doc["units"].values()))
    curve = unit["series"]["success_curve"]
    assert {tuple(sorted(r)) for r in curve} == {
        ("attack", "eps", "noise_success_rate", "norm", "success_rate")}
    pgd = [r["success_rate"] for r in curve if r["attack"] == "pgd" and r["norm"] == "linf"]
    assert pgd == sorted(pgd)  # non-decreasing in ε


@pytest.mark.parametrize("setting,words", [
    ("adversarial.eps_linf=[0.1,-0.1]", "≥ 0"),
    ("adversarial.norms=['l3']", "unknown norm"),
    ("adversarial.attacks=['cw']", "unknown attack"),
    ("adversarial.eps_linf=[0.1,1.5]", "exceeds the data range"),
    ("adversarial.eps_l2=[40.0]", "exceeds the data range"),
    ("adversarial.loss='hinge'", "unknown attack loss"),
    ("adversarial.distortion_models=3", "1 (P1) or 2 (P1 and P2)"),
    ("adversarial.steps_models=0", "1 (P1) or 2 (P1 and P2)"),
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, setting, words):
    rc = cli.main(["run", "--suite", "smoke", "--tasks", "adversarial", "--no-report", "-q",
                   "--out", str(tmp_path / "bad.json"), "--set", setting])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and words in err


def test_noise_control_at_the_minimal_distortion(smoke):
    """Szegedy's control: noise as large as each input's minimal adversarial perturbation;
    the fixed-ε noise rates carry no check."""
    df, _ = smoke
    for norm in ("l2", "linf"):
        m = _value(df, f"noise_success_rate[at=min_distortion,norm={norm}]")
        assert m["holds"] is not None and m["unit"] == "%" and 0 <= m["value"] <= 100
    fixed = df[(df["metric"] == "noise_success_rate") & df["eps"].notna()]
    assert len(fixed) and fixed["holds"].isna().all()


@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_noise_at_has_each_inputs_own_size_after_clipping(norm):
    import torch

    from quirkbench.tasks.adversarial import noise_at

    g = torch.Generator().manual_seed(0)
    x = (torch.rand(6, 1, 28, 28, generator=g) > 0.8).float()  # MNIST-like: mostly 0, some 1
    dist = torch.tensor([0.5, 1.0, 2.0, float("inf"), 0.05, 3.0]) if norm == "l2" else \
        torch.tensor([0.05, 0.1, 0.2, float("inf"), 0.01, 0.3])
    xn = noise_at(x, dist, norm, (0.0, 1.0), seed=1)
    assert xn.min() >= 0 and xn.max() <= 1
    d = (xn - x).flatten(1)
    size = d.norm(dim=1) if norm == "l2" else d.abs().amax(1)
    ok = torch.isfinite(dist)
    assert torch.allclose(size[ok], dist[ok], rtol=1e-4)
    assert torch.equal(xn[~ok], x[~ok])


def test_l2_budgets_scale_with_input_size():
    from quirkbench.tasks.adversarial import AdversarialConfig, l2_scale

    assert l2_scale(AdversarialConfig(), 784) == 1.0
    assert l2_scale(AdversarialConfig(), 64) == pytest.approx((64 / 784) ** 0.5)


def test_transfer_is_held_against_noise_of_the_perturbations_own_size(smoke):
    df, _ = smoke
    rows = df[(df["metric"] == "transfer_rate") & (df["attack"] == "pgd")]
    assert len(rows)
    for r in rows.itertuples():
        key = f"noise_transfer_rate[attack=pgd,eps={r.eps},matched=l2,norm={r.norm}]"
        matched = _value(df, key)["value"]
        assert bool(r.holds) == (r.value > matched)


def test_transfer_check_uses_the_size_matched_noise(monkeypatch):
    """With a 'size-matched' noise that always flips P2, no transfer can beat it."""
    import torch

    from quirkbench.tasks import Context, get
    from quirkbench.tasks import adversarial as T

    monkeypatch.setattr(T, "noise_at", lambda x, d, norm, bounds, seed: 1.0 - x)
    task = get("adversarial")
    cfg = task.make_config("smoke", {"norms": ("linf",), "eps_linf": (0.0, 0.3),
                                     "n_attack": 100, "min_search_steps": 2})
    out = task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))
    by = {m.key: m for m in out.metrics}
    assert by["transfer_rate[attack=pgd,eps=0.3,norm=linf]"].holds is False
    assert by["noise_transfer_rate[attack=pgd,eps=0.3,matched=l2,norm=linf]"].value > 50


def test_steps_to_success_per_budget_headline_at_the_largest_linf(smoke):
    df, doc = smoke
    rows = df[df["metric"] == "steps_to_success"]
    steps = next(iter(doc["units"].values()))["config"]["pgd_steps"]
    assert len(rows) == 4 and set(rows["attack"]) == {"pgd"} and "0" not in set(rows["eps"])
    assert ((rows["value"] >= 0) & (rows["value"] <= steps + 1)).all()
    top = rows[rows["headline"]]
    assert list(top["key"]) == ["steps_to_success[attack=pgd,eps=0.3,norm=linf]"]
    assert top.iloc[0]["direction"] == "lower" and top.iloc[0]["unit"] == "steps"


def test_a_halved_pgd_step_shows_in_the_steps_not_the_success(monkeypatch):
    """The planted weaker attack (PGD's step halved) still flips nearly every input at
    ε = 0.3, but it needs more steps: the efficiency headline sees what the rate cannot."""
    import torch

    from quirkbench.methods.attacks.pgd import PGD
    from quirkbench.tasks import Context, get

    task = get("adversarial")
    cfg = task.make_config("smoke", {"norms": ("linf",), "eps_linf": (0.0, 0.3),
                                     "n_attack": 100, "min_search_steps": 2})
    key = "[attack=pgd,eps=0.3,norm=linf]"

    def run():
        out = task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))
        return {m.key: m.value for m in out.metrics}

    before = run()
    step_for = PGD.step_for
    monkeypatch.setattr(PGD, "step_for", lambda self, eps: 0.5 * step_for(self, eps))
    after = run()
    assert after["success_rate" + key] >= before["success_rate" + key] - 5
    assert after["steps_to_success" + key] > 1.5 * before["steps_to_success" + key]


def test_the_l2_distortion_headline_averages_both_models_when_asked():
    """distortion_models 2: the headline is the mean of P1's and P2's medians, P1's the
    same number the one-model headline gives."""
    import torch

    from quirkbench.tasks import Context, get

    task = get("adversarial")
    small = {"norms": ("l2",), "eps_l2": (0.0, 1.0), "n_attack": 100, "min_search_steps": 3,
             "attacks": ("pgd",)}

    def run(models):
        cfg = task.make_config("smoke", {**small, "distortion_models": models})
        out = task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))
        return {m.key: m for m in out.metrics}

    one, two = run(1), run(2)
    head = two["median_min_distortion_l2"]
    p1, p2 = two["median_min_distortion_l2[model=P1]"], two["median_min_distortion_l2[model=P2]"]
    assert head.headline and not p1.headline and not p2.headline
    assert p1.value == one["median_min_distortion_l2"].value and p2.value != p1.value
    assert head.value == pytest.approx((p1.value + p2.value) / 2)
    assert "median_min_distortion_l2[model=P1]" not in one


def test_the_steps_headline_averages_both_models_when_asked():
    import torch

    from quirkbench.tasks import Context, get

    task = get("adversarial")
    small = {"norms": ("linf",), "eps_linf": (0.0, 0.3), "n_attack": 100, "min_search_steps": 2,
             "attacks": ("pgd",)}
    key = "steps_to_success[attack=pgd,eps=0.3,norm=linf]"

    def run(models):
        cfg = task.make_config("smoke", {**small, "steps_models": models})
        out = task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))
        return {m.key: m for m in out.metrics}

    one, two = run(1), run(2)
    p1 = two["steps_to_success[attack=pgd,eps=0.3,model=P1,norm=linf]"]
    p2 = two["steps_to_success[attack=pgd,eps=0.3,model=P2,norm=linf]"]
    assert two[key].headline and not p1.headline and not p2.headline
    assert p1.value == one[key].value and p2.value != p1.value
    assert two[key].value == pytest.approx((p1.value + p2.value) / 2)
    assert not any("model=" in k for k in one if k.startswith("steps_to_success"))
