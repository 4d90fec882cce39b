"""Checked overrides of frozen config dataclasses (nanoGPT's configurator, with type checks)."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any

from .errors import UserError


def _accepts(tp, value) -> bool:
    origin = typing.get_origin(tp)
    if tp is typing.Any:
        return True
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return any(_accepts(a, value) for a in typing.get_args(tp))
    if tp is type(None):
        return value is None
    if origin in (tuple, list):
        args = [a for a in typing.get_args(tp) if a is not Ellipsis]
        return isinstance(value, (tuple, list)) and all(
            any(_accepts(a, v) for a in args) for v in value) if args \
            else isinstance(value, (tuple, list))
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(tp, type):
        return isinstance(value, tp)
    return True


def parse_value(text: str) -> Any:
    """A CLI value: JSON-ish literals (numbers, true/false/none, lists), else the string."""
    import ast

    low = text.strip().lower()
    if low in ("none", "null"):
        return None
    if low in ("true", "false"):
        return low == "true"
    try:
        v = ast.literal_eval(text)
        return list(v) if isinstance(v, tuple) else v
    except (ValueError, SyntaxError):
        return text


def apply_overrides(cfg, overrides: dict[str, Any], where: str = ""):
    """Return ``dataclasses.replace(cfg, **overrides)`` after checking keys and types.

    An unknown key or a value of the wrong type is a ``UserError`` naming what is valid.
    Nested dataclass fields take dotted keys (``train.lr``).
    """
    if not overrides:
        return cfg
    hints = typing.get_type_hints(type(cfg))
    names = [f.name for f in dataclasses.fields(cfg)]
    flat: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for key, value in overrides.items():
        head, _, rest = key.partition(".")
        if head not in names:
            raise UserError(f"unknown setting {where}{key!r}; valid: {', '.join(names)}")
        if rest:
            nested.setdefault(head, {})[rest] = value
            continue
        tp = hints[head]
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, list) and typing.get_origin(tp) is tuple:
            value = tuple(value)
        if not _accepts(tp, value):
            raise UserError(f"setting {where}{key}={value!r} has the wrong type; expected "
                            f"{getattr(tp, '__name__', str(tp))}")
        flat[head] = value
    for head, sub in nested.items():
        inner = getattr(cfg, head)
        if not dataclasses.is_dataclass(inner):
            raise UserError(f"setting {where}{head!r} has no sub-settings")
        flat[head] = apply_overrides(inner, sub, f"{where}{head}.")
    return dataclasses.replace(cfg, **flat)


def to_dict(cfg) -> dict[str, Any]:
    """The config as it reads back from a results document (tuples become lists)."""
    import json

    return json.loads(json.dumps(dataclasses.asdict(cfg)))
