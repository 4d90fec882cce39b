"""Damaged and foreign results documents: every reader (load_results, compare, report) refuses
a damaged one with exit 2 and one line naming the file, the unit and the field; a folder
skips other tools' JSON with a warning line; nothing is silently dropped."""

from __future__ import annotations

import json

import pytest
from report_docs import write_doc

from quirkbench.cli import main
from quirkbench.errors import UserError
from quirkbench.tracking import results

UNIT = "memorization/mnist5k/0"


def _metric0(d):
    return d["units"][UNIT]["metrics"][0]


def _set(fn):
    """A mutation of the parsed document: ``fn(doc)`` changes it in place."""
    return ("doc", fn)


def _raw(text_or_bytes):
    return ("raw", text_or_bytes)


# (id, how to damage, fragments the one-line error must contain besides the file name)
CASES = [
    ("extra-key-in-metric", _set(lambda d: _metric0(d).update(colour="red")),
     [UNIT, "metrics[0]", "unknown key 'colour'", "valid keys"]),
    ("missing-unit", _set(lambda d: _metric0(d).pop("unit")), [UNIT, "missing 'unit'"]),
    ("missing-value", _set(lambda d: _metric0(d).pop("value")), [UNIT, "missing 'value'"]),
    ("non-numeric-value", _set(lambda d: _metric0(d).update(value="fast")),
     [UNIT, "'value' is the string 'fast'", "expected a number"]),
    ("value-is-a-list", _set(lambda d: _metric0(d).update(value=[1])),
     [UNIT, "'value' is a list"]),
    ("tags-as-list", _set(lambda d: _metric0(d).update(tags=["a", "b"])),
     [UNIT, "'tags' is a list", "expected an object"]),
    ("unknown-direction", _set(lambda d: _metric0(d).update(direction="up")),
     [UNIT, "unknown direction 'up'", "higher, lower, none"]),
    ("unknown-unit", _set(lambda d: _metric0(d).update(unit="furlongs")),
     [UNIT, "unknown unit 'furlongs'"]),
    ("holds-as-string", _set(lambda d: _metric0(d).update(holds="yes")),
     [UNIT, "'holds' is a string"]),
    ("goal-without-target", _set(lambda d: _metric0(d).update(goal={"at_least": True})),
     [UNIT, "goal", "missing 'target'"]),
    ("metric-not-an-object", _set(lambda d: d["units"][UNIT]["metrics"].append(3.5)),
     [UNIT, "is a number; expected an object (a metric)"]),
    ("metrics-not-a-list", _set(lambda d: d["units"][UNIT].update(metrics="oops")),
     [UNIT, "'metrics' is a string", "expected a list of metrics"]),
    ("unit-without-metrics", _set(lambda d: d["units"][UNIT].pop("metrics")),
     [UNIT, "missing 'metrics'"]),
    ("done-unit-with-no-metrics", _set(lambda d: d["units"][UNIT].update(metrics=[])),
     [UNIT, "has no metrics"]),
    ("series-not-a-list", _set(lambda d: d["units"][UNIT]["series"].update(
        train_curve={"step": 1})), [UNIT, "series 'train_curve' is an object", "expected a list"]),
    ("series-record-not-an-object", _set(lambda d: d["units"][UNIT]["series"].update(
        train_curve=[1, 2])), [UNIT, "series 'train_curve'[0] is a number"]),
    ("seed-as-string", _set(lambda d: d["units"][UNIT].update(seed="0")),
     [UNIT, "'seed' is a string", "expected an integer"]),
    ("unknown-unit-status", _set(lambda d: d["units"][UNIT].update(status="finished")),
     [UNIT, "unknown status 'finished'"]),
    ("unit-not-an-object", _set(lambda d: d["units"].update({UNIT: "done"})),
     [UNIT, "is a string; expected an object"]),
    ("units-not-an-object", _set(lambda d: d.update(units=[])), ["'units' is a list"]),
    ("meta-missing", _set(lambda d: d.pop("meta")), ["missing 'meta'"]),
    ("meta-seeds-not-a-list", _set(lambda d: d["meta"].update(seeds="0,1")),
     ["meta", "'seeds' is a string"]),
    ("wrong-schema-version", _set(lambda d: d.update(schema="quirkbench.results/0")),
     ["schema 'quirkbench.results/0'", "this quirkbench reads"]),
    ("truncated-file", _raw("TRUNCATE"), ["not a readable results document", "JSONDecodeError"]),
    ("empty-file", _raw(""), ["not a readable results document"]),
    ("non-utf8", _raw(b'{"schema": "quirkbench.results/1", "meta": {"suite": "\xff\xfe"}}'),
     ["not a readable results document", "UnicodeDecodeError"]),
    ("foreign-json-named-directly", _raw('{"machine": "asv-box", "version": 1}'),
     ["not a quirkbench results document", "no 'schema' key"]),
    ("json-not-an-object", _raw("[1, 2, 3]"), ["not a quirkbench results document", "a list"]),
    # strict JSON with bounded nesting: Python's json reads NaN and Infinity, and recursed
    # into a RecursionError traceback on deep nesting
    ("nesting-200000-deep", _raw("[" * 200_000), ["the JSON nests deeper than 64 levels"]),
    ("nesting-100-deep-in-info", _set(lambda d: d["units"][UNIT].update(info=_deep(100))),
     ["the JSON nests deeper than 64 levels", "units.memorization/mnist5k/0.info"]),
    ("bare-NaN-value", ("text", lambda t: t.replace('"value": ', '"value": NaN, "x": ', 1)),
     [f"units.{UNIT}.metrics[0].value is a bare NaN", "not JSON"]),
    ("bare-Infinity-in-meta", ("text", lambda t: t.replace('"meta": {', '"meta": {"elapsed": '
                                                              'Infinity, ', 1)),
     ["meta.elapsed is a bare Infinity"]),
    ("bare-minus-Infinity-in-a-series", _set(lambda d: d["units"][UNIT]["series"].update(
        train_curve=[{"loss": "MINUSINF"}])), ["train_curve[0].loss is a bare -Infinity"]),
]


