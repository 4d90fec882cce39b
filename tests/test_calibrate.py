"""``quirkbench calibrate``: per-check pass counts over seeds, spread and CV, written as tables;
performance goals reported apart from ``holds``."""

import json
import math

import pytest

from quirkbench.metrics import Goal, Metric
from quirkbench.tracking import calibration as C


def test_calibrate_smoke_two_seeds_writes_the_table(run_cli, tmp_path):
    out = tmp_path / "cal"
    md = tmp_path / "docs" / "calibration-smoke.md"
    code, stdout, _ = run_cli("calibrate", "--suite", "smoke", "--seeds", "3-4", "--tasks",
                              "dimensionality", "--device", "cpu", "--out", out,
                              "--markdown", md)
    assert code in (0, 1)
    assert "checks hold on" in stdout
    doc = json.loads((out / "calibration.json").read_text())
    assert doc["seeds"] == [3, 4] and doc["meta"]["suite"] == "smoke"
    checks = [r for r in doc["rows"] if r["check"]]
    assert checks, "dimensionality has a holds check"
    for r in checks:
        assert r["n_seeds"] == 2 and 0 <= r["passes"] <= 2 and r["required"] == 2
        assert r["p5"] <= r["median"] <= r["p95"]
    heads = [r for r in doc["rows"] if r["headline"]]
    assert heads and all(r["cv_pct"] is None or r["cv_pct"] >= 0 for r in heads)
    text = md.read_text()
    assert text == (out / "calibration.md").read_text()
    assert "commit:" in text and "machine:" in text and "| dimensionality | mnist5k |" in text
    assert "/2 | " in text
    assert "at least 95% of the seeds (2 of 2)" in text  # the rule for the seeds that ran
    csv = (out / "calibration.csv").read_text().splitlines()
    assert csv[0].startswith("task,dataset,metric") and len(csv) == len(doc["rows"]) + 1
    # resuming: a second call runs nothing new and rebuilds the same table
    code2, stdout2, _ = run_cli("calibrate", "--suite", "smoke", "--seeds", "3-4", "--tasks",
                                "dimensionality", "--device", "cpu", "--out", out)
    assert "2 of 2 units already done" in stdout2 and code2 == code


def _unit(seed, metrics, status="done", info=None):
    return {"task": "t", "dataset": "d", "seed": seed, "status": status,
            "metrics": [m.to_dict() for m in metrics], "info": info or {}}


def test_table_counts_passes_failed_units_and_cv():
    units = [_unit(s, [Metric("x", v, "%", holds=v > 1, headline=True)])
             for s, v in enumerate([2.0, 3.0, 0.5, 4.0])]
    units.append(_unit(9, [], status="failed"))
    rows = C.table(units, rate=0.75)
    x = next(r for r in rows if r["metric"] == "x")
    assert x["n_seeds"] == 5 and x["passes"] == 3 and x["required"] == 4 and not x["ok"]
    assert x["failing_seeds"] == [2, 9]
    assert x["median"] == 2.5
    assert math.isclose(x["cv_pct"], 100 * 1.4930394 / 2.375, rel_tol=1e-5)
    failed = next(r for r in rows if r["metric"] == "(unit failed)")
    assert failed["failing_seeds"] == [9]


def test_required_passes():
    assert C.required_passes(20) == 19 and C.required_passes(2) == 2
    assert C.required_passes(10) == 10 and C.required_passes(40) == 38


def test_reason_of_a_failed_check_reaches_the_table():
    m = Metric("forgetting_pct", math.nan, "%", holds=False)
    rows = C.table([_unit(0, [m], info={"check_reasons": {"forgetting_pct": "task 3 not "
                                                           "learned"}})])
    assert rows[0]["reasons"] == {"0": "task 3 not learned"}
    assert "task 3 not learned" in C.markdown(rows, {}, [0])


