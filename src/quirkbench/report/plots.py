"""One plot function per agreed series name, rendered by matplotlib (Agg) to inline SVG,
and the history page's plot.

Importing this module registers every plot in ``PLOTS`` (series name → ``PlotSpec``): the
attack tasks' in ``plots_attacks``, the others' in ``plots_phenomena``; what they share
(sizes, styles, the SVG writer, legends, bars) is in ``draw``. Other packages add plots
through the entry-point group ``quirkbench.plots``.
"""

from __future__ import annotations

import math

from . import draw, plots_attacks, plots_phenomena  # noqa: F401  (the last two register)
from .draw import COLORS, MIN_FONT, NARROW, PLOTS, WIDE, figure, min_font, plot, to_svg

__all__ = ["PLOTS", "NARROW", "WIDE", "MIN_FONT", "history", "min_font", "plot", "to_svg"]


# --------------------------------------------------------------------------- history

HISTORY_WIDTH = 400  # px: one of three figures side by side on the history page


def history(points: list[dict], labels: list[str], unit: str) -> str:
    """One headline metric over runs: ``points`` [{x, value, spread, verdict}], x = run index,
    ``spread`` the sd over seeds (error bar where n > 1).

    Regressions (verdict ``regressed``) are drawn as a red ✗ with the word beside it, not
    colour alone. The metric's name is the figure's HTML caption (it wraps; a title would not).
    Tick labels are the run numbers (the table and the run list name their commits), thinned
    to at most 8, never rotated.
    """
    fig, (ax,) = figure(width=HISTORY_WIDTH, height=240)
    xs = [p["x"] for p in points]
    ys = [p["value"] for p in points]
    err = [p.get("spread") or 0.0 for p in points]
    ax.errorbar(xs, ys, yerr=err if any(err) else None, color=COLORS[0], marker="o", markersize=4,
                linewidth=1.4, capsize=2)
    for p in (p for p in points if p.get("verdict") == "regressed"):
        ax.plot(p["x"], p["value"], linestyle="none", marker="X", markersize=10, color="#D55E00")
        ax.annotate("regressed", (p["x"], p["value"]), xytext=(7, 4), textcoords="offset points",
                    fontsize=MIN_FONT, color="#B3261E", fontweight="bold")
    step = max(1, math.ceil(len(labels) / 8))
    ticks = list(range(0, len(labels), step))
    ax.set_xticks(ticks, [str(i) for i in ticks])
    ax.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
    ax.set_xlabel("run (oldest = 0)")
    ax.set_ylabel(f"value ({unit})" if unit not in ("", "1") else "value (no unit)")
    return draw.to_svg(fig)
