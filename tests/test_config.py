"""Config checks: one line naming the setting as the user wrote it, what is valid, and the
value; over every numeric and list setting of every registered task."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass

import pytest

from quirkbench.config import (
    ConfigError,
    apply_overrides,
    at_least,
    check,
    check_choices,
    check_each,
)
from quirkbench.errors import UserError
from quirkbench.tasks import load_all


@dataclass(frozen=True)
class Inner:
    lr: float = 0.1

    def __post_init__(self):
        check(self.lr > 0, "lr", "> 0", self.lr)


@dataclass(frozen=True)
class Outer:
    steps: int = 3
    norms: tuple[str, ...] = ("linf",)
    sizes: tuple[int, ...] = (1, 2)
    inner: Inner = Inner()

    def __post_init__(self):
        at_least(self, 1, "steps", unit=" steps")
        check_choices(self.norms, "norms", ("linf", "l2"), "norm")
        check_each(self.sizes, "sizes", lambda s: s >= 1, "positive integers")


@pytest.mark.parametrize("override,message", [
    ({"steps": 0}, "t.steps must be ≥ 1 steps, got 0"),
    ({"norms": ["l3"]}, "unknown norm 'l3' in t.norms; valid: linf, l2"),
    ({"norms": []}, "t.norms must name at least one norm; valid: linf, l2"),
    ({"sizes": []}, "t.sizes must be positive integers, got []"),
    ({"sizes": [1, 0]}, "t.sizes must be positive integers, got [1, 0]"),
    ({"inner.lr": -1}, "t.inner.lr must be > 0, got -1.0"),
])
def test_messages_name_the_setting(override, message):
    with pytest.raises(ConfigError) as e:
        apply_overrides(Outer(), override, "t.")
    assert str(e.value) == message
    assert isinstance(e.value, UserError)


def test_direct_construction_names_the_field():
    with pytest.raises(UserError, match=r"^steps must be ≥ 1 steps, got 0$"):
        Outer(steps=0)


def _bad_values(tp, default):
    """Values outside any sane range for a setting of type ``tp``."""
    origin = typing.get_origin(tp)
    if tp is int or tp == int | None:
        return [-10**6]
    if tp is float or tp == float | None:
        return [-1e9, float("nan")]
    if origin is tuple:
        return [(), ("no-such-name",), (-10**6,)]
    if tp is str:
        return ["no-such-name"]
    return []


@pytest.mark.parametrize("name", sorted(load_all()))
def test_every_check_is_one_line_naming_the_setting(name):
    """Every setting that refuses a value says which one (``task.key``) on one line."""
    task = load_all()[name]
    cfg = task.config()
    hints = typing.get_type_hints(task.config)
    refused = 0
    for f in dataclasses.fields(cfg):
        for bad in _bad_values(hints[f.name], getattr(cfg, f.name)):
            try:
                apply_overrides(cfg, {f.name: bad}, f"{name}.")
            except UserError as e:
                refused += 1
                msg = str(e)
                assert "\n" not in msg and f"{name}.{f.name}" in msg, (f.name, bad, msg)
    assert refused, f"{name}: no setting refuses a bad value"


# --------------------------------------------------------------------------- what a setting means

@dataclasses.dataclass(frozen=True)
class _Documented:
    # [examples] a block above the field
    # that goes on
    above: int = 1
    beside: float = 0.5  # [pp] the comment at the end of the line
    wrapped: tuple[int, ...] = (1,  # [steps] a comment on the first line
                                2)
    continued: int | None = None  # [s] first part
    #   second part, indented after the hash
    # a block for the next field, not a continuation of the one above
    name: str = "x"
    bare: int = 3
    inner: object = None


def test_each_setting_reads_its_unit_and_meaning_from_the_comment_beside_it():
    from quirkbench.config import describe

    got = {s.key: (s.unit, s.meaning, s.numeric) for s in describe(_Documented())}
    assert got == {
        "above": ("examples", "a block above the field that goes on", True),
        "beside": ("pp", "the comment at the end of the line", True),
        "wrapped": ("steps", "a comment on the first line", True),
        "continued": ("s", "first part second part, indented after the hash", True),
        "name": ("", "a block for the next field, not a continuation of the one above", False),
        "bare": ("", "", True), "inner": ("", "", False)}


def test_every_task_setting_has_a_meaning_and_every_number_a_unit():
    """STYLE: units and reasons in the comment beside each default; the settings reference
    and ``quirkbench list TASK`` show them. Built-in tasks: another package's are its own."""
    from quirkbench.config import describe
    from quirkbench.tasks import load_all

    missing = [f"{name}.{s.key}" + ("" if s.meaning else " (no meaning)") +
               (" (no unit)" if s.numeric and not s.unit else "")
               for name, task in load_all().items() for s in describe(task.config())
               if task.config.__module__.startswith("quirkbench.")
               and (not s.meaning or (s.numeric and not s.unit))]
    assert not missing, missing
