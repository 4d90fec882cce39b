"""asv ``track_*`` benchmarks for the five 'beyond' tasks: landscape, sharpness,
sensitivity, units, dimensionality. Same pattern as ``bench_phenomena.py``: each class runs
its task once per commit in ``setup_cache`` and one-line track methods read the headline
metrics. All of these are direction-none phenomenon values, tracked as they are: read a
move either way as "the phenomenon moved".
"""

from . import common

D = "mnist5k"


class Landscape:
    """Goodfellow, Vinyals & Saxe 2015: the line from init to solution is monotone."""

    params = (common.SEEDS,)
    param_names = ["seed"]
    timeout = 600 * len(common.SEEDS)  # setup_cache runs the task once per seed

    def setup_cache(self):
        return common.run_seeds("landscape")

    def track_max_relative_loss_rise(self, runs, seed):
        """Largest loss rise along init → solution over the start's loss, % (0 = monotone)."""
        m = runs[seed]
        return common.value(m, D, "max_relative_loss_rise", path="init-to-solution")

    track_max_relative_loss_rise.unit = "%"

    def track_barrier_height(self, runs, seed):
        """Loss barrier above the chord between two solutions of different seeds, nats."""
        m = runs[seed]
        return common.value(m, D, "barrier_height", path="solution-to-solution")

    track_barrier_height.unit = "nats"


class Sharpness:
    """Keskar et al. 2017: large-batch solutions are sharper (ratio large / small)."""

    params = (["hessian", "eps"], common.SEEDS)
    param_names = ["measure", "seed"]
    timeout = 600 * len(common.SEEDS)  # setup_cache runs the task once per seed

    def setup_cache(self):
        return common.run_seeds("sharpness")

    def track_sharpness_ratio(self, runs, measure, seed):
        """Top Hessian eigenvalue or ε-sharpness, large batch over small batch, ×."""
        m = runs[seed]
        return common.value(m, D, "sharpness_ratio", measure=measure)

    track_sharpness_ratio.unit = "×"


class Sensitivity:
    """Spread of test accuracy over seeds; a ×0.01 init that does not learn."""

    params = (["init", "order"], common.SEEDS)
    param_names = ["varied", "seed"]
    timeout = 600 * len(common.SEEDS)  # setup_cache runs the task once per seed

    def setup_cache(self):
        return common.run_seeds("sensitivity")

    def track_test_acc_std(self, runs, varied, seed):
        """Std of final test accuracy over init seeds or data-order seeds, pp."""
        m = runs[seed]
        return common.value(m, D, "test_acc_std", varied=varied)

    track_test_acc_std.unit = "pp"

    def track_bad_init_shortfall(self, runs, varied, seed):
        """Default mean test accuracy minus the ×0.01-init model's, pp (same for both params)."""
        m = runs[seed]
        return common.value(m, D, "bad_init_shortfall", scale="0.01")

    track_bad_init_shortfall.unit = "pp"


class Units:
    """Szegedy et al. 2014: hidden units are no purer than random directions."""

    params = (common.SEEDS,)
    param_names = ["seed"]
    timeout = 600 * len(common.SEEDS)  # setup_cache runs the task once per seed

    def setup_cache(self):
        return common.run_seeds("units")

    def track_purity_difference(self, runs, seed):
        """Mean top-k class purity, natural basis minus random directions, pp (≈ 0)."""
        m = runs[seed]
        return common.value(m, D, "purity_difference")

    track_purity_difference.unit = "pp"


class Dimensionality:
    """Distance concentration: nearest/farthest ratio → 1 with the dimension."""

    params = (["2", "10", "100", "1000"], common.SEEDS)
    param_names = ["dim", "seed"]
    timeout = 300 * len(common.SEEDS)

    def setup_cache(self):
        return common.run_seeds("dimensionality")

    def track_nearest_farthest_ratio(self, runs, dim, seed):
        """Mean nearest/farthest distance ratio of uniform points in [0, 1]^dim."""
        m = runs[seed]
        return common.value(m, D, "nearest_farthest_ratio", points="uniform", dim=dim)

    track_nearest_farthest_ratio.unit = "1"
