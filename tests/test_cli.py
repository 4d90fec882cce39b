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


# --------------------------------------------------------------------------- a fast CLI

NO_PLUGINS = ("import importlib.metadata as m, sys\n"
              "m.entry_points = lambda *a, **k: ()  # an install without plugins\n"
              "from quirkbench.cli import main\n"
              "sys.exit(main(sys.argv[1:]))\n")
HEAVY = ("torch", "pandas", "numpy", "scipy", "matplotlib", "jinja2")


def _imported(*argv, plugins=False, env=None) -> tuple[set[str], str]:
    """(top-level modules imported, stdout) of ``quirkbench ARGV`` in a fresh interpreter."""
    import os
    import subprocess
    import sys

    cmd = [sys.executable, "-X", "importtime"] + (["-m", "quirkbench"] if plugins
                                                   else ["-c", NO_PLUGINS]) + list(argv)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                       env={**os.environ, **(env or {})})
    assert p.returncode == 0, p.stderr[-2000:]
    names = {line.rsplit("|", 1)[-1].strip().split(".")[0]
             for line in p.stderr.splitlines() if line.startswith("import time:")}
    return names, p.stdout


def test_help_imports_no_torch():
    """``python -X importtime -m quirkbench --help``: the parser is built without torch,
    pandas or numpy (measured: 0.14-0.24 s against 4-6 s before, load 7-11)."""
    names, out = _imported("--help", plugins=True)
    assert "usage: quirkbench" in out
    assert not names & set(HEAVY), names & set(HEAVY)


@pytest.mark.parametrize("argv", [["list"], ["list", "memorization"], ["list", "suites"]])
def test_list_imports_no_torch_without_plugins(argv):
    names, out = _imported(*argv)
    assert not names & set(HEAVY), names & set(HEAVY)
    assert "memorization" in out


def test_with_plugins_the_second_list_imports_no_torch(tmp_path):
    """The first ``list`` with plugins installed imports them (and torch) and keeps the
    catalog in the cache; the next one reads it: the same text, no torch."""
    from quirkbench.commands._catalog import plugins

    if not any(ep.name == "example" for ep in plugins()):
        pytest.skip("needs the example plugin (pip install -e examples/quirkbench-example-plugin)")
    env = {"QUIRKBENCH_CACHE": str(tmp_path)}
    first, out1 = _imported("list", plugins=True, env=env)
    second, out2 = _imported("list", plugins=True, env=env)
    assert "torch" in first and "example_margin" in out1
    assert out2 == out1 and not second & set(HEAVY), second & set(HEAVY)


def test_the_plugin_key_follows_the_plugins_source(tmp_path, monkeypatch):
    """An edited plugin (an editable install) is imported again, not read from the cache."""
    import os
    from importlib.metadata import EntryPoint

    from quirkbench.commands._catalog import plugin_key

    (tmp_path / "myplug").mkdir()
    src = tmp_path / "myplug" / "task.py"
    src.write_text("X = 1\n")
    (tmp_path / "myplug" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    eps = [EntryPoint("mine", "myplug.task", "quirkbench.tasks")]
    key = plugin_key(eps)
    assert plugin_key(eps) == key
    src.write_text("X = 22\n")
    os.utime(src, ns=(1, 1))
    assert plugin_key(eps) != key


def test_the_catalog_is_current():
    """``list`` reads the shipped catalog; it must say what the registries say
    (regenerate: python -m quirkbench.commands._catalog)."""
    import json

    from quirkbench.commands import _catalog

    shipped = json.loads(_catalog.FILE.read_text(encoding="utf-8"))
    assert shipped == _catalog.build(builtin_only=True), \
        "stale: run python -m quirkbench.commands._catalog"


def test_compare_knows_the_gate_modes_without_importing_the_gate():
    """``compare --help`` lists --fail-on's modes from its own copy (no pandas at --help)."""
    from quirkbench.commands import compare as command
    from quirkbench.tracking import compare

    assert command.FAIL_ON == compare.FAIL_ON


def test_list_task_shows_every_setting_with_default_unit_and_meaning(run_cli):
    from quirkbench.config import describe
    from quirkbench.tasks import get

    code, out, _ = run_cli("list", "sharpness")
    assert code == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line and line[0] != " "}
    for s in describe(get("sharpness").config()):
        assert s.key in rows, s.key
        if s.unit not in ("", "1"):
            assert f"  {s.unit}  " in rows[s.key], (s.key, rows[s.key])
    assert "smoke: 10" in rows["small_batch"] and "examples" in rows["small_batch"]
    assert "Keskar's small batch" in rows["small_batch"]


