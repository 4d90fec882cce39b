"""Strict JSON for results documents, read before the schema is checked: a bare ``NaN``,
``Infinity`` or ``-Infinity`` (Python's json reads them; JSON has none) is refused naming
the field, and nesting is bounded (Python's parser would end in a RecursionError on
``[`` × 200000). Each refusal is one ``UserError`` line naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import UserError

MAX_DEPTH = 64  # a results document nests about 8 levels; a plot series record a few more


class _Bare:
    """Where the JSON text had a bare NaN, Infinity or -Infinity (not JSON)."""

    def __init__(self, name: str):
        self.name = name


def parse(text: str, path: str | Path = "<document>") -> Any:
    """Strict JSON: a bare ``NaN``, ``Infinity`` or ``-Infinity`` (Python's json reads them)
    is refused naming the field, and nesting deeper than ``MAX_DEPTH`` (or than Python's
    parser can follow) is refused; each a one-line ``UserError``. Non-finite values are
    written as null, or as the strings "inf"/"nan" in a metric's value."""
    try:
        doc = json.loads(text, parse_constant=_Bare)
    except RecursionError:
        raise UserError(f"{path}: not a results document: the JSON nests deeper than "
                        f"{MAX_DEPTH} levels") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path} is not a readable results document (JSONDecodeError: "
                        f"{str(e).splitlines()[0] if str(e) else 'empty'})") from None
    stack: list[tuple[Any, str, int]] = [(doc, "", 0)]
    while stack:  # iterative: a deep document cannot overflow the check itself
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UserError(f"{path}: not a results document: the JSON nests deeper than "
                            f"{MAX_DEPTH} levels (at {where or 'the top'})")
        if isinstance(node, _Bare):
            raise UserError(f"{path}: damaged results document: {where or 'the top'} is a "
                            f"bare {node.name}, which is not JSON; write null (or \"inf\", "
                            "\"nan\" for a metric's value)")
        if isinstance(node, dict):
            stack += [(v, f"{where}.{k}" if where else str(k), depth + 1)
                      for k, v in reversed(node.items())]
        elif isinstance(node, list):
            stack += [(v, f"{where}[{i}]", depth + 1) for i, v in reversed(list(enumerate(node)))]
    return doc
