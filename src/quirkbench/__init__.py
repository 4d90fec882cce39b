"""quirkbench: benchmark and regression tracking for the unintuitive properties of deep nets.

Public API::

    quirkbench.run_suite("quick")          # → path of the results document
    quirkbench.load_results("results/")    # → tidy pandas DataFrame
    quirkbench.tasks.register(Task(...))   # a new task is one module

The names that need torch (``run_suite``, ``SUITES``, ``Task``, ``Context``, ``TaskOutput``,
``register``) and pandas (``load_results``) are imported on first use, so ``import
quirkbench`` (and ``quirkbench --help``, ``quirkbench list``) stays fast.
"""

__version__ = "0.1.0"

import importlib  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from . import _compat  # noqa: E402
from .errors import UserError  # noqa: E402
from .metrics import Anchor, Metric  # noqa: E402

_compat.install()  # old module paths (quirkbench.data, ...) still import, with a warning

if TYPE_CHECKING:  # what the lazy names are (for type checkers and the API docs)
    from .runner.suite import SUITES, run_suite
    from .tasks import Context, Task, TaskOutput, register
    from .tracking.results import load_results

_LAZY = {"SUITES": "runner.suite", "run_suite": "runner.suite", "Context": "tasks",
         "Task": "tasks", "TaskOutput": "tasks", "register": "tasks",
         "load_results": "tracking.results"}

__all__ = ["Anchor", "Context", "Metric", "SUITES", "Task", "TaskOutput", "UserError",
           "load_results", "register", "run_suite", "__version__"]


def __getattr__(name: str):
    """The public names that need torch or pandas, imported when first asked for."""
    if name not in _LAZY:
        raise AttributeError(f"module 'quirkbench' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