def _deep(n: int):
    out: list = []
    for _ in range(n):
        out = [out]
    return {"x": out}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    d = tmp_path_factory.mktemp("damaged")
    return write_doc(d / "good.json", tasks=("memorization", "landscape"))


def damaged(good, tmp_path, how) -> str:
    kind, arg = how
    bad = tmp_path / "bad.json"
    if kind == "doc":
        doc = json.loads(good.read_text())
        arg(doc)
        bad.write_text(json.dumps(doc).replace('"MINUSINF"', "-Infinity"))
    elif kind == "text":
        bad.write_text(arg(json.dumps(json.loads(good.read_text()))))
    elif arg == "TRUNCATE":
        text = good.read_text()
        bad.write_text(text[: len(text) // 2])
    else:
        (bad.write_bytes if isinstance(arg, bytes) else bad.write_text)(arg)
    return str(bad)


@pytest.mark.parametrize("how, fragments", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("reader", ["compare-base", "compare-head", "report", "load_results",
                                    "resume"])
def test_damaged_document_is_one_line_exit_2(reader, how, fragments, good, tmp_path, capsys):
    bad = damaged(good, tmp_path, how)
    before = open(bad, "rb").read()
    if reader == "load_results":
        with pytest.raises(UserError) as e:
            results.load_results(bad)
        err = f"quirkbench: error: {e.value}\n"
    else:
        argv = {"compare-base": ["compare", bad, str(good)],
                "compare-head": ["compare", str(good), bad],
                "report": ["report", bad, "--out", str(tmp_path / "r.html")],
                "resume": ["run", "--resume", bad, "--no-report"]}[reader]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert not (tmp_path / "r.html").exists()
    assert err.startswith("quirkbench: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err and bad in err
    for f in fragments:
        assert f in err, (f, err)
    assert open(bad, "rb").read() == before  # never rewritten: --resume validates first


def test_good_document_loses_no_record(good):
    doc = results.read(good)
    n = sum(len(u["metrics"]) for u in doc["units"].values())
    assert n > 0 and len(results.load_results(good)) == n


def test_folder_skips_foreign_json_with_a_warning(good, tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "run.json").write_bytes(good.read_bytes())
    (folder / "asv-machine.json").write_text('{"machine": "box"}')
    (folder / "benchmark.json").write_text('{"schema": "pytest-benchmark/4", "x": 1}')
    df = results.load_results(folder)
    assert set(df["run"]) == {"run"} and len(df) == len(results.load_results(good))
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("quirkbench: warning: skipped") for line in err)
    assert "asv-machine.json" in err[0] and "benchmark.json" in " ".join(err)
    assert main(["compare", str(folder), str(good)]) == 0  # the CLI reads the folder too


def test_folder_with_a_damaged_document_is_refused(good, tmp_path, capsys):
    folder = tmp_path / "results"
    folder.mkdir()
    (folder / "a.json").write_bytes(good.read_bytes())
    doc = json.loads(good.read_text())
    doc["units"][UNIT]["metrics"] = "oops"
    (folder / "b.json").write_text(json.dumps(doc))
    assert main(["report", str(folder), "--out", str(tmp_path / "r.html")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "b.json" in err and "'metrics' is a string" in err


def test_folder_of_only_foreign_json_is_an_error(tmp_path, capsys):
    (tmp_path / "asv.json").write_text('{"machine": "box"}')
    assert main(["compare", str(tmp_path), str(tmp_path)]) == 2
    assert "no results documents" in capsys.readouterr().err


def test_validate_returns_the_document(good):
    doc = json.loads(good.read_text())
    assert results.validate(doc, good) is doc
