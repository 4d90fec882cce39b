"""Change points in a metric's history and the nightly baseline policy (last good night),
on synthetic histories and hand-written results documents (no training)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from quirkbench.cli import main
from quirkbench.errors import UserError
from quirkbench.metrics import LOWER, NONE, Metric
from quirkbench.tracking import asv_record, nightly
from quirkbench.tracking import changepoints as cp
from quirkbench.tracking.results import SCHEMA, write_atomic

pytest.importorskip("asv.step_detect")  # the 'track' extra

COMMITS = [f"{i:02d}" + "c" * 38 for i in range(80)]


# --------------------------------------------------------------------------- detection

@pytest.mark.parametrize("n,at,size", [(30, 12, 4.0), (30, 27, 8.0), (60, 40, -5.0),
                                       (12, 6, 5.0)])
def test_planted_step_found_at_its_commit(n, at, size):
    """A step of a few noise sds is found, named by the first commit after it."""
    rng = np.random.default_rng(n + at)
    found = 0
    for _ in range(20):
        x = 100 + rng.normal(size=n)
        x[at:] += size
        steps = cp.detect(x, COMMITS[:n])
        found += [s.label for s in steps] == [COMMITS[at]]
        for s in steps:
            if s.label == COMMITS[at]:
                assert s.size == pytest.approx(size, abs=2.5)  # medians of short segments
    assert found >= 18, f"planted step at {at} found alone at its commit {found}/20 times"


def test_pure_noise_rarely_gives_a_step():
    """Over 200 flat noisy histories (normal and heavy-tailed, 12 and 30 nights, at
    different levels and scales): at most 5% show any step."""
    rng = np.random.default_rng(0)
    false = trials = 0
    for n in (12, 30):
        for _ in range(50):
            for noise in (rng.normal(size=n), rng.standard_t(3, size=n)):
                level, scale = rng.uniform(-100, 100), 10 ** rng.uniform(-3, 2)
                false += bool(cp.detect(level + scale * noise))
                trials += 1
    assert trials == 200
    assert false / trials <= 0.05, f"{false}/{trials} noise histories had a step"


def test_deterministic_metric_any_change_is_a_step_roundoff_is_not():
    x = [0.875] * 6 + [0.8750000001] + [0.875] * 3  # float round-off: no step
    assert cp.detect(x) == []
    x = [0.875] * 6 + [0.87] * 3 + [0.875] * 3  # a 0.5 pp change and its revert
    steps = cp.detect(x, COMMITS[:12])
    assert [(s.label, s.before, s.after) for s in steps] == [
        (COMMITS[6], 0.875, 0.87), (COMMITS[9], 0.87, 0.875)]


def test_short_and_missing_points():
    assert cp.detect([1.0, 2.0, 3.0]) == []  # fewer than 2 segments of min_size
    x = [1.0, np.nan, 1.0, 1.0, np.nan, 5.0, 5.0, 5.0]
    assert [s.index for s in cp.detect(x)] == [5]  # NaN nights skipped, indices kept
    with pytest.raises(ValueError):
        cp.detect([1.0, 2.0], ["a"])


# --------------------------------------------------------------------------- documents

def write_night(folder, i, metrics, suite="smoke"):
    """A results document for night ``i`` (commit COMMITS[i], started on day i)."""
    units = {f"t/d/{seed}": {"task": "t", "dataset": "d", "seed": seed, "config": {},
                             "status": "done", "metrics": [m.to_dict() for m in ms]}
             for seed, ms in enumerate(metrics)}
    meta = {"commit": COMMITS[i], "suite": suite, "started": f"2026-11-{i + 1:02d}T02:00:00",
            "status": "done"}
    path = folder / f"night-{i:02d}.json"
    write_atomic(path, {"schema": SCHEMA, "meta": meta, "units": units})
    return path


def ms(acc=90.0, secs=1.0, steps=100.0):
    return [[Metric("acc", acc, "%", NONE, headline=True),
             Metric("seconds", secs, "s", LOWER, headline=True),
             Metric("steps", steps, "steps", NONE)]]


def test_history_command_names_the_first_commit_after_each_step(tmp_path, capsys):
    accs = [90.0] * 4 + [80.0] * 3 + [90.0] * 3
    for i, a in enumerate(accs):
        write_night(tmp_path, i, ms(acc=a))
    (tmp_path / "asv.json").write_text("{}")  # other JSON in the folder is skipped
    assert main(["history", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "smoke suite: 10 runs" in out and "2 steps" in out
    assert f"t/d acc: step at {COMMITS[4][:10]}: 90 → 80" in out
    assert f"step at {COMMITS[7][:10]}: 80 → 90" in out
    assert "seconds" not in out  # flat


def test_history_bad_input(tmp_path, capsys):
    assert main(["history", str(tmp_path / "nope")]) == 2
    assert "not one" in capsys.readouterr().err


# --------------------------------------------------------------------------- baseline policy

def test_regression_stays_red_until_fixed_and_names_first_bad_commit(tmp_path, capsys):
    """Nights 0-2 good; 3 plants a change (acc 90 → 70); 4-5 keep it; 6 reverts."""
    accs = [90.0, 90.0, 90.0, 70.0, 70.0, 70.0, 90.0, 90.0]
    codes = []
    for i, a in enumerate(accs):
        write_night(tmp_path, i, ms(acc=a))
        codes.append(main(["nightly", str(tmp_path)]))
    assert codes == [0, 0, 0, 1, 1, 1, 0, 0]
    ledger = json.loads((tmp_path / "ledger" / "nightly.json").read_text())
    nights = ledger["nights"]
    assert [n["status"] for n in nights] == ["good"] * 3 + ["red"] * 3 + ["good"] * 2
    # every red night compares against the last good night (2), never yesterday
    assert [n["baseline_commit"] for n in nights[3:7]] == [COMMITS[2]] * 4
    for n in nights[3:6]:
        (f,) = n["failures"]
        assert f["metric"] == "t/d acc" and f["first_bad_commit"] == COMMITS[3]
    out = capsys.readouterr().out
    assert f"first bad commit: {COMMITS[3][:10]}" in out


def test_second_regression_gets_its_own_first_bad_commit(tmp_path):
    rows = [(90, 1.0), (90, 1.0), (70, 1.0), (70, 3.0), (70, 3.0)]
    for i, (a, s) in enumerate(rows):
        write_night(tmp_path, i, ms(acc=a, secs=s))
        night, _ = nightly.record(tmp_path, tmp_path / f"night-{i:02d}.json")
    firsts = {f["metric"]: f["first_bad_commit"] for f in night.failures}
    assert firsts == {"t/d acc": COMMITS[2], "t/d seconds": COMMITS[3]}


def test_acknowledged_change_becomes_the_new_baseline(tmp_path):
    expect = tmp_path / "expected-changes.toml"  # the same file the PR gate reads
    expect.write_text('[[change]]\nmetric = "t/acc"\nold = 90\nnew = 70\n'
                      'reason = "the new data split lowers accuracy on purpose"\n')
    write_night(tmp_path, 0, ms(acc=90))
    write_night(tmp_path, 1, ms(acc=70))
    nightly.record(tmp_path, tmp_path / "night-00.json")
    night, _ = nightly.record(tmp_path, tmp_path / "night-01.json",
                              expect=nightly.load_expect(expect))
    assert night.status == nightly.ACK and "on purpose" in night.acknowledged[0]["reason"]
    write_night(tmp_path, 2, ms(acc=70))  # without the file: 70 is the baseline now
    night, _ = nightly.record(tmp_path, tmp_path / "night-02.json")
    assert night.status == nightly.GOOD and night.baseline_commit == COMMITS[1]


def test_expected_changes_match_like_the_gate(tmp_path):
    p = tmp_path / "expected-changes.toml"
    p.write_text('[[change]]\nmetric = "t/d/acc"\nnew = 70\nreason = "r1"\n'
                 '[[change]]\nbenchmark = "phenomena.Adversarial.track_*"\nreason = "r2"\n'
                 '[[change]]\nmetric = "u/loss[*]"\nreason = "r3"\n')
    ex = nightly.load_expect(p)
    ack = lambda m, b=90.0, h=70.0, **kw: nightly.acknowledged(  # noqa: E731
        {"metric": m, "base": b, "head": h, **kw}, ex)
    assert ack("t/d acc") == "r1"
    assert ack("t/d acc", h=60.0) is None  # listed as → 70, went to 60: not this change
    assert ack("t/e acc") is None  # another dataset
    assert ack("asv phenomena.Adversarial.track_success(0)") == "r2"
    assert ack("asv x", benchmark="phenomena.Adversarial.track_eps") == "r2"
    assert ack("asv phenomena.Memorization.track_steps") is None
    assert ack("u/d loss[lr=0.1]") == "r3" and ack("u/d loss") is None
    p.write_text("t/d acc  # the old plain-line format\n")
    with pytest.raises(UserError, match="not valid TOML"):
        nightly.load_expect(p)


def test_ledger_rebuilt_by_replay_and_rerun_replaces(tmp_path):
    for i, a in enumerate([90.0, 70.0, 70.0]):
        write_night(tmp_path, i, ms(acc=a))
    night, nights = nightly.record(tmp_path, tmp_path / "night-02.json")  # no ledger yet
    assert [n["status"] for n in nights] == ["good", "red", "red"]
    assert night.failures[0]["first_bad_commit"] == COMMITS[1]
    _, again = nightly.record(tmp_path, tmp_path / "night-02.json")  # rerun of the night
    assert len(again) == 3


def test_damaged_ledger_is_one_line_exit_2(tmp_path, capsys):
    write_night(tmp_path, 0, ms())
    (tmp_path / "ledger").mkdir()
    (tmp_path / "ledger" / "nightly.json").write_text("{not json")
    assert main(["nightly", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a readable nightly ledger" in err and len(err.strip().splitlines()) == 1


def test_history_page_marks_steps_and_first_bad_commit(tmp_path):
    from quirkbench.report import render_history

    for i, a in enumerate([90.0, 90.0, 90.0, 70.0, 70.0]):
        write_night(tmp_path, i, ms(acc=a))
        nightly.record(tmp_path, tmp_path / f"night-{i:02d}.json")
    html = render_history(tmp_path, out=tmp_path / "h.html").read_text()
    assert "Step changes" in html and f"step at 3: {COMMITS[3][:7]}: 90 → 70" in html
    assert "Nightly verdict" in html and "red" in html
    assert f"<code>{COMMITS[3][:10]}</code>" in html  # the first bad commit


# --------------------------------------------------------------------------- asv's record

def asv_store(folder, nights: dict[str, tuple[float, float]], seed=0):
    """asv results for machine ``m``: per commit a timed benchmark (40 samples around ``t``,
    5% noise) and a direction-less track with value ``track``."""
    results = pytest.importorskip("asv.results")
    from asv import util
    from asv.machine import Machine
    from asv.runner import BenchmarkResult

    (folder / "m").mkdir(parents=True, exist_ok=True)
    util.write_json(str(folder / "m" / "machine.json"), {"machine": "m"},
                    api_version=Machine.api_version)
    rng = np.random.default_rng(seed)
    for commit, (t, track) in nights.items():
        r = results.Results({"machine": "m"}, {}, commit, 0, "3.11", "existing-py", {})
        s = list(t * (1 + 0.05 * rng.normal(size=40)))
        r.add_result({"name": "bench_core.T.time_epoch", "version": "1", "params": [["cpu"]]},
                     BenchmarkResult([float(np.median(s))], [s], [1], 0, "", None),
                     record_samples=True)
        r.add_result({"name": "bench_phenomena.A.track_rate", "version": "1", "params": []},
                     BenchmarkResult([track], [None], [None], 0, "", None))
        r.save(str(folder))


def test_asv_changes_slower_time_and_either_way_track(tmp_path):
    a, b, c = COMMITS[:3]
    asv_store(tmp_path, {a: (0.040, 60.0), b: (0.050, 30.0), c: (0.0405, 60.0)})
    ch = {x["metric"]: x for x in asv_record.asv_changes(tmp_path, "m", a, b)}
    assert ch["asv bench_core.T.time_epoch(cpu)"]["verdict"] == "slower"
    assert ch["asv bench_core.T.time_epoch(cpu)"]["ratio"] == pytest.approx(1.25, abs=0.05)
    assert "asv bench_phenomena.A.track_rate" not in ch  # it fell: asv reads that as better
    ch = {x["metric"]: x for x in asv_record.asv_changes(tmp_path, "m", a, b,
                                                        either_way=("*.A.track_*",))}
    assert ch["asv bench_phenomena.A.track_rate"]["verdict"] == "moved"
    assert asv_record.asv_changes(tmp_path, "m", a, c) == []  # 1.0125×: within noise and factor
    assert asv_record.asv_changes(tmp_path, "m", a, COMMITS[9]) == []  # no record of that commit


def test_nightly_command_with_asv_stays_red_and_names_first_bad_commit(tmp_path, capsys):
    res, store = tmp_path / "results", tmp_path / "asv"
    res.mkdir()
    times = [0.040, 0.041, 0.052, 0.051, 0.040]
    asv_store(store, {COMMITS[i]: (t, 60.0) for i, t in enumerate(times)})
    codes = []
    for i in range(len(times)):
        write_night(res, i, ms())
        codes.append(main(["nightly", str(res), "--asv-results", str(store),
                           "--asv-machine", "m"]))
    assert codes == [0, 0, 1, 1, 0]
    out = capsys.readouterr().out
    assert f"first bad commit: {COMMITS[2][:10]}" in out
    assert "asv bench_core.T.time_epoch(cpu)" in out


def test_baseline_is_the_last_good_night_of_the_same_suite(tmp_path):
    write_night(tmp_path, 0, ms(acc=90), suite="nightly")
    write_night(tmp_path, 1, ms(acc=70), suite="smoke")  # a smoke run in the same folder
    write_night(tmp_path, 2, ms(acc=90), suite="nightly")
    for i in range(3):
        night, _ = nightly.record(tmp_path, tmp_path / f"night-{i:02d}.json")
    assert night.status == nightly.GOOD and night.baseline_commit == COMMITS[0]


def test_asv_spread_raises_a_benchmarks_factor_to_its_night_to_night_drift(tmp_path):
    a, b = COMMITS[:2]
    asv_store(tmp_path, {a: (0.040, 60.0), b: (0.048, 60.0)})  # 1.2x, asv's statistics agree
    name = "bench_core.T.time_epoch(cpu)"
    assert [x["metric"] for x in asv_record.asv_changes(tmp_path, "m", a, b)] == [f"asv {name}"]
    # an A/A drift of sigma(log) 0.08 on this machine: factor exp(0.24) = 1.27 > 1.2
    spread = tmp_path / "spread.json"
    spread.write_text(json.dumps({"machine": "m", "benchmarks": {name: {"factor": 1.27}}}))
    factors = asv_record.load_asv_spread(spread, "m")
    assert asv_record.asv_changes(tmp_path, "m", a, b, spread=factors) == []
    # a listed factor below asv's 1.1 never lowers it; an unlisted benchmark keeps 1.1
    row, = asv_record.asv_changes(tmp_path, "m", a, b, spread={name: 1.01})
    assert row["limit"] == pytest.approx(1.1)
    assert asv_record.asv_changes(tmp_path, "m", a, b, spread={"other": 2.0})[0]["limit"] == 1.1


def test_asv_spread_file_errors_are_one_line(tmp_path):
    p = tmp_path / "s.json"
    p.write_text("{}")
    with pytest.raises(UserError, match="not an asv A/A spread file") as e:
        asv_record.load_asv_spread(p)
    assert "{name: {'factor': number}}" in str(e.value)  # what a valid file holds
    p.write_text(json.dumps({"machine": "gpu-1", "benchmarks": {"x": {"factor": 1.3}}}))
    with pytest.raises(UserError, match="measured on asv machine 'gpu-1', not 'cpu-2'"):
        asv_record.load_asv_spread(p, "cpu-2")
    p.write_text(json.dumps({"benchmarks": {"x": {"factor": 0.5}}}))
    with pytest.raises(UserError, match="factor of x is not a number >= 1"):
        asv_record.load_asv_spread(p)
    with pytest.raises(UserError, match="cannot read --asv-spread"):
        asv_record.load_asv_spread(tmp_path / "missing.json")
