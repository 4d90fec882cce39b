"""The gate's evidence tools (qbtools/gate and qbtools/docs): the planted breakages and the
harmless rewrites still apply to the code they edit, the seed-swap null splits a calibration
into one document per seed and judges every ordered pair (leave-two-out: the model never saw
either side), and the one-seed power table follows the gate's own rule."""

from __future__ import annotations

import collections
import json
import math

import pytest

from qbtools import ROOT
from qbtools.docs.power_one_seed import Z80, cost_to_meet, power_rows
from qbtools.gate import seed_swap
from qbtools.gate.harmless import CHANGES
from qbtools.gate.planted import PLANTS
from quirkbench.metrics import HIGHER, NONE, Metric
from quirkbench.tracking import noise
from quirkbench.tracking.results import SCHEMA
from quirkbench.tracking.verdicts import critical

ENV = {"quirkbench": "0.1.0", "torch": "2.13.0+cpu", "python": "3.11.7", "device": "cpu",
       "device_name": "x86_64", "cpu_threads": 1, "deterministic": True, "suite": "pr",
       "commit": "c" * 40, "status": "done"}


@pytest.mark.parametrize("name", [*PLANTS, *[n for n, c in CHANGES.items() if c[0]]])
def test_every_planted_breakage_and_harmless_rewrite_applies_once(name):
    rel, old = (PLANTS[name] if name in PLANTS else CHANGES[name])[:2]
    text = (ROOT / "src" / "quirkbench" / rel).read_text()
    assert text.count(old) == 1, f"{name}: its text is not once in {rel}"


def _unit(seed: int, acc: float, ratio: float) -> dict:
    ms = [Metric("test_acc", acc, "%", HIGHER, headline=True),
          Metric("slowdown", ratio, "×", NONE, headline=True)]
    return {"task": "memorization", "dataset": "mnist5k", "seed": seed, "config": {"lr": 0.1},
            "status": "done", "metrics": [m.to_dict() for m in ms], "series": {}, "info": {},
            "started": None, "ended": None, "seconds": 1.0, "error": None}


def _calibration(folder, values: dict[int, tuple[float, float]]):
    """Two documents (a calibration split over two processes), seeds spread over both."""
    folder.mkdir()
    seeds = sorted(values)
    for i, part in enumerate((seeds[::2], seeds[1::2])):
        units = {f"memorization/mnist5k/{s}": _unit(s, *values[s]) for s in part}
        meta = {**ENV, "tasks": ["memorization"], "datasets": ["mnist5k"], "seeds": part}
        (folder / f"results-pr-{i}.json").write_text(
            json.dumps({"schema": SCHEMA, "meta": meta, "units": units}))


QUIET = {s: (90.0 + 0.5 * math.sin(s), 3.0 * (1 + 0.05 * math.cos(s))) for s in range(100, 108)}


def test_seed_swap_judges_every_ordered_pair_with_a_model_that_never_saw_either(tmp_path):
    _calibration(tmp_path / "cal", {**QUIET, 108: (70.0, 3.0)})  # seed 108: far worse
    docs = seed_swap.split_by_seed(tmp_path / "cal", tmp_path)
    assert sorted(docs) == list(range(100, 109))
    assert [u["seed"] for u in json.loads(docs[101].read_text())["units"].values()] == [101]
    held_out = seed_swap.leave_out_model(tmp_path / "cal", (100, 108))
    acc = held_out.get("memorization", "mnist5k", "test_acc")
    assert acc.n == 7 and "100" not in acc.values and "108" not in acc.values
    pairs = seed_swap.judge(docs, None, lambda p: seed_swap.leave_out_model(
        tmp_path / "cal", tuple(sorted(p))))
    assert len(pairs) == 9 * 8
    failed = {(p["base"], p["head"]) for p in pairs if p["fails"]}
    # the worse seed as the head regresses against every other; no other pair fails
    assert failed == {(s, 108) for s in QUIET}
    assert all(r[0].startswith("memorization/test_acc") for p in pairs for r in p["rows"])
    md = "\n".join(seed_swap.section("t", "w", pairs))
    assert "**8 of 72 pairs fail the gate (11.1%)**" in md
    # the page says which seed the failures gather on: 108 is in all 8, each other seed in 1
    assert "seeds in the failing pairs (a pair counts for both of its seeds): 108 in 8, " in md


