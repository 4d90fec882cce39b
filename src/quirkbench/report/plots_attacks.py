"""Plots of the attack tasks' series: success vs ε (adversarial), ours vs the reference
libraries (attack_agreement), and each compressed model's success vs ε
(compressed_robustness). Registered in ``draw.PLOTS`` on import (``plots`` imports this)."""

from __future__ import annotations

import math

from . import draw as P
from .draw import (
    NARROW,
    WIDE,
    Records,
    as_pct,
    figure,
    grouped_bars,
    groups,
    legend,
    line,
    num,
    plot,
    stats_by,
    style,
)


@plot("success_curve", "Attack success rate vs ε, with the random-noise control "
                       "(mean ± sd over seeds)")
def success_curve(records: Records, baseline: Records | None = None) -> str | None:
    """{attack, norm, eps, success_rate, noise_success_rate}: mean over seeds per attack."""
    if not records:
        return None
    by_norm = groups(records, "norm")
    fig, axes = figure(len(by_norm), NARROW if len(by_norm) == 1 else WIDE)
    for ax, ((norm,), rs) in zip(axes, by_norm.items(), strict=False):
        for i, ((attack,), ars) in enumerate(groups(rs, "attack").items()):
            xs, ys, sds = stats_by(ars, "eps", "success_rate", as_pct)
            line(ax, xs, ys, sds, label=attack, **style(i))
            xs, ys, sds = stats_by(ars, "eps", "noise_success_rate", as_pct)
            if xs:
                line(ax, xs, ys, sds, color=style(i)["color"], linestyle=":", marker="x",
                     markersize=4, linewidth=1, label=f"{attack}: noise")
        norm_name = {"linf": "L∞", "l2": "L2"}.get(norm, norm)
        ax.set(xlabel=f"ε ({norm_name} norm, pixel scale 0–1)" if norm else "ε (pixel scale 0–1)",
               ylabel="success rate (%)", ylim=(-2, 102))
        legend(ax)  # each panel its own: the L∞ panel's attacks (fgsm, pgd) are not the L2's
    return P.to_svg(fig)


def _case(r: dict) -> str:
    eps = num(r, "eps")
    return f"{r.get('attack', '')}\nε = {eps:g}" if math.isfinite(eps) else str(r.get("attack"))


@plot("attack_agreement", "Success rate of our attacks and of each reference library on the "
                          "same model and inputs (mean ± sd over seeds)")
def attack_agreement(records: Records, baseline: Records | None = None) -> str | None:
    """{attack, eps, reference, ours, theirs, gap_pp, disagreement_pct}: bars per attack and
    ε, ours beside each reference library. ``ours`` repeats on every reference's record of a
    case; it is drawn once per seed."""
    if not records:
        return None
    ours = {(r.get("seed"), _case(r)): {**r, "who": "ours", "rate": num(r, "ours")}
            for r in records}
    bars = list(ours.values()) + [{**r, "who": str(r.get("reference")),
                                   "rate": num(r, "theirs")} for r in records]
    n = len({(_case(r), r["who"]) for r in bars})
    fig, (ax,) = figure(width=NARROW if n <= 10 else WIDE)
    grouped_bars(ax, bars, _case, lambda r: r["who"], lambda r: r["rate"])
    ax.set(ylabel="success rate (%)")
    legend(ax)
    return P.to_svg(fig)


@plot("compressed_robustness", "PGD success rate at each ε on the dense, pruned, int8 and "
                               "distilled models (mean ± sd over seeds)")
def compressed_robustness(records: Records, baseline: Records | None = None) -> str | None:
    """{model, norm, eps, success}: one panel per norm, bars per ε, one per model."""
    if not records:
        return None
    by_norm = groups(records, "norm")
    fig, axes = figure(len(by_norm), NARROW if len(by_norm) == 1 else WIDE)
    for ax, ((norm,), rs) in zip(axes, by_norm.items(), strict=False):
        grouped_bars(ax, rs, lambda r: f"ε = {num(r, 'eps'):g}", lambda r: str(r.get("model")),
                     lambda r: num(r, "success"))
        norm_name = {"linf": "L∞", "l2": "L2"}.get(norm, norm)
        ax.set(xlabel=f"ε ({norm_name} norm, pixel scale 0–1)" if norm else "ε (pixel scale 0–1)",
               ylabel="PGD success rate (%)")
        legend(ax)
    return P.to_svg(fig)
