"""Checked overrides of frozen config dataclasses (nanoGPT's configurator, with type checks),
and the checks a config's ``__post_init__`` makes on its values.

    def __post_init__(self):
        at_least(self, 1, "steps", "repeats")
        check(0 < self.eps <= 1, "eps", "an L∞ budget in (0, 1]", self.eps)
        check_choices(self.norms, "norms", NORMS, "norm")

A failed check is a ``ConfigError`` (a ``UserError``): one line naming the setting, what is
valid and the value given. ``apply_overrides`` puts the task in front of the setting's name
(``compression.delta_pp must be ≥ 0 percentage points, got -1.0``).
"""

from __future__ import annotations

import dataclasses
import functools
import typing
from collections.abc import Callable, Iterable
from typing import Any

from .errors import UserError, choices, did_you_mean

_UNSET = object()


class ConfigError(UserError):
    """A setting outside what is valid: ``before + key + after`` on one line."""

    def __init__(self, key: str, after: str, before: str = ""):
        self.key, self.after, self.before = key, after, before
        super().__init__(f"{before}{key}{after}")

    def at(self, where: str) -> ConfigError:
        """The same error with the setting's full dotted name (``where`` ends with a dot)."""
        return ConfigError(f"{where}{self.key}", self.after, self.before)


def _show(value: Any) -> str:
    return repr(list(value)) if isinstance(value, tuple) else repr(value)


def check(ok: bool, key: str, valid: str, value: Any = _UNSET) -> None:
    """Unless ``ok``: ``ConfigError("<key> must be <valid>, got <value>")``."""
    if not ok:
        raise ConfigError(key, f" must be {valid}" + ("" if value is _UNSET
                                                     else f", got {_show(value)}"))


def at_least(cfg, lo: float, *keys: str, unit: str = "") -> None:
    """Each field ``keys`` of ``cfg`` is ≥ ``lo`` (``unit`` follows the bound in the message)."""
    for key in keys:
        v = getattr(cfg, key)
        check(v >= lo, key, f"≥ {lo:g}{unit}", v)


def optional_seed(cfg, key: str) -> None:
    """Field ``key`` of ``cfg`` is none or an integer seed ≥ 0."""
    v = getattr(cfg, key)
    check(v is None or (type(v) is int and v >= 0), key, "an integer ≥ 0, or none: the run's seed",
          v)


def check_each(values: Iterable, key: str, ok: Callable[[Any], bool], valid: str) -> None:
    """``values`` is a non-empty list whose every element passes ``ok``."""
    values = list(values)
    check(bool(values) and all(ok(v) for v in values), key, valid, values)


def check_choices(values: str | Iterable[str], key: str, valid: Iterable[str],
                  what: str) -> None:
    """``values`` (one name, or a non-empty list of them) are all in ``valid``:
    ``unknown <what> 'x' in <key>; valid: a, b``."""
    valid = list(valid)
    listed = [values] if isinstance(values, str) else list(values)
    if not listed:
        raise ConfigError(key, f" must name at least one {what}; valid: {choices(valid)}")
    for v in listed:
        if v not in valid:
            raise ConfigError(key, f"; valid: {choices(valid)}",
                              f"unknown {what} {v!r}{did_you_mean(v, valid)} in ")


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


def _keys(cfg) -> list[str]:
    """Every setting of ``cfg`` as the user writes it, nested ones dotted (``train.lr``)."""
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        out += [f.name] + ([f"{f.name}.{k}" for k in _keys(value)]
                           if dataclasses.is_dataclass(value) else [])
    return out


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
            raise UserError(f"unknown setting {where}{key!r}{did_you_mean(key, _keys(cfg))}; "
                            f"valid: {', '.join(names)}")
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
    try:
        return dataclasses.replace(cfg, **flat)
    except ConfigError as e:  # name the setting as the user wrote it
        raise e.at(where) from None


MODEL = "quirkbench.model"  # a field's metadata key: the setting names a model


