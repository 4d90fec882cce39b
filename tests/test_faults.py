"""Bad input and faults, as a new user or a shared nightly runner meets them.

Each case of the matrix runs ``quirkbench`` in-process and checks: the exit status (2 for
bad input, 1 for a run whose units failed), one line on stderr naming what was wrong, no
traceback, and that a results document already on disk is byte-for-byte intact. The
process-level faults (SIGTERM, kill -9 at random points, two writers at once) follow.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from quirkbench.cli import main
from quirkbench.runner import document
from quirkbench.tracking import results

# one cheap task: no training, ~0.1 s a unit
TINY = ["--suite", "smoke", "--tasks", "dimensionality", "--dataset", "digits", "--device", "cpu",
        "--set", "dimensionality.n_points=40", "--set", "dimensionality.n_data=60",
        "--set", "dimensionality.dims=[2,8]", "--no-report"]
SRC = str(Path(__file__).resolve().parents[1] / "src")


def cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def prev(tmp_path_factory) -> Path:
    """A finished results document (two units) that no bad invocation may touch."""
    p = tmp_path_factory.mktemp("prev") / "prev.json"
    code, _, err = cli("run", *TINY, "--seeds", "0,1", "--out", p, "-q")
    assert code == 0, err
    return p


def strict_json(path: Path) -> dict:
    def no_constants(name):
        raise ValueError(f"{path} holds a bare {name}: not JSON")

    return json.loads(path.read_text(), parse_constant=no_constants)


# --------------------------------------------------------------------------- the matrix

@dataclass
class Case:
    args: list  # "{prev}" is the copied finished document, "{tmp}" the test's folder
    code: int
    fragment: str
    setup: object = None  # fn(tmp, prev_copy, monkeypatch)
    check: object = None  # fn(tmp, prev_copy) after the run
    files: dict = field(default_factory=dict)  # name → bytes written into tmp first
    rewrites: tuple = ()  # files the command may rewrite (resuming a valid document)


def _lock_held(tmp, prev, mp):
    lock = document.RunLock(prev).acquire()  # this process holds it, as another run would
    mp.setattr(sys.modules[__name__], "_held", lock, raising=False)


def _no_ray(tmp, prev, mp):
    mp.setitem(sys.modules, "ray", None)  # import ray → ImportError


def _disk_full(tmp, prev, mp):
    mp.setattr(document.shutil, "disk_usage",
               lambda p: shutil._ntuple_diskusage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))


def _read_only(tmp, prev, mp):
    real = document.tempfile.NamedTemporaryFile

    def refuse(*a, **k):
        if k.get("prefix", "").startswith(".quirkbench-write-test"):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))
        return real(*a, **k)

    mp.setattr(document.tempfile, "NamedTemporaryFile", refuse)


def _disk_fills_mid_run(tmp, prev, mp):
    real, calls = results.write_atomic, []

    def write(path, doc):
        calls.append(path)
        if Path(path).name == "r.json" and len(calls) > 3:  # after the first unit
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path, doc)

    mp.setattr(results, "write_atomic", write)


def _failed_units(n, fragment):
    def check(tmp, prev):
        doc = strict_json(tmp / "r.json")
        failed = [u for u in doc["units"].values() if u["status"] == "failed"]
        assert len(failed) == n and all(fragment in u["error"] for u in failed)
        assert all(u["metrics"] == [] for u in failed)  # no holds on a failed unit
        assert doc["meta"]["status"] == "failed" and doc["meta"]["progress"]["failed"] == n
        assert all(u["status"] == "done" for u in doc["units"].values() if u not in failed)
    return check


def _one_unit(tmp, prev):
    doc = strict_json(tmp / "r.json")
    assert list(doc["units"]) == ["dimensionality/digits/0"]
    assert doc["meta"]["status"] == "done" and doc["meta"]["progress"]["planned"] == 1
    assert doc["meta"]["invocation"]["tasks"] == ["dimensionality"]
    assert (tmp / "r.json").stat().st_mode & 0o777 == 0o644


def _kept_first_unit(tmp, prev):
    doc = strict_json(tmp / "r.json")  # the last good state: the first unit done, whichever
    (key, unit), = doc["units"].items()  # one unit in flight (--jobs 1): exactly one
    assert key in ("dimensionality/digits/0", "dimensionality/digits/1")
    assert unit["status"] == "done" and unit["metrics"] and doc["meta"]["status"] == "running"


def _damage(prev, to):
    doc = json.loads(prev.read_text())
    next(iter(doc["units"].values()))["metrics"] = "oops"
    to.write_text(json.dumps(doc))


def _folder(prev, tmp):
    (tmp / "folder").mkdir()
    shutil.copy(prev, tmp / "folder" / "run.json")
    (tmp / "folder" / "package.json").write_text('{"name": "not ours"}')


def _ray_at(address):
    def setup(tmp, prev, mp):
        pytest.importorskip("ray")
        mp.setenv("RAY_ADDRESS", address)
    return setup


def _link_to_held(tmp, prev, mp):
    """``{tmp}/link.json`` → the finished document, whose lock this process holds."""
    (tmp / "link.json").symlink_to(prev)
    _lock_held(tmp, prev, mp)


def _hard_link(tmp, prev, mp):
    os.link(prev, tmp / "hard.json")


def _symlink(tmp, prev, mp):
    (tmp / "link.json").symlink_to(prev)


def _still_a_link(tmp, prev):
    assert (tmp / "link.json").is_symlink() and strict_json(prev)["meta"]["status"] == "done"


def _no_document(tmp, prev):
    assert not (tmp / "r.json").exists()  # refused while planning: nothing written


def _clamped(tmp, prev):
    unit = strict_json(tmp / "r.json")["units"]["memorization/digits/0"]
    assert unit["status"] == "done" and unit["config"]["n_train"] == 10**9
    assert unit["clamped"] == {"digits": {"n_train": {"asked": 10**9, "used": 1438}}}


def _deep(tmp, prev, mp):
    (tmp / "deep.json").write_text("[" * 200_000)


def _nan(tmp, prev, mp):
    text = prev.read_text()
    (tmp / "nan.json").write_text(text.replace('"value": ', '"value": NaN, "v": ', 1))


def _inf_meta(tmp, prev, mp):
    (tmp / "inf.json").write_text(prev.read_text().replace('"meta": {', '"meta": {"t": Infinity,',
                                                           1))


def _bad_invocation(tmp, prev, mp):
    doc = json.loads(prev.read_text())
    doc["meta"]["invocation"] = ["smoke"]
    (tmp / "inv.json").write_text(json.dumps(doc))


OUT = ["--out", "{tmp}/r.json"]
MEM = ["run", "--suite", "smoke", "--tasks", "memorization", "--dataset", "digits",
       "--device", "cpu", "--no-report", "--set", "memorization.n_train=200",
       "--set", "memorization.n_test=50", "--set", "memorization.conditions=['true-labels']",
       *OUT]

CASES = {
    # the resume command and the arguments it takes from the document
    "resume with run args": Case(["run", "--resume", "{prev}", "--tasks", "memorization"], 2,
                                 "--resume takes the run's arguments from"),
    "resume a missing file": Case(["run", "--resume", "{tmp}/nope.json"], 2, "does not exist"),
    "resume a folder": Case(["run", "--resume", "{tmp}"], 2, "--resume takes a results file"),
    "resume an old document": Case(["run", "--resume", "{tmp}/old.json"], 2,
                                   "does not record its invocation", files={
                                       "old.json": json.dumps({"schema": results.SCHEMA,
                                                               "meta": {"suite": "smoke"},
                                                               "units": {}}).encode()}),
    "same --out, other seeds": Case(["run", *TINY, "--seeds", "0-3", "--out", "{prev}"], 2,
                                    "holds a run with other settings (seeds)"),
    "same --out, other suite": Case(["run", "--suite", "pr", "--out", "{prev}"], 2,
                                    "holds a 'smoke' run"),
    # one writer per file
    "second writer": Case(["run", "--resume", "{prev}"], 2,
                          f"is being written by another run (PID {os.getpid()}, started ",
                          setup=_lock_held),
    # a unit's own error fails that unit, exit 1, the run goes on
    # a UserError only a task can raise (here: no --data-root) is bad input: the unit is
    # recorded as failed, the other units run, exit status 2 with one line
    "UserError inside a unit": Case(["run", *TINY[:2], "--tasks", "dimensionality",
                                     "--dataset", "mnist", "digits", *TINY[6:], *OUT], 2,
                                     "dimensionality/mnist/0: ",
                                     check=_failed_units(1, "UserError: ")),
    "divergence": Case([*MEM, "--set", "memorization.train.lr=1e30"], 1, "",
                       check=_failed_units(1, "diverged at step")),
    # the output folder checked before training; a failed write later keeps the last state
    "full disk": Case(["run", *TINY, *OUT], 2, "not enough free space in", setup=_disk_full),
    "read-only folder": Case(["run", *TINY, *OUT], 2, "cannot write in", setup=_read_only),
    "disk fills mid-run": Case(["run", *TINY, "--seeds", "0,1", "--jobs", "1", *OUT], 2,
                               "keeps its previous state", setup=_disk_fills_mid_run,
                               check=_kept_first_unit),
    "a file where the folder goes": Case(["run", *TINY, "--out", "{tmp}/blocker/r.json"], 2,
                                         "a file of that name is in the way",
                                         files={"blocker": b"x"}),
    "--out is a folder": Case(["run", *TINY, "--out", "{tmp}"], 2, "is a folder"),
    # damaged or foreign documents as --out
    "empty file": Case(["run", *TINY, "--out", "{tmp}/e.json"], 2,
                       "not a readable results document", files={"e.json": b""}),
    "truncated file": Case(["run", *TINY, "--out", "{tmp}/t.json"], 2,
                           "not a readable results document", files={"t.json": "TRUNCATE"}),
    "non-UTF-8 file": Case(["run", *TINY, "--out", "{tmp}/b.json"], 2,
                           "not a readable results document", files={"b.json": b"\xff\xfe{\x00"}),
    "foreign JSON": Case(["run", *TINY, "--out", "{tmp}/f.json"], 2, "no 'schema' key",
                         files={"f.json": b'{"name": "package.json"}'}),
    "a JSON list": Case(["run", *TINY, "--out", "{tmp}/l.json"], 2, "the JSON is a list",
                        files={"l.json": b"[1, 2]"}),
    "other schema": Case(["run", *TINY, "--out", "{tmp}/s.json"], 2, "this quirkbench reads",
                         files={"s.json": b'{"schema": "quirkbench.results/99"}'}),
    "damaged unit record": Case(["run", *TINY, "--out", "{tmp}/d.json"], 2,
                                "damaged results document: unit 'x'", files={"d.json": json.dumps({
                                    "schema": results.SCHEMA, "meta": {"suite": "smoke"},
                                    "units": {"x": "oops"}}).encode()}),
    "compare a damaged document": Case(["compare", "{prev}", "{tmp}/d.json"], 2,
                                       "d.json: damaged results document: unit",
                                       setup=lambda tmp, prev, mp: _damage(prev, tmp / "d.json")),
    "report a damaged document": Case(["report", "{tmp}/d.json", "--out", "{tmp}/x.html"], 2,
                                      "d.json: damaged results document: unit",
                                      setup=lambda tmp, prev, mp: _damage(prev, tmp / "d.json")),
    "report a folder with foreign JSON": Case(
        ["report", "{tmp}/folder", "--out", "{tmp}/folder.html"], 0,
        "quirkbench: warning: skipped", setup=lambda tmp, prev, mp: _folder(prev, tmp)),
    # duplicates count once; files 0644
    "repeated task": Case(["run", *TINY[:2], "--tasks", "dimensionality,dimensionality",
                           "dimensionality", *TINY[4:], "--dataset", "digits", *OUT], 0, "",
                          check=_one_unit),
    # wrong types, unknown keys, huge values, negative seeds, unknown names, missing extras
    "wrong type": Case(["run", *TINY, "--set", "dimensionality.n_points=many", *OUT], 2,
                       "wrong type"),
    "wrong type, list": Case(["run", *TINY, "--set", "dimensionality.dims=7", *OUT], 2,
                             "wrong type"),
    "unknown key": Case(["run", *TINY, "--set", "dimensionality.bogus=1", *OUT], 2,
                        "unknown setting dimensionality.'bogus'"),
    "unknown nested key": Case([*MEM, "--set", "memorization.train.bogus=1"], 2,
                               "unknown setting memorization.train.'bogus'"),
    "--set for a task not in the run": Case(["run", *TINY, "--set", "memorization.n_train=5",
                                             *OUT], 2, "which is not in this run"),
    "infinite learning rate": Case([*MEM, "--set", "memorization.train.lr=1e400"], 2,
                                   "lr must be a finite number > 0"),
    "huge seed": Case(["run", *TINY, "--seeds", "99999999999999999999", *OUT], 2,
                      "seeds must be below 2**63"),
    "negative seed": Case(["run", *TINY, "--seeds", "-1", *OUT], 2, "seeds must be"),
    "empty seed range": Case(["run", *TINY, "--seeds", "3-1", *OUT], 2, "seeds must be"),
    "unknown device": Case(["run", *TINY[:-3], "--device", "tpu", *OUT], 2,
                           "unknown device 'tpu'"),
    "unknown executor": Case(["run", *TINY, "--executor", "dask", *OUT], 2,
                             "unknown executor 'dask'; valid: local, ray"),
    "unknown task": Case(["run", "--tasks", "nope", *OUT], 2, "unknown task 'nope'; valid: "),
    "unknown data set": Case(["run", *TINY, "--dataset", "imagenet", *OUT], 2,
                             "unknown data set 'imagenet'"),
    "Ray not installed": Case(["run", *TINY, "--executor", "ray", *OUT], 2,
                              "pip install 'quirkbench[ray]'", setup=_no_ray),
    "bad --set syntax": Case(["run", *TINY, "--set", "oops", *OUT], 2, "--set takes TASK.KEY"),
    # training that goes nowhere fails its unit, named, with the step (exit 1)
    "finite divergence": Case([*MEM, "--set", "memorization.train.lr=1e6"], 1, "",
                              check=_failed_units(1, "over 1000× the first step's")),
    "dead network": Case([*MEM, "--set", "memorization.train.lr=5"], 1, "",
                         check=_failed_units(1, "DidNotTrainError: did not train: after")),
    "unit budget": Case([*MEM, "--unit-budget", "0.05"], 1, "",
                        check=_failed_units(1, "UnitBudgetExceeded: ran past its wall-clock "
                                               "budget of 0.05 s")),
    "negative unit budget": Case(["run", *TINY, "--unit-budget", "-1", *OUT], 2,
                                 "--unit-budget must be a number of seconds ≥ 0"),
    "unit budget not a number": Case(["run", *TINY, "--unit-budget", "soon", *OUT], 2,
                                     "--unit-budget must be a number of seconds"),
    # every model named anywhere is checked before the first unit trains
    "unknown model in --set": Case([*MEM, "--set", "memorization.model=nosuch"], 2,
                                   "memorization.model: unknown model 'nosuch'; valid: ",
                                   check=_no_document),
    "bad MLP name in --set": Case([*MEM, "--set", "memorization.model=mlp-0"], 2,
                                  "memorization.model: bad MLP name 'mlp-0'", check=_no_document),
    "unknown student": Case(["run", "--suite", "smoke", "--tasks", "compression", "--set",
                             "compression.student=nosuch", *OUT], 2,
                            "compression.student: unknown model 'nosuch'", check=_no_document),
    "unknown model in a list": Case(["run", "--suite", "smoke", "--tasks", "throughput", "--set",
                                     "throughput.models=['mlp-512','nosuch']", *OUT], 2,
                                    "throughput.models: unknown model 'nosuch'",
                                    check=_no_document),
    "unknown --model": Case(["run", *TINY, "--model", "nosuch", *OUT], 2,
                            "--model: unknown model 'nosuch'"),
    "--model names a missing factory": Case(["run", *TINY, "--model", "json:nosuch", *OUT], 2,
                                            "has no attribute 'nosuch'"),
    # a size beyond the data set is clamped and recorded, not silently
    "n_train beyond the data set": Case([*MEM[:-1], "{tmp}/r.json", "--set",
                                         "memorization.n_train=1000000000"], 0, "",
                                        check=_clamped),
    "n_train below 10": Case([*MEM, "--set", "memorization.n_train=5"], 2,
                             "n_train must be an integer ≥ 10"),
    "a data set the task refuses": Case(["run", "--suite", "smoke", "--tasks", "throughput",
                                         "--dataset", "mnist1d", *OUT], 2,
                                        "task 'throughput' does not run on data set 'mnist1d'"),
    # Ray: an unreachable cluster is one line within seconds, not minutes of time-outs
    "unreachable Ray cluster": Case(["run", *TINY, "--executor", "ray", *OUT], 2,
                                    "cannot reach the Ray cluster at RAY_ADDRESS=127.0.0.1:1",
                                    setup=_ray_at("127.0.0.1:1"), check=_no_document),
    "unreachable Ray client address": Case(["run", *TINY, "--executor", "ray", *OUT], 2,
                                           "RAY_ADDRESS=ray://127.0.0.1:1",
                                           setup=_ray_at("ray://127.0.0.1:1"),
                                           check=_no_document),
    "RAY_ADDRESS not host:port": Case(["run", *TINY, "--executor", "ray", *OUT], 2,
                                      "RAY_ADDRESS=somewhere:port is not host:port",
                                      setup=_ray_at("somewhere:port"), check=_no_document),
    # loading: strict JSON, bounded nesting, never rewritten unvalidated
    "resume 200000 nested lists": Case(["run", "--resume", "{tmp}/deep.json"], 2,
                                       "nests deeper than 64 levels", setup=_deep),
    "compare 200000 nested lists": Case(["compare", "{tmp}/deep.json", "{prev}"], 2,
                                        "nests deeper than 64 levels", setup=_deep),
    "report 200000 nested lists": Case(["report", "{tmp}/deep.json", "--out", "{tmp}/x.html"],
                                       2, "nests deeper than 64 levels", setup=_deep),
    "resume a bare NaN": Case(["run", "--resume", "{tmp}/nan.json"], 2,
                              "metrics[0].value is a bare NaN", setup=_nan),
    "compare a bare NaN": Case(["compare", "{prev}", "{tmp}/nan.json"], 2,
                               "metrics[0].value is a bare NaN", setup=_nan),
    "resume a bare Infinity in meta": Case(["run", "--resume", "{tmp}/inf.json"], 2,
                                           "meta.t is a bare Infinity", setup=_inf_meta),
    "--out a bare NaN": Case(["run", *TINY, "--seeds", "0,1", "--out", "{tmp}/nan.json"], 2,
                             "is a bare NaN", setup=_nan),
    "resume a damaged invocation": Case(["run", "--resume", "{tmp}/inv.json"], 2,
                                        "does not record its invocation",
                                        setup=_bad_invocation),
    # one writer per file, whatever the path: symlinks lead to the file's own lock
    "second writer through a symlink": Case(["run", "--resume", "{tmp}/link.json"], 2,
                                            "is being written by another run",
                                            setup=_link_to_held),
    "--out a hard link": Case(["run", "--resume", "{tmp}/hard.json"], 2,
                              "has 2 hard links", setup=_hard_link),
    "resume through a symlink": Case(["run", "--resume", "{tmp}/link.json", "-q", "--no-report"],
                                     0, "", setup=_symlink, check=_still_a_link,
                                     rewrites=("prev.json",)),
    # more bad flags
    "--jobs 0": Case(["run", *TINY, "--jobs", "0", *OUT], 2, "--jobs must be a whole number"),
    "--jobs many": Case(["run", *TINY, "--jobs", "many", *OUT], 2,
                        "--jobs must be a whole number"),
    "seeds not numbers": Case(["run", *TINY, "--seeds", "a,b", *OUT], 2,
                              "seeds must be integers"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_fault_matrix(name, prev, tmp_path, monkeypatch):
    case = CASES[name]
    copy = tmp_path / "prev.json"
    shutil.copy(prev, copy)
    for fname, content in case.files.items():
        if content == "TRUNCATE":
            content = prev.read_bytes()[: len(prev.read_bytes()) // 2]
        (tmp_path / fname).write_bytes(content)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    if case.setup:
        case.setup(tmp_path, copy, monkeypatch)
    args = [str(a).replace("{prev}", str(copy)).replace("{tmp}", str(tmp_path))
            for a in case.args]
    monkeypatch.chdir(tmp_path)
    code, stdout, stderr = cli(*args)
    assert code == case.code, (stdout, stderr)
    assert "Traceback" not in stderr + stdout
    if case.code == 2:
        assert stderr.startswith("quirkbench: error: ") and stderr.count("\n") == 1, stderr
        assert case.fragment in stderr, stderr
    elif case.fragment:  # a warning: one line
        assert case.fragment in stderr and stderr.count("\n") == 1, stderr
    else:
        assert stderr == "", stderr
    for fname, content in before.items():  # nothing already written is lost or changed
        if fname in case.rewrites:
            continue
        assert (tmp_path / fname).read_bytes() == content, f"{fname} changed"
    if case.check:
        case.check(tmp_path, copy)


def test_the_matrix_is_large_enough():
    assert len(CASES) >= 60


def test_divergence_json_is_strict_and_holds_are_not_computed(tmp_path):
    """The unit fails at the step where the loss went non-finite; the rest of the run
    still runs; the document parses as strict JSON."""
    out = tmp_path / "r.json"
    code, stdout, _ = cli("run", *TINY[:2], "--tasks", "memorization", "dimensionality",
                          *TINY[4:], "--set", "memorization.train.lr=1e30",
                          "--set", "memorization.n_train=200", "--set", "memorization.n_test=50",
                          "--set", "memorization.conditions=['true-labels']", "--out", out)
    assert code == 1
    doc = strict_json(out)
    mem, dim = doc["units"]["memorization/digits/0"], doc["units"]["dimensionality/digits/0"]
    assert mem["status"] == "failed" and mem["metrics"] == []
    assert mem["error"].startswith("DivergenceError: diverged at step ")
    assert mem["error"].endswith("(non-finite loss)")
    assert dim["status"] == "done" and dim["metrics"]
    assert "memorization/digits/0: DivergenceError: diverged at step" in stdout


def test_divergence_names_the_first_non_finite_step():
    """The check runs once per epoch, yet names the exact step whose loss went non-finite."""
    import torch
    import torch.nn.functional as F

    from quirkbench.engine.train import TrainConfig, train, train_many
    from quirkbench.errors import DivergenceError

    x, y = torch.randn(64, 5), torch.randint(0, 3, (64,))
    calls = []

    def loss_nan_at_7(logits, target):
        calls.append(1)
        loss = F.cross_entropy(logits, target)
        return loss * float("nan") if len(calls) == 7 else loss

    cfg = TrainConfig(lr=0.01, batch_size=8, max_epochs=3, target_train_acc=None)  # 8 a epoch
    with pytest.raises(DivergenceError, match=r"^diverged at step 7 \(non-finite loss\)$"):
        train(torch.nn.Linear(5, 3), x, y, cfg, loss_fn=loss_nan_at_7)
    models = [torch.nn.Linear(5, 3) for _ in range(2)]
    x_bad = x.clone()
    x_bad[5] = float("nan")  # the step that draws example 5 goes non-finite
    with pytest.raises(DivergenceError, match="non-finite loss"):
        train_many(models, x_bad, y, cfg, seeds=[0, 1])
    r = train(torch.nn.Linear(5, 3), x, y, cfg)  # a sane run is untouched
    assert r.steps == 24


def test_non_finite_values_become_null_with_a_reason(tmp_path):
    from quirkbench.metrics import Metric
    from quirkbench.tasks import TaskOutput

    out = TaskOutput([Metric("loss", float("nan"), "1")], {"curve": [{"loss": float("inf")}]},
                     {"final": float("-inf"), "ok": 1.0})
    rec = results.unit_record("t", "d", 0, {}, results.now(), 1.0, out)
    assert rec["metrics"][0]["value"] is None and rec["info"] == {"final": None, "ok": 1.0}
    assert rec["non_finite"] == {"metrics.loss": "nan", "series.curve[0].loss": "inf",
                                 "info.final": "-inf"}
    p = tmp_path / "r.json"
    results.write_atomic(p, {"schema": results.SCHEMA, "meta": {"x": float("nan")},
                             "units": {"t/d/0": rec}})
    assert strict_json(p)["meta"]["x"] is None


def test_report_names_are_unique_per_run(tmp_path):
    from quirkbench.commands.report import report_path

    a, b = tmp_path / "a" / "run.json", tmp_path / "b" / "run.json"
    assert report_path(a, {"meta": {"run_id": "1"}}) != report_path(b, {"meta": {"run_id": "2"}})
    assert report_path(a, {"meta": {}}) != report_path(b, {"meta": {}})  # older documents


def test_two_reports_of_documents_with_one_name_both_survive(prev, tmp_path, monkeypatch):
    for sub, rid in (("a", "run0000a"), ("b", "run0000b")):
        (tmp_path / sub).mkdir()
        doc = json.loads(prev.read_text())
        doc["meta"]["run_id"] = rid
        (tmp_path / sub / "run.json").write_text(json.dumps(doc))
    monkeypatch.chdir(tmp_path)
    assert cli("report", "a/run.json")[0] == 0 and cli("report", "b/run.json")[0] == 0
    assert sorted(p.name for p in (tmp_path / "reports").glob("*.html")) == \
        ["run-run0000a.html", "run-run0000b.html"]


def test_stale_lock_of_a_killed_run_is_taken_over(tmp_path):
    out = tmp_path / "r.json"
    holder = tmp_path / ".r.json.holder"  # what a kill -9'd run leaves: its holder note
    holder.write_text(json.dumps({"pid": 999999, "started": "2026-01-01T00:00:00+00:00"}))
    (tmp_path / ".r.json.lock").write_text("")
    code, stdout, _ = cli("run", *TINY, "--out", out)
    assert code == 0
    assert "taking over" in stdout and "PID 999999" in stdout
    assert not holder.exists()  # released at the end


# --------------------------------------------------------------------------- processes

def _spawn(*args, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "quirkbench", *map(str, args)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            **kw)


def _wait_for_line(proc: subprocess.Popen, fragment: str, timeout: float = 120) -> list[str]:
    lines, t0 = [], time.monotonic()
    while time.monotonic() - t0 < timeout:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if fragment in line:
            return lines
    raise AssertionError(f"never saw {fragment!r}: {lines}")


def _values(path: Path) -> dict:
    doc = strict_json(path)
    return {k: [(m["name"], m["tags"], m["value"]) for m in u["metrics"] if m["unit"] != "s"]
            for k, u in doc["units"].items()}


SLOW_SEEDS = "0-5"
SLOWER = ["--set", "dimensionality.n_points=400"]  # ~0.3 s a unit: time to kill mid-run


def test_sigterm_leaves_the_truth_and_the_exact_resume_command(tmp_path):
    out = tmp_path / "r.json"
    args = [*MEM[:-1], str(out), "--seeds", "0,1", "--jobs", "1",  # one unit in flight
            "--set", "memorization.conditions=['true-labels','random-labels']"]
    proc = _spawn(*args)
    _wait_for_line(proc, "memorization/digits/0: true-labels")  # the second condition trains
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 143, stderr
    assert stderr.strip() == "quirkbench: terminated" and "Traceback" not in stderr
    meta = strict_json(out)["meta"]
    assert meta["status"] == "interrupted" and meta["ended"]
    assert meta["interrupted_in"] == "memorization/digits/0"
    assert meta["progress"] == {"planned": 2, "done": 0, "failed": 0, "left": 2}
    command = f"resume with: quirkbench run --resume {out}"
    assert "terminated in memorization/digits/0 after 0 of 2 units" in stdout, stdout
    assert command in stdout
    code, stdout, _ = cli("run", "--resume", out)  # exactly the printed command
    assert code == 0
    doc = strict_json(out)
    assert doc["meta"]["status"] == "done" and len(doc["units"]) == 2
    assert doc["meta"]["progress"] == {"planned": 2, "done": 2, "failed": 0, "left": 0}
    assert len(doc["meta"]["resumed"]) == 1 and "interrupted_in" not in doc["meta"]
    assert doc["meta"]["invocation"]["overrides"]["memorization"]["n_train"] == 200


@pytest.mark.slow
@pytest.mark.parametrize("executor", [["--jobs", "1"], ["--jobs", "2"]], ids=["local", "jobs2"])
def test_kill_9_at_five_random_points_then_resume_gives_identical_metrics(tmp_path, executor):
    """One run killed with SIGKILL five times at random moments (after a random number of
    finished units, then a random delay: mid-unit or mid-write), each restart resuming the
    document and taking over the dead run's lock; then finished: every unit is there once
    and every metric equals an uninterrupted run's.

    The delay is a fraction of the shortest unit's time in the uninterrupted run, so a
    cycle finishes at most 2 + jobs units whatever the machine's speed, thread count or
    load: 5 cycles cannot finish the 24 units, and the last kill lands mid-run."""
    seeds, n = "0-23", 24
    ref = tmp_path / "ref.json"
    assert cli("run", *TINY, *SLOWER, "--seeds", seeds, "--out", ref, "-q", *executor)[0] == 0
    shortest = min(u["seconds"] for u in strict_json(ref)["units"].values())
    out = tmp_path / "r.json"
    rng = random.Random(1234)
    first = ["run", *TINY, *SLOWER, "--seeds", seeds, "--out", out, *executor]
    taken_over, done_after_kill = 0, []
    for i in range(5):
        proc = _spawn(*(first if i == 0 else ["run", "--resume", out, "--no-report"]))
        lines = _wait_for_line(proc, "units on cpu")  # past start-up: the lock is held
        taken_over += any("taking over" in line for line in lines)
        for _ in range(rng.randint(0, 2)):
            lines = _wait_for_line(proc, "done in")
        time.sleep(rng.uniform(0.0, 0.5) * shortest)
        assert proc.poll() is None  # still running: the kill lands mid-run
        proc.kill()
        proc.communicate(timeout=60)
        doc = strict_json(out)  # never a torn file
        done_after_kill.append(sum(u["status"] == "done" for u in doc["units"].values()))
    assert taken_over == 4  # every restart found the killed run's holder note
    assert 0 < done_after_kill[-1] < n, done_after_kill  # the kills really landed mid-run
    code, _, err = cli("run", "--resume", out, "-q")
    assert code == 0, err
    assert _values(out) == _values(ref)
    assert strict_json(out)["meta"]["status"] == "done"


def test_two_writers_one_holds_the_file_and_no_unit_is_lost(tmp_path):
    out = tmp_path / "r.json"
    a = _spawn("run", *TINY, *SLOWER, "--seeds", "0-3", "--out", out)
    _wait_for_line(a, "units on cpu")
    code, _, err = cli("run", *TINY, *SLOWER, "--seeds", "0-3", "--out", out)
    assert code == 2 and f"(PID {a.pid}, started " in err and err.count("\n") == 1
    code, _, err = cli("run", "--resume", out)
    assert code == 2 and f"(PID {a.pid}, started " in err
    stdout, stderr = a.communicate(timeout=180)
    assert a.returncode == 0, stderr
    doc = strict_json(out)
    assert sorted(doc["units"]) == [f"dimensionality/digits/{s}" for s in range(4)]
    assert all(u["status"] == "done" for u in doc["units"].values())
