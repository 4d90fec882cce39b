"""What every plot shares: the registry of plot functions, sizes, styles, the SVG writer.

The plots themselves are in ``plots_attacks`` and ``plots_phenomena`` (one function per
agreed series name) and ``plots`` (the history page's plot); ``plots`` imports them all, so
importing it registers every plot.

A plot function takes the series records of one task (every seed's records, each with a
``seed`` field added) and, where it has one, the baseline run's records of the same series,
and returns an SVG string, or ``None`` when the records hold nothing to draw. Plots only
*draw* what tasks recorded; they never recompute a metric.

Colours come from the Okabe-Ito palette (readable with colour-vision deficiencies) and every
line also differs by marker or dash, so no plot relies on colour alone.

Legibility at the page's default width (1366 px): a figure is drawn at the size it is shown
(1 pt of the figure = 1 px of the page: ``NARROW`` px for a half-width figure, ``WIDE`` for
one that spans the column), never scaled up, with no text under ``MIN_FONT`` = 10 pt; every
axis names its unit; lines and bars of a mean over n > 1 seeds carry ± sd error bars; heat
maps have a colour bar; legends sit outside the data.
"""

from __future__ import annotations

import io
import math
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")  # no display; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402

from ..registry import Registry  # noqa: E402

COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "h", "<"]  # 10: with 8 colours, 9+ lines differ
DASHES = ["-", "--", "-.", ":"]
HATCHES = ["", "//", "..", "xx", "\\\\", "++"]  # bars differ by hatch as well as colour

Records = list[dict]
PlotFn = Callable[[Records, Records | None], str | None]


@dataclass(frozen=True)
class PlotSpec:
    """A plot function for the series ``name`` and the figure's title."""

    name: str
    title: str
    fn: PlotFn


# series name → PlotSpec; other packages' plots: the entry-point group ``quirkbench.plots``
PLOTS: Registry[PlotSpec] = Registry("plot", "quirkbench.plots", identity=lambda spec: spec.fn)
register = PLOTS.register


def plot(series: str, title: str):
    """Register the decorated function as the plot of the series ``series``."""
    def deco(fn: PlotFn) -> PlotFn:
        register(PlotSpec(series, title, fn))
        return fn
    return deco


NARROW = 600  # px: one of two figures side by side in the 1272 px content column at 1366 px
WIDE = 1240  # px: a figure spanning the column (several panels)
HEIGHT = 300  # px: one row of panels
MIN_FONT = 10  # pt = px at the shown size
RC = {"font.size": MIN_FONT, "axes.titlesize": 11, "axes.labelsize": MIN_FONT,
      "xtick.labelsize": MIN_FONT, "ytick.labelsize": MIN_FONT, "legend.fontsize": MIN_FONT,
      "figure.titlesize": 11, "svg.fonttype": "path", "svg.hashsalt": "quirkbench"}


def style(i: int) -> dict:
    return {"color": COLORS[i % len(COLORS)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": DASHES[i % len(DASHES)], "markersize": 4, "linewidth": 1.6}


def min_font(fig) -> float:
    """The smallest font size (pt) of any visible, non-empty text in ``fig``."""
    from matplotlib.text import Text

    sizes = [t.get_fontsize() for t in fig.findobj(Text)
             if t.get_visible() and t.get_text().strip()]
    return min(sizes) if sizes else float(MIN_FONT)


def to_svg(fig, tight: bool = True) -> str:
    """The figure as an ``<svg>`` element (XML prolog and DOCTYPE removed).

    Its width and height attributes become a CSS ``max-width`` in px (1 pt = 1 px: the
    figure is never scaled up, and fits its slot at 1366 px without scaling down), and
    ``data-min-font`` records its smallest text in pt, which the browser test turns into
    rendered pixels. ``tight=False`` for a figure laid out otherwise (a colour bar's axes)."""
    buf = io.StringIO()
    # text as paths: the page needs no fonts; hashsalt and no Date: same data, same bytes
    with matplotlib.rc_context(RC):
        if tight:
            fig.tight_layout()  # one draw; bbox_inches="tight" would draw twice
        smallest = min_font(fig)
        fig.savefig(buf, format="svg", metadata={"Date": None})
    width = fig.get_size_inches()[0] * 72
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"',
                  rf'<svg\1 style="max-width: {width:.0f}px" data-min-font="{smallest:g}"',
                  svg, count=1)


def figure(ncols: int = 1, width: float | None = None, height: float = HEIGHT, nrows: int = 1,
           layout: str | None = None):
    """``(fig, axes)``: ``ncols`` × ``nrows`` panels; ``width`` in px (default: ``NARROW``
    for one panel, ``WIDE`` for more), ``height`` in px per row."""
    width = width or (NARROW if ncols == 1 else WIDE)
    with matplotlib.rc_context(RC):
        fig, axes = plt.subplots(nrows, ncols, figsize=(width / 72, height * nrows / 72),
                                 squeeze=False, layout=layout)
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
        ax.tick_params(labelsize=MIN_FONT)
    return fig, list(axes.flat)


def as_pct(values: list[float]) -> list[float]:
    """Accuracies recorded as fractions (all ≤ 1) are drawn in %; percentages stay."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return [v * 100 for v in values] if finite and max(finite) <= 1.0 else list(values)


def pct_scale(values: list[float]):
    """The function ``as_pct`` would apply to ``values`` (×100 for fractions, else none),
    to use the same one on parts of them."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    if finite and max(finite) <= 1.0:
        return lambda v: [x * 100 for x in v]
    return None


def num(r: dict, k: str) -> float:
    v = r.get(k)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def groups(records: Records, *keys: str) -> dict[tuple, Records]:
    out: dict[tuple, Records] = defaultdict(list)
    for r in records:
        out[tuple(str(r.get(k, "")) for k in keys)].append(r)
    return dict(out)


def _sd(v: list[float]) -> float:
    if len(v) < 2:
        return 0.0
    m = sum(v) / len(v)
    return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))


