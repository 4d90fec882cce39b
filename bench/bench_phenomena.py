"""asv ``track_*`` benchmarks for the headline phenomenon metrics.

Each class runs its task ONCE per commit in ``setup_cache`` (the ``QB_ASV_SUITE`` suite's
settings, seed 0, via ``quirkbench.run_suite``) and its track methods read the numbers.
Values are oriented so that up = worse (``common.worse_up``); the docstring of each says
which way is bad. Adding a task: a class with ``setup_cache`` returning
``common.run_task("<task>")`` and a few one-line ``track_*`` methods.
"""

from . import common


class Memorization:
    """Zhang et al. 2017: fit random labels (quirkbench task ``memorization``)."""

    params = (["mnist5k"], ["true-labels", "random-labels"])
    param_names = ["dataset", "condition"]
    timeout = 900

    def setup_cache(self):
        return common.run_task("memorization")

    def track_steps_to_fit(self, m, dataset, condition):
        """Steps to 100% train accuracy. Direction none: any change means the phenomenon moved."""
        return common.worse_up(m, dataset, "steps_to_fit", condition=condition)

    track_steps_to_fit.unit = "steps"

    def track_seconds_to_fit(self, m, dataset, condition):
        """Wall seconds to fit. Up is worse."""
        return common.worse_up(m, dataset, "seconds_to_fit", condition=condition)

    track_seconds_to_fit.unit = "s"

    def track_test_error(self, m, dataset, condition):
        """100 − test accuracy (%). Up is worse for true labels; for random labels it should
        stay near 90% (chance), any move is the phenomenon moving."""
        return common.worse_up(m, dataset, "test_acc", condition=condition)

    track_test_error.unit = "%"


class MemorizationSlowdown:
    """Random-label slowdown vs true labels (×, direction none: 2-4× in Zhang et al.)."""

    params = (["mnist5k"],)
    param_names = ["dataset"]
    timeout = 900

    def setup_cache(self):
        return common.run_task("memorization")

    def track_slowdown(self, m, dataset):
        return common.worse_up(m, dataset, "slowdown", condition="random-labels")

    track_slowdown.unit = "×"