def test_power_at_one_seed_follows_the_gate_rule(tmp_path):
    _calibration(tmp_path / "cal", QUIET)
    from quirkbench.tracking.calibration import _meta, _units

    model = noise.NoiseModel("m", {}, {
        k: noise._metric(k, m, "t")
        for k, m in noise.build(_units(tmp_path / "cal"), _meta(tmp_path / "cal"), "c",
                                "now")["metrics"].items()})
    rows = {r["key"]: r for r in power_rows(model)}
    acc, ratio = rows["test_acc"], rows["slowdown"]
    m = model.get("memorization", "mnist5k", "test_acc")
    crit = critical(8, 2, two_sided=False)
    assert acc["critical"] == pytest.approx(crit)
    assert acc["caught"] == pytest.approx((crit + Z80) * math.sqrt(2) * m.sd)
    assert acc["met"] == (acc["caught"] <= 5.0) and not acc["relative"]
    r = model.get("memorization", "mnist5k", "slowdown")
    two = critical(8, 2, two_sided=True)
    assert ratio["relative"] and ratio["critical"] == pytest.approx(two)
    assert ratio["caught"] == pytest.approx(math.expm1((two + Z80) * math.sqrt(2) * r.log_sd))
    # if the sd is larger: the same catch with the sd at its upper 95% bound from 8 seeds
    # (chi-square on 7 degrees of freedom, 2.167 at 5%: the sd times 1.797)
    assert acc["caught_hi"] == pytest.approx(acc["caught"] * math.sqrt(7 / 2.16735), rel=1e-4)
    assert ratio["caught_hi"] == pytest.approx(
        math.expm1((two + Z80) * math.sqrt(2) * r.log_sd * math.sqrt(7 / 2.16735)), rel=1e-4)
    assert all(r["met"] or not r["met_hi"] for r in rows.values())


def test_power_of_a_spread_in_pp_on_the_log_scale_is_the_rise_in_pp_from_its_typical_value(
        tmp_path):
    from qbtools.docs.power_one_seed import markdown
    from quirkbench.metrics import LOG
    from quirkbench.tracking.calibration import _meta, _units

    folder = tmp_path / "cal"
    folder.mkdir()
    spreads = {s: 0.6 * math.exp(0.4 * math.sin(3 * s)) for s in range(100, 110)}
    units = {}
    for s, v in spreads.items():
        m = Metric("test_acc_std", v, "pp", NONE, headline=True, scale=LOG)
        units[f"sensitivity/mnist5k/{s}"] = {
            "task": "sensitivity", "dataset": "mnist5k", "seed": s, "config": {}, "status": "done",
            "metrics": [m.to_dict()], "series": {}, "info": {}, "started": None, "ended": None,
            "seconds": 1.0, "error": None}
    meta = {**ENV, "tasks": ["sensitivity"], "datasets": ["mnist5k"], "seeds": sorted(spreads)}
    (folder / "results-pr.json").write_text(
        json.dumps({"schema": SCHEMA, "meta": meta, "units": units}))
    model = noise.NoiseModel("m", {}, {
        k: noise._metric(k, m, "t")
        for k, m in noise.build(_units(folder), _meta(folder), "c", "now")["metrics"].items()})
    (row,) = power_rows(model)
    m = model.get("sensitivity", "mnist5k", "test_acc_std")
    logs = [math.log(v) for v in spreads.values()]
    g = math.exp(sum(logs) / len(logs))  # the geometric mean, not the arithmetic one
    two = critical(10, 1, two_sided=True)
    assert row["typical"] == pytest.approx(g) and abs(g - m.mean) > 1e-3
    # held to the pp goal, not 25% of the value: the rise in pp to g·exp(k·s)
    assert not row["relative"] and row["goal"] == 5.0
    assert row["fails"] == pytest.approx(g * math.expm1(two * math.sqrt(2) * m.log_sd))
    assert row["caught"] == pytest.approx(g * math.expm1((two + Z80) * math.sqrt(2) * m.log_sd))
    assert row["met"] == (row["caught"] <= 5.0)
    line = next(x for x in markdown(model, [row], None, "c", "h") if "test_acc_std" in x)
    assert (f"{row['caught']:.2f} pp | {row['caught_hi']:.2f} pp | "
            f"{row['caught_escalated']:.2f} pp | 5.00 pp |") in line
    assert f"around {g:.2f} pp" in line


def _noise(mean, sd, unit="%", direction=HIGHER):
    from types import SimpleNamespace

    return SimpleNamespace(mean=mean, unit=unit, direction=direction, log_scale=False,
                           values={}, spread=lambda: sd)


