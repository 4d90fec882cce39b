"""Old module paths keep working, with a ``DeprecationWarning``.

Before the package was split into layers, the modules sat at the top
(``quirkbench.data``, ``quirkbench.attacks``, ...). ``import quirkbench.data`` still gives
the module that now lives at ``quirkbench.engine.data``; the names will go in a later
release.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

MOVED = {
    "data": "engine.data", "models": "engine.models", "train": "engine.train",
    "timing": "engine.timing", "profiling": "engine.profiling",
    "attacks": "methods.attacks", "compression": "methods.pruning",
    "continual": "methods.continual", "geometry": "methods.geometry",
    "results": "tracking.results", "compare": "tracking.compare", "suite": "runner.suite",
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, fullname, path=None, target=None):
        head, _, short = fullname.partition(".")
        if head == "quirkbench" and short in MOVED:
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        new = f"quirkbench.{MOVED[spec.name.split('.', 1)[1]]}"
        warnings.warn(f"{spec.name} moved to {new}; import it from there",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module):
        pass


def install() -> None:
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
