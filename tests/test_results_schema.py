"""The published JSON Schema of results documents: valid, the one the loader checks
against, in step with ``Metric``, and the page the docs render from it."""

from __future__ import annotations

import dataclasses
import json

import pytest
from report_docs import write_doc

from quirkbench.errors import UserError
from quirkbench.metrics import DIRECTIONS, KINDS, Metric
from quirkbench.tracking import results, schema


def test_the_schema_is_valid_and_names_the_version_the_code_writes():
    from jsonschema import Draft202012Validator

    s = schema.json_schema()
    Draft202012Validator.check_schema(s)
    assert s["properties"]["schema"]["const"] == results.SCHEMA
    doc = results.new_document(suite="smoke", seeds=[0], datasets=["mnist5k"], tasks=[],
                               device="cpu")
    assert doc["schema"] == results.SCHEMA


def test_the_schema_is_in_step_with_metric():
    metric = schema.json_schema()["$defs"]["metric"]["properties"]
    assert list(metric) == [f.name for f in dataclasses.fields(Metric)]
    assert metric["direction"]["enum"] == list(DIRECTIONS)
    assert metric["kind"]["enum"] == list(KINDS)
    for name, prop in metric.items():  # the docs show a description, the errors x-expected
        assert prop.get("description") and prop.get("x-expected"), name


def test_written_documents_pass_the_schema(tmp_path):
    from jsonschema import Draft202012Validator

    doc = json.loads(write_doc(tmp_path / "r.json", extra=True).read_text())
    assert not list(Draft202012Validator(schema.json_schema()).iter_errors(doc))


def test_the_loader_checks_against_the_schema_file(tmp_path, monkeypatch):
    """A rule that lives only in the schema file is enforced by read: the file is the
    definition, not a copy of hand-written checks."""
    path = write_doc(tmp_path / "r.json", tasks=("landscape",))
    assert results.read(path)
    stricter = json.loads(schema.SCHEMA_FILE.read_text())
    stricter["$defs"]["unit"]["properties"]["seed"]["maximum"] = -1
    monkeypatch.setattr(schema, "json_schema", lambda: stricter)
    schema._validator.cache_clear()
    results._VALID.clear()  # files already checked are not checked again
    try:
        with pytest.raises(UserError, match=r"unit 'landscape/mnist5k/0': 'seed'"):
            results.read(path)
    finally:
        monkeypatch.undo()
        schema._validator.cache_clear()
    assert results.read(path)


def test_the_schema_ships_in_the_package():
    from importlib.resources import files

    assert files("quirkbench.tracking").joinpath("results.schema.json").is_file()
    assert "tracking/*.schema.json" in (schema.SCHEMA_FILE.parents[3] / "pyproject.toml"
                                        ).read_text()


def test_a_file_damaged_after_it_was_read_is_refused(tmp_path):
    """read checks a file once while it stays the same; a rewrite is checked again."""
    path = write_doc(tmp_path / "r.json", tasks=("landscape",))
    assert results.read(path) and results.read(path)
    doc = json.loads(path.read_text())
    doc["units"]["landscape/mnist5k/0"]["metrics"][0]["direction"] = "up"
    path.write_text(json.dumps(doc))  # same path, same inode, new mtime and size
    with pytest.raises(UserError, match="unknown direction 'up'"):
        results.read(path)


def test_the_docs_name_the_version_the_code_writes_and_render_the_schema():
    import re

    root = schema.SCHEMA_FILE.parents[3]
    page = (root / "docs" / "reference" / "results.md").read_text(encoding="utf-8")
    named = set(re.findall(r"quirkbench\.results/\d+", page))
    assert results.SCHEMA in named and named <= {results.SCHEMA, *results.OLD_SCHEMAS}
    assert '--8<-- "docs/generated/results-schema.md"' in page
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference", root / "docs/hooks/reference.py")
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    text = hook.results_schema_page()
    for field in ("`direction`", "`kind`", "`holds`", "`goal`", "`series`", "`seed`"):
        assert field in text
    assert "`higher`, `lower`, `none`" in text