@pytest.mark.parametrize("direction", [HIGHER, NONE])
def test_escalation_power_without_extra_seeds_is_the_one_seed_rule(direction):
    from qbtools.docs.power_one_seed import escalated_k

    crit = critical(20, 41, two_sided=direction == NONE)
    k = escalated_k(_noise(40.0, 3.0, direction=direction), crit, extra=0)
    assert k == pytest.approx((crit + Z80) * math.sqrt(2), rel=0.02)


def test_escalation_catches_less_only_where_compares_threshold_allows():
    from qbtools.docs.power_one_seed import escalated_k

    crit = critical(20, 41, two_sided=False)
    one = (crit + Z80) * math.sqrt(2)
    # a noisy 40% metric: 4 seeds a side catch a far smaller regression (compare's practical
    # threshold is 5% of 40, 2 pp: below it)
    noisy = escalated_k(_noise(40.0, 3.0), crit)
    assert noisy < 0.75 * one
    # an 87% metric with a 0.4 pp seed sd: the one-seed gate already catches 2.4 pp, below
    # the 4.35 pp (5% of 87) the t-test also asks for, so escalation adds nothing
    quiet = escalated_k(_noise(87.0, 0.4), crit)
    assert quiet == pytest.approx(one, rel=0.02)


def test_planted_aa_alone_with_cpu_burners_beside_it_stops_them(tmp_path, monkeypatch):
    from qbtools.gate import planted

    for side, acc in (("base", 90.0), ("aa", 90.0)):
        (tmp_path / side).mkdir()
        meta = {**ENV, "tasks": ["memorization"], "datasets": ["mnist5k"], "seeds": [0]}
        (tmp_path / side / "seed0.json").write_text(json.dumps(
            {"schema": SCHEMA, "meta": meta,
             "units": {"memorization/mnist5k/0": _unit(0, acc, 3.0)}}))
    (tmp_path / "commit.json").write_text(json.dumps({"commit": "c" * 40}))
    started = []
    real = planted.subprocess.Popen

    def popen(*args, **kw):
        started.append(real(*args, **kw))
        return started[-1]
    monkeypatch.setattr(planted.subprocess, "Popen", popen)
    md = tmp_path / "aa.md"
    assert planted.main(["--plants", "none", "--burn", "2", "--judge-only", "--seeds", "0",
                         "--out", str(tmp_path), "--md", str(md), "--noise-model", "",
                         "--timing-spread", ""]) == 0
    yes = [p for p in started if p.args == ["yes"]]
    assert len(yes) == 2 and all(p.poll() is not None for p in yes)
    text = md.read_text()
    assert "**2 CPU-burning processes (`yes > /dev/null`) beside every run" in text
    assert "- result: the A/A passed" in text and "| A/A (no change) | passes |" in text


def test_unordered_pairs_take_every_pair_once_with_the_sides_alternating():
    seeds = range(100, 120)
    pairs = seed_swap.pairs_of(seeds, ordered=False)
    assert len(pairs) == 190 and len({frozenset(p) for p in pairs}) == 190
    bases = collections.Counter(a for a, _ in pairs)
    assert max(bases.values()) - min(bases.values()) <= 2  # no seed is always the base
    assert len(seed_swap.pairs_of(seeds)) == 380


def test_escalation_power_assumes_the_pr_scripts_default_budget():
    import re

    from qbtools.docs.power_one_seed import ESCALATE_EXTRA

    script = (ROOT / "scripts" / "pr_check.sh").read_text()
    (default,) = re.findall(r"escalate_seeds=\$\{QB_ESCALATE_SEEDS:-(\d+)\}", script)
    assert int(default) == ESCALATE_EXTRA


def test_the_cost_of_meeting_the_goal_repeats_each_task_for_its_worst_miss():
    """A task's unit is repeated as often as its noisiest missed metric needs (not once per
    miss); met rows cost nothing; without a cost entry there is no total."""
    rows = [{"task": "a", "met": False, "need": 3, "cost": 10.0},
            {"task": "a", "met": False, "need": 5, "cost": 10.0},
            {"task": "b", "met": False, "need": 2, "cost": 4.0},
            {"task": "c", "met": True, "need": 1, "cost": 100.0}]
    assert cost_to_meet(rows) == (14.0, 58.0)
    assert cost_to_meet(rows[3:]) is None
    assert cost_to_meet([*rows, {"task": "d", "met": False, "need": 2, "cost": None}]) is None


def test_the_power_page_refuses_a_missing_model_in_one_line(tmp_path, capsys):
    """A noise model that is not there: one line naming it, exit 2, the page not written."""
    from qbtools.docs.power_one_seed import main

    md = tmp_path / "power.md"
    assert main([str(tmp_path / "nope.json"), "--md", str(md)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "nope.json does not exist" in err
    assert not md.exists()
