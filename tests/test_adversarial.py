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
    assert 2 <= int(df["headline"].sum()) <= 5
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
])
def test_bad_input_is_one_line_exit_2(tmp_path, capsys, setting, words):
    rc = cli.main(["run", "--suite", "smoke", "--tasks", "adversarial", "--no-report", "-q",
                   "--out", str(tmp_path / "bad.json"), "--set", setting])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and words in err