def model_setting(default: Any, *, follows_model_flag: bool = True) -> Any:
    """A config field that names a model: a registered name (``mlp-128``), a user's
    ``package.module:factory``, or a tuple of them. The runner checks every such setting
    before the first unit trains, and ``--model`` sets each one that ``follows_model_flag``
    (not a distillation student, whose small size is the point)::

        model: str = model_setting("mlp-128")
        student: str = model_setting("mlp-100", follows_model_flag=False)
    """
    return dataclasses.field(default=default, metadata={MODEL: follows_model_flag})


def model_settings(cfg, where: str = "") -> dict[str, tuple[Any, bool]]:
    """The model settings of ``cfg`` (nested configs included, as dotted keys): key →
    (value, follows the ``--model`` flag)."""
    out: dict[str, tuple[Any, bool]] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if MODEL in f.metadata:
            out[f"{where}{f.name}"] = (value, bool(f.metadata[MODEL]))
        elif dataclasses.is_dataclass(value):
            out.update(model_settings(value, f"{where}{f.name}."))
    return out


def to_dict(cfg) -> dict[str, Any]:
    """The config as it reads back from a results document (tuples become lists)."""
    import json

    return json.loads(json.dumps(dataclasses.asdict(cfg)))


# --------------------------------------------------------------------------- what a setting means

@dataclasses.dataclass(frozen=True)
class Setting:
    """One setting of a config, as ``quirkbench list TASK`` and the docs show it: its dotted
    ``key``, ``default`` (the value in this config), ``unit`` ("" where it has none: names,
    switches) and ``meaning``."""

    key: str
    default: Any
    unit: str
    meaning: str
    numeric: bool  # a number or a list of numbers: it needs a unit ("1": dimensionless)


@functools.cache  # once per class: reading a class's source parses its whole module
def _comments(cls) -> dict[str, tuple[str, str]]:
    """field name → (unit, meaning), from the comments beside each default in the source of
    the config dataclass ``cls`` (STYLE: units and reasons in the comment beside each
    default). A field's comment is the block of ``# ...`` lines right above it, the comment
    at the end of its line(s), and the ``#   ...`` lines (indented after the ``#``) that
    continue it below. A leading ``[unit]`` in it is the setting's unit. {} where the source
    cannot be read (a class defined in a REPL). Callers must not change the dict."""
    import ast
    import inspect
    import io
    import re
    import textwrap
    import tokenize

    try:
        src = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    notes = {t.start[0]: (t.string, t.line[:t.start[1]].strip() == "")
             for t in tokenize.generate_tokens(io.StringIO(src).readline)
             if t.type == tokenize.COMMENT}  # line → (comment, is the line's only content)
    body = ast.parse(src).body[0].body
    out = {}
    for node in body:
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        above, line = [], node.lineno - 1
        while line in notes and notes[line][1] and not notes[line][0].startswith("#  "):
            above.insert(0, notes[line][0])
            line -= 1
        beside = [notes[i][0] for i in range(node.lineno, node.end_lineno + 1)
                  if i in notes and not notes[i][1]]
        line = node.end_lineno + 1
        while line in notes and notes[line][1] and notes[line][0].startswith("#  "):
            beside.append(notes[line][0])
            line += 1
        text = " ".join(c.lstrip("#").strip() for c in above + beside)
        unit = re.match(r"\[([^\]]*)\]\s*", text)
        out[node.target.id] = (unit.group(1), text[unit.end():]) if unit else ("", text)
    return out


def _is_numeric(tp) -> bool:
    """int or float, optionally None, or a tuple/list of them."""
    if tp in (int, float):
        return True
    args = [a for a in typing.get_args(tp) if a not in (type(None), Ellipsis)]
    return bool(args) and all(_is_numeric(a) for a in args)


def describe(cfg, prefix: str = "") -> list[Setting]:
    """Every setting of the config ``cfg`` (an instance: its values are the defaults shown;
    nested configs flattened as ``train.lr``), in the order of the fields."""
    hints = typing.get_type_hints(type(cfg))
    notes = _comments(type(cfg))
    out = []
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out += describe(value, f"{prefix}{f.name}.")
            continue
        unit, meaning = notes.get(f.name, ("", ""))
        out.append(Setting(f"{prefix}{f.name}", value, unit, meaning, _is_numeric(hints[f.name])))
    return out
