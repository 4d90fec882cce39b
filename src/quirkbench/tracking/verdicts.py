"""The gate's graded verdicts and the rules that give them, one metric at a time.

Loudest first (``SEVERITY``):

1. ``phenomenon lost``: a ``holds`` check went from yes to no, and the value moved beyond
   seed noise (or no noise model says how far it may move). Fails the gate.
2. ``regressed beyond noise``: beyond noise in the metric's bad direction. A headline one
   fails.
3. ``moved beyond noise``: a direction-none value beyond noise either way. A headline one
   fails (a timing never: wall clock that moved is speed or noise).
4. ``gone``: the base has the metric, the head does not. A headline one fails.
5. ``improved beyond noise``.
6. ``within noise``: changed, but no more than a change of seed moves it. Passes; shown and
   counted with its z (or p, or timing factor) and the change it would have needed.
7. ``identical``: bit for bit on the shared seeds, in any environment.
8. ``expected``: listed in the expected-changes file.
9. ``not judged``: no evidence (no or a stale noise model, a timing while the machine's
   speed moved). Never shown as "unchanged".
10. ``new``.

The one-seed rule (``noise_z``): a change of behaviour on a fixed seed is at most as variable
as a change of seed. With ``s`` the noise model's seed sd (at least its floor; on the log
scale for × ratios and for spreads declared so, ``Metric.scale``), head − base is weighed
against ``s · sqrt(1/n_base + 1/n_head)`` (``s·√2`` one seed a side) and called beyond
noise past ``critical``: Student's t quantile on the model's n − 1 degrees of freedom (the
difference of two fresh seeds, standardised by an sd estimated from n seeds, is
t-distributed), at a level Bonferroni-divided over the suite's headline metrics, one-sided
for a metric with a direction (only its bad side fails) and two-sided for direction none.
Pairs of different seeds then fail the gate on a value in at most ``FAMILY_ALPHA`` of
comparisons, whatever the number of headline metrics.
"""

from __future__ import annotations

import functools
import math

import numpy as np

from ..metrics import HIGHER, LOWER, TIMING
from .noise import MetricNoise

LOST = "phenomenon lost"
REGRESSED = "regressed beyond noise"
MOVED = "moved beyond noise"
GONE = "gone"
IMPROVED = "improved beyond noise"
WITHIN = "within noise"
IDENTICAL = "identical"
EXPECTED = "expected"
NOT_JUDGED = "not judged"
NEW = "new"
SEVERITY = (LOST, REGRESSED, MOVED, GONE, IMPROVED, WITHIN, IDENTICAL, EXPECTED, NOT_JUDGED,
            NEW)
BEYOND = (REGRESSED, MOVED, IMPROVED)  # the value moved beyond noise
FAMILY_ALPHA = 0.05  # seed-swap pairs that may fail on a value: at most this fraction
N1_MARGIN = 2.0  # no noise model, one seed: the threshold widened this much (factor rule)
# timings in these units that carry their repeats' spread are ratios of two timings
# interleaved repeat by repeat in one run (speed-ups, shares of a step)
PAIRED_UNITS = ("×", "%")

# what each ``test`` value is, in the summary's words
EVIDENCE = {"exact": "exact identity", "noise": "the noise model", "t": "the t-test",
            "factor": "the factor rule", "holds": "a holds check"}


@functools.lru_cache(maxsize=256)
def critical(n_model: int, family: int, two_sided: bool,
             alpha: float = FAMILY_ALPHA) -> float:
    """The |z| beyond which a one-seed change is beyond noise: Student's t at
    ``1 − alpha / family`` (halved again when two-sided) on ``n_model − 1`` degrees of
    freedom. ``n_model`` 20, 40 headline metrics: 3.48 one-sided, 3.79 two-sided."""
    from scipy.stats import t as student

    df = max(int(n_model) - 1, 1)
    level = alpha / max(int(family), 1) / (2 if two_sided else 1)
    return float(student.ppf(1 - level, df))


def direction_verdict(direction: str, z: float, crit: float) -> str:
    """``REGRESSED``/``IMPROVED``/``MOVED`` when |z| passes ``crit`` on the side that counts,
    else ``WITHIN``. ``z`` is signed head − base."""
    if direction == HIGHER:
        return IMPROVED if z > crit else REGRESSED if z < -crit else WITHIN
    if direction == LOWER:
        return IMPROVED if z < -crit else REGRESSED if z > crit else WITHIN
    return MOVED if abs(z) > crit else WITHIN


