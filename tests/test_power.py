"""quirkbench power: the minimal detectable change is what the gate's test detects 80% of the
time (checked by simulation), seeds needed, and the command on a results document."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import ttest_ind

from quirkbench.cli import main
from quirkbench.errors import UserError
from quirkbench.metrics import HIGHER, TIMING, Metric
from quirkbench.tracking.compare import compare
from quirkbench.tracking.power import parse_change, power_table
from quirkbench.tracking.results import SCHEMA
from quirkbench.tracking.stats import mde, seeds_needed


@pytest.mark.parametrize("nb, nh", [(2, 2), (3, 3), (5, 5), (3, 6), (20, 20)])
def test_mde_is_detected_80_percent_of_the_time(nb, nh):
    # normal samples with a known shift Δ = the printed MDE: the gate's two-sided test at
    # α = 0.05 must flag about 80% of them (6,000 trials: ±1.6 points at 3σ)
    rng = np.random.default_rng(nb * 100 + nh)
    s = 2.5
    delta = mde(s, nb, nh, alpha=0.05)
    base = rng.normal(10.0, s, (6000, nb))
    head = rng.normal(10.0 + delta, s, (6000, nh))
    p = ttest_ind(head, base, axis=1, equal_var=True).pvalue
    assert abs((p <= 0.05).mean() - 0.80) < 0.025
    # ... and at half the MDE it is far from reliable, at zero about α
    half = (ttest_ind(rng.normal(10 + delta / 2, s, (6000, nh)), base, axis=1).pvalue <= 0.05)
    null = (ttest_ind(rng.normal(10, s, (6000, nh)), base, axis=1).pvalue <= 0.05)
    assert half.mean() < 0.6 and abs(null.mean() - 0.05) < 0.015


def test_large_samples_reduce_to_the_z_formula_and_seeds_needed_inverts_it():
    z = 1.959964 + 0.841621
    assert mde(1.0, 400, 400) == pytest.approx(z * np.sqrt(2 / 400), rel=0.01)
    n = seeds_needed(1.0, 1.0)
    assert mde(1.0, n, n) <= 1.0 < mde(1.0, n - 1, n - 1)
    assert seeds_needed(0.0, 1.0) == 2 and seeds_needed(1.0, 0.0) is None


def test_gate_rows_carry_the_mde_and_the_simulation_agrees_through_compare():
    # the same check through compare(): its mde column for 4 seeds a side, then detection
    import pandas as pd

    rng = np.random.default_rng(7)

    def side(vals):
        return pd.DataFrame([{"task": "t", "dataset": "d", "seed": i, "metric": "m", "key": "m",
                              "value": v, "unit": "1", "direction": HIGHER,
                              "kind": "stochastic"} for i, v in enumerate(vals)])
    base = rng.normal(50, 1.0, 4)
    row = compare(side(base), side(base + 0.1), threshold=0.0).iloc[0]
    assert row["mde"] == pytest.approx(mde(base.std(ddof=1), 4, 4))
    hits = 0
    for _ in range(400):
        b, h = rng.normal(50, 1.0, 4), rng.normal(50 + mde(1.0, 4, 4), 1.0, 4)
        hits += compare(side(b), side(h), threshold=0.0).iloc[0]["verdict"] == \
            "improved beyond noise"
    assert 0.72 < hits / 400 < 0.88


def test_parse_change():
    assert parse_change("2pp") == (2.0, "pp") and parse_change("5%") == (5.0, "rel")
    assert parse_change("1.5x") == (1.5, "factor") and parse_change("0.5") == (0.5, "abs")
    assert parse_change(None) is None
    for bad in ("two", "-2pp", "0", "0.9x"):
        with pytest.raises(UserError):
            parse_change(bad)


def _doc(path, n=3):
    rng = np.random.default_rng(0)
    units = {}
    for s in range(n):
        ms = [Metric("success_rate", 90 + rng.normal(0, 2), "%", HIGHER, {"eps": "0.3"},
                     headline=True),
              Metric("samples_per_s", 1000 * (1 + rng.normal(0, 0.05)), "samples/s", HIGHER,
                     kind=TIMING)]
        units[f"adversarial/mnist5k/{s}"] = {
            "task": "adversarial", "dataset": "mnist5k", "seed": s, "config": {},
            "status": "done", "metrics": [m.to_dict() for m in ms], "series": {}, "info": {}}
    meta = {"suite": "pr", "status": "done", "tasks": ["adversarial"], "seeds": list(range(n)),
            "datasets": ["mnist5k"]}
    path.write_text(json.dumps({"schema": SCHEMA, "meta": meta, "units": units}))
    return str(path)


def test_power_command_prints_a_table(tmp_path, capsys):
    p = _doc(tmp_path / "r.json")
    assert main(["power", p, "--change", "2pp"]) == 0
    out = capsys.readouterr().out
    assert "success_rate[eps=0.3] ★" in out and "detects ≥" in out and "samples_per_s" in out
    t = power_table(p, "2pp").set_index("key")
    sd = t.loc["success_rate[eps=0.3]", "sd"]
    assert t.loc["success_rate[eps=0.3]", "mde"] == pytest.approx(mde(sd, 3, 3))
    assert t.loc["success_rate[eps=0.3]", "seeds_needed"] == seeds_needed(sd, 2.0)
    assert np.isnan(t.loc["samples_per_s", "wanted"])  # 2pp means nothing for a timing


@pytest.mark.parametrize("args, fragment", [
    (["--change", "lots"], "--change 'lots'"),
    (["--alpha", "2"], "--alpha and --power"),
    (["--change", "0.5x"], "a factor must be > 1"),
])
def test_power_bad_input_exit_2(tmp_path, capsys, args, fragment):
    assert main(["power", _doc(tmp_path / "r.json"), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0]
    assert main(["power", str(tmp_path / "none.json")]) == 2
