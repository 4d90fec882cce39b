"""The results document's JSON Schema (``results.schema.json``, shipped in the package and
rendered in the docs) and ``validate``, which checks a document against it with the
``jsonschema`` library and turns the first violation into one line naming the file, the
unit and the field:

    results/run.json: damaged results document: unit 'memorization/mnist5k/0',
    metrics[0] ('test_acc'): unknown direction 'up'; valid: higher, lower, none

Each property of the schema carries ``x-expected``, the words the message uses for what
was expected ("a number (or null)"), beside its ``description``, which the docs show.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

from ..errors import UserError

SCHEMA = "quirkbench.results/2"
SCHEMA_FILE = Path(__file__).with_name("results.schema.json")


@functools.cache
def json_schema() -> dict[str, Any]:
    """The JSON Schema of a results document (draft 2020-12), as a dict."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def _metric_property(name: str) -> dict[str, Any]:
    return json_schema()["$defs"]["metric"]["properties"][name]


# units a metric may carry: "1" = dimensionless; wall-clock and rate units as compare knows
UNITS = frozenset(_metric_property("unit")["enum"])
UNIT_STATUSES = tuple(json_schema()["$defs"]["unit"]["properties"]["status"]["enum"])


class ForeignDocument(UserError):
    """A JSON file that is not a quirkbench results document at all (asv, pytest-benchmark):
    skipped with a warning when a folder is read, an error when named directly."""


@functools.cache
def _validator():
    from jsonschema import Draft202012Validator

    return Draft202012Validator(json_schema())


def _is_num(v) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _type_name(v) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
            type(None): "null"}.get(type(v), "a number" if _is_num(v) else type(v).__name__)


def validate(doc: Any, path: str | Path = "<document>") -> dict[str, Any]:
    """Check a results document against the schema; return it, or raise one ``UserError``
    line naming the file, the unit and the field (``ForeignDocument`` for JSON that is not
    a quirkbench results document at all; another version of the format is named as such).
    """
    if not isinstance(doc, dict):
        raise ForeignDocument(f"{path}: not a quirkbench results document (the JSON is "
                              f"{_type_name(doc)}, not an object)")
    if "schema" not in doc:
        raise ForeignDocument(f"{path}: not a quirkbench results document (no 'schema' key)")
    schema = doc["schema"]
    if not isinstance(schema, str) or not schema.startswith("quirkbench.results/"):
        raise ForeignDocument(f"{path}: not a quirkbench results document (schema {schema!r})")
    if schema != SCHEMA:
        raise UserError(f"{path}: schema {schema!r}; this quirkbench reads {SCHEMA!r}")
    errors = list(_validator().iter_errors(doc))
    if errors:
        first = min(errors, key=lambda e: _position(doc, list(e.absolute_path)))
        where, what = _describe(first, doc)
        raise UserError(f"{path}: damaged results document: {where}: {what}")
    return doc


def _position(doc, path: list) -> list[int]:
    """Where ``path`` is in the document, as the index of each step among its siblings: the
    error met first in reading order sorts first (a missing key before its siblings')."""
    out, node = [], doc
    for step in path:
        out.append(list(node).index(step) if isinstance(node, dict) else int(step))
        node = node[step]
    return out


def _describe(e, doc) -> tuple[str, str]:
    """(where, what) of one ``jsonschema`` error, in the words of the rest of quirkbench."""
    path = list(e.absolute_path)
    where, tail = _where(path, doc)
    exp = e.schema.get("x-expected", "")
    subject = f"{tail[0]!r} " if len(tail) == 1 else ""
    if len(tail) == 2 and tail[0] == "tags":
        subject = f"tag {tail[1]!r} "
    elif len(tail) >= 2 and tail[0] == "series":
        subject = f"series {tail[1]!r}" + (f"[{tail[2]}] " if len(tail) == 3 else " ")
    v, kind = e.instance, e.validator
    if kind == "required":
        key = next(k for k in e.validator_value if k not in v)
        also = e.schema.get("properties", {}).get(key, {}).get("x-expected")
        return where, f"missing {key!r}" + (f" ({also})" if also else "")
    if kind == "additionalProperties":
        valid = list(e.schema.get("properties", {}))
        extra = next(k for k in v if k not in valid)
        return where, f"unknown key {extra!r}; valid keys: {', '.join(valid)}"
    if kind == "enum":
        valid = ", ".join(x for x in e.validator_value if x)
        return where, f"unknown {tail[-1]} {v!r}; valid: {valid}"
    if kind == "minItems" and tail == ["metrics"]:
        return where, "a finished unit ('status': 'done') has no metrics"
    if kind == "pattern":
        return where, f"{subject}is the string {str(v)[:30]!r}; expected {exp}"
    if kind == "type":
        return where, f"{subject}is {_type_name(v)}; expected {exp}"
    return where, f"{subject}{e.message}"


def _where(path: list, doc) -> tuple[str, list]:
    """``("unit 'k', metrics[0] ('name'), goal", the rest of the path)`` for an error at
    ``path``: the unit, the metric (with its name) and its anchor or goal, as far as the
    path goes into them."""
    if len(path) < 2 or path[0] not in ("meta", "units"):
        return "document", path
    if path[0] == "meta":
        return "meta", path[1:]
    where, rest = f"unit {path[1]!r}", path[2:]
    if len(rest) >= 2 and rest[0] == "metrics":
        where += f", metrics[{rest[1]}]"
        metric = doc["units"][path[1]]["metrics"][rest[1]]
        if isinstance(metric, dict) and isinstance(metric.get("name"), str):
            where += f" ({metric['name']!r})"
        rest = rest[2:]
        if rest and rest[0] in ("anchor", "goal") and (len(rest) > 1 or
                                                       isinstance(_at(doc, path), dict)):
            where += f", {rest[0]}"
            rest = rest[1:]
    return where, rest


def _at(doc, path: list):
    for step in path:
        doc = doc[step]
    return doc
