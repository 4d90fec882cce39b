"""The gate's statistics: exact change, environments, FDR control, timings, expected changes,
incomplete runs, and bad input for the gate's options."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import false_discovery_control

from quirkbench.cli import main
from quirkbench.errors import UserError
from quirkbench.metrics import HIGHER, LOWER, NONE, TIMING, Metric
from quirkbench.tracking.compare import compare, read_expected
from quirkbench.tracking.results import SCHEMA

ENV = {"quirkbench": "0.1.0", "torch": "2.3.0", "python": "3.11.7", "device": "cpu",
       "device_name": "x86_64", "cpu_threads": 1, "deterministic": True}


def doc(path, metrics_by_seed: dict[int, list[Metric]], *, env=None, status="done",
        seeds=None, config=None) -> str:
    """A results document: ``{seed: [metrics]}`` of the memorization task."""
    units = {f"memorization/mnist5k/{s}": {
        "task": "memorization", "dataset": "mnist5k", "seed": s, "config": config or {"a": 1},
        "status": "done", "metrics": [m.to_dict() for m in ms], "series": {}, "info": {}}
        for s, ms in metrics_by_seed.items()}
    meta = {**ENV, **(env or {}), "suite": "pr", "commit": "abc", "status": status,
            "tasks": ["memorization"], "datasets": ["mnist5k"],
            "seeds": sorted(seeds if seeds is not None else metrics_by_seed)}
    path.write_text(json.dumps({"schema": SCHEMA, "meta": meta, "units": units}))
    return str(path)


def acc(v, **kw) -> Metric:
    return Metric("test_acc", v, "%", HIGHER, {"condition": "random-labels"},
                  headline=kw.pop("headline", True), **kw)


# --------------------------------------------------------------------------- exact change

def test_exact_change_on_one_seed_fails_the_strict_gate(tmp_path, capsys):
    base = doc(tmp_path / "b.json", {0: [acc(10.48), Metric("steps_to_fit", 132, "steps")]})
    same = doc(tmp_path / "s.json", {0: [acc(10.48), Metric("steps_to_fit", 132, "steps")]})
    # a change far below any statistical threshold (one test image in 10,000) is still seen
    head = doc(tmp_path / "h.json", {0: [acc(10.49), Metric("steps_to_fit", 132, "steps")]})
    df = compare(base, head, strict=True)
    row = df.set_index("key").loc["test_acc[condition=random-labels]"]
    assert row["verdict"] == "not judged" and row["fails"]  # no noise model: strict fails it
    assert "seed 0: 10.48 → 10.49" in row["note"]
    assert df.set_index("key").loc["steps_to_fit", "verdict"] == "identical"
    assert not compare(base, head)["fails"].any()  # without --strict: not judged, passes
    assert main(["compare", base, same, "--strict"]) == 0
    assert main(["compare", base, head, "--strict"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "GATE PASS: 0 changes within seed noise, 2 identical"
    assert "GATE FAIL: 1 exact change (--strict)" in out
    assert "not judged: memorization/mnist5k test_acc[condition=random-labels]" in out


def test_exact_tolerance_and_non_headline_changes(tmp_path):
    base = doc(tmp_path / "b.json", {0: [acc(97.0)]})
    tiny = doc(tmp_path / "t.json", {0: [acc(97.0 * (1 + 1e-12))]})
    assert compare(base, tiny)["verdict"].tolist() == ["identical"]  # float noise: identical
    # the same key twice would collapse: give the non-headline one its own tags
    m = Metric("train_acc", 60.0, "%", NONE, {"condition": "x"})
    base = doc(tmp_path / "b2.json", {0: [acc(97.0), m]})
    head = doc(tmp_path / "h2.json", {0: [acc(97.0), Metric("train_acc", 61.0, "%", NONE,
                                                            {"condition": "x"})]})
    df = compare(base, head, strict=True).set_index("key")
    assert df.loc["train_acc[condition=x]", "verdict"] == "not judged"
    assert not df.loc["train_acc[condition=x]", "fails"]  # reported, gate passes
    assert compare(base, head, fail_on="moved", strict=True).set_index("key").loc[
        "train_acc[condition=x]", "fails"]


def test_environment_difference_is_named_and_falls_back_to_statistics(tmp_path):
    base = doc(tmp_path / "b.json", {s: [acc(v)] for s, v in enumerate([90, 91, 90.5])})
    head = doc(tmp_path / "h.json", {s: [acc(v)] for s, v in enumerate([90.2, 90.9, 90.4])},
               env={"cpu_threads": 2})
    df = compare(base, head)
    assert [w for w in df.attrs["warnings"] if "cpu_threads 1 → 2" in w]
    row = df.iloc[0]
    assert row["test"] == "t" and not row["exact"] and row["verdict"] == "within noise"
    # different task settings: that task is judged statistically too
    other = doc(tmp_path / "o.json", {s: [acc(v)] for s, v in enumerate([90, 91, 90.6])},
                config={"a": 2})
    assert compare(base, other).iloc[0]["test"] == "t"


# --------------------------------------------------------------------------- FDR

def frames(base_cols: dict, head_cols: dict, **kw) -> tuple[pd.DataFrame, pd.DataFrame]:
    def f(cols):
        return pd.DataFrame([{"task": "t", "dataset": "d", "seed": s, "metric": k, "key": k,
                              "value": v, "unit": "1", "direction": NONE, "kind": "stochastic",
                              **kw} for k, vs in cols.items() for s, v in enumerate(vs)])
    return f(base_cols), f(head_cols)


def test_benjamini_hochberg_controls_many_marginal_p_values():
    rng = np.random.default_rng(0)
    base = {f"m{i}": list(rng.normal(100, 1, 4)) for i in range(20)}
    head = {k: [x + 1.8 for x in v] for k, v in base.items()}  # each p ≈ 0.02-0.04 alone
    head = {k: list(np.array(v) + rng.normal(0, 1.2, 4)) for k, v in head.items()}
    base["real"], head["real"] = [100, 100.1, 99.9, 100], [110, 110.1, 109.9, 110.2]
    b, h = frames(base, head)
    df = compare(b, h, threshold=0.0)
    assert np.allclose(df["q_value"], false_discovery_control(df["p_value"], method="bh"))
    raw = int((df["p_value"] <= 0.05).sum())
    moved = set(df.loc[df["verdict"] == "moved beyond noise", "key"])
    assert raw > len(moved) >= 1 and "real" in moved  # BH removed marginal alarms
    assert df.attrs["tested"] == 21 and "chance alone would flag about 1.1" in df.attrs["chance"]
    loose = compare(b, h, threshold=0.0, fdr=0.5)
    assert (loose["verdict"] == "moved beyond noise").sum() > len(moved)  # --fdr decides


# --------------------------------------------------------------------------- timings

def timing_frames(base, head, **extra):
    rows = lambda vals, **kw: pd.DataFrame([  # noqa: E731
        {"task": "throughput", "dataset": "synthetic", "seed": s, "metric": "samples_per_s",
         "key": "samples_per_s", "value": v, "unit": "samples/s", "direction": HIGHER,
         "kind": TIMING, "headline": True, **kw} for s, v in enumerate(vals)])
    return rows(base), rows(head)


def test_timing_factor_rule():
    b, h = timing_frames([1000, 1020, 990], [900, 910, 880])  # 11% slower: under 1.2×
    assert compare(b, h).iloc[0]["verdict"] == "within noise"
    b, h = timing_frames([1000, 1020, 990], [700, 720, 690])  # 1.42× slower, tight
    row = compare(b, h).iloc[0]
    assert row["verdict"] == "regressed beyond noise" and row["fails"] and row["ratio"] < 0.75
    # 1.86× slower medians, the sides apart, but each run's own seeds spread widely
    b, h = timing_frames([1000, 1600, 1300], [990, 500, 700])
    assert compare(b, h).iloc[0]["verdict"] == "within noise"
    # tight runs 1.43× apart, but one head value among the base's: not a step
    b, h = timing_frames([1000, 1001, 999, 1000, 1002], [700, 701, 699, 700, 1000])
    assert compare(b, h).iloc[0]["verdict"] == "within noise"
    # the A/A spread raises the limit: 3 × 0.15 → ×1.57 needed
    b, h = timing_frames([1000, 1020, 990], [700, 720, 690])
    row = compare(b, h, timing_spread={"throughput/samples_per_s": 0.15}).iloc[0]
    assert row["verdict"] == "within noise"
    # ...but a small A/A spread never lowers the limit the runs' own unsteadiness sets
    b, h = timing_frames([1000, 1600, 1300], [990, 500, 700])
    row = compare(b, h, timing_spread={"throughput/samples_per_s": 0.01}).iloc[0]
    assert row["verdict"] == "within noise"
    # a regressed timing fails the gate only as a headline; timings never enter BH
    b, h = timing_frames([1000, 1020, 990], [700, 720, 690])
    b["headline"], h["headline"] = False, False
    row = compare(b, h).iloc[0]
    assert row["verdict"] == "regressed beyond noise" and not row["fails"]
    assert np.isnan(row["q_value"])


def test_ratio_whose_baseline_moved_is_labelled():
    def side(seq, ratio):
        return pd.DataFrame([
            {"task": "throughput", "dataset": "s", "seed": s, "metric": n, "key": n, "value": v,
             "unit": u, "direction": HIGHER, "kind": TIMING, "baseline": bl}
            for s in range(3)
            for n, v, u, bl in (("sequential_samples_per_s", seq * (1 + s / 100), "samples/s",
                                 None),
                                ("speedup_vs_sequential", ratio * (1 + s / 100), "×",
                                 "sequential_samples_per_s"))])
    df = compare(side(1000, 2.0), side(600, 3.3)).set_index("key")  # sequential got slower
    assert df.loc["speedup_vs_sequential", "verdict"] == "not judged"
    assert "its baseline sequential_samples_per_s moved" in df.loc["speedup_vs_sequential",
                                                                     "note"]
    assert not df.loc["speedup_vs_sequential", "fails"]


# --------------------------------------------------------------------------- expected changes

def test_expect_file_approves_a_listed_change(tmp_path, capsys):
    base = doc(tmp_path / "b.json", {0: [acc(10.48)]})
    head = doc(tmp_path / "h.json", {0: [acc(12.0)]})
    ok = tmp_path / "expect.toml"
    ok.write_text('[[change]]\nmetric = "memorization/test_acc[condition=random-labels]"\n'
                  'old = 10.48\nnew = 12.0\nreason = "new init"\n')
    anyv = tmp_path / "any.toml"
    anyv.write_text('[[change]]\nmetric = "memorization/mnist5k/test_acc[condition='
                    'random-labels]"\nnew = "any"\nreason = "new init"\n')
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[[change]]\nmetric = "memorization/test_acc[condition=random-labels]"\n'
                     'new = 20.0\nreason = "new init"\n')
    assert main(["compare", base, head, "--strict"]) == 1
    assert main(["compare", base, head, "--strict", "--expect", str(ok)]) == 0
    assert main(["compare", base, head, "--strict", "--expect", str(anyv)]) == 0
    capsys.readouterr()
    assert main(["compare", base, head, "--strict", "--expect", str(wrong)]) == 1
    assert "not as any → 20" in capsys.readouterr().out
    row = compare(base, head, expected=ok).iloc[0]
    assert row["verdict"] == "expected" and "new init" in row["note"] and not row["fails"]
    # a listed change that did not happen is reported as stale
    assert compare(base, base, expected=ok).attrs["expected_stale"][0][1] == \
        "matched no metric that changed"


# --------------------------------------------------------------------------- incomplete runs

def test_incomplete_run_refused_unless_allowed(tmp_path, capsys):
    base = doc(tmp_path / "b.json", {s: [acc(10.0)] for s in range(3)})
    head = doc(tmp_path / "h.json", {0: [acc(10.0)]}, status="interrupted", seeds=[0, 1, 2])
    assert main(["compare", base, head]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "HEAD" in err[0] and "incomplete" in err[0] \
        and "--allow-incomplete" in err[0]
    assert main(["compare", base, head, "--allow-incomplete"]) == 0
    out = capsys.readouterr().out
    assert "memorization/mnist5k/1, memorization/mnist5k/2" in out
    # status done but a unit missing (or failed) is incomplete too
    done = doc(tmp_path / "d.json", {0: [acc(10.0)]}, seeds=[0, 1])
    with pytest.raises(UserError, match="1 unit"):
        compare(base, done, allow_incomplete=False)
    # the library's default (reports): a warning naming the missing unit
    assert any("memorization/mnist5k/1" in w for w in compare(base, done).attrs["warnings"])


# --------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("args, fragment", [
    (["--fdr", "2"], "--fdr is a false-discovery rate"),
    (["--fdr", "x"], "--fdr"),
    (["--expect", "{tmp}/nope.toml"], "nope.toml does not exist"),
    (["--expect", "{tmp}/bad.toml"], "is not valid TOML"),
    (["--expect", "{tmp}/noreason.toml"], "change 1: reason must be non-empty"),
    (["--expect", "{tmp}/badold.toml"], "change 1: old must be a number"),
    (["--expect", "{tmp}/extra.toml"], "unknown field(s) why"),
    (["--timing-spread", "{tmp}/nope.json"], "nope.json does not exist"),
    (["--timing-spread", "{tmp}/bad.json"], "--timing-spread file"),
])
def test_bad_gate_options_exit_2_one_line(tmp_path, capsys, args, fragment):
    (tmp_path / "bad.toml").write_text("[[change]\nmetric=")
    (tmp_path / "noreason.toml").write_text('[[change]]\nmetric = "t/k"\n')
    (tmp_path / "badold.toml").write_text('[[change]]\nmetric = "t/k"\nreason = "r"\n'
                                          'old = "ten"\n')
    (tmp_path / "extra.toml").write_text('[[change]]\nmetric = "t/k"\nreason = "r"\n'
                                         'why = 1\n')
    (tmp_path / "bad.json").write_text('{"spread": {"t/k": -1}}')
    base = doc(tmp_path / "b.json", {0: [acc(10.0)]})
    argv = ["compare", base, base] + [a.format(tmp=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err


def test_read_expected_accepts_the_documented_forms(tmp_path):
    p = tmp_path / "e.toml"
    p.write_text('[[change]]\nmetric = "adversarial/*"\nreason = "new attack"\n'
                 '[[change]]\nmetric = "compression/mnist5k/compression_ratio[method=random]"\n'
                 'old = 8\nnew = 4\ntol = 0.1\nreason = "fewer fine-tuning steps"\n')
    a, b = read_expected(p)
    assert a.matches("adversarial", "mnist5k", "anything") and a.old is None
    assert b.matches("compression", "mnist5k", "compression_ratio[method=random]")
    assert b.agrees(8.2, 4.1) and not b.agrees(8.0, 6.0)


def test_the_docs_expected_changes_example_reads(tmp_path):
    import re

    text = (Path(__file__).parents[1] / "docs" / "gate.md").read_text()
    (block,) = re.findall(r"```toml\n(.*?)```", text, re.S)
    p = tmp_path / "expected-changes.toml"
    p.write_text(block)
    got = read_expected(p)
    assert [e.benchmark for e in got] == [False, False, False, True]
    assert got[2].matches("throughput", "mnist5k", "speedup_vs_peer[peer=foolbox]")
    assert not got[2].matches("throughput", "mnist5k", "speedup_vs_peers")
    assert got[3].matches_benchmark("bench_tracks.Adversarial.track_undirected")
    assert not got[3].matches("bench_tracks.Adversarial", "x", "track_undirected")


def test_direction_of_lower_is_better_stochastic():
    b, h = frames({"m": [1.0, 1.1, 1.05]}, {"m": [2.0, 2.1, 2.2]})
    b["direction"], h["direction"] = LOWER, LOWER
    assert compare(b, h).iloc[0]["verdict"] == "regressed beyond noise"
