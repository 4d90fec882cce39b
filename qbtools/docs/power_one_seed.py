"""Write the one-seed gate's power per headline metric to docs/generated/power-one-seed.md.

    python -m qbtools.docs.power_one_seed bench/noise/pr.json [--before MODEL] [--md FILE]

For every headline metric in a noise model (``quirkbench calibrate --noise-model``): its
seed-to-seed spread, the critical |z| the gate applies to it (``verdicts.critical``: Student's
t on the model's seeds, Bonferroni over the suite's headline metrics, one-sided for a metric
with a direction), the smallest change that fails the gate (``crit · √2 · s``, caught half
the time), the regression it catches with 80% power (``(crit + z₀.₈) · √2 · s``) and the
goal: at most 5 pp for a % or pp metric, at most 25% of the value for a ratio (×) or any
other unit. A % or pp metric judged on the log scale (a spread over a few models) is still
held to the pp goal: its changes are the rise from its typical value g (the geometric mean
of its seed values) to ``g · exp(k · s)``, in pp, with ``s`` its log-scale sd. A metric
that misses it says how many independent runs averaged into it (each as noisy as today's)
would meet it, and what its unit would then cost (that many times the task's cost entry,
``Task.cost``: seconds a unit, one thread). ``--before`` adds the 80%-power column of another model
(the settings before the metric was made quieter).

Beside it, the regression the PR workflow catches with 80% power when it escalates
(``scripts/pr_check.sh``: a headline row within noise but past half its critical value on
its bad side runs ``ESCALATE_EXTRA`` more seeds on both sides, and the t-test over all of
them decides, with compare's practical threshold). No closed form covers the two stages
together, so it is simulated (``escalated_k``): seed values drawn from the model's spread,
base and head independent (a change as variable as a change of seed: the conservative
case; the same seeds on both sides only make it easier), one escalated row (with several,
Benjamini-Hochberg asks each for a smaller p).
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
from pathlib import Path

from qbtools import ROOT, require_checkout

GOAL_PP = 5.0  # % and pp metrics: a regression of this many points is caught
GOAL_REL = 0.25  # ratios and other units: a regression of this share of the value is caught
Z80 = 0.8416212335729143  # the normal quantile at 80%: power
ESCALATE_EXTRA = 3  # scripts/pr_check.sh's QB_ESCALATE_SEEDS default: 4 seeds a side
SIMS = 20_000  # simulated gates per change tried (the 80% point to about ±0.6% in power)
SD_CONFIDENCE = 0.95  # a seed sd is an estimate from n seeds: its one-sided upper bound


def power_rows(model, family: int | None = None) -> list[dict]:
    """One row per headline metric of ``model`` (a ``NoiseModel``): its spread, critical
    value, the change that fails the gate, the regression caught at 80% power, the goal and
    whether it is met; ``need``: independent runs averaged per unit that would meet it;
    ``cost``: the task's cost entry for the model's suite (seconds a unit, one thread)."""
    from quirkbench.metrics import HIGHER, LOWER
    from quirkbench.tasks import get
    from quirkbench.tracking.verdicts import critical

    heads = [m for m in model.metrics.values() if m.headline]
    family = family or len(heads)
    rows = []
    for m in sorted(heads, key=lambda m: (m.task, m.key)):
        crit = critical(m.n, family, two_sided=m.direction not in (HIGHER, LOWER))
        s = m.spread()
        k50, k80 = crit * math.sqrt(2), (crit + Z80) * math.sqrt(2)
        typical, g, scale = None, 1.0, 1.0
        if m.log_scale and m.unit in ("%", "pp"):  # a spread in points, judged as a ratio:
            # the rise from its typical value g to g·exp(k·s) in pp (the upward side, the
            # larger of the two), against the pp goal
            typical = g = typical_value(m)
            goal, rel = GOAL_PP, False
            need = (k80 * s / math.log1p(GOAL_PP / typical)) ** 2
        elif m.log_scale:  # a ratio: the change as a share of the value
            goal, rel = GOAL_REL, True
            need = (k80 * s / math.log1p(GOAL_REL)) ** 2
        elif m.unit in ("%", "pp"):
            goal, rel = GOAL_PP, False
            need = (k80 * s / GOAL_PP) ** 2
        else:
            scale = abs(m.mean) if m.mean else math.inf
            goal, rel = GOAL_REL, True
            need = (k80 * s / scale / GOAL_REL) ** 2
        fails, caught, caught_esc = (shift(k, s, m.log_scale, g, scale)
                                     for k in (k50, k80, escalated_k(m, crit)))
        caught_hi = shift(k80, s * sd_upper(m.n), m.log_scale, g, scale)
        rows.append({"id": f"{m.task}/{m.dataset}/{m.key}", "task": m.task, "key": m.key,
                     "unit": m.unit, "direction": m.direction, "n": m.n, "mean": m.mean,
                     "sd": s, "log": m.log_scale, "typical": typical, "critical": crit,
                     "fails": fails,
                     "caught": caught, "goal": goal, "relative": rel,
                     "caught_hi": caught_hi, "met_hi": within(caught_hi, goal),
                     "caught_escalated": caught_esc, "met_escalated": within(caught_esc, goal),
                     "met": within(caught, goal), "need": max(1, math.ceil(need - 1e-9)),
                     "cost": get(m.task).cost.get(model.stamp.get("suite"))})
    return rows


def within(caught: float, goal: float) -> bool:
    """A catch meets its goal (up to float rounding in the arithmetic that made it)."""
    return caught <= goal + 1e-12


def sd_upper(n: int, confidence: float = SD_CONFIDENCE) -> float:
    """The factor on a sample sd from ``n`` values that gives its one-sided upper confidence
    bound (normal values: (n − 1) s² / σ² is χ² on n − 1 degrees of freedom)."""
    from scipy.stats import chi2

    return math.sqrt((n - 1) / chi2.ppf(1 - confidence, n - 1)) if n > 1 else math.inf


def cost_to_meet(rows: list[dict]) -> tuple[float, float] | None:
    """(the seconds a side of the tasks with a miss cost today, and what they would cost
    with each unit averaging the runs its worst miss needs), one thread, from the tasks'
    cost entries; None when every goal is met or a task has no entry."""
    worst: dict[str, tuple[int, float]] = {}
    for r in rows:
        if not r["met"]:
            if r["cost"] is None:
                return None
            worst[r["task"]] = (max(r["need"], worst.get(r["task"], (0, 0))[0]), r["cost"])
    if not worst:
        return None
    return (sum(c for _, c in worst.values()), sum(n * c for n, c in worst.values()))


def shift(k: float, s: float, log: bool, g: float = 1.0, scale: float = 1.0) -> float:
    """A change of ``k`` seed sds ``s`` as the goal states it: on the log scale the rise
    ``g · (exp(k·s) − 1)`` (a share of the value, or pp from the typical value g), else
    ``k·s / scale`` (pp, or a share of ``scale``)."""
    return g * math.expm1(k * s) if log else k * s / scale


def escalated_k(m, crit: float, extra: int = ESCALATE_EXTRA, sims: int = SIMS,
                power: float = 0.8) -> float:
    """The regression, in seed sds of the metric's judged scale (ln v for a log-scale
    metric), that the PR workflow catches with ``power``: it fails at one seed (z past
    ``crit`` on the bad side) or, ambiguous there (past ``AMBIGUOUS`` × ``crit``), fails the
    t-test over ``1 + extra`` seeds a side (p ≤ compare's FDR level, a change past its
    threshold of the base mean, on the bad side). Simulated from a fixed random seed (the
    page regenerates identically); ``extra`` 0: the one-seed gate alone."""
    import inspect

    import numpy as np
    from scipy.stats import t as student

    from quirkbench.metrics import HIGHER, LOWER
    from quirkbench.tracking.compare import compare
    from quirkbench.tracking.escalation import AMBIGUOUS
    from quirkbench.tracking.stats import PERCENT_FLOOR

    defaults = inspect.signature(compare).parameters  # as scripts/pr_check.sh runs it
    threshold, fdr = defaults["threshold"].default, defaults["fdr"].default
    sign = -1.0 if m.direction == HIGHER else 1.0
    directed = m.direction in (HIGHER, LOWER)
    s = m.spread()
    n = 1 + extra
    rng = np.random.default_rng(20261207)
    zb, zh = rng.standard_normal((2, sims, n))
    centre = typical_value(m) if m.log_scale else m.mean
    floor = PERCENT_FLOOR.get(m.unit, 0.0)

    def caught(k: float) -> float:
        lb, lh = zb, zh + sign * k  # in seed sds
        z1 = (lh[:, 0] - lb[:, 0]) / math.sqrt(2)
        bad = sign * z1 if directed else np.abs(z1)
        fails = bad > crit
        if extra == 0:
            return float(fails.mean())
        ambiguous = ~fails & (bad > AMBIGUOUS * crit)
        if m.log_scale:
            vb, vh = centre * np.exp(s * lb), centre * np.exp(s * lh)
        else:
            vb, vh = centre + s * lb, centre + s * lh
        d = vh.mean(1) - vb.mean(1)
        pooled = np.sqrt((vb.var(1, ddof=1) + vh.var(1, ddof=1)) / 2)
        t = d / (pooled * math.sqrt(2 / n))
        p = 2 * student.sf(np.abs(t), 2 * n - 2)
        want = threshold * np.maximum(np.abs(vb.mean(1)), floor)
        worse = (sign * d > 0) if directed else np.ones(sims, dtype=bool)
        return float((fails | (ambiguous & (p <= fdr) & (np.abs(d) > want) & worse)).mean())

    lo, hi = 0.0, 4 * (crit + 1)
    for _ in range(40):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if caught(mid) >= power else (mid, hi)
    return hi  # in seed sds: the one-seed column's is (crit + 0.84)·√2


def typical_value(m) -> float:
    """The typical value of a metric judged on the log scale: the geometric mean of its
    seed values (the centre its log-scale sd is measured around)."""
    logs = [math.log(v) for v in m.values.values() if v is not None and v > 0]
    return math.exp(sum(logs) / len(logs)) if logs else abs(m.mean)


def _change(v: float, rel: bool) -> str:
    return f"{100 * v:.1f}%" if rel else f"{v:.2f} pp"


def _spread(r: dict) -> str:
    if r["log"]:
        around = f" around {r['typical']:.2f} pp" if r.get("typical") is not None else ""
        return f"×{math.exp(r['sd']):.3f}{around}"
    unit = "pp" if r["unit"] == "%" else r["unit"]
    return f"{r['sd']:.3g} {unit}".strip()


def markdown(model, rows: list[dict], before: dict[str, dict] | None, command: str,
             here: str) -> list[str]:
    from quirkbench.tracking.escalation import AMBIGUOUS

    st = model.stamp
    met = sum(r["met"] for r in rows)
    out = ["# Power at one seed: the smallest regression the gate catches", "",
           f"Generated by `{command}` (quirkbench at `{here}`) — do not edit by hand.", "",
           f"- noise model: suite `{st.get('suite')}`, seeds {_seeds(st.get('seeds') or [])}, "
           f"made at commit `{str(st.get('commit'))[:10]}` on {st.get('device_class')} with "
           f"torch {st.get('versions', {}).get('torch')} by `{st.get('command')}`",
           f"- machine: no run here, only arithmetic on the model; its spreads were measured "
           f"by the suite's calibration (`docs/generated/calibration-{st.get('suite')}.md` names "
           "its machine)",
           f"- the rule: one seed a side, z = (head − base) / (s·√2) with s the seed sd "
           f"(of ln v for × ratios and spreads over models), beyond noise past the critical "
           f"value: Student's t on n − 1 degrees of freedom at 1 − 0.05/{len(rows)} (the "
           f"{len(rows)} headline metrics), one-sided for a metric with a direction, two-sided "
           "for direction none",
           "- *fails at*: the change that reaches the critical value (caught half the time); "
           "*caught at 80%*: the regression the gate catches four times in five, "
           "(critical + 0.84) · √2 · s",
           f"- *escalating*: the regression caught four times in five by the PR workflow "
           f"(`scripts/pr_check.sh`), which runs {ESCALATE_EXTRA} more seeds a side when the "
           f"one-seed z is past {AMBIGUOUS:g} × the critical value on the bad side but not past "
           f"it, then decides by the t-test over {ESCALATE_EXTRA + 1} seeds a side (p ≤ 0.05 "
           "and a change past 5% of the base mean, 20 at least for %, on the bad side); simulated, "
           f"{SIMS:,} gates per change from a fixed random seed, base and head seeds "
           "independent (the conservative case), one escalated row (with several, "
           "Benjamini-Hochberg is stricter); the goals are for one seed, this column is what "
           "the workflow adds",
           "- a % or pp metric judged on the log scale (a spread over models, its seed sd shown "
           "as ×exp(s) around its typical value g, the geometric mean of its seed values): both "
           "columns give the rise in pp from g to g · exp(k · s), k = critical · √2 or "
           "(critical + 0.84) · √2 (the upward side, larger than the fall to g · exp(−k · s)), "
           "judged against the pp goal",
           f"- goals: ≤ {GOAL_PP:g} pp for % and pp metrics, ≤ {100 * GOAL_REL:.0f}% of the "
           "value for ratios (×) and other units; *runs needed*: how many independent runs, "
           "each as noisy as one today, a unit would have to average to meet the goal",
           f"- *if the sd is larger*: caught at 80% with each seed sd at the upper end of its "
           f"one-sided {100 * SD_CONFIDENCE:.0f}% confidence bound (an sd from n seeds is an "
           f"estimate; with {_ns(rows)} seeds the bound is ×{_factors(rows)} the sd): a goal met "
           "here is met unless the seeds measured were unusually quiet",
           f"- **{met} of {len(rows)} headline metrics meet the goal**; escalating, the PR "
           f"workflow catches {sum(r['met_escalated'] for r in rows)} of {len(rows)} within it; "
           f"{sum(r['met_hi'] for r in rows)} of {len(rows)} meet it if the sd is larger"]
    cost = cost_to_meet(rows)
    if cost is not None:
        out.append(f"- *unit then*: what the metric's unit would cost averaging that many runs, "
                   f"at most (runs needed × its task's cost entry, seconds a unit on one thread: "
                   f"the whole unit repeated; repeating only the part behind the metric costs "
                   f"less); the tasks with a miss cost about {cost[0]:.0f} s a side today, and "
                   f"{cost[1]:,.0f} s with each unit repeated as often as its worst miss needs")
    out.append("")
    head = ("| metric | unit | direction | seeds | seed sd | critical | fails at | "
            "caught at 80% | if the sd is larger | escalating |"
            + (" before |" if before is not None else "")
            + " goal | met | runs needed | unit then |")
    out += [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        b = ""
        if before is not None:
            o = before.get(r["id"])
            b = f" {_change(o['caught'], o['relative'])} |" if o else " — |"
        out.append(f"| {r['task']}/{r['key']} | {r['unit'] or '—'} | {r['direction']} | "
                   f"{r['n']} | {_spread(r)} | {r['critical']:.2f} | "
                   f"{_change(r['fails'], r['relative'])} | "
                   f"{_change(r['caught'], r['relative'])} | "
                   f"{_change(r['caught_hi'], r['relative'])} | "
                   f"{_change(r['caught_escalated'], r['relative'])} |{b} "
                   f"{_change(r['goal'], r['relative'])} | {'yes' if r['met'] else '**no**'} | "
                   f"{'' if r['met'] else r['need']} | {_then(r)} |")
    return out + [""]


def _ns(rows: list[dict]) -> str:
    return "/".join(str(n) for n in sorted({r["n"] for r in rows}))


def _factors(rows: list[dict]) -> str:
    return "/".join(f"{sd_upper(n):.2f}" for n in sorted({r["n"] for r in rows}))


def _then(r: dict) -> str:
    if r["met"] or r["cost"] is None:
        return ""
    return f"{r['need'] * r['cost']:,.0f} s"


def _seeds(seeds: list[int]) -> str:
    s = sorted(seeds)
    if s and s == list(range(s[0], s[-1] + 1)):
        return f"{s[0]}-{s[-1]} ({len(s)})"
    return ", ".join(map(str, s))


def main(argv=None) -> int:
    require_checkout()
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", help="noise model (bench/noise/SUITE.json)")
    ap.add_argument("--before", help="another noise model: its 80%%-power column beside")
    ap.add_argument("--md", default=str(ROOT / "docs" / "generated" / "power-one-seed.md"))
    a = ap.parse_args(argv)
    from quirkbench.errors import UserError
    from quirkbench.tracking.noise import read

    try:  # a missing or unreadable model: one line, exit 2, the page left as it was
        model, old = read(a.model), read(a.before) if a.before else None
    except UserError as e:
        print(f"power_one_seed: {e}", file=sys.stderr)
        return 2
    rows = power_rows(model)
    before = None
    if old is not None:
        before = {r["id"]: r for r in power_rows(old, family=len(rows))}
    here = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    command = "python -m qbtools.docs.power_one_seed " + " ".join(
        [_rel(a.model)] + ([f"--before {_rel(a.before)}"] if a.before else []))
    Path(a.md).parent.mkdir(parents=True, exist_ok=True)
    Path(a.md).write_text("\n".join(markdown(model, rows, before, command, here)))
    print(f"wrote {a.md}: {sum(r['met'] for r in rows)} of {len(rows)} headline metrics meet "
          "the goal")
    return 0


def _rel(p: str) -> str:
    try:
        return str(Path(p).resolve().relative_to(ROOT))
    except ValueError:
        return p


if __name__ == "__main__":
    raise SystemExit(main())
