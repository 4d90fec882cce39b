"""Optional peer libraries (torchattacks, Foolbox, ART): the reference attacks that
``attack_agreement`` and ``throughput`` hold ours against.

A peer is imported on demand, once per process. *Any* failure to import it is a one-line
reason, never a crash: not installed (the extra that brings it), or installed but broken
(``RuntimeError: operator torchvision::nms does not exist`` where torchvision was built
for another torch). A task skips an unavailable peer and records the reason in its
``info["peers_unavailable"]``; the run prints each reason once (``notices``), however many
units met it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# peer → (module imported, the quirkbench extra that installs it)
PEERS = {"torchattacks": ("torchattacks", "attacks"), "foolbox": ("foolbox", "attacks"),
         "art": ("art", "art")}

_loaded: dict[str, tuple[ModuleType | None, str | None]] = {}


def load(peer: str) -> ModuleType | None:
    """The peer's module, or None when it cannot be imported (``unavailable`` says why)."""
    if peer not in _loaded:
        module, extra = PEERS[peer]
        try:
            _loaded[peer] = (importlib.import_module(module), None)
        except ModuleNotFoundError as e:
            if e.name and e.name.split(".")[0] == module:
                why = f"not installed: pip install 'quirkbench[{extra}]'"
            else:  # the peer is there, something it imports is not
                why = f"{_one_line(e)} (pip install 'quirkbench[{extra}]' again)"
            _loaded[peer] = (None, why)
        except Exception as e:  # a broken install fails in any way at import
            _loaded[peer] = (None, _one_line(e))
    return _loaded[peer][0]


def unavailable(peer: str) -> str | None:
    """Why ``peer`` cannot be used (one line), or None when it imports."""
    load(peer)
    return _loaded[peer][1]


def broken(peer: str, err: BaseException) -> str:
    """Mark ``peer`` unavailable after a later failure (a submodule that fails to import);
    the reason, one line."""
    _loaded[peer] = (None, _one_line(err))
    return _loaded[peer][1]


def _one_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}".rstrip(": ")


def notice(peer: str, why: str) -> str:
    return f"peer unavailable: {peer}: {why}"


def notices(records) -> list[str]:
    """One line per unavailable peer over unit records (``info.peers_unavailable``), each
    once, in the order first met."""
    seen: dict[str, str] = {}
    for rec in records:
        info = rec.get("info") if isinstance(rec, dict) else None
        peers = info.get("peers_unavailable") if isinstance(info, dict) else None
        for peer, why in (peers or {}).items() if isinstance(peers, dict) else ():
            seen.setdefault(str(peer), str(why))
    return [notice(p, w) for p, w in seen.items()]
