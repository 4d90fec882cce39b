"""The command line: runs a suite end to end, is deterministic, refuses bad input in one line."""

import pytest

from quirkbench import load_results
from quirkbench.tracking import results

SMALL = ["--set", "memorization.n_train=300", "--set", "memorization.n_test=100"]


def test_run_writes_document_and_prints_summary(run_cli, tmp_path):
    out = tmp_path / "r.json"
    code, stdout, _ = run_cli("run", "--suite", "smoke", "--tasks", "memorization", "--device",
                              "cpu", "--out", out, "--no-report", *SMALL)
    assert code == 0
    assert "slowdown[condition=random-labels]" in stdout and "holds" in stdout
    assert "[1/1] memorization/mnist5k/0 done" in stdout and str(out) in stdout
    doc = results.read(out)
    assert doc["meta"]["suite"] == "smoke" and doc["meta"]["status"] == "done"
    df = load_results(out)
    units = set(df["unit"])
    assert {"steps", "s", "%", "×"} <= units


def test_same_seed_same_metrics(run_cli, tmp_path):
    frames = []
    for name in ("a", "b"):
        out = tmp_path / f"{name}.json"
        assert run_cli("run", "--suite", "smoke", "--tasks", "memorization", "--device", "cpu",
                       "--out", out, "--no-report", "-q", *SMALL)[0] == 0
        df = load_results(out)
        frames.append(df[df["kind"] != "timing"].set_index("key")["value"])  # timings aside
    assert frames[0].equals(frames[1])


@pytest.mark.parametrize("args, fragment", [
    (["run", "--tasks", "nope"], "unknown task 'nope'; valid: "),
    (["run", "--suite", "huge"], "unknown suite 'huge'; valid: smoke, pr, quick, nightly"),
    (["run", "--dataset", "imagenet"], "unknown data set 'imagenet'; valid: mnist5k"),
    (["run", "--seeds", "a,b"], "seeds must be integers"),
    (["run", "--seeds", "-3"], "seeds must be"),
    (["run", "--set", "memorization.lr=0.1"], "unknown setting memorization.'lr'"),
    (["run", "--set", "memorization.n_train=many"], "wrong type"),
    (["run", "--set", "memorization.conditions=['bogus']"], "unknown memorization condition"),
    (["run", "--set", "oops"], "--set takes TASK.KEY=VALUE"),
    (["run", "--device", "tpu"], "unknown device 'tpu'"),
    (["run", "--bogus-flag"], "unrecognized arguments"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_input_is_one_line_exit_2(run_cli, args, fragment):
    code, stdout, stderr = run_cli(*args)
    assert code == 2
    assert fragment in stderr and stderr.count("\n") == 1 and "Traceback" not in stderr


def test_unusable_or_corrupt_output_is_refused_and_kept(run_cli, tmp_path):
    corrupt = tmp_path / "c.json"
    corrupt.write_text("{half a document")
    code, _, err = run_cli("run", "--suite", "smoke", "--out", corrupt)
    assert code == 2 and "not a readable results document" in err
    assert corrupt.read_text() == "{half a document"
    code, _, err = run_cli("run", "--suite", "smoke", "--out", tmp_path)
    assert code == 2 and "is a folder" in err
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = run_cli("run", "--suite", "smoke", "--out", blocker / "sub" / "r.json")
    assert code == 2 and "cannot create the folder" in err


def test_list_names_tasks_data_sets_and_suites(run_cli):
    code, out, _ = run_cli("list")
    assert code == 0
    for word in ("memorization", "mnist5k", "digits", "mnist1d", "cifar10", "smoke", "nightly"):
        assert word in out
