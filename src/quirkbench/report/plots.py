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


def history(points: list[dict], commits: list[str], unit: str,
            settings_changed: list[int] = ()) -> str:
    """One headline metric over runs: ``points`` [{x, value, spread, verdict}], x = run index,
    ``spread`` the sd over seeds (error bar where n > 1); ``commits`` each run's commit (the
    tick labels, thinned to at most 6, never rotated); ``settings_changed`` the runs whose
    settings differ from the previous run's, each marked by a dashed line just before it.

    Regressions (verdict ``regressed``) are drawn as a red ✗ with the word beside it, not
    colour alone. The metric's name is the figure's HTML caption (it wraps; a title would not).
    """
    fig, (ax,) = figure(width=HISTORY_WIDTH, height=240)
    xs = [p["x"] for p in points]
    ys = [p["value"] for p in points]
    err = [p.get("spread") or 0.0 for p in points]
    ax.errorbar(xs, ys, yerr=err if any(err) else None, color=COLORS[0], marker="o", markersize=4,
                linewidth=1.4, capsize=2)
    for p in (p for p in points if p.get("verdict") in ("regressed beyond noise",
                                                         "phenomenon lost")):
        ax.plot(p["x"], p["value"], linestyle="none", marker="X", markersize=10, color="#D55E00")
        ax.annotate("regressed", (p["x"], p["value"]), xytext=(7, 4), textcoords="offset points",
                    fontsize=MIN_FONT, color="#B3261E", fontweight="bold")
    for k, x in enumerate(settings_changed):
        ax.axvline(x - 0.5, color="#555555", linestyle="--", linewidth=1.2,
                   label=None if k else "settings changed")
    step = max(1, math.ceil(len(commits) / 6))
    ticks = list(range(0, len(commits), step))
    ax.set_xticks(ticks, [commits[i] for i in ticks])
    ax.set_xlim(-0.5, max(len(commits) - 0.5, 0.5))
    ax.set_xlabel("commit (oldest run left)")
    ax.set_ylabel(f"value ({unit})" if unit not in ("", "1") else "value (no unit)")
    if settings_changed:
        ax.legend(fontsize=MIN_FONT, frameon=False, loc="lower left", bbox_to_anchor=(0, 1.0),
                  borderaxespad=0)
    return draw.to_svg(fig)
