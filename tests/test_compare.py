"""quirkbench compare: verdict logic on hand-built frames, the table, and the command."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from quirkbench.cli import main
from quirkbench.metrics import HIGHER, LOWER, NONE, Metric
from quirkbench.tracking.compare import compare, format_table
from quirkbench.tracking.results import SCHEMA
from quirkbench.tracking.stats import min_mwu_p


def frame(values: dict[str, list[float]], *, unit="%", direction=HIGHER, suite="pr",
          task="memorization") -> pd.DataFrame:
    """A tidy frame like load_results: key → one value per seed."""
    rows = [{"task": task, "dataset": "mnist5k", "seed": s, "suite": suite, "metric": k,
             "key": k, "value": v, "unit": unit, "direction": direction}
            for k, vs in values.items() for s, v in enumerate(vs)]
    return pd.DataFrame(rows)


def verdict(base, head, unit="%", direction=HIGHER, **kw) -> str:
    b = frame({"m": base}, unit=unit, direction=direction)
    h = frame({"m": head}, unit=unit, direction=direction)
    return compare(b, h, **kw).iloc[0]["verdict"]


def test_real_regression_is_flagged_and_improvement_too():
    assert verdict([90.0, 91.0, 90.5], [80.0, 81.0, 80.5]) == "regressed beyond noise"
    assert verdict([80.0, 81.0, 80.5], [90.0, 91.0, 90.5]) == "improved beyond noise"
    # lower is better: seconds going up is a regression
    assert verdict([1.0, 1.1, 1.05], [2.0, 2.1, 2.2], unit="s",
                   direction=LOWER) == "regressed beyond noise"


def test_noise_is_not_flagged():
    # overlapping seeds: the mean moved by > 5% but the spread says it is noise
    assert verdict([80.0, 95.0, 88.0], [85.0, 99.0, 78.0]) == "within noise"
    # beyond noise (no overlap) but under the threshold (1 pp floor for %): unchanged
    assert verdict([90.0, 90.1, 90.2], [90.3, 90.4, 90.5]) == "within noise"
    # timings: 15% slower, separated, but under the 25% time threshold
    assert verdict([1.0, 1.01, 1.02], [1.15, 1.16, 1.17], unit="s",
                   direction=LOWER) == "within noise"


def test_identical_deterministic_values_are_identical_by_exact_identity():
    df = compare(frame({"m": [132, 140, 128]}, unit="steps", direction=NONE),
                 frame({"m": [132, 140, 128]}, unit="steps", direction=NONE))
    row = df.iloc[0]
    assert row["verdict"] == "identical" and row["test"] == "exact" and row["change"] == 0


def test_direction_none_moves_either_way():
    kw = dict(unit="steps", direction=NONE)
    assert verdict([100, 104, 98], [150, 160, 155], **kw) == "moved beyond noise"
    assert verdict([100, 104, 98], [50, 55, 52], **kw) == "moved beyond noise"
    assert verdict([100, 104, 98], [101, 99, 103], **kw) == "within noise"


def test_t_test_decides_where_a_rank_test_cannot():
    # a rank test on 3 seeds against 3 can never reach p ≤ 0.05: the gate never uses one
    assert min_mwu_p(3, 3) == pytest.approx(0.1)
    df = compare(frame({"m": [80, 81, 82]}), frame({"m": [88, 89, 90]}))
    assert df.iloc[0]["p_value"] < 0.01 and df.iloc[0]["verdict"] == "improved beyond noise"
    assert df.iloc[0]["test"] == "t"
    base, head = [80, 81, 82, 83, 84], [88, 89, 90, 91, 83.5]  # overlapping, still clear
    df = compare(frame({"m": base}), frame({"m": head}))
    assert df.iloc[0]["p_value"] < 0.05 and df.iloc[0]["verdict"] == "improved beyond noise"


def test_n1_without_a_noise_model_uses_the_wider_threshold_only():
    # n = 1, no noise model: the factor rule, 5% doubled to 10%; 8% worse is not judged, 12%
    # is a regression
    assert verdict([100.0], [92.0], unit="1") == "not judged"
    assert verdict([100.0], [88.0], unit="1") == "regressed beyond noise"
    row = compare(frame({"m": [100.0]}, unit="1"), frame({"m": [88.0]}, unit="1")).iloc[0]
    assert math.isnan(row["p_value"]) and row["base_n"] == 1


def test_change_columns_formula():
    b, h = frame({"m": [10.0, 10.0]}, unit="×"), frame({"m": [12.0, 12.0]}, unit="×")
    row = compare(b, h).iloc[0]
    assert row["change"] == pytest.approx(2.0) and row["change_pct"] == pytest.approx(20.0)
    assert row["base_std"] == 0 and row["head_n"] == 2


def test_new_and_gone_metrics():
    df = compare(frame({"a": [1, 1], "b": [2, 2]}), frame({"a": [1, 1], "c": [3, 3]}))
    verdicts = dict(zip(df["key"], df["verdict"], strict=True))
    assert verdicts == {"a": "identical", "b": "gone", "c": "new"}


def test_tables_text_and_markdown():
    df = compare(frame({"acc": [90, 91, 90.5], "ok": [50, 50, 50]}),
                 frame({"acc": [80, 81, 80.5], "ok": [50, 50, 50]}))
    text = format_table(df)
    lines = text.splitlines()
    assert lines[0] == "GATE PASS: 0 changes within seed noise, 1 regressed beyond noise " \
        "(not headline), 1 identical"
    first = lines[lines.index("other changes (1):") + 3]  # title, header, rule
    assert first.startswith("✗ regressed beyond noise") and "acc" in first
    md = format_table(df, "markdown")
    assert "| verdict |" in md and "|---|" in md and "-10.00 pp" in md


def test_different_suites_refused():
    from quirkbench.errors import UserError

    with pytest.raises(UserError, match="same suite"):
        compare(frame({"m": [1]}, suite="pr"), frame({"m": [1]}, suite="smoke"))


# --------------------------------------------------------------------------- the command

ENV = {"quirkbench": "0.1.0", "torch": "2.3.0", "python": "3.11.7", "device": "cpu",
       "device_name": "x86_64", "cpu_threads": 1, "deterministic": True}


def write_doc(path, values: list[float], *, suite="pr", unit="%", direction=HIGHER,
              headline=True, kind="exact", env=None, status="done"):
    units = {}
    for seed, v in enumerate(values):
        m = Metric("test_acc", v, unit, direction, {"condition": "true-labels"},
                   headline=headline, kind=kind)
        units[f"memorization/mnist5k/{seed}"] = {
            "task": "memorization", "dataset": "mnist5k", "seed": seed, "config": {},
            "status": "done", "metrics": [m.to_dict()], "series": {}, "info": {}}
    meta = {**ENV, **(env or {}), "suite": suite, "commit": "abc", "status": status,
            "tasks": ["memorization"], "datasets": ["mnist5k"], "seeds": list(range(len(values)))}
    doc = {"schema": SCHEMA, "meta": meta, "units": units}
    path.write_text(json.dumps(doc))
    return str(path)


def test_cli_exit_codes_and_markdown(tmp_path, capsys):
    # stochastic metrics: judged over seeds (exact ones in one environment: test_gate.py)
    base = write_doc(tmp_path / "base.json", [90, 91, 90.5], kind="stochastic")
    same = write_doc(tmp_path / "same.json", [90, 91, 90.5], kind="stochastic")
    worse = write_doc(tmp_path / "worse.json", [80, 81, 80.5], kind="stochastic")
    assert main(["compare", base, same]) == 0
    capsys.readouterr()
    md = tmp_path / "c.md"
    assert main(["compare", base, worse, "--markdown", str(md)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("GATE FAIL: 1 regression beyond noise\n")
    assert "test_acc[condition=true-labels]" in out
    assert md.read_text().startswith("## 🔴 GATE FAIL: 1 regression beyond noise\n")


def test_cli_fail_on_moved(tmp_path):
    kw = dict(unit="steps", direction=NONE, headline=False, kind="stochastic")
    base = write_doc(tmp_path / "b.json", [100, 104, 98], **kw)
    head = write_doc(tmp_path / "h.json", [150, 160, 155], **kw)
    assert main(["compare", base, head]) == 0
    assert main(["compare", base, head, "--fail-on", "moved"]) == 1


@pytest.mark.parametrize("case", ["missing", "schema", "suite", "threshold"])
def test_cli_bad_input_exit_2(tmp_path, capsys, case):
    base = write_doc(tmp_path / "b.json", [90, 91])
    head = write_doc(tmp_path / "h.json", [90, 91])
    args = ["compare", base, head]
    if case == "missing":
        args[2] = str(tmp_path / "nope.json")
    elif case == "schema":
        (tmp_path / "h.json").write_text(json.dumps({"schema": "other/9", "meta": {}, "units": {}}))
    elif case == "suite":
        write_doc(tmp_path / "h.json", [90, 91], suite="smoke")
    else:
        args += ["--threshold", "lots"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("quirkbench: error:") and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- settings warning

def write_cfg_doc(path, config: dict, values=(90, 91, 90.5)) -> str:
    """``write_doc`` with the memorization units' ``config`` set."""
    write_doc(path, list(values))
    doc = json.loads(path.read_text())
    for u in doc["units"].values():
        u["config"] = config
    path.write_text(json.dumps(doc))
    return str(path)