def test_list_unknown_name_suggests_the_closest(run_cli):
    code, _, err = run_cli("list", "memorisation")
    assert code == 2 and err.count("\n") == 1
    assert "(did you mean 'memorization'?)" in err and "valid: tasks, datasets" in err


@pytest.mark.parametrize("argv, wanted", [
    (["--suite", "smok"], "unknown suite 'smok' (did you mean 'smoke'?)"),
    (["--tasks", "memorisation"], "unknown task 'memorisation' (did you mean 'memorization'?)"),
    (["--tasks", "memorization", "--dataset", "digit"],
     "unknown data set 'digit' (did you mean 'digits'?)"),
    (["--tasks", "memorization", "--model", "lenet-5"],
     "unknown model 'lenet-5' (did you mean 'lenet5'"),
    (["--tasks", "memorization", "--set", "memorization.n_trian=10"],
     "(did you mean 'n_train'"),
    (["--tasks", "memorization", "--set", "memorization.train.lrr=1"], "(did you mean 'lr'?)"),
    (["--tasks", "adversarial", "--set", "adversarial.attacks=['fgms']"],
     "unknown attack 'fgms' (did you mean 'fgsm'"),
    (["--executor", "locl"], "unknown executor 'locl' (did you mean 'local'?)"),
])
def test_unknown_names_suggest_the_closest(run_cli, tmp_path, argv, wanted):
    """One line, exit 2, the closest valid names (difflib) before the list of valid ones."""
    argv = ["run", *(["--suite", "smoke"] if "--suite" not in argv else []), *argv,
            "--out", tmp_path / "r.json", "--no-report", "-q"]
    code, _, err = run_cli(*argv)
    assert code == 2 and err.count("\n") == 1, err
    assert wanted in err and "valid:" in err.split(wanted)[1], err
    assert not (tmp_path / "r.json").exists()


# --------------------------------------------------------------------------- tables that fit

def _a_compare_table() -> str:
    """compare's text: rows with long metric keys that change beyond noise."""
    from test_compare_table import BASE, HEAD, frame

    from quirkbench.tracking.compare import compare
    from quirkbench.tracking.table import format_table

    long = "success_rate[attack=pgd,eps=0.3,norm=linf,variant=ours-full]"
    base, head = dict(BASE), dict(HEAD)
    base[long], head[long] = BASE["small_drop"], HEAD["small_drop"]
    return format_table(compare(frame(base), frame(head)))


@pytest.mark.parametrize("columns", [80, 120])
def test_tables_fit_the_terminal(run_cli, monkeypatch, tmp_path, columns):
    """The run summary, the lists and a task's settings fit COLUMNS (the terminal's width,
    as shutil.get_terminal_size reads it); long cells wrap inside their column."""
    from report_docs import write_doc

    from quirkbench import load_results
    from quirkbench.commands.run import format_summary

    monkeypatch.setenv("COLUMNS", str(columns))
    doc = write_doc(tmp_path / "r.json", extra=True)
    texts = {"summary": format_summary(load_results(doc)), "compare": _a_compare_table()}
    for argv in (["list"], ["list", "memorization"], ["list", "throughput"]):
        code, out, _ = run_cli(*argv)
        assert code == 0
        texts[" ".join(argv)] = out
    for name, text in texts.items():
        widest = max(len(line) for line in text.splitlines())
        assert widest <= columns, (name, widest)
    assert "n_train = null  [examples]" in texts["list memorization"] or \
        "n_train " in [line[:8] for line in texts["list memorization"].splitlines()]
    assert "Zhang et al. 2017" in texts["summary"].replace("\n", " ").replace("  ", " ") or \
        "Zhang et al." in texts["summary"]


def test_a_pipe_gets_one_line_per_row(run_cli, monkeypatch):
    """Not a terminal and no COLUMNS: nothing wraps (grep finds a whole row)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    code, out, _ = run_cli("list", "tasks")
    (line,) = [s for s in out.splitlines() if s.strip().startswith("memorization")]
    assert "Zhang et al. 2017" in line and "[suites:" in line
