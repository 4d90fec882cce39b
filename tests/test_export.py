"""``quirkbench export``: what is written to TensorBoard and MLflow is read back."""

import pytest

from quirkbench.metrics import HIGHER, Metric
from quirkbench.tracking import results

ACC = "memorization/mnist5k/test_acc/condition_true-labels"


def make_doc(path, commit, started, values, config_lr=0.05):
    """A results document with one task, one metric, one unit per value (seed)."""
    doc = results.new_document(suite="smoke", seeds=list(range(len(values))),
                               datasets=["mnist5k"], tasks=["memorization"], device="cpu")
    doc["meta"].update(commit=commit, started=started, status="done")
    for seed, v in enumerate(values):
        m = Metric("test_acc", v, "%", HIGHER, {"condition": "true-labels"})
        doc["units"][f"memorization/mnist5k/{seed}"] = {
            "task": "memorization", "dataset": "mnist5k", "seed": seed,
            "config": {"lr": config_lr, "model": "mlp-512"}, "status": "done",
            "started": started, "ended": started, "seconds": 1.0,
            "metrics": [m.to_dict()], "series": {}, "info": {}, "error": None}
    results.write_atomic(path, doc)
    return path


@pytest.fixture
def history(tmp_path):
    d = tmp_path / "results"
    make_doc(d / "b.json", "c2", "2026-11-02T00:00:00+00:00", [90.0, 92.0])
    make_doc(d / "a.json", "c1", "2026-11-01T00:00:00+00:00", [80.0])
    make_doc(d / "c.json", "c2", "2026-11-03T00:00:00+00:00", [94.0])  # same commit as b
    return d


def test_tensorboard_scalars_read_back(run_cli, history, tmp_path):
    pytest.importorskip("tensorboard", reason="needs the export extra (tensorboard)")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logdir = tmp_path / "tb"
    code, out, err = run_cli("export", history, "--tensorboard", logdir)
    assert code == 0, err
    assert "3 scalars from 3 document(s)" in out
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    assert ACC in acc.Tags()["scalars"]
    ev = acc.Scalars(ACC)
    # step = commit order (a: c1 → 0; b, c: c2 → 1), value = mean over seeds
    assert [(e.step, e.value) for e in ev] == [(0, 80.0), (1, 91.0), (1, 94.0)]


def test_mlflow_runs_read_back_and_are_not_duplicated(run_cli, history, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="needs the export extra (mlflow)")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # the default: a local mlruns/ folder
    code, out, err = run_cli("export", history, "--mlflow")
    assert code == 0, err
    assert "3 run(s) written, 0 already there" in out
    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    exp = client.get_experiment_by_name("quirkbench")
    runs = {r.info.run_name: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"a", "b", "c"}
    b = runs["b"].data
    assert b.metrics[ACC] == pytest.approx(91.0)
    assert b.params["memorization.lr"] == "0.05" and b.params["suite"] == "smoke"
    assert b.tags["commit"] == "c2"
    hist = client.get_metric_history(runs["b"].info.run_id, ACC)
    assert [h.step for h in hist] == [1]
    code, out, _ = run_cli("export", history, "--mlflow")
    assert "0 run(s) written, 3 already there" in out
    assert len(client.search_runs([exp.experiment_id])) == 3


def test_export_needs_a_target_and_existing_results(run_cli, tmp_path):
    code, _, err = run_cli("export", tmp_path / "nope.json", "--tensorboard", tmp_path / "tb")
    assert code == 2 and "does not exist" in err
    make_doc(tmp_path / "r.json", "c", "2026-11-01T00:00:00+00:00", [1.0])
    code, _, err = run_cli("export", tmp_path / "r.json")
    assert code == 2 and "--tensorboard DIR and/or --mlflow" in err
