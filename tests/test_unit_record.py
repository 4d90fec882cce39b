"""The unit record is spelled in one place: a finished and a failed unit have the same keys,
and both validate inside a results document."""

from __future__ import annotations

import pytest

from quirkbench.metrics import HIGHER, Metric
from quirkbench.runner import suite
from quirkbench.runner import unit as unit_mod
from quirkbench.tasks import TaskOutput
from quirkbench.tracking import results


def _records():
    out = TaskOutput([Metric("acc", 0.5, "%", HIGHER)], {"curve": [{"x": 1}]}, {"n": 1})
    done = results.unit_record("t", "digits", 0, {"lr": 0.1}, results.now(), 1.5, out)
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        failed = results.unit_record("t", "digits", 1, {"lr": 0.1}, results.now(), 0.1,
                                     error=e, traceback="Traceback ...")
    return done, failed


def test_done_and_failed_share_the_keys():
    done, failed = _records()
    assert set(failed) - {"traceback"} == set(done)
    assert (done["status"], failed["status"]) == ("done", "failed")
    assert failed["error"] == "RuntimeError: boom" and failed["metrics"] == []
    doc = results.new_document(suite="smoke", seeds=[0, 1], datasets=["digits"], tasks=["t"],
                               device="cpu")
    doc["units"] = {"t/digits/0": done, "t/digits/1": failed}
    results.validate(doc)
    with pytest.raises(ValueError):
        results.unit_record("t", "digits", 0, {}, None, None)  # neither output nor error


def test_the_runner_writes_failures_with_the_same_record(tmp_path, monkeypatch):
    def bug(unit, *a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(unit_mod, "execute", bug)
    out = suite.run_suite("smoke", tasks=["dimensionality"], datasets=["digits"], device="cpu",
                          out=tmp_path / "r.json", log=lambda m: None)
    unit = results.read(out)["units"]["dimensionality/digits/0"]
    assert set(unit) == set(_records()[1])
    assert unit["error"] == "RuntimeError: boom" and unit["seconds"] >= 0
