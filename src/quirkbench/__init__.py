"""quirkbench: benchmark and regression tracking for the unintuitive properties of deep nets.

Public API::

    quirkbench.run_suite("quick")          # → path of the results document
    quirkbench.load_results("results/")    # → tidy pandas DataFrame
    quirkbench.tasks.register(Task(...))   # a new task is one module
"""

__version__ = "0.1.0"

from . import _compat  # noqa: E402
from .errors import UserError  # noqa: E402
from .metrics import Anchor, Metric  # noqa: E402
from .runner.suite import SUITES, run_suite  # noqa: E402
from .tasks import Context, Task, TaskOutput, register  # noqa: E402

_compat.install()  # old module paths (quirkbench.data, ...) still import, with a warning
from .tracking.results import load_results  # noqa: E402

__all__ = ["Anchor", "Context", "Metric", "SUITES", "Task", "TaskOutput", "UserError",
           "load_results", "register", "run_suite", "__version__"]
