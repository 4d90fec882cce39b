"""Results documents: atomic, schema-checked, resumable; the tidy frame has one row per metric."""

import json

import pytest

from quirkbench.errors import UserError
from quirkbench.metrics import HIGHER, Anchor, Metric
from quirkbench.runner import suite
from quirkbench.runner import unit as unit_mod
from quirkbench.tasks import TaskOutput
from quirkbench.tracking import results


def _doc_with_unit():
    doc = results.new_document(suite="smoke", seeds=[0], datasets=["digits"], tasks=["t"],
                               device="cpu", argv=[])
    out = TaskOutput([Metric("acc", 97.5, "%", HIGHER, {"condition": "a"},
                             Anchor("Paper 2020", 98.0, "%"), holds=True, headline=True)])
    doc["units"]["t/digits/0"] = results.unit_record("t", "digits", 0, {"lr": 0.1},
                                                     results.now(), 1.5, out)
    return doc


def test_document_roundtrip_and_tidy_frame(tmp_path):
    p = tmp_path / "r.json"
    results.write_atomic(p, _doc_with_unit())
    doc = results.read(p)
    assert doc["schema"] == results.SCHEMA
    assert {"commit", "torch", "python", "device"} <= set(doc["meta"])
    df = results.load_results(p)
    assert len(df) == 1
    row = df.iloc[0]
    assert (row.task, row.metric, row.value, row.unit, row.condition) == \
        ("t", "acc", 97.5, "%", "a")
    assert row.key == "acc[condition=a]" and row.anchor_value == 98.0 and bool(row.holds)


def test_atomic_write_leaves_old_file_when_interrupted(tmp_path, monkeypatch):
    p = tmp_path / "r.json"
    results.write_atomic(p, {"schema": results.SCHEMA, "meta": {}, "units": {}})
    before = p.read_text()

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(json, "dump", boom)
    with pytest.raises(KeyboardInterrupt):
        results.write_atomic(p, {"schema": results.SCHEMA, "meta": {"x": 1}, "units": {}})
    assert p.read_text() == before and [f.name for f in tmp_path.iterdir()] == ["r.json"]


@pytest.mark.parametrize("content, fragment", [
    ("{not json", "not a readable results document"),
    ('{"a": 1}', "no 'schema' key"),
    ('{"schema": "quirkbench.results/0", "meta": {}, "units": {}}', "this quirkbench reads"),
    ('{"schema": "other/9", "meta": {}, "units": {}}', "not a quirkbench results document"),
])
def test_corrupt_documents_are_refused(tmp_path, content, fragment):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(UserError, match=fragment):
        results.read(p)


def test_interrupted_run_resumes_skipping_finished_units(tmp_path, monkeypatch):
    out = tmp_path / "run.json"
    ran = []
    real = unit_mod.execute

    def flaky(unit, *a, **k):
        if len(ran) == 1:  # the second unit is interrupted (Ctrl-C)
            raise KeyboardInterrupt
        ran.append(unit.key)
        return real(unit, *a, **k)

    monkeypatch.setattr(unit_mod, "execute", flaky)
    kw = dict(tasks=["memorization"], seeds="0,1", device="cpu", out=out, log=lambda m: None,
              overrides={"memorization": {"conditions": ["true-labels"], "n_train": 100,
                                          "n_test": 50}},
              datasets=["digits"])
    with pytest.raises(KeyboardInterrupt):
        suite.run_suite("smoke", **kw)
    doc = results.read(out)
    assert doc["meta"]["status"] == "interrupted"
    assert list(doc["units"]) == ["memorization/digits/0"]
    first = doc["units"]["memorization/digits/0"]

    monkeypatch.setattr(unit_mod, "execute",
                        lambda unit, *a, **k: ran.append(unit.key) or real(unit, *a, **k))
    suite.run_suite("smoke", **kw)
    doc = results.read(out)
    assert ran == ["memorization/digits/0", "memorization/digits/1"]  # seed 0 not run again
    assert doc["meta"]["status"] == "done" and doc["units"]["memorization/digits/0"] == first


def test_resume_refuses_other_suite_or_settings(tmp_path):
    out = tmp_path / "run.json"
    kw = dict(tasks=["memorization"], datasets=["digits"], device="cpu", out=out,
              log=lambda m: None)
    small = {"memorization": {"conditions": ["true-labels"], "n_train": 100, "n_test": 50}}
    suite.run_suite("smoke", overrides=small, **kw)
    saved = out.read_text()
    with pytest.raises(UserError, match="holds a 'smoke' run"):
        suite.run_suite("quick", overrides=small, **kw)
    small["memorization"]["n_train"] = 200
    with pytest.raises(UserError, match="other settings"):
        suite.run_suite("smoke", overrides=small, **kw)
    assert out.read_text() == saved  # nothing already written is lost


def test_a_crashing_task_is_recorded_and_others_kept(tmp_path, monkeypatch):
    out = tmp_path / "run.json"

    def bug(unit, *a, **k):
        raise RuntimeError("boom")

    monkeypatch.setattr(unit_mod, "execute", bug)
    suite.run_suite("smoke", tasks=["memorization"], datasets=["digits"], device="cpu", out=out,
                    log=lambda m: None)
    doc = results.read(out)
    unit = doc["units"]["memorization/digits/0"]
    assert unit["status"] == "failed" and "boom" in unit["error"]
    assert doc["meta"]["status"] == "failed"
