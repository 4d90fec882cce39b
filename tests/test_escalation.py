"""Escalation: which rows one seed a side cannot settle, and their verdict by the t-test once
more seeds ran on both sides (``quirkbench compare --escalated``); the rows' JSON
(``--rows-json``) and the PR script's plan read from it (``qbtools.gate.escalate``).
The end-to-end runs through scripts/pr_check.sh are in test_pr_gate.py."""

from __future__ import annotations

import json

import pytest
from test_verdicts import ENV, SPREAD, doc, metrics, one, row, unit

from qbtools.gate import escalate as plan_tool
from quirkbench.cli import main
from quirkbench.tracking import noise
from quirkbench.tracking.compare import compare
from quirkbench.tracking.escalation import AMBIGUOUS, candidates, merge


@pytest.fixture()
def model(tmp_path):
    """test_verdicts' noise model: the forgetting task over 20 validation seeds."""
    units = [unit(s, metrics(a, f, r)) for s, (a, f, r) in SPREAD.items()]
    path = tmp_path / "noise" / "pr.json"
    path.parent.mkdir()
    noise.write(noise.build(units, {**ENV, "suite": "pr", "commit": "m" * 40}, "cmd", "now"),
                path)
    return str(path)


def probe(tmp_path, model, key="test_acc", **kw):
    """The one-seed row of ``key`` for a head with ``kw`` changed."""
    return row(compare(one(tmp_path, "b"), one(tmp_path, "h", **kw), noise_model=model), key)


def test_an_ambiguous_row_escalates_and_a_clear_one_does_not(tmp_path, model):
    # the one-seed MDE is crit · s · √2, so a change of f · mde has z = f · crit
    mde = probe(tmp_path, model, acc=87.9)["mde"]
    cases = {  # (head accuracy, escalates?): higher is better, only its bad side counts
        "ambiguous": (88.0 - 0.75 * mde, True),
        "small": (88.0 - 0.25 * mde, False),
        "good side": (88.0 + 0.75 * mde, False),
        "beyond noise": (88.0 - 1.5 * mde, False),  # decided: regressed
    }
    for name, (acc, asks) in cases.items():
        df = compare(one(tmp_path, "b"), one(tmp_path, f"h-{name}", acc=acc), noise_model=model)
        r = row(df, "test_acc")
        assert (r["verdict"] == "within noise") == (name != "beyond noise"), name
        asked = candidates(df)
        assert (("forgetting", "mnist5k", "test_acc") in asked) == asks, (name, r["z"])
        if asks:
            assert asked[("forgetting", "mnist5k", "test_acc")].startswith(
                "ambiguous at one seed (z = -")
            assert abs(r["z"]) > AMBIGUOUS * r["critical"]
    # direction none: either side; not a headline: never (it cannot fail the gate)
    ratio = probe(tmp_path, model, key="slowdown", ratio=3.01)
    for r_ in (3.0 * (1 + 0.75 * (ratio["mde"] / 3.0)), 3.0 / (1 + 0.75 * (ratio["mde"] / 3.0))):
        df = compare(one(tmp_path, "b"), one(tmp_path, f"r{r_}", ratio=r_), noise_model=model)
        assert ("forgetting", "mnist5k", "slowdown") in candidates(df), r_
    train = metrics(acc=88.0 - 0.75 * mde)  # train_acc moves too, it is not a headline
    df = compare(one(tmp_path, "b"), doc(tmp_path / "t.json", {0: train}), noise_model=model)
    assert ("forgetting", "mnist5k", "train_acc") not in candidates(df)


def test_no_noise_model_escalates(tmp_path):
    df = compare(one(tmp_path, "b"), one(tmp_path, "h", acc=87.0), noise_model=None)
    assert row(df, "test_acc")["verdict"] == "not judged"
    asked = candidates(df)
    assert asked[("forgetting", "mnist5k", "test_acc")] == \
        "no usable noise model (no noise model given)"
    # far beyond the factor rule it is judged on one seed already: no escalation
    df = compare(one(tmp_path, "b"), one(tmp_path, "h2", acc=60.0), noise_model=None)
    assert row(df, "test_acc")["test"] == "factor" and not candidates(df)


def sides(tmp_path, name, head_acc: dict[int, float]) -> tuple[str, str, str, str]:
    """(base, head) on seed 0 and (base_all, head_all) on seeds 0-3: the base's accuracy
    88 + a seed spread of ±0.3, the head's given per seed."""
    spread = {0: 0.0, 1: 0.3, 2: -0.3, 3: 0.1}
    folder = tmp_path / name
    for side in ("b", "h", "ball", "hall"):
        (folder / side).mkdir(parents=True)
    out = []
    for side, acc in (("b", {s: 88.0 + d for s, d in spread.items()}), ("h", head_acc)):
        doc(folder / side / "seed0.json", {0: metrics(acc=acc[0])})
        doc(folder / f"{side}all" / "seed0.json", {0: metrics(acc=acc[0])})
        doc(folder / f"{side}all" / "more.json", {s: metrics(acc=acc[s]) for s in (1, 2, 3)})
        out += [str(folder / side), str(folder / f"{side}all")]
    return out[0], out[2], out[1], out[3]


