"""The noise model: built from a calibration's units, written, read back; its staleness."""

from __future__ import annotations

import json
import math

import pytest

from quirkbench.errors import UserError
from quirkbench.metrics import HIGHER, LOG, NONE, TIMING, Metric
from quirkbench.tracking import noise

META = {"suite": "pr", "device": "cpu", "device_name": "x86_64", "torch": "2.13.0+cpu",
        "python": "3.11.7", "quirkbench": "0.1.0", "commit": "abc", "dirty": False}


def unit(seed, metrics, task="memorization", config=None, status="done"):
    return {"task": task, "dataset": "mnist5k", "seed": seed, "status": status,
            "config": config or {"lr": 0.1, "steps": [1, 2]},
            "metrics": [m.to_dict() for m in metrics], "info": {}}


def units():
    out = []
    for s, (acc, ratio, held) in enumerate([(88.1, 2.0, True), (88.4, 2.5, True),
                                            (88.2, 3.0, False), (88.1, 2.2, True)]):
        out.append(unit(s, [Metric("test_acc", acc, "%", HIGHER, headline=True),
                            Metric("slowdown", ratio, "×", NONE, holds=held),
                            Metric("always", 100.0, "%", HIGHER),
                            Metric("ms_per_step", 3.0 + s, "ms", kind=TIMING)]))
    out.append(unit(9, [], status="failed"))
    return out


def test_build_write_read_round_trip(tmp_path):
    model = noise.build(units(), META, "quirkbench calibrate ...", "2026-01-01")
    path = tmp_path / "pr.json"
    noise.write(model, path)
    m = noise.read(path)
    assert m.suite == "pr" and m.stamp["seeds"] == [0, 1, 2, 3, 9]
    assert m.stamp["device_class"] == "cpu" and m.stamp["versions"]["torch"] == "2.13.0+cpu"
    assert set(m.stamp["settings"]) == {"memorization/mnist5k"}
    assert m.get("memorization", "mnist5k", "ms_per_step") is None  # timings: the machine's
    acc = m.get("memorization", "mnist5k", "test_acc")
    assert acc.n == 4 and acc.values["9"] is None and acc.headline and acc.direction == HIGHER
    assert math.isclose(acc.mean, 88.2) and math.isclose(acc.sd, 0.141421, rel_tol=1e-4)
    assert math.isclose(acc.floor, 0.1, rel_tol=1e-6)  # one test example's worth
    ratio = m.get("memorization", "mnist5k", "slowdown")
    assert ratio.log_scale and ratio.holds == {"held": 3, "of": 5}  # a failed unit did not hold
    # a constant metric takes the resolution of the task's other metrics in its unit
    assert math.isclose(m.get("memorization", "mnist5k", "always").floor, 0.1, rel_tol=1e-6)
    assert m.get("memorization", "mnist5k", "always").spread() == pytest.approx(0.1)


def test_a_spread_declared_on_the_log_scale_gets_its_log_sd():
    """A standard deviation over a few models is right-skewed: declared ``scale=LOG`` where it
    is made, the model keeps the sd of its log, as for a × ratio; the same values undeclared
    stay linear; a zero among them (log undefined) falls back to linear."""
    sds = [0.23, 0.45, 0.6, 0.7, 1.8]
    us = [unit(s, [Metric("acc_std", v, "pp", NONE, scale=LOG),
                   Metric("acc_std_plain", v, "pp", NONE),
                   Metric("acc_range", 0.0 if s == 0 else v, "pp", NONE, scale=LOG)])
          for s, v in enumerate(sds)]
    model = noise.build(us, META, "cmd", "now")["metrics"]
    declared = model["memorization/mnist5k/acc_std"]
    assert declared["log_sd"] == pytest.approx(float(__import__("numpy").log(sds).std(ddof=1)))
    assert model["memorization/mnist5k/acc_std_plain"]["log_sd"] is None
    assert model["memorization/mnist5k/acc_range"]["log_sd"] is None


def test_settings_digest_ignores_key_order_and_tuples():
    assert noise.settings_digest([{"a": 1, "b": (1, 2)}]) == \
        noise.settings_digest([{"b": [1, 2], "a": 1}])
    assert noise.settings_digest([{"a": 1}]) != noise.settings_digest([{"a": 2}])


def test_staleness_per_task_device_and_versions(tmp_path):
    model = noise.build(units() + [unit(0, [Metric("x", 1.0, "1")], task="sharpness")], META,
                        "cmd", "now")
    noise.write(model, tmp_path / "m.json")
    m = noise.read(tmp_path / "m.json")
    same_cfg = {"memorization/mnist5k": [{"lr": 0.1, "steps": [1, 2]}],
                "sharpness/mnist5k": [{"lr": 0.1, "steps": [1, 2]}]}
    assert m.stale([META], same_cfg) == (None, {}, [])
    other = {**same_cfg, "memorization/mnist5k": [{"lr": 0.2, "steps": [1, 2]}]}
    whole, tasks, notes = m.stale([META], other)
    assert whole is None and list(tasks) == ["memorization/mnist5k"]  # only that task
    gpu = {**META, "device": "cuda:0", "device_name": "NVIDIA H100 80GB HBM3"}
    whole, _, _ = m.stale([META, gpu], same_cfg)
    assert whole == "made on cpu, these runs on NVIDIA H100 80GB HBM3, cpu"
    # library versions are noted, never stale: seed spread is the task's own
    whole, tasks, notes = m.stale([{**META, "torch": "2.14.1"}], same_cfg)
    assert whole is None and not tasks and notes == ["torch 2.13.0+cpu (model) vs 2.14.1 (runs)"]


@pytest.mark.parametrize("text, fragment", [
    (None, "does not exist"),
    ("{", "not readable JSON"),
    ('{"format": "other"}', "format 'other'; valid: 'quirkbench.noise/1'"),
    ('{"format": "quirkbench.noise/1", "stamp": {}}', "needs a \"stamp\""),
    ('{"format": "quirkbench.noise/1", "stamp": {}, "metrics": {"a": {"task": "t"}}}',
     "metric 'a' lacks"),
])
def test_bad_model_is_one_line(tmp_path, text, fragment):
    path = tmp_path / "m.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(UserError, match=None) as e:
        noise.read(path)
    assert fragment in str(e.value) and "\n" not in str(e.value)


def test_calibrate_writes_the_model_from_existing_documents(tmp_path, run_cli):
    from quirkbench.tracking.results import SCHEMA

    folder = tmp_path / "cal"
    folder.mkdir()
    doc = {"schema": SCHEMA, "meta": {**META, "status": "done", "seeds": [0, 1, 2, 3, 9],
                                      "tasks": ["memorization"], "datasets": ["mnist5k"]},
           "units": {f"memorization/mnist5k/{u['seed']}": {
               **u, "started": None, "ended": None, "seconds": 1.0, "series": {},
               "error": None if u["status"] == "done" else "RuntimeError: x"}
               for u in units()}}
    (folder / "results-pr-s0-3.json").write_text(json.dumps(doc))
    code, out, err = run_cli("calibrate", "--suite", "pr", "--out", folder, "--no-run",
                             "--noise-model", tmp_path / "noise" / "pr.json")
    assert "noise model: 3 metrics" in out, err
    m = noise.read(tmp_path / "noise" / "pr.json")
    assert m.stamp["command"].startswith("quirkbench ") and "--noise-model" in m.stamp["command"]
