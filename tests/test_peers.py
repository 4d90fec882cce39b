"""Optional peer libraries: any failure to import one is a one-line reason, never a crash,
and a run prints each reason once, however many units met it."""

from __future__ import annotations

import importlib.abc
import sys

import pytest
import torch

from quirkbench import peers
from quirkbench.tasks import Context, get

CPU = torch.device("cpu")
NMS = "operator torchvision::nms does not exist"


class _Broken(importlib.abc.MetaPathFinder):
    """Importing ``name`` raises what a torchvision built for another torch raises."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] == self.name:
            raise RuntimeError(f"{NMS}\nsecond line of the message")
        return None


@pytest.fixture
def broken(monkeypatch):
    """``broken("foolbox")``: that peer fails to import with a RuntimeError."""
    monkeypatch.setattr(peers, "_loaded", {})

    def make(name: str):
        for mod in [m for m in sys.modules if m.split(".")[0] == name]:
            monkeypatch.delitem(sys.modules, mod)
        monkeypatch.setattr(sys, "meta_path", [_Broken(name), *sys.meta_path])

    return make


def test_a_peer_that_raises_on_import_is_unavailable_with_one_line(broken):
    broken("foolbox")
    assert peers.load("foolbox") is None
    assert peers.unavailable("foolbox") == f"RuntimeError: {NMS}"


def test_a_peer_that_is_not_installed_names_its_extra(monkeypatch):
    monkeypatch.setattr(peers, "_loaded", {})
    monkeypatch.setitem(peers.PEERS, "art", ("quirkbench_no_such_module", "art"))
    assert peers.load("art") is None
    assert peers.unavailable("art") == "not installed: pip install 'quirkbench[art]'"


def test_throughput_skips_a_broken_peer_instead_of_crashing(broken):
    pytest.importorskip("foolbox", reason="needs the attacks extra (foolbox)")
    broken("foolbox")
    from quirkbench.tasks import throughput

    cfg = get("throughput").make_config(None, dict(
        models=("mlp-32",), pgd_model="mlp-32", pgd_n=16, pgd_steps=2, pgd_train_steps=5,
        repeats=1, pgd_norms=("linf",), pgd_peers=("foolbox",)))
    lines: list[str] = []
    res = throughput.measure_attacks(cfg, Context("mnist5k", 0, CPU), log=lines.append)
    assert set(res["linf"]["rate"]) == {"ours", "ours-full"}
    assert res["linf"]["skipped"] == {"foolbox": f"RuntimeError: {NMS}"}
    assert not any(NMS in line for line in lines)  # the run says it, once


def test_notices_are_one_line_per_peer_over_all_units():
    recs = [{"info": {"peers_unavailable": {"art": "not installed: pip install 'x'"}}},
            {"info": {"peers_unavailable": {"art": "not installed: pip install 'x'",
                                            "foolbox": f"RuntimeError: {NMS}"}}},
            {"info": {}}, {"status": "failed"}]
    assert peers.notices(recs) == ["peer unavailable: art: not installed: pip install 'x'",
                                   f"peer unavailable: foolbox: RuntimeError: {NMS}"]


def test_a_run_of_two_units_prints_the_notice_once(broken, run_cli, tmp_path):
    pytest.importorskip("torchattacks", reason="needs the attacks extra (torchattacks)")
    broken("foolbox")
    code, out, err = run_cli("run", "--suite", "smoke", "--tasks", "attack_agreement",
                             "--seeds", "0,1", "--set",
                             "attack_agreement.libraries=['torchattacks','foolbox']",
                             "--out", tmp_path / "r.json", "--no-report",
                             "--jobs", "1")  # the broken peer exists in this process only
    assert code == 0, err
    assert out.count(f"peer unavailable: foolbox: RuntimeError: {NMS}") == 1
    assert NMS not in err
