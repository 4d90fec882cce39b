"""Adding an attack is one file plus one row of test_attack_table.py's TABLE: the docs'
example (the momentum PGD, ``methods/attacks/momentum.py``), dropped into the attacks package
as a file of its own while the shipped one is forgotten, is registered, passes the table's
checks with its row, is listed by ``quirkbench list attacks``, and runs in a task with its
reference library; an attack of another package (the example plugin's) arrives the same way
through the entry-point group ``quirkbench.attacks``."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest
import torch
from test_attack_table import EPS, TABLE, Row, check_attack
from test_registry import _plugin

import quirkbench.methods.attacks as attacks_pkg
from quirkbench.cli import main
from quirkbench.methods import attacks as A
from quirkbench.methods.attacks import references
from quirkbench.tasks import Context, get

ROOT = Path(__file__).resolve().parents[1]
MOMENTUM = ROOT / "src" / "quirkbench" / "methods" / "attacks" / "momentum.py"
PLUGIN_ATTACK = ROOT / "examples" / "quirkbench-example-plugin" / "qb_example_plugin" / "attack.py"
DROPPED = "quirkbench.methods.attacks.dropped_momentum"


@pytest.fixture
def fresh_registry(monkeypatch):
    """The attack registry as a new process finds it, without ``mi-fgsm``; everything it
    held (and the reference table) is put back afterwards."""
    reg = A.REGISTRY
    specs, builders = dict(reg._specs), dict(references._BUILDERS)
    reg.unregister("mi-fgsm")
    monkeypatch.setattr(reg, "_loaded", False)
    yield reg
    reg._specs.clear()
    reg._specs.update(specs)
    references._BUILDERS.clear()
    references._BUILDERS.update(builders)
    for mod in (DROPPED, "qb_example_attack"):
        sys.modules.pop(mod, None)


def test_momentum_pgd_is_one_file(tmp_path, monkeypatch, fresh_registry, attack_model, capsys):
    assert "mi-fgsm" not in fresh_registry  # without the file there is no such attack
    folder = tmp_path / "attacks"
    folder.mkdir()
    shutil.copy(MOMENTUM, folder / "dropped_momentum.py")
    monkeypatch.setattr(attacks_pkg, "__path__", [*attacks_pkg.__path__, str(folder)])
    monkeypatch.setattr(fresh_registry, "_loaded", False)

    cls = A.get("mi-fgsm")
    assert cls.__module__ == DROPPED and cls is not A.MomentumPGD
    check_attack(cls, TABLE["mi-fgsm"], *attack_model)
    assert main(["list", "attacks"]) == 0
    (line,) = [s for s in capsys.readouterr().out.splitlines() if "mi-fgsm" in s]
    assert "[norms: linf,l2]" in line and "Dong et al. 2018" in line

    # a task runs it by name, against the reference its file registered
    pytest.importorskip("torchattacks", reason="needs the attacks extra (torchattacks)")
    task = get("attack_agreement")
    cfg = task.make_config("smoke", {"attacks": ["mi-fgsm-linf"], "libraries": ["torchattacks"]})
    out = task.run(cfg, Context("digits", 0, torch.device("cpu")))
    rates = {m.tags["impl"]: m.value for m in out.metrics if m.name == "success_rate"}
    assert set(rates) == {"ours", "torchattacks"}
    gap = [m for m in out.metrics if m.name == "success_gap"]
    assert [m.tags["attack"] for m in gap] == ["mi-fgsm-linf"] and gap[0].holds, gap


def test_an_attack_from_another_package(tmp_path, monkeypatch, fresh_registry, attack_model,
                                        capsys):
    """The example plugin's attack module, named by an entry point of ``quirkbench.attacks``."""
    _plugin(tmp_path, monkeypatch, "quirkbench.attacks", "qb_example_attack",
            PLUGIN_ATTACK.read_text())
    cls = A.get("example-fgm")
    assert cls.__module__ == "qb_example_attack"
    # its own row: one L2 step of 1.0 flips about as many as FGSM's L∞ step of 0.05
    check_attack(cls, Row({"l2": 1.0}, {"l2": 20.0}), *attack_model)
    assert main(["list", "attacks"]) == 0
    assert "example-fgm" in capsys.readouterr().out


def test_the_page_quotes_the_real_row():
    """The test row the page shows is the one in the table."""
    page = (ROOT / "docs" / "development" / "adding-an-attack.md").read_text()
    quoted = re.search(r'"mi-fgsm": Row\(EPS, \{"linf": ([0-9.]+), "l2": ([0-9.]+)\}\)', page)
    assert quoted, "the page no longer shows the mi-fgsm row"
    row = TABLE["mi-fgsm"]
    assert row.eps == EPS and row.min_success == {"linf": float(quoted.group(1)),
                                                 "l2": float(quoted.group(2))}