def test_settings_warning_names_differing_keys(tmp_path, capsys):
    cfg = {"n_train": 500, "conditions": ["true-labels"], "train": {"lr": 0.05, "epochs": 4}}
    base = write_cfg_doc(tmp_path / "b.json", cfg)
    head = write_cfg_doc(tmp_path / "h.json", {**cfg, "train": {"lr": 0.1, "epochs": 4}})
    md = tmp_path / "c.md"
    assert main(["compare", base, head, "--markdown", str(md)]) == 0  # status unchanged
    warn = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("warning:")]
    assert warn == ["warning: memorization settings differ between base and head: "
                    "train.lr 0.05 → 0.1; differences may not be regressions"]
    assert f"> ⚠ {warn[0]}" in md.read_text().splitlines()
    # a regression still fails, with the warning printed beside it
    worse = write_cfg_doc(tmp_path / "w.json", {**cfg, "n_train": 250}, values=(80, 81, 80.5))
    assert main(["compare", base, worse]) == 1  # other settings: judged over seeds
    assert "n_train 500 → 250" in capsys.readouterr().out


def test_same_settings_after_json_normalisation_no_warning(tmp_path):
    from quirkbench.tracking.sides import settings_warnings

    base = write_cfg_doc(tmp_path / "b.json", {"conditions": ["a", "b"], "train": {"lr": 0.1}})
    head = write_cfg_doc(tmp_path / "h.json", {"conditions": ["a", "b"], "train": {"lr": 0.1}})
    assert settings_warnings(base, head) == []
    assert compare(base, head).attrs["warnings"] == []
    # frames with a config column: a tuple and a list are the same setting; a new key differs
    b = frame({"m": [1, 1]}).assign(config=[{"dims": (2, 10)}] * 2)
    h = frame({"m": [1, 1]}).assign(config=[{"dims": [2, 10], "fused": True}] * 2)
    assert settings_warnings(b, h) == ["warning: memorization settings differ between base "
                                       "and head: fused (absent) → true; differences may not "
                                       "be regressions"]