def test_the_final_verdict_comes_from_the_t_test(tmp_path, model, capsys):
    mde = probe(tmp_path, model, acc=87.9)["mde"]
    drop = 0.75 * mde  # ambiguous on seed 0
    # the head is lower by `drop` on seed 0 and by 6 pp on the other seeds: the t-test says
    # regressed (it must also beat the threshold: 5% of 88 = 4.4 pp); with about the same
    # drop on every seed, against a base spread of ±0.3: within noise
    cases = {"regressed": {0: 88.0 - drop, 1: 82.3, 2: 81.7, 3: 82.1},
             "within": {0: 88.0 - drop, 1: 88.2, 2: 87.8, 3: 88.1}}
    for name, head in cases.items():
        b, h, ball, hall = sides(tmp_path, name, head)
        first = compare(b, h, noise_model=model)
        assert row(first, "test_acc")["verdict"] == "within noise"
        df = merge(first, compare(ball, hall, only=set(candidates(first)), noise_model=model))
        r = row(df, "test_acc")
        assert r["test"] == "t" and r["base_n"] == 4 and r["head_n"] == 4
        assert r["mde"] > 0 and r["q_value"] <= 1
        assert r["note"].startswith("escalated (ambiguous at one seed (z = -")
        assert r["verdict"] == ("regressed beyond noise" if name == "regressed"
                                else "within noise")
        assert bool(r["fails"]) == (name == "regressed")
        # every other row keeps its one-seed verdict
        assert row(df, "slowdown")["test"] == row(first, "slowdown")["test"]
        assert df.attrs["escalation"]["rows"] == 1
    # the command: the first line says it escalated, and on what evidence; the MDE is shown
    code = main(["compare", b, h, "--noise-model", model, "--escalated", ball, hall,
                 "--rows-json", str(tmp_path / "rows.json")])
    out = capsys.readouterr().out
    assert code == 0
    first_line = out.splitlines()[0]
    assert first_line.startswith("GATE PASS: ") and first_line.endswith(
        "; escalated 1 row (1 ambiguous at one seed) to 4 seeds a side: decided by the t-test")
    acc_line = next(ln for ln in out.splitlines() if " test_acc " in ln)
    assert "(n=4)" in acc_line and "q=" in acc_line and acc_line.rstrip().endswith(" pp")  # MDE
    assert "base: commit aaaaaaaaaa · ? · x86_64 · seeds 0 (escalated rows: 0, 1, 2, 3)" in out
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows["gate"] == first_line and rows["escalation"]["rows"] == 1
    acc = next(r for r in rows["rows"] if r["key"] == "test_acc")
    assert acc["test"] == "t" and acc["mde"] > 0 and acc["escalate"] is None


def test_rows_json_and_the_pr_scripts_plan(tmp_path, model):
    mde = probe(tmp_path, model, acc=87.9)["mde"]
    path = tmp_path / "rows.json"
    assert main(["compare", one(tmp_path, "b"), one(tmp_path, "h", acc=88.0 - 0.75 * mde),
                 "--noise-model", model, "--rows-json", str(path)]) == 0
    doc_ = json.loads(path.read_text())
    r = next(r for r in doc_["rows"] if r["key"] == "test_acc")
    assert set(r) == {"task", "dataset", "key", "headline", "kind", "direction", "verdict",
                      "test", "z", "critical", "mde", "base_n", "head_n", "fails", "escalate"}
    assert r["verdict"] == "within noise" and r["z"] < 0 and r["base_n"] == 1
    assert r["escalate"].startswith("ambiguous at one seed")
    assert next(r for r in doc_["rows"] if r["key"] == "slowdown")["escalate"] is None
    lines = plan_tool.plan(doc_, [0], 3)
    assert lines[:2] == ["seeds=1,2,3", "tasks=forgetting"]
    assert lines[2].startswith("why=1 row: 1 ambiguous at one seed (forgetting/mnist5k test_acc")
    assert plan_tool.plan(doc_, [0, 2], 2)[0] == "seeds=1,3"  # seeds already run are skipped
    assert plan_tool.plan(doc_, [0], 0) == []  # budget 0: never
    assert plan_tool.plan({**doc_, "fails": True}, [0], 3)[0].startswith(
        "skip=the gate fails on clear evidence already; 1 row")
    assert plan_tool.plan({"rows": [{**r, "escalate": None}]}, [0], 3) == []


def test_plan_tool_bad_input_is_one_line_exit_2(tmp_path, capsys):
    assert plan_tool.main([str(tmp_path / "nope.json"), "--seeds", "0", "--budget", "3"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("escalate: cannot read") and "\n" not in err
    with pytest.raises(SystemExit):
        plan_tool.main([str(tmp_path / "x.json"), "--seeds", "a", "--budget", "3"])