def noise_z(noise: MetricNoise, base: float, head: float, n_base: int, n_head: int,
            crit: float) -> tuple[float, float]:
    """(z of head − base against the noise model, the smallest change in the metric's unit
    that passes ``crit``): on the log scale for × ratios and spreads (``Metric.scale``;
    positive values), else linear."""
    k = math.sqrt(1 / n_base + 1 / n_head)
    if noise.log_scale and base > 0 and head > 0:
        s = noise.spread()
        return (math.log(head) - math.log(base)) / (s * k), base * math.expm1(crit * s * k)
    s = max(noise.sd if math.isfinite(noise.sd) else 0.0, noise.floor)
    return (head - base) / (s * k), crit * s * k


def rank(verdict: str) -> int:
    """Display order: loudest first; unknown verdicts after the beyond-noise ones."""
    return SEVERITY.index(verdict) if verdict in SEVERITY else 3


# --------------------------------------------------------------------------- the rules
# Each takes the row (``compare.Row``) with its change set and fills in its verdict, test,
# z or p, the change it would have needed (``mde``) and a note.

def judge_noise(row, noise: MetricNoise, family: int) -> None:
    """The one-seed rule against the noise model."""
    crit = critical(noise.n, family, two_sided=row.direction not in (HIGHER, LOWER))
    z, need = noise_z(noise, row.base_mean, row.head_mean, row.base_n, row.head_n, crit)
    row.test, row.z, row.critical, row.mde = "noise", z, crit, need
    row.verdict = direction_verdict(row.direction, z, crit)
    row.note = (f"z = {z:+.2f}, beyond noise past ±{crit:.2f} (seed sd "
                f"{_fmt(noise.spread(), row.unit, noise.log_scale)} over {noise.n} seeds)"
                + (f"; {row.note}" if row.note else ""))


def _fmt(s: float, unit: str, log: bool) -> str:
    from ..metrics import fmt_value

    return f"×{math.exp(s):.3g}" if log else fmt_value(s, "pp" if unit == "%" else unit)


def judge_factor(row, threshold: float, why: str) -> None:
    """No noise model for a one-seed change: beyond ``N1_MARGIN`` × the threshold (of
    |base mean|, at least 20 for %) is beyond noise by the factor rule; less is not judged."""
    from .stats import PERCENT_FLOOR

    scale = max(abs(row.base_mean), PERCENT_FLOOR.get(row.unit, 0.0))
    limit = N1_MARGIN * threshold * scale
    row.mde = limit
    beyond = abs(row.change) > limit if scale > 0 else row.change != 0
    if beyond:
        row.test = "factor"
        row.verdict = direction_verdict(row.direction, row.change, 0.0)
        row.note = (f"{why}: judged by the factor rule (beyond {N1_MARGIN * threshold:.0%} "
                    f"of the base)" + (f"; {row.note}" if row.note else ""))
    else:
        row.verdict = NOT_JUDGED
        row.note = why + (f"; {row.note}" if row.note else "")


def judge_t(row, vb, vh, threshold: float, alpha: float) -> None:
    """Two seeds a side or more: the t-test (its verdict waits for the FDR control), which
    must also beat ``threshold`` of |base mean| (at least 20 for %)."""
    from .stats import PERCENT_FLOOR, mde, seeds_needed, t_test_p

    scale = max(abs(row.base_mean), PERCENT_FLOOR.get(row.unit, 0.0))
    row.p_value = t_test_p(vb, vh)
    row.test = "t"
    s = row.base_std
    row.mde = mde(s, len(vb), len(vh), alpha)
    want = threshold * scale
    if math.isfinite(row.mde) and want > 0 and row.mde > want:
        row.seeds_needed = n = seeds_needed(s, want, alpha)
        from ..metrics import fmt_value

        row.note = (f"underpowered: detects ≥ {fmt_value(row.mde, row.unit)}; "
                    + (f"run {n} seeds a side for {fmt_value(want, row.unit)}"
                       if n else "more seeds needed") + (f"; {row.note}" if row.note else ""))
    row.beyond = bool(abs(row.change) > want if scale > 0 else row.change != 0)