def test_every_row_names_the_run_and_commit_it_came_from():
    """A table rebuilt from several run documents (tasks run at different commits) names,
    on every row, the document each task's units came from and its commit."""
    a = [{**_unit(s, [Metric("x", 1.0, "%", holds=True, headline=True)]), "task": "a",
          "_run": "results-quick-a-s0-1.json"} for s in (0, 1)]
    b = [{**_unit(s, [Metric("y", 2.0, "%", holds=True)]), "task": "b",
          "_run": "results-quick-b-s0-1.json"} for s in (0, 1)]
    rows = C.table(a + b)
    assert {r["task"]: r["runs"] for r in rows} == {"a": ["results-quick-a-s0-1.json"],
                                                     "b": ["results-quick-b-s0-1.json"]}
    meta = {"suite": "quick", "sources": [
        {"file": "results-quick-a-s0-1.json", "tasks": ["a"], "seeds": [0, 1],
         "commit": "a" * 40, "status": "done"},
        {"file": "results-quick-b-s0-1.json", "tasks": ["b"], "seeds": [0, 1],
         "commit": "b" * 40, "status": "done"},
        {"file": "results-quick-c-s0-1.json", "tasks": ["a"], "seeds": [0, 1],
         "commit": "c" * 40, "status": "done"}]}
    text = C.markdown(rows, meta, [0, 1])
    assert "at least 95% of the seeds (2 of 2)" in text  # the rule for the seeds run
    lines = text.splitlines()
    assert next(ln for ln in lines if ln.startswith("| a | d | x | 2/2")).endswith(
        "| 1 (`aaaaaaa`) |")
    assert next(ln for ln in lines if ln.startswith("| b | d | y | 2/2")).endswith(
        "| 2 (`bbbbbbb`) |")
    assert "| 1 | results-quick-a-s0-1.json | a | 0,1 | `" + "a" * 40 + "` | done |" in lines
    assert any(ln.startswith("| 3 | results-quick-c") and "superseded" in ln for ln in lines)
    # one document: one commit line, no run column
    one = C.markdown(C.table(a), {"suite": "quick", "commit": "a" * 40,
                                  "sources": meta["sources"][:1]}, [0, 1])
    assert "- commit: `" + "a" * 40 + "`" in one and "## Runs" not in one


def test_a_task_recalibrated_into_the_folder_replaces_the_older_run_whatever_the_names(
        tmp_path):
    """Units found in two documents come from the newest run (its meta's start time), not the
    last file name: results-pr-forgetting-... sorts before results-pr-s100-..."""
    from quirkbench.tracking.results import SCHEMA

    def write(name, started, value):
        units = {f"t/d/{s}": {**_unit(s, [Metric("x", value, "%", headline=True)]),
                              "config": {}} for s in (0, 1)}
        meta = {"suite": "pr", "commit": "c" * 40, "status": "done", "started": started,
                "seeds": [0, 1], "tasks": ["t"]}
        (tmp_path / name).write_text(json.dumps({"schema": SCHEMA, "meta": meta,
                                                 "units": units}))

    write("results-pr-s0-1.json", "2026-12-05T12:04:04+00:00", 1.0)
    write("results-pr-forgetting-s0-1.json", "2026-12-05T17:10:00+00:00", 2.0)
    values = {m["value"] for u in C._units(tmp_path) for m in u["metrics"]}
    assert values == {2.0}
    assert C._meta(tmp_path)["started"].startswith("2026-12-05T17")


def test_goal_is_not_a_holds_check():
    m = Metric("speedup_vs_naive", 1.2, "×", goal=Goal(1.5))
    assert m.holds is None and m.goal.met is False
    back = Metric.from_dict(json.loads(json.dumps(m.to_dict())))
    assert back == m and back.goal.describe() == "≥ 1.5"
    assert Metric("t", 3.0, "s", goal=Goal(5.0, at_least=False)).goal.met is True
    rows = C.table([_unit(0, [m])])
    assert rows[0]["goal"] == "≥ 1.5" and rows[0]["goal_met"] == 0 and not rows[0]["check"]


@pytest.mark.parametrize("args, fragment", [
    (["calibrate", "--suite", "smoke"], "--out"),
    (["calibrate", "--suite", "smoke", "--out", "X", "--pass-rate", "2"], "--pass-rate"),
    (["calibrate", "--suite", "smoke", "--out", "X", "--seeds", "a"], "seeds must be"),
    (["calibrate", "--suite", "smoke", "--out", "X", "--jobs", "0"], "--jobs must be"),
])
def test_bad_input_one_line(run_cli, tmp_path, monkeypatch, args, fragment):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(*args)
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def _jobs_action(command):
    from quirkbench.cli import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return next(a for a in sub.choices[command]._actions if a.dest == "jobs")


def test_calibrate_takes_jobs_as_run_does(run_cli, tmp_path, monkeypatch):
    """calibrate's --jobs has run's default (auto: one worker per physical core), flags and
    help text, and a calibration without --jobs hands the runner that default."""
    ours, runs = _jobs_action("calibrate"), _jobs_action("run")
    for field in ("option_strings", "default", "const", "nargs", "metavar", "help"):
        assert getattr(ours, field) == getattr(runs, field), field
    from quirkbench.commands.run import RUN_DEFAULTS
    from quirkbench.runner import suite

    seen = []

    def fake_run_suite(*args, jobs, **kw):
        seen.append(jobs)
        raise SystemExit(0)

    monkeypatch.setattr(suite, "run_suite", fake_run_suite)
    for extra, want in (((), RUN_DEFAULTS["jobs"]), (("--jobs", "1"), "1"), (("-j",), "auto")):
        with pytest.raises(SystemExit):
            run_cli("calibrate", "--suite", "smoke", "--out", tmp_path / "c", *extra)
        assert seen.pop() == want
    assert RUN_DEFAULTS["jobs"] == "auto"
