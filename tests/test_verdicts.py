"""The graded verdicts against a noise model: one test per verdict, the one-seed rule's
critical value, the stale and missing model, the first line in the terminal, the Markdown
and the HTML, and the expected-changes entry the gate prints for a failing row."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from quirkbench.cli import main
from quirkbench.metrics import HIGHER, LOG, LOWER, NONE, TIMING, Metric
from quirkbench.tracking import noise
from quirkbench.tracking.compare import compare
from quirkbench.tracking.results import SCHEMA
from quirkbench.tracking.summary import gate_line
from quirkbench.tracking.table import format_table
from quirkbench.tracking.verdicts import critical

ENV = {"quirkbench": "0.1.0", "torch": "2.13.0+cpu", "python": "3.11.7", "device": "cpu",
       "device_name": "x86_64", "cpu_threads": 1, "deterministic": True}
CONFIG = {"lr": 0.1}
# per seed: accuracy (%, higher), forgetting (%, lower, a holds check), a ratio (×, none)
SPREAD = {s: (88.0 + 0.5 * math.sin(s), 20.0 + 1.0 * math.cos(s), 3.0 * (1 + 0.1 * math.sin(2 * s)))
          for s in range(100, 120)}


def metrics(acc=88.0, forgetting=20.0, ratio=3.0, holds=True, speed=None, extra=()):
    out = [Metric("test_acc", acc, "%", HIGHER, headline=True),
           Metric("forgetting_pct", forgetting, "%", LOWER, headline=True, holds=holds),
           Metric("slowdown", ratio, "×", NONE, headline=True),
           Metric("train_acc", acc + 5, "%", HIGHER)]  # not a headline
    if speed is not None:
        out.append(Metric("samples_per_s", speed, "samples/s", HIGHER, kind=TIMING,
                          headline=True))
    return out + list(extra)


def unit(seed, ms, config=None, control=None):
    u = {"task": "forgetting", "dataset": "mnist5k", "seed": seed, "config": config or CONFIG,
         "status": "done", "metrics": [m.to_dict() for m in ms], "series": {}, "info": {},
         "started": None, "ended": None, "seconds": 1.0, "error": None}
    if control:
        u["control"] = {"before_s": control[0], "after_s": control[1]}
        if len(control) > 2:
            u["control"]["cpu_share"] = control[2]
    return u


def doc(path, by_seed: dict, env=None, commit="a" * 40, config=None, control=None) -> str:
    meta = {**ENV, **(env or {}), "suite": "pr", "commit": commit, "status": "done",
            "tasks": ["forgetting"], "datasets": ["mnist5k"], "seeds": sorted(by_seed)}
    units = {f"forgetting/mnist5k/{s}": unit(s, ms, config, control) for s, ms in by_seed.items()}
    path.write_text(json.dumps({"schema": SCHEMA, "meta": meta, "units": units}))
    return str(path)


@pytest.fixture()
def model(tmp_path):
    """A noise model of the forgetting task over 20 validation seeds."""
    units = [unit(s, metrics(a, f, r)) for s, (a, f, r) in SPREAD.items()]
    path = tmp_path / "noise" / "pr.json"
    path.parent.mkdir()
    noise.write(noise.build(units, {**ENV, "suite": "pr", "commit": "m" * 40}, "cmd", "now"),
                path)
    return str(path)


def one(tmp_path, name, **kw) -> str:
    return doc(tmp_path / f"{name}.json", {0: metrics(**kw)})


def row(df, key):
    return df.set_index("key").loc[key]


# --------------------------------------------------------------------------- each verdict

def test_identical_in_any_environment(tmp_path, model):
    base = one(tmp_path, "b")
    head = doc(tmp_path / "h.json", {0: metrics()}, env={"torch": "2.14.1"})
    df = compare(base, head, noise_model=model)
    assert set(df["verdict"]) == {"identical"} and not df["fails"].any()
    assert df.attrs["identity"] == "4 of 4 exact metrics identical across torch 2.13.0+cpu → " \
        "2.14.1"


def test_within_noise_is_shown_with_its_z(tmp_path, model):
    df = compare(one(tmp_path, "b"), one(tmp_path, "h", acc=87.5), noise_model=model)
    r = row(df, "test_acc")
    assert r["verdict"] == "within noise" and r["test"] == "noise" and not r["fails"]
    sd = noise.read(model).get("forgetting", "mnist5k", "test_acc").sd
    assert r["z"] == pytest.approx(-0.5 / (sd * math.sqrt(2)))
    assert r["critical"] == pytest.approx(critical(20, 3, two_sided=False))
    assert r["mde"] == pytest.approx(r["critical"] * sd * math.sqrt(2))  # the one-seed MDE
    assert "z = -" in r["note"]


def test_regressed_and_improved_beyond_noise_by_direction(tmp_path, model):
    df = compare(one(tmp_path, "b"), one(tmp_path, "h", acc=80.0, forgetting=10.0),
                 noise_model=model)
    assert row(df, "test_acc")["verdict"] == "regressed beyond noise"  # higher is better
    assert row(df, "test_acc")["fails"]  # a headline
    assert row(df, "forgetting_pct")["verdict"] == "improved beyond noise"  # lower is better
    assert not row(df, "forgetting_pct")["fails"]
    # a non-headline regression is shown, and fails only with --fail-on moved
    df = compare(one(tmp_path, "b"), one(tmp_path, "h2", acc=80.0, extra=()), noise_model=model)
    assert row(df, "train_acc")["verdict"] == "regressed beyond noise"
    assert not row(df, "train_acc")["fails"]
    assert row(compare(one(tmp_path, "b"), one(tmp_path, "h2"), noise_model=model,
                       fail_on="moved"), "train_acc")["verdict"] == "identical"


def test_direction_none_moves_beyond_noise_either_way_on_the_log_scale(tmp_path, model):
    base = one(tmp_path, "b")
    for r_, verdict in ((6.0, "moved beyond noise"), (1.5, "moved beyond noise"),
                        (3.05, "within noise")):
        r = row(compare(base, one(tmp_path, f"h{r_}", ratio=r_), noise_model=model), "slowdown")
        assert r["verdict"] == verdict and r["fails"] == (verdict != "within noise")
        # × ratios are judged as log ratios: doubling and halving are equally far
    up = row(compare(base, one(tmp_path, "u", ratio=6.0), noise_model=model), "slowdown")["z"]
    down = row(compare(base, one(tmp_path, "d", ratio=1.5), noise_model=model), "slowdown")["z"]
    assert up == pytest.approx(-down)


def test_a_spread_declared_on_the_log_scale_is_judged_as_a_ratio(tmp_path):
    """An sd over a few models (seed noise ×/÷, a long right tail): one seed's 1.35 against
    another's 0.45 (×3) is within noise on the log scale, where the same values judged linearly
    would fail; an sd collapsed to a tenth (models alike) fails there, linearly it passes."""
    sds = [0.45 * math.exp(0.6 * math.sin(1.7 * s)) for s in range(20)]

    def ms(v, scale):
        return [Metric("acc_std", v, "pp", NONE, headline=True, scale=scale)]

    for scale, tail in ((LOG, "within noise"), ("linear", "moved beyond noise")):
        path = tmp_path / f"{scale}.json"
        noise.write(noise.build([unit(s, ms(v, scale)) for s, v in enumerate(sds)],
                                {**ENV, "suite": "pr", "commit": "m" * 40}, "cmd", "now"), path)
        base = doc(tmp_path / f"b-{scale}.json", {0: ms(0.45, scale)})
        for head, verdict in ((1.35, tail), (0.045, "moved beyond noise" if scale == LOG
                                            else "within noise")):
            h = doc(tmp_path / f"h-{scale}-{head}.json", {0: ms(head, scale)})
            assert row(compare(base, h, noise_model=str(path)), "acc_std")["verdict"] == \
                verdict, (scale, head)


def test_phenomenon_lost_is_the_loudest_and_needs_the_value_to_move(tmp_path, model):
    base = one(tmp_path, "b")
    lost = compare(base, one(tmp_path, "h", forgetting=40.0, holds=False, acc=80.0),
                   noise_model=model)
    r = row(lost, "forgetting_pct")
    assert r["verdict"] == "phenomenon lost" and r["fails"] and "holds yes → no" in r["note"]
    assert gate_line(lost) == "GATE FAIL: 1 phenomenon lost, 1 regression beyond noise"
    # the check flickered but the value stayed within seed noise: not lost
    flicker = row(compare(base, one(tmp_path, "f", forgetting=20.5, holds=False),
                          noise_model=model), "forgetting_pct")
    assert flicker["verdict"] == "within noise" and "holds yes → no, but" in flicker["note"]
    # with no noise model, a holds yes → no is evidence enough
    r = row(compare(base, one(tmp_path, "f"), noise_model=None), "forgetting_pct")
    assert r["verdict"] == "identical"
    r = row(compare(base, one(tmp_path, "f2", forgetting=20.5, holds=False)), "forgetting_pct")
    assert r["verdict"] == "phenomenon lost" and r["test"] == "holds"


def test_gone_new_expected_and_not_judged(tmp_path, model):
    base = doc(tmp_path / "b.json", {0: metrics(extra=[Metric("old", 1.0, "1", headline=True)])})
    head = doc(tmp_path / "h.json", {0: metrics(acc=70.0, extra=[Metric("brand_new", 1.0, "1")])})
    df = compare(base, head, noise_model=model)
    assert row(df, "old")["verdict"] == "gone" and row(df, "old")["fails"]
    assert row(df, "brand_new")["verdict"] == "new" and not row(df, "brand_new")["fails"]
    # a metric the model does not know, changed on one seed: not judged, never "unchanged"
    head2 = doc(tmp_path / "h2.json", {0: metrics(extra=[Metric("old", 1.01, "1",
                                                                 headline=True)])})
    r = row(compare(base, head2, noise_model=model), "old")
    assert r["verdict"] == "not judged" and r["note"].startswith("not in the noise model")
    assert not r["fails"]


def test_timings_not_judged_when_the_machine_speed_moved(tmp_path, model):
    base = doc(tmp_path / "b.json", {0: metrics(speed=1000.0)}, control=(1.0, 1.02))
    slow = doc(tmp_path / "s.json", {0: metrics(speed=700.0)}, control=(1.0, 1.01))
    r = row(compare(base, slow, noise_model=model), "samples_per_s")
    assert r["verdict"] == "regressed beyond noise" and r["fails"]  # steady machine: a step
    noisy = doc(tmp_path / "n.json", {0: metrics(speed=700.0)}, control=(1.3, 1.35))
    r = row(compare(base, noisy, noise_model=model), "samples_per_s")
    assert r["verdict"] == "not judged" and not r["fails"]
    # the control's mean moved 1.01 s → 1.325 s between the runs
    assert r["note"].startswith("the machine's speed moved ±31% during the run")
    # no timing beyond ×1.2 is ever "unchanged": within noise, with its factor
    r = row(compare(base, doc(tmp_path / "w.json", {0: metrics(speed=1100.0)}),
                    noise_model=model), "samples_per_s")
    assert r["verdict"] == "within noise" and r["note"].startswith("×1.1 (limit ×1.2)")


def test_timing_ratio_not_judged_when_its_own_repeats_explain_the_change(tmp_path, model):
    """A ratio of timings interleaved in one run, with the standard error its repeats put on
    it (``spread``): the machine's control steady, yet beside busy processes its repeats
    scatter: a ×0.77 that 3 standard errors of the change cover is not judged, never
    regressed; on a quiet machine (repeats within ~2%) the same ×0.77 is a regression."""
    def ratio(value, spread):
        return [Metric("speedup_vs_fastest_peer", value, "×", HIGHER, kind=TIMING,
                       headline=True, spread=spread)]

    def side(name, value, spread):
        return doc(tmp_path / f"{name}.json", {0: metrics(extra=ratio(value, spread))},
                   control=(1.0, 1.02))

    key = "speedup_vs_fastest_peer"
    r = row(compare(side("b", 0.75, 0.07), side("h", 0.578, 0.07), noise_model=model), key)
    assert r["verdict"] == "not judged" and not r["fails"]
    assert r["note"].startswith("its repeats spread too widely to judge; ±35% ")
    assert "explains ×0.771" in r["note"]
    r = row(compare(side("qb", 0.75, 0.01), side("qh", 0.578, 0.01), noise_model=model), key)
    assert r["verdict"] == "regressed beyond noise" and r["fails"]
    # without a recorded spread (older documents): the factor rule alone, as before
    r = row(compare(side("ob", 0.75, None), side("oh", 0.578, None), noise_model=model), key)
    assert r["verdict"] == "regressed beyond noise"


def test_interleaved_ratio_judged_past_the_machine_move(tmp_path, model):
    """The control moved ±31% between the runs: raw timings are not judged, but a ratio of
    interleaved timings that moved past its repeats' band and the machine's move together
    (a training step made ~40% slower) is still a regression; one the move could explain
    (×0.8, within ±31% plus its band) is not judged, with both numbers in its reason."""
    def side(name, value, control):
        extra = [Metric("speedup_vs_naive", value, "×", HIGHER, kind=TIMING, headline=True,
                        spread=0.01)]
        return doc(tmp_path / f"{name}.json", {0: metrics(speed=value * 1000, extra=extra)},
                   control=control)

    base = side("b", 1.0, (1.0, 1.02))
    df = compare(base, side("slow", 0.6, (1.3, 1.35)), noise_model=model)
    r = row(df, "speedup_vs_naive")
    assert r["verdict"] == "regressed beyond noise" and r["fails"]
    assert "judged though the machine's speed moved ±31%" in r["note"]
    raw = row(df, "samples_per_s")  # moved with the machine: not judged
    assert raw["verdict"] == "not judged" and not raw["fails"]
    r = row(compare(base, side("near", 0.8, (1.3, 1.35)), noise_model=model),
            "speedup_vs_naive")
    assert r["verdict"] == "not judged" and not r["fails"]
    assert r["note"].startswith("the machine's speed moved ±31% during the run; with its "
                                "repeats' ±4% (3 standard errors) that explains up to ±37%")
    # the same ×0.8 on a steady machine: past the ×1.2 limit and its ±4% band, a regression
    r = row(compare(base, side("steady", 0.8, (1.0, 1.01)), noise_model=model),
            "speedup_vs_naive")
    assert r["verdict"] == "regressed beyond noise"
    # the control steady, but the head's unit had 60% of its core (two busy neighbours): its
    # interleaved repeats are preempted unevenly, and ×0.8 is not judged (±67% + its band)
    df = compare(base, side("shared", 0.8, (1.0, 1.01, 0.6)), noise_model=model)
    r = row(df, "speedup_vs_naive")
    assert r["verdict"] == "not judged" and not r["fails"]
    assert r["note"].startswith("the machine's speed moved ±67% during the run")
    raw = row(df, "samples_per_s")
    assert raw["verdict"] == "not judged" and raw["note"].startswith(
        "the machine's speed moved ±67% during the run")
    # a full core (a share a little over 1 counts as 1): judged as on the steady machine
    r = row(compare(base, side("full", 0.8, (1.0, 1.01, 1.02)), noise_model=model),
            "speedup_vs_naive")
    assert r["verdict"] == "regressed beyond noise"


def test_another_cpu_is_another_environment(tmp_path):
    """The same torch on an Intel and an AMD x86_64 rounds differently: the CPU's model and
    vector instructions are in the fingerprint, so --strict does not fail such rounding as a
    change in the same environment, and the identity line says across what."""
    intel = {"cpu": "Intel(R) Xeon(R) Platinum", "cpu_capability": "AVX512"}
    base = doc(tmp_path / "b.json", {0: metrics()}, env=intel)
    head = doc(tmp_path / "h.json", {0: metrics(acc=88.001)},
               env={"cpu": "AMD EPYC", "cpu_capability": "AVX2"})
    df = compare(base, head, strict=True)
    assert [w for w in df.attrs["warnings"]
            if "cpu Intel(R) Xeon(R) Platinum → AMD EPYC" in w and "cpu_capability AVX512 → AVX2"
            in w]
    assert not row(df, "test_acc")["fails"]
    assert "across cpu Intel(R) Xeon(R) Platinum → AMD EPYC; cpu_capability AVX512 → AVX2" in \
        df.attrs["identity"]
    same = doc(tmp_path / "s.json", {0: metrics(acc=88.001)}, env=intel)
    assert row(compare(base, same, strict=True), "test_acc")["fails"]  # one CPU: a change
    # a base from before the CPU was recorded: the field reads unrecorded, not None
    old = doc(tmp_path / "o.json", {0: metrics()}, env={"cpu": None, "cpu_capability": None})
    df = compare(old, same)
    assert [w for w in df.attrs["warnings"] if "cpu unrecorded → Intel(R) Xeon(R) Platinum" in w
            and "None" not in w]


# --------------------------------------------------------------------------- the model

def test_stale_model_refuses_to_judge_a_task_whose_settings_changed(tmp_path, model, capsys):
    base = doc(tmp_path / "b.json", {0: metrics()}, config={"lr": 0.2})
    head = doc(tmp_path / "h.json", {0: metrics(acc=87.5)}, config={"lr": 0.2})
    df = compare(base, head, noise_model=model)
    r = row(df, "test_acc")
    assert r["verdict"] == "not judged"
    assert r["note"].startswith("noise model stale: forgetting settings differ from the model's")
    assert [n for n in df.attrs["notes"] if "stale for 1 task(s)" in n]
    # another device class: the whole model is stale, said in one line
    gpu = {"device": "cuda:0", "device_name": "NVIDIA H100"}
    b = doc(tmp_path / "gb.json", {0: metrics()}, env=gpu)
    h = doc(tmp_path / "gh.json", {0: metrics(acc=87.5)}, env=gpu)
    assert main(["compare", b, h, "--noise-model", model]) == 0
    out = capsys.readouterr().out
    assert "note: noise model stale: made on cpu, these runs on NVIDIA H100; its metrics are " \
        "not judged" in out
    assert "not judged 2: 2 (noise model stale: made on cpu, these runs on NVIDIA H100)" in out


def test_missing_model_is_one_line_and_the_default_looks_in_bench_noise(tmp_path, model,
                                                                      monkeypatch, capsys):
    base, head = one(tmp_path, "b"), one(tmp_path, "h", acc=87.5)
    monkeypatch.setenv("QB_NOISE_DIR", str(tmp_path / "nowhere"))
    assert main(["compare", base, head]) == 0
    out = capsys.readouterr().out
    assert out.count("no noise model for the pr suite") == 2  # the note, the not-judged count
    monkeypatch.setenv("QB_NOISE_DIR", str(tmp_path / "noise"))  # where the fixture wrote it
    main(["compare", base, head])
    assert capsys.readouterr().out.splitlines()[0] == \
        "GATE PASS: 2 changes within seed noise, 2 identical"  # test_acc and train_acc


def test_the_default_model_is_found_from_any_folder_inside_the_checkout(tmp_path,
                                                                       monkeypatch):
    from quirkbench.tracking.noise import default_path

    monkeypatch.delenv("QB_NOISE_DIR", raising=False)
    model = tmp_path / "repo" / "bench" / "noise" / "pr.json"
    model.parent.mkdir(parents=True)
    model.write_text("{}")
    (tmp_path / "repo" / "docs" / "tasks").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "repo" / "docs" / "tasks")
    assert default_path("pr") == model
    monkeypatch.chdir(tmp_path)  # outside the checkout: the path the message names
    assert default_path("pr") == Path("bench/noise/pr.json")
    monkeypatch.setenv("QB_NOISE_DIR", str(tmp_path / "elsewhere"))
    assert default_path("pr") == tmp_path / "elsewhere" / "pr.json"


def test_critical_value_controls_the_family_wise_rate():
    from scipy.stats import t

    c = critical(20, 40, two_sided=False)
    assert t.sf(c, 19) * 40 == pytest.approx(0.05)
    assert c == pytest.approx(3.481, abs=1e-3)  # the value the docstring quotes
    assert critical(20, 40, two_sided=True) == pytest.approx(3.786, abs=1e-3)
    assert critical(20, 40, two_sided=True) > c > critical(20, 1, two_sided=False)
    assert critical(100, 40, False) < c  # more seeds in the model: a tighter limit


# --------------------------------------------------------------------------- the first line

def test_first_line_in_the_terminal_markdown_and_html(tmp_path, model, capsys):
    from quirkbench.report import render_report

    base, bad = one(tmp_path, "b"), one(tmp_path, "h", acc=70.0)
    df = compare(base, bad, noise_model=model)
    first = "GATE FAIL: 1 regression beyond noise"
    assert format_table(df).splitlines()[0] == first
    assert format_table(df, color=True).splitlines()[0] == f"\033[1;31m{first}\033[0m"
    assert format_table(df, "markdown").splitlines()[0] == f"## 🔴 {first}"
    md = tmp_path / "c.md"
    assert main(["compare", base, bad, "--noise-model", model, "--markdown", str(md)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0] == first and out[-1] == first  # first, and last for a long log
    assert md.read_text().splitlines()[0] == f"## 🔴 {first}"
    page = render_report([bad], out=tmp_path / "p.html", baseline=base).read_text()
    box = page[page.index('<section id="verdict"'):]
    assert box.startswith('<section id="verdict" class="vbox vbox-bad"')
    assert box.split("\n")[1].startswith(f'<p class="gate bad"><strong>{first}</strong> ')
    ok = compare(base, one(tmp_path, "ok", acc=87.8), noise_model=model)
    assert format_table(ok, color=True).splitlines()[0] == \
        "\033[1;32mGATE PASS: 2 changes within seed noise, 2 identical\033[0m"
    assert format_table(ok, "markdown").startswith("## 🟢 GATE PASS: 2 changes within seed noise")
    # the failing rows come before the others, each with its reason
    text = format_table(df)
    assert text.index("failing (1):") < text.index("why:") < text.index("other changes")


# --------------------------------------------------------------------------- expected entries

def test_printed_expected_entry_pasted_into_a_file_makes_the_row_expected(tmp_path, model,
                                                                          capsys):
    base, head = one(tmp_path, "b"), one(tmp_path, "h", acc=70.0)
    assert main(["compare", base, head, "--noise-model", model]) == 1
    out = capsys.readouterr().out
    block = out[out.index("[[change]]"):out.index("\n\n", out.index("[[change]]"))]
    assert f'base = "{"a" * 12}"' in block
    entries = tmp_path / "expected.toml"
    entries.write_text(block.replace("TODO: why this is intended", "a harder test split"))
    assert main(["compare", base, head, "--noise-model", model, "--expect", str(entries)]) == 0
    df = compare(base, head, noise_model=model, expected=entries)
    assert row(df, "test_acc")["verdict"] == "expected"
    # after the merge the base moves on: the entry is stale and no longer applies
    later = doc(tmp_path / "later.json", {0: metrics()}, commit="b" * 40)
    df = compare(later, head, noise_model=model, expected=entries)
    assert row(df, "test_acc")["verdict"] == "regressed beyond noise" and df["fails"].any()
    (stale,) = df.attrs["expected_stale"]
    assert stale[1] == f"approved against base {'a' * 12}, this comparison's base is " \
        f"{'b' * 10}"
    assert "stale expected entry: forgetting/mnist5k/test_acc" in format_table(df)


def test_strict_keeps_the_old_gate(tmp_path, model):
    base, head = one(tmp_path, "b"), one(tmp_path, "h", acc=87.9)
    assert not compare(base, head, noise_model=model)["fails"].any()
    df = compare(base, head, noise_model=model, strict=True)
    assert list(df.loc[df["fails"], "key"]) == ["test_acc"]
    assert gate_line(df) == "GATE FAIL: 1 exact change (--strict)"


def test_a_metric_some_seeds_do_not_give_is_not_gone_on_one_seed(tmp_path):
    """The noise model lacks ``rare`` on one of its seeds: a one-seed head without it is
    within noise; a metric the model has on every seed is gone."""
    units = [unit(s, metrics(a, f, r, extra=[Metric("rare", 1.0, "1", headline=True)]
                             if s != 105 else []))
             for s, (a, f, r) in SPREAD.items()]
    path = tmp_path / "m.json"
    noise.write(noise.build(units, {**ENV, "suite": "pr"}, "cmd", "now"), path)
    base = doc(tmp_path / "b.json", {0: metrics(extra=[Metric("rare", 1.0, "1",
                                                              headline=True)])})
    head = one(tmp_path, "h")
    r = row(compare(base, head, noise_model=str(path)), "rare")
    assert r["verdict"] == "within noise" and not r["fails"]
    assert r["note"] == "missing on this seed, as on 1 of 20 seeds of the noise model"
    assert row(compare(base, head), "rare")["verdict"] == "gone"  # no model: gone, fails