def stats_by(records: Records, x: str, y: str, scale=None):
    """``(xs, means, sds)`` of ``y`` over seeds at each ``x`` (sorted by ``x``); sd is the
    sample standard deviation (0 with one value). ``scale``: a function applied to the
    values first (``as_pct``)."""
    acc: dict[float, list[float]] = defaultdict(list)
    pairs = [(num(r, x), num(r, y)) for r in records]
    pairs = [(a, b) for a, b in pairs if math.isfinite(a) and math.isfinite(b)]
    ys = scale([b for _, b in pairs]) if scale and pairs else [b for _, b in pairs]
    for (a, _), b in zip(pairs, ys, strict=True):
        acc[a].append(b)
    xs = sorted(acc)
    return xs, [sum(acc[v]) / len(acc[v]) for v in xs], [_sd(acc[v]) for v in xs]


def mean_by(records: Records, x: str, y: str) -> tuple[list[float], list[float]]:
    """Mean of ``y`` over seeds at each ``x`` (sorted by ``x``)."""
    xs, means, _ = stats_by(records, x, y)
    return xs, means


def line(ax, xs, ys, sds, **kw):
    """A line of means with ± sd error bars where any sd is > 0 (n > 1 seeds)."""
    if any(s > 0 for s in sds):
        return ax.errorbar(xs, ys, yerr=sds, capsize=3, elinewidth=1, **kw)
    return ax.plot(xs, ys, **kw)


def grouped_bars(ax, records: Records, group, member, value, baseline: Records | None = None
                 ) -> None:
    """Bars of the mean of ``value(r)`` over seeds, ± sd where there are several: one group
    on the x axis per ``group(r)`` (its tick label), one bar in it per ``member(r)`` (colour,
    hatch and legend entry; a group shows only the members it has). ``baseline``: records
    whose mean per group and member is drawn as a black tick on the bar."""
    def means(recs):
        acc: dict[tuple[str, str], list[float]] = defaultdict(list)
        for r in recs:
            v = value(r)
            if v is not None and math.isfinite(v):
                acc[group(r), member(r)].append(v)
        return acc

    acc, base = means(records), means(baseline or [])
    names = list(dict.fromkeys(group(r) for r in records))
    members = list(dict.fromkeys(member(r) for r in records))
    per_group = {g: [m for m in members if (g, m) in acc] for g in names}
    width = 0.8 / max([len(v) for v in per_group.values()] + [1])
    labelled = set()
    for b, g in enumerate(names):
        present = per_group[g]
        for k, m in enumerate(present):
            vals, i = acc[g, m], members.index(m)
            x = b + (k - (len(present) - 1) / 2) * width  # only the members this group has
            ax.bar(x, sum(vals) / len(vals), width * 0.9, color=COLORS[i % len(COLORS)],
                   hatch=HATCHES[i % len(HATCHES)], edgecolor="white",
                   yerr=_sd(vals) if len(vals) > 1 else None, capsize=3, ecolor="#333333",
                   label=None if m in labelled else m)
            labelled.add(m)
            old = base.get((g, m))
            if old:
                ax.plot([x - width * 0.45, x + width * 0.45], [sum(old) / len(old)] * 2,
                        color="black", linewidth=2,
                        label=None if "\0base" in labelled else "baseline run")
                labelled.add("\0base")
    ax.set_xticks(range(len(names)), names)


def legend(ax, **kw) -> None:
    """The legend outside the data: to the right of the axes (``beside``) by default, or
    above them (``above=True``)."""
    if not ax.get_legend_handles_labels()[0]:
        return
    above = kw.pop("above", False)
    kw.pop("loc", None)
    if above:
        ax.legend(fontsize=MIN_FONT, frameon=False, loc="lower left",
                  bbox_to_anchor=(0.0, 1.02), ncol=kw.pop("ncol", 3), borderaxespad=0, **kw)
    else:
        ax.legend(fontsize=MIN_FONT, frameon=False, loc="upper left",
                  bbox_to_anchor=(1.02, 1.0), borderaxespad=0, **kw)
