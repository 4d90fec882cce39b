"""A check the run's budget cannot show, and a goal it cannot judge, say so in one line
(``Metric.not_shown``, ``Goal.not_judged``): in the document, the frame, the CLI summary and
the report, never as NO or missed."""

from __future__ import annotations

import pytest
import torch

from quirkbench.commands.run import format_summary
from quirkbench.metrics import HIGHER, Goal, Metric
from quirkbench.tasks import Context, TaskOutput, get
from quirkbench.tracking import results

WHY = "not shown at this budget: run --suite quick"
NOT_JUDGED = "not judged at this budget (4 timed steps): run --suite pr"


def _doc(tmp_path):
    doc = results.new_document(suite="smoke", seeds=[0], datasets=["mnist5k"], tasks=["t"],
                               device="cpu", argv=[])
    out = TaskOutput([
        Metric("ratio", 1.0, "×", HIGHER, {"method": "m"}, headline=True, not_shown=WHY),
        Metric("speedup", 0.9, "×", HIGHER, headline=True, goal=Goal(1.5, not_judged=NOT_JUDGED)),
        Metric("other", 0.9, "×", HIGHER, headline=True, goal=Goal(1.5)),
        Metric("acc", 90.0, "%", HIGHER, headline=True, holds=False)])
    doc["units"]["t/mnist5k/0"] = results.unit_record("t", "mnist5k", 0, {}, results.now(), 1.0,
                                                      out)
    path = tmp_path / "r.json"
    results.write_atomic(path, doc)
    return path


def test_a_not_shown_check_has_no_verdict():
    with pytest.raises(ValueError, match="no verdict"):
        Metric("ratio", 1.0, "×", holds=False, not_shown=WHY)
    m = Metric("speedup", 0.5, "×", goal=Goal(1.5, not_judged=NOT_JUDGED))
    assert m.goal.met is None  # never "missed"
    assert Metric("speedup", 0.5, "×", goal=Goal(1.5)).goal.met is False


def test_the_notes_survive_the_document_and_reach_the_frame(tmp_path):
    path = _doc(tmp_path)
    doc = results.read(path)  # validated
    ms = {m["name"]: m for m in doc["units"]["t/mnist5k/0"]["metrics"]}
    assert ms["ratio"]["not_shown"] == WHY and ms["ratio"]["holds"] is None
    assert ms["speedup"]["goal"] == {"target": 1.5, "at_least": True, "met": None,
                                     "not_judged": NOT_JUDGED}
    assert "not_shown" not in ms["acc"] and "not_judged" not in ms["other"]["goal"]
    df = results.load_results(path).set_index("metric")
    assert df.loc["ratio", "not_shown"] == WHY
    assert df.loc["speedup", "goal_not_judged"] == NOT_JUDGED


def test_a_document_with_a_verdict_and_a_not_shown_reason_is_refused(tmp_path):
    path = _doc(tmp_path)
    text = path.read_text().replace('"holds": null', '"holds": true', 1)
    path.write_text(text)
    with pytest.raises(Exception, match="not_shown"):
        results.read(path)


def test_the_summary_says_why_instead_of_no_or_missed(tmp_path):
    rows = {line.split()[1]: line for line in
            format_summary(results.load_results(_doc(tmp_path))).splitlines()[2:]}
    assert rows["ratio[method=m]"].rstrip().endswith(WHY) and " NO" not in rows["ratio[method=m]"]
    assert rows["speedup"].rstrip().endswith(f"≥ 1.5: {NOT_JUDGED}")
    assert "missed" not in rows["speedup"]
    assert rows["other"].rstrip().endswith("≥ 1.5 missed") and " NO" in rows["acc"]


def test_the_report_says_not_shown(tmp_path):
    from quirkbench.report import render_report

    html = render_report([_doc(tmp_path)], out=tmp_path / "r.html").read_text()
    assert "not shown</span>" in html and WHY in html


def test_throughput_at_a_small_attack_budget_does_not_judge_the_attack_goals():
    task = get("throughput")
    tiny = dict(models=("mlp-32",), batches=(128,), steps=2, repeats=1, warmup_steps=1,
                many_k=(), matmul_n=64, profile=False, count_flops=False, pgd_model="mlp-32",
                pgd_n=16, pgd_steps=2, pgd_train_steps=5, pgd_norms=("linf",))
    for judge in (True, False):
        out = task.run(task.make_config(None, tiny | {"judge_attack_goals": judge}),
                       Context("mnist5k", 0, torch.device("cpu")))
        goals = {m.name: m.goal for m in out.metrics if m.goal is not None}
        naive = goals["speedup_vs_naive"]  # the training goal: judged at every budget
        assert naive.met is not None or naive.not_judged.startswith("cannot be met")
        attack = goals["matmul_share"]
        if judge:  # judged, or a one-line reason this machine cannot meet it: never the budget's
            assert attack.met is not None or attack.not_judged.startswith("cannot be met")
            assert "at this budget" not in (attack.not_judged or "")
        else:
            assert attack.met is None
            assert attack.not_judged == "not judged at this budget (16 inputs × 2 steps): " \
                                        "run --suite pr"
    assert task.make_config("smoke").judge_attack_goals is False
    assert task.make_config("pr").judge_attack_goals is True


def test_forgetting_permuted_checks_are_not_shown_where_the_budget_is_too_small():
    import numpy as np

    from quirkbench.methods.continual import SequenceResult
    from quirkbench.tasks import forgetting

    R = np.array([[90.0, 10, 10], [60, 90, 10], [50, 60, 90]])
    res = {("permuted", s): SequenceResult(R, 1.0, 60, (10, 10, 10)) for s in ("naive", "replay")}
    task = get("forgetting")
    for shown in (True, False):
        cfg = task.make_config(None, {"n_tasks": 3, "protocols": ("permuted",),
                                      "strategies": ("naive", "replay"),
                                      "permuted_checks": shown})
        ms = {m.key: m for m in forgetting.measure(cfg, res).metrics}
        naive = ms["forgetting_pct[protocol=permuted,strategy=naive]"]
        replay = ms["forgetting_pct[protocol=permuted,strategy=replay]"]
        learned = ms["min_learned_accuracy[protocol=permuted,strategy=naive]"]
        assert learned.holds is True  # the precondition stays a check
        if shown:
            assert naive.holds is True and replay.holds is False and not naive.not_shown
        else:
            assert naive.holds is None and replay.holds is None
            assert naive.not_shown == "not shown at this budget (100 steps a task): run --suite pr"
    assert task.make_config("smoke").permuted_checks is False
    assert task.make_config("pr").permuted_checks is True