def judge_timing(row, vb, vh, time_threshold: float, aa_sigma: float | None,
                 drift: float | None, control_limit: float,
                 repeats_se: float | None = None) -> None:
    """The timing factor rule; not judged when the change beats the factor but not
    ``TIMING_K`` × ``repeats_se`` (the standard error of ln(head / base) that the runs' own
    repeats put on it: a ratio of timings interleaved inside one run cancels the machine's
    overall speed, but beside other busy processes its repeats still scatter, and then a
    ×0.8 says nothing).

    When the machine's speed moved past ``control_limit`` (``drift``, from the run's
    control), a raw timing is not judged: it moved with the machine. A ratio of timings
    interleaved repeat by repeat (``PAIRED_UNITS``, with its repeats' spread) is still
    judged, but the machine's move is added to its band: ln(1 + drift) is the most the move
    could shift the ratio had it hit only one side, so a change past both says something
    the machine cannot (the control itself scatters ±10% over ~0.1 s on a quiet shared VM,
    and a slower training step would otherwise go unjudged on most runs)."""
    from .stats import TIMING_K, t_test_p, timing_limit

    mb, mh = float(np.median(vb)), float(np.median(vh))
    if not (mb > 0 and mh > 0):
        row.test, row.verdict, row.note = "none", NOT_JUDGED, "timing not positive"
        return
    ratio = mh / mb
    limit = timing_limit(vb, vh, time_threshold, aa_sigma)
    row.ratio, row.mde, row.limit = ratio, (limit - 1) * mb, limit
    if len(vb) >= 2 and len(vh) >= 2 and (vb > 0).all() and (vh > 0).all():
        row.p_value = t_test_p(np.log(vb), np.log(vh))
    row.note = f"×{ratio:.3g} (limit ×{limit:.3g})"
    moved = drift is not None and drift > control_limit
    paired = repeats_se is not None and row.unit in PAIRED_UNITS
    if moved and not paired:
        row.verdict = NOT_JUDGED
        row.note = f"the machine's speed moved ±{drift:.0%} during the run; {row.note}"
        return
    row.test = "factor"
    beyond = max(ratio, 1 / ratio) > limit
    if beyond and len(vb) >= 2 and len(vh) >= 2 and not (
            vh.min() > vb.max() or vh.max() < vb.min()):
        beyond = False  # the medians differ but the runs overlap: not a step
        row.note += ", the runs overlap"
    band = TIMING_K * repeats_se if repeats_se is not None else 0.0
    machine = math.log1p(drift) if moved else 0.0
    if beyond and abs(math.log(ratio)) <= band + machine:
        row.verdict, row.test = NOT_JUDGED, "none"
        row.note = (f"its repeats spread too widely to judge; ±{math.expm1(band):.0%} "
                    f"({TIMING_K:g} standard errors of the change, from the runs' own "
                    f"repeats) explains ×{ratio:.3g}") if not moved else (
            f"the machine's speed moved ±{drift:.0%} during the run; with its repeats' "
            f"±{math.expm1(band):.0%} ({TIMING_K:g} standard errors) that explains up to "
            f"±{math.expm1(band + machine):.0%}, and the ratio moved ×{ratio:.3g}")
        return
    if moved:
        row.note += (f"; judged though the machine's speed moved ±{drift:.0%}: a ratio of "
                     f"interleaved timings, past its repeats' ±{math.expm1(band):.0%} and "
                     f"the machine's move together (±{math.expm1(band + machine):.0%})")
    row.beyond = beyond
    row.verdict = direction_verdict(row.direction, math.log(ratio), 0.0) if beyond else WITHIN


def timing_baselines(rows: list) -> None:
    """Timing ratios whose denominator moved beyond the timing rule are not judged."""
    by = {(r.task, r.dataset, r.key): r for r in rows}
    for r in rows:
        base = by.get((r.task, r.dataset, r.baseline)) if r.baseline else None
        if base is None or not np.isfinite(base.ratio):
            continue
        if max(base.ratio, 1 / base.ratio) > base.limit:
            r.note = (f"its baseline {r.baseline} moved ×{base.ratio:.3g}; " + r.note).rstrip(
                "; ")
            if r.verdict in BEYOND:
                r.verdict = NOT_JUDGED


def other_run_timings(rows: list) -> None:
    """The base side came from another run (stored, made at another time, maybe on another
    machine of the same kind): a raw timing would compare the two runs' machines as much as
    the two commits, so it is not judged. A ratio of two timings taken inside one run
    (``baseline``: its denominator timed beside it) cancels the machine's speed and is
    judged as usual, still not judged when its denominator moved beyond the timing rule
    (``timing_baselines``, run before this): in a smoke A/A of one commit a PGD speed-up over a
    peer moved ×0.63 while the peer's own rate moved ×1.65, and without that guard a stored
    base made the A/A fail."""
    for r in rows:
        if r.kind == TIMING and not r.baseline and r.verdict not in (NEW, GONE):
            r.verdict, r.beyond = NOT_JUDGED, False
            r.note = ("base stored from another run: a raw timing is judged only within one "
                      "run; " + r.note).rstrip("; ")
