"""The nightly gate's rule for an asv benchmark that changed (``tracking.asv_record``), our
own copy of asv's private one: the same verdicts where asv's is defined (positive values),
and a sensible one for the negative values of oriented tracks."""

from __future__ import annotations

import numpy as np
import pytest

from quirkbench.tracking.asv_record import beyond, changed, differ, unroll


def _ss(samples):
    """(stats, samples) as asv stores a timed benchmark's: 99% CI from the samples."""
    s = np.asarray(samples)
    lo, hi = np.quantile(s, [0.005, 0.995])
    return {"ci_99_a": float(lo), "ci_99_b": float(hi), "repeat": len(s),
            "q_25": float(np.quantile(s, 0.25)), "q_75": float(np.quantile(s, 0.75))}, list(s)


CASES = [  # base centre, head centre, noise, samples per side
    (40.0, 50.0, 0.05, 40), (40.0, 41.0, 0.05, 40), (40.0, 46.0, 0.30, 40),
    (40.0, 46.0, 0.50, 40), (40.0, 47.0, 0.30, 8), (40.0, 46.0, 0.10, 3),  # vetoed, vetoed, not
    (40.0, 30.0, 0.05, 40), (40.0, 45.0, 0.02, 3), (40.0, 60.0, 0.02, 15),
    (1.0, 1.3, 0.0, 1), (1.0, 1.05, 0.0, 1), (2.0, 1.5, 0.0, 1),
]


@pytest.mark.parametrize("b, h, noise, n", CASES)
def test_the_rule_agrees_with_asvs_own_on_positive_values(b, h, noise, n):
    compare = pytest.importorskip("asv.commands.compare")
    reference = getattr(compare, "_is_result_better", None)
    if reference is None:
        pytest.skip("this asv no longer has the private rule to compare against")
    rng = np.random.default_rng(0)
    bs, hs = (list(c * (1 + noise * rng.normal(size=n))) for c in (b, h))
    bss, hss = (_ss(s) if n > 1 else (None, None) for s in (bs, hs))
    bv, hv = float(np.median(bs)), float(np.median(hs))
    ours = changed(bv, hv, bss, hss, 1.1)
    assert (ours == "worse") == reference(bv, hv, bss, hss, 1.1)
    assert (ours == "better") == reference(hv, bv, hss, bss, 1.1)


def test_negative_oriented_values_move_only_beyond_the_factor():
    # a higher-is-better value tracked negated: -10 → -9.95 is 0.5%, not a change
    assert beyond(-10.0, -9.95, 1.1) is None
    assert beyond(-10.0, -8.0, 1.1) == "worse"  # up by 20% of |base|
    assert beyond(-10.0, -12.0, 1.1) == "better"
    assert beyond(0.0, 0.5, 1.1) == "worse" and beyond(0.0, 0.0, 1.1) is None


def test_statistics_veto_a_ratio_the_samples_do_not_support():
    rng = np.random.default_rng(1)
    wide = [40 * (1 + 0.4 * x) for x in rng.normal(size=40)]
    wide2 = [46 * (1 + 0.4 * x) for x in rng.normal(size=40)]
    assert beyond(40.0, 46.0, 1.1) == "worse"
    assert not differ(wide, wide2, *(_ss(s)[0] for s in (wide, wide2)))
    assert changed(40.0, 46.0, _ss(wide), _ss(wide2), 1.1) is None


def test_unroll_names_each_parameter_combination_in_asvs_order():
    rows = list(unroll("T.time_x", [["'a'", "'b'"], ["1", "2"]], [1, 2, 3, 4], None))
    assert [r[0] for r in rows] == ["T.time_x('a', 1)", "T.time_x('a', 2)",
                                    "T.time_x('b', 1)", "T.time_x('b', 2)"]
    assert [r[1:] for r in rows][-1] == (4, None)
    assert list(unroll("T.track", [], [7.0])) == [("T.track", 7.0)]
