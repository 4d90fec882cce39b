"""Metric kinds: declared by the task, stored in the document (schema 2); schema-1 documents
still load with a kind inferred by the documented rule."""

import json

import pytest

from quirkbench.metrics import EXACT, HIGHER, KINDS, LINEAR, LOG, NONE, TIMING, Metric
from quirkbench.tracking import results


def test_kind_is_checked_and_round_trips():
    m = Metric("speedup_vs_naive", 1.5, "×", HIGHER, {"model": "m"}, kind=TIMING,
               baseline="samples_per_s[model=m,variant=naive]")
    assert Metric.from_dict(json.loads(json.dumps(m.to_dict()))) == m
    assert Metric("acc", 1.0, "%").kind == EXACT and set(KINDS) == {"exact", "stochastic",
                                                                   "timing"}
    with pytest.raises(ValueError, match="kind"):
        Metric("acc", 1.0, "%", kind="noisy")


def test_scale_is_checked_round_trips_and_is_written_only_where_log():
    sd = Metric("test_acc_std", 0.6, "pp", NONE, scale=LOG)
    assert sd.to_dict()["scale"] == "log"
    assert Metric.from_dict(json.loads(json.dumps(sd.to_dict()))) == sd
    acc = Metric("acc", 1.0, "%")
    assert acc.scale == LINEAR and "scale" not in acc.to_dict()  # documents stay as they were
    with pytest.raises(ValueError, match="scale"):
        Metric("acc", 1.0, "%", scale="cubic")


def _old_doc():
    metrics = [{"name": n, "value": 1.0, "unit": u, "direction": "none", "tags": {},
                "anchor": None, "holds": None, "headline": False}
               for n, u in (("steps_to_fit", "steps"), ("seconds_to_fit", "s"),
                            ("speedup_vs_foolbox", "×"), ("idle_fraction", "%"),
                            ("gemm_share", "%"), ("success_rate", "%"),
                            ("samples_per_s", "samples/s"), ("compression_ratio", "×"))]
    unit = {"task": "t", "dataset": "d", "seed": 0, "config": {}, "status": "done",
            "metrics": metrics, "series": {}, "info": {}}
    return {"schema": "quirkbench.results/1", "meta": {"suite": "pr"}, "units": {"t/d/0": unit}}


def test_schema_1_documents_load_with_inferred_kinds(tmp_path):
    p = tmp_path / "old.json"
    p.write_text(json.dumps(_old_doc()))
    df = results.load_results(p)
    kinds = dict(zip(df["metric"], df["kind"], strict=True))
    assert kinds == {"steps_to_fit": "exact", "seconds_to_fit": "timing",
                     "speedup_vs_foolbox": "timing", "idle_fraction": "timing",
                     "gemm_share": "timing", "success_rate": "exact",
                     "samples_per_s": "timing", "compression_ratio": "exact"}
    doc = results.read(p)
    assert doc["schema"] == results.SCHEMA == "quirkbench.results/2"
    assert doc["meta"]["upgraded_from"] == "quirkbench.results/1"


def test_new_documents_keep_the_declared_kind_never_the_inferred_one(tmp_path):
    # a wall-clock unit declared exact stays exact in a schema-2 document: no inference
    doc = _old_doc()
    doc["schema"] = results.SCHEMA
    for m in doc["units"]["t/d/0"]["metrics"]:
        m["kind"] = "exact"
    p = tmp_path / "new.json"
    p.write_text(json.dumps(doc))
    assert set(results.load_results(p)["kind"]) == {"exact"}
