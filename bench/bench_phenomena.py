"""asv ``track_*`` benchmarks for the headline phenomenon metrics.

Each class runs its task ONCE per commit in ``setup_cache`` (the ``QB_ASV_SUITE`` suite's
settings, default smoke, seed 0, via ``quirkbench.run_suite``) and its one-line track
methods read the numbers. asv calls an increase a regression (asv#1617), so every value is
oriented up = worse, and the name says how (``test_error`` = 100 − test accuracy).
Direction-none phenomenon values (steps to fit, slowdown) are tracked as they are: asv shows
a rise as "regressed" and a fall as "improved", read both as "the phenomenon moved".

Adding a task: a class with ``setup_cache`` returning ``common.run_task("<task>")`` and a
``track_*`` per headline metric (value via ``common.value``; set ``unit``).
"""

from . import common


class Memorization:
    """Zhang et al. 2017: fit random labels (quirkbench task ``memorization``)."""

    params = (["mnist5k"], ["true-labels", "random-labels"], common.SEEDS)
    param_names = ["dataset", "condition", "seed"]
    timeout = 900 * len(common.SEEDS)  # setup_cache runs the task once per seed

    def setup_cache(self):
        return common.run_seeds("memorization")

    def track_steps_to_fit(self, runs, dataset, condition, seed):
        """Steps to 100% train accuracy (direction none: any move is the phenomenon moving)."""
        m = runs[seed]
        return common.value(m, dataset, "steps_to_fit", condition=condition)

    track_steps_to_fit.unit = "steps"

    def track_seconds_to_fit(self, runs, dataset, condition, seed):
        """Wall seconds to fit (up is worse)."""
        m = runs[seed]
        return common.value(m, dataset, "seconds_to_fit", condition=condition)

    track_seconds_to_fit.unit = "s"

    def track_test_error(self, runs, dataset, condition, seed):
        """100 − test accuracy, %. True labels: up is worse. Random labels: should stay at
        ~90% (chance); a fall means the net generalizes from random labels (a bug)."""
        m = runs[seed]
        return 100.0 - common.value(m, dataset, "test_acc", condition=condition)

    track_test_error.unit = "%"

    def track_slowdown(self, runs, dataset, condition, seed):
        """Steps to fit / steps to fit true labels, × (1 for true labels by definition;
        Zhang et al.: 2-4× for random labels; direction none)."""
        m = runs[seed]
        if condition == "true-labels":
            return 1.0
        return common.value(m, dataset, "slowdown", condition=condition)

    track_slowdown.unit = "×"


class Adversarial:
    """Szegedy 2014 / Goodfellow 2015 / Madry 2018 (task ``adversarial``). Direction none:
    success and transfer rates rising or falling both mean the phenomenon moved."""

    params = (["mnist5k"], ["0.1", "0.3"], common.SEEDS)
    param_names = ["dataset", "eps", "seed"]
    timeout = 900 * len(common.SEEDS)  # setup_cache runs the task once per seed

    def setup_cache(self):
        return common.run_seeds("adversarial")

    def track_pgd_success_rate(self, runs, dataset, eps, seed):
        """PGD-L∞ success rate on correctly classified test inputs, %."""
        m = runs[seed]
        return common.value(m, dataset, "success_rate", attack="pgd", eps=eps, norm="linf")

    track_pgd_success_rate.unit = "%"

    def track_transfer_rate(self, runs, dataset, eps, seed):
        """PGD-L∞ examples transferring to a net trained on the other half, %."""
        m = runs[seed]
        return common.value(m, dataset, "transfer_rate", attack="pgd", eps=eps, norm="linf")

    track_transfer_rate.unit = "%"

    def track_median_min_distortion_l2(self, runs, dataset, eps, seed):
        """Median minimal L2 distortion that flips a digit (direction none)."""
        m = runs[seed]
        return common.value(m, dataset, "median_min_distortion_l2")

    track_median_min_distortion_l2.unit = "1"


class Compression:
    """Han et al. 2015 (task ``compression``): iso-accuracy compression by pruning."""

    params = (["mnist5k"], ["magnitude-iterative", "random"], common.SEEDS)
    param_names = ["dataset", "method", "seed"]
    timeout = 900 * len(common.SEEDS)  # setup_cache runs the task once per seed

    def setup_cache(self):
        return common.run_seeds("compression")

    def track_kept_weights(self, runs, dataset, method, seed):
        """100 / compression ratio at iso-accuracy (δ = 1 pp): % of weights kept, up is
        worse (the ratio itself is higher-is-better, asv#1617)."""
        m = runs[seed]
        return 100.0 / common.value(m, dataset, "compression_ratio", delta_pp="1", method=method)

    track_kept_weights.unit = "%"

    def track_dense_test_error(self, runs, dataset, method, seed):
        """100 − dense baseline test accuracy, % (up is worse; same for both methods)."""
        m = runs[seed]
        return 100.0 - common.value(m, dataset, "test_acc", model="dense")

    track_dense_test_error.unit = "%"


class Forgetting:
    """McCloskey & Cohen 1989 / Kirkpatrick 2017 (task ``forgetting``), Permuted MNIST."""

    params = (["mnist5k"], ["naive", "ewc", "replay"], common.SEEDS)
    param_names = ["dataset", "strategy", "seed"]
    timeout = 900 * len(common.SEEDS)  # setup_cache runs the task once per seed

    def setup_cache(self):
        return common.run_seeds("forgetting")

    def track_forgetting_pct(self, runs, dataset, strategy, seed):
        """Mean (best − final)/best over earlier tasks, % (up is worse)."""
        m = runs[seed]
        return common.value(m, dataset, "forgetting_pct", protocol="permuted", strategy=strategy)

    track_forgetting_pct.unit = "%"
