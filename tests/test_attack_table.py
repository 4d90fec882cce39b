"""Every registered attack through the same checks, one row each (in the style of Foolbox's
tests/test_attacks.py): on one fixed small trained model, in each of its norms,

* its success at the row's ε is at least the row's reference (at most, for the control);
* the perturbation respects ε in that norm, stays in the data's bounds, and the caller's
  input is left untouched;
* the same settings give the same output (the seed fixes every random draw);
* ε = 0 returns the input itself;
* the call leaves the model's mode and its parameters' ``requires_grad`` as they were.

A registered attack without a row fails ``test_every_registered_attack_has_a_row``: adding an
attack is one file in ``methods/attacks/`` plus one row here (docs/development/
adding-an-attack.md). ``check_attack`` is also what ``test_adding_an_attack.py`` runs on an
attack dropped in as one file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
import torch

from quirkbench.errors import UserError
from quirkbench.methods import attacks as A

SETTINGS = A.AttackSettings(steps=10, search_steps=6, seed=0)


@dataclass(frozen=True)
class Row:
    """An attack's expectations on the fixed model: success (%) at ``eps`` (per norm) is at
    least ``min_success`` there; ``max_success``: at most (the noise control)."""

    eps: dict[str, float]
    min_success: dict[str, float]
    max_success: float = 100.0


# measured on the fixed model (conftest.attack_model) at SETTINGS (10 steps), L∞ / L2:
# fgsm 61.3%; pgd 65.3% / 41.0%; minimal 65.3% / 42.2%; mi-fgsm 61.8% / 34.1% (α = ε/steps:
# a shorter path than PGD's); noise 1.7% / 0%. The references sit about 5 pp below (PGD is a
# heuristic; thread counts move a few inputs).
EPS = {"linf": 0.1, "l2": 1.0}
TABLE = {
    "fgsm": Row(EPS, {"linf": 55.0}),
    "pgd": Row(EPS, {"linf": 60.0, "l2": 36.0}),
    "minimal": Row(EPS, {"linf": 60.0, "l2": 36.0}),
    "mi-fgsm": Row(EPS, {"linf": 55.0, "l2": 29.0}),
    "noise": Row(EPS, {"linf": 0.0, "l2": 0.0}, max_success=5.0),
}


def check_registration(cls: type[A.Attack]) -> None:
    """What the registry asks of every attack class."""
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cls.name), cls.name
    assert cls.norms and set(cls.norms) <= set(A.NORMS), cls.norms
    assert cls.description.strip() and "\n" not in cls.description
    assert A.resolve(cls.name) == (cls, cls.norms)
    for norm in cls.norms:
        assert A.resolve(cls.label(norm))[0] is cls


def check_attack(cls: type[A.Attack], row: Row, model, x, y) -> None:
    """The table's checks of one attack class in every norm it has."""
    check_registration(cls)
    for norm in cls.norms:
        eps = row.eps[norm]
        before = x.clone()
        model.train()
        atk = cls.configure(eps, norm, SETTINGS)
        xa = atk(model, x, y)
        assert model.training and all(p.requires_grad for p in model.parameters())
        assert torch.equal(x, before), "the caller's input changed"
        assert xa.shape == x.shape and xa.dtype == x.dtype
        assert float(xa.min()) >= 0.0 and float(xa.max()) <= 1.0, "outside the data bounds"
        size = (xa - x).flatten(1)
        size = size.abs().amax(1) if norm == "linf" else size.norm(dim=1)
        assert float(size.max()) <= eps * (1 + 1e-5), (norm, float(size.max()), eps)
        rate = A.success_rate(model, x, y, xa)
        assert row.min_success[norm] <= rate <= row.max_success, (cls.name, norm, rate)
        again = cls.configure(eps, norm, SETTINGS)(model, x, y)
        assert torch.equal(xa, again), "the same settings gave another output"
        assert atk.input_iterations >= 0 and atk.iterations >= 0
        still = cls.configure(0.0, norm, SETTINGS)(model, x, y)
        assert torch.equal(still, x), "ε = 0 moved the input"


def test_every_registered_attack_has_a_row():
    """Every attack quirkbench ships (an installed plugin's attacks bring their own rows)."""
    ours = {n for n, cls in A.REGISTRY.items() if cls.__module__.startswith("quirkbench.")}
    assert ours == set(TABLE), "add the new attack's row to TABLE"


@pytest.mark.parametrize("name", sorted(TABLE))
def test_attack(name, attack_model):
    check_attack(A.get(name), TABLE[name], *attack_model)


def _no_projection(self, rows, diff):
    rows.xa.clamp_(0.0, 1.0)


BROKEN = {  # PGD hook → (replacement, the check that must fail)
    "weak": ("ascend", lambda self, xa, g, step, state: xa.add_(g.sign_(), alpha=1e-4),
             r"\('pgd', 'linf', "),
    "outside the ball": ("_project", _no_projection, r"\('linf', "),
    "not repeatable": ("start", lambda self, x, eps: (x + (torch.rand_like(x) * 2 - 1) * eps)
                       .clamp(0, 1), "same settings"),
    "changes its input": ("start", lambda self, x, eps: x.add_(0.0), "caller's input"),
}


@pytest.mark.parametrize("broken", sorted(BROKEN))
def test_the_checks_catch_a_broken_attack(attack_model, monkeypatch, broken):
    """Each check fails on PGD broken its way (the table is only as good as its checks)."""
    hook, replacement, message = BROKEN[broken]
    model, x, y = attack_model
    monkeypatch.setattr(A.PGD, hook, replacement)
    with pytest.raises(AssertionError, match=message):
        check_attack(A.PGD, TABLE["pgd"], model, x.clone(), y)  # a copy: one break writes it


def test_references_are_names_in_one_scheme():
    """``name`` (every norm) and ``name-norm`` (one); anything else lists the valid ones."""
    assert A.resolve("pgd-l2") == (A.PGD, ("l2",))
    assert A.resolve("fgsm") == (A.FGSM, ("linf",))
    with pytest.raises(UserError,
                       match=r"unknown attack 'fgsm-l2' \(did you mean .*\); valid: .*pgd-linf"):
        A.resolve("fgsm-l2")
