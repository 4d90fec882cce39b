"""``quirkbench export``: what is written to TensorBoard and MLflow is read back."""

import pytest

from quirkbench.metrics import HIGHER, Metric
from quirkbench.tracking import results

ACC = "memorization/mnist5k/test_acc/condition_true-labels"


def make_doc(path, commit, started, values, config_lr=0.05, suite="smoke"):
    """A results document with one task, one metric, one unit per value (seed)."""
    doc = results.new_document(suite=suite, seeds=list(range(len(values))),
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


def _scalars(logdir, run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir / run))
    acc.Reload()
    return acc


def test_tensorboard_scalars_read_back(run_cli, history, tmp_path):
    pytest.importorskip("tensorboard", reason="needs the export extra (tensorboard)")
    logdir = tmp_path / "tb"
    make_doc(history / "d.json", "c0", "2026-11-04T00:00:00+00:00", [70.0], suite="pr")
    code, out, err = run_cli("export", history, "--tensorboard", logdir)
    assert code == 0, err
    assert "4 scalars from 4 document(s)" in out and "runs: smoke, pr" in out
    # one run per suite, each in its own folder: never the run "." of the logdir itself
    assert sorted(p.name for p in logdir.iterdir()) == ["pr", "smoke"]
    assert not list(logdir.glob("events.out.tfevents.*"))
    acc = _scalars(logdir, "smoke")
    assert ACC in acc.Tags()["scalars"]
    # step = the run's place in start order within its suite, value = mean over seeds: two
    # runs of one commit (b, c: c2) are two steps, two points
    assert [(e.step, e.value) for e in acc.Scalars(ACC)] == [(0, 80.0), (1, 91.0), (2, 94.0)]
    assert [(e.step, e.value) for e in _scalars(logdir, "pr").Scalars(ACC)] == [(0, 70.0)]
    texts = acc.Tensors("run/text_summary")
    assert [t.step for t in texts] == [0, 1, 2]
    assert b"commit c1" in texts[0].tensor_proto.string_val[0]
    # exporting again into the same folder replaces the points, never doubles them
    assert run_cli("export", history, "--tensorboard", logdir)[0] == 0
    assert [e.step for e in _scalars(logdir, "smoke").Scalars(ACC)] == [0, 1, 2]


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
