"""One plot function per agreed series name, rendered by matplotlib (Agg) to inline SVG.

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


# --------------------------------------------------------------------------- per series

@plot("train_curve", "Training accuracy vs steps, per condition (mean ± sd over seeds)")
def train_curve(records: Records, baseline: Records | None = None) -> str | None:
    """{condition, epoch, step, seconds, train_acc, test_acc}: one line per condition, the
    mean over seeds with a ± sd band where there are several."""
    if not records:
        return None
    fig, (ax, ax2) = figure(2)
    accs = [num(r, k) for r in records for k in ("train_acc", "test_acc")]
    scale = pct_scale(accs)  # fractions or % decided once, over both panels
    for i, ((cond,), rs) in enumerate(groups(records, "condition").items()):
        for a, key in ((ax, "train_acc"), (ax2, "test_acc")):
            xs, ys, sds = stats_by(rs, "step", key, scale)
            every = max(1, len(xs) // 12)  # ~12 markers a line: legible, and a small SVG
            a.plot(xs, ys, label=cond, markevery=every, **style(i))
            if any(sds):
                a.fill_between(xs, [y - d for y, d in zip(ys, sds, strict=True)],
                               [y + d for y, d in zip(ys, sds, strict=True)],
                               color=style(i)["color"], alpha=0.18, linewidth=0)
    ax.set(xlabel="training progress (optimizer steps)", ylabel="training accuracy (%)",
           title="train", ylim=(0, 102))
    ax2.set(xlabel="training progress (optimizer steps)", ylabel="test accuracy (%)",
            title="test", ylim=(0, 102))
    legend(ax2)
    return to_svg(fig)


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
    legend(axes[-1])
    return to_svg(fig)


@plot("accuracy_vs_ratio", "Test accuracy vs compression ratio, with the iso-accuracy line "
                           "(mean ± sd over seeds)")
def accuracy_vs_ratio(records: Records, baseline: Records | None = None,
                      delta_pp: float = 1.0) -> str | None:
    """{method, ratio, test_acc}: ratio = dense / remaining parameters (log axis).

    The iso-accuracy line is the dense accuracy (records at ratio 1) minus ``delta_pp``.
    """
    if not records:
        return None
    fig, (ax,) = figure()
    dense = as_pct([num(r, "test_acc") for r in records])
    dense = [a for r, a in zip(records, dense, strict=True)
             if num(r, "ratio") == 1.0 and math.isfinite(a)]
    for i, ((method,), rs) in enumerate(groups(records, "method").items()):
        xs, ys, sds = stats_by(rs, "ratio", "test_acc", as_pct)
        line(ax, xs, ys, sds, label=method, **style(i))
    if dense:
        level = sum(dense) / len(dense) - delta_pp
        ax.axhline(level, color="#555555", linestyle="--", linewidth=1,
                   label=f"iso-accuracy: dense − {delta_pp:g} pp")
    ax.set_xscale("log")
    ax.set(xlabel="compression ratio (×, dense / remaining weights)", ylabel="test accuracy (%)")
    legend(ax, above=True, ncol=2)
    return to_svg(fig)


@plot("accuracy_matrix", "Accuracy matrix R[i, j] (test accuracy on task j after training task i, "
                         "mean over seeds)")
def accuracy_matrix(records: Records, baseline: Records | None = None) -> str | None:
    """{protocol, strategy, i, j, acc}: one heat map per protocol × strategy, mean over
    seeds, the value printed in each cell, one colour bar (test accuracy, %)."""
    if not records:
        return None
    panels = groups(records, "protocol", "strategy")
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig, axes = figure(cols, WIDE if cols > 1 else NARROW, 320, nrows=rows, layout="constrained")
    for ax in axes[len(panels):]:
        ax.axis("off")
    image = None
    for ax, ((protocol, strategy), rs) in zip(axes, panels.items(), strict=False):
        ax.grid(False)
        cells: dict[tuple[int, int], list[float]] = defaultdict(list)
        for r, a in zip(rs, as_pct([num(r, "acc") for r in rs]), strict=True):
            if math.isfinite(a):
                cells[int(num(r, "i")), int(num(r, "j"))].append(a)
        n = max(max(i, j) for i, j in cells) + 1 if cells else 1
        grid = [[math.nan] * n for _ in range(n)]
        for (i, j), v in cells.items():
            grid[i][j] = sum(v) / len(v)
        image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
        if n <= 6:  # the number is printed, so the colour is never the only cue
            for (i, j), v in cells.items():
                m = sum(v) / len(v)
                ax.text(j, i, f"{m:.0f}", ha="center", va="center", fontsize=MIN_FONT,
                        color="white" if m < 60 else "black")
        ax.set_title(f"{protocol} · {strategy}")
        ax.set(xlabel="evaluated on task j", ylabel="after training task i",
               xticks=range(n), yticks=range(n))
    if image is not None:
        bar = fig.colorbar(image, ax=axes[:len(panels)], shrink=0.9, pad=0.02, aspect=30)
        bar.set_label("test accuracy (%)")
        bar.ax.tick_params(labelsize=MIN_FONT)
    return to_svg(fig, tight=False)  # the colour bar: laid out by the figure's layout engine


@plot("throughput", "Throughput per model, batch and variant (mean ± sd over seeds; black tick: "
                    "the baseline run, when one is given)")
def throughput(records: Records, baseline: Records | None = None) -> str | None:
    """{model, batch, variant, samples_per_s}: bars per model@batch and variant, mean ± sd
    over seeds; the baseline run's value is drawn as a black tick on each bar."""
    if not records:
        return None
    bars = groups(records, "model", "batch")
    variants = list(groups(records, "variant"))
    base = {k: _mean(rs, "samples_per_s")
            for k, rs in groups(baseline or [], "model", "batch", "variant").items()}
    per_bar = {k: list(groups(rs, "variant").items()) for k, rs in bars.items()}
    most = max(len(v) for v in per_bar.values())
    n_bars = sum(len(v) for v in per_bar.values())
    fig, (ax,) = figure(width=NARROW if n_bars <= 8 else WIDE)
    width = 0.8 / most
    hatches = ["", "//", "..", "xx", "\\\\", "++"]
    labelled = set()
    for b, ((model, batch), present) in enumerate(per_bar.items()):
        for k, ((variant,), rs) in enumerate(present):
            v = variants.index((variant,))
            vals = [num(r, "samples_per_s") for r in rs if math.isfinite(num(r, "samples_per_s"))]
            if not vals:
                continue
            value, sd = sum(vals) / len(vals), _sd(vals)
            x = b + (k - (len(present) - 1) / 2) * width  # only the variants this group has
            ax.bar(x, value, width * 0.9, color=COLORS[v % len(COLORS)],
                   hatch=hatches[v % len(hatches)], edgecolor="white",
                   yerr=sd if sd > 0 else None, capsize=3, ecolor="#333333",
                   label=None if variant in labelled else variant)
            labelled.add(variant)
            old = base.get((model, batch, variant))
            if old is not None and math.isfinite(old):
                ax.plot([x - width * 0.45, x + width * 0.45], [old, old], color="black",
                        linewidth=2, label=None if "\0base" in labelled else "baseline run")
                labelled.add("\0base")
    ax.set_xticks(range(len(bars)), [f"{m}\nbatch {b}" for m, b in bars])
    ax.set(ylabel="throughput (samples/s)")
    legend(ax)
    return to_svg(fig)


@plot("interpolation", "Loss and accuracy along linear interpolation paths (mean ± sd over "
                       "seeds)")
def interpolation(records: Records, baseline: Records | None = None) -> str | None:
    """{path, alpha, loss, acc}: alpha = 0 at the path's start, 1 at its end."""
    if not records:
        return None
    fig, (ax, ax2) = figure(2)
    for i, ((path,), rs) in enumerate(groups(records, "path").items()):
        xs, ys, sds = stats_by(rs, "alpha", "loss")
        line(ax, xs, ys, sds, label=path, **style(i))
        xs, ys, sds = stats_by(rs, "alpha", "acc", as_pct)
        line(ax2, xs, ys, sds, label=path, **style(i))
    ax.set(xlabel="α (fraction of the path: 0 = start, 1 = end)",
           ylabel="cross-entropy loss (nats)")
    ax2.set(xlabel="α (fraction of the path: 0 = start, 1 = end)", ylabel="accuracy (%)",
            ylim=(-2, 102))
    legend(ax2)
    return to_svg(fig)


@plot("concentration", "Distance concentration vs dimension (uniform points; the data set "
                       "at its own dimension)")
def concentration(records: Records, baseline: Records | None = None) -> str | None:
    """{points, dim, ratio, distance, angle}: nearest/farthest distance ratio, mean distance
    over the cube's diagonal (→ 1/√6 ≈ 0.408) and mean angle (→ 90°) vs dimension (log axis)."""
    if not records:
        return None
    fig, axes = figure(3)
    panels = (("ratio", "nearest / farthest distance (ratio)", None),
              ("distance", "mean distance / diagonal (ratio)", 1 / math.sqrt(6)),
              ("angle", "mean angle (°)", 90.0))
    for ax, (key, label, limit) in zip(axes, panels, strict=True):
        for i, ((points,), rs) in enumerate(groups(records, "points").items()):
            xs, ys, sds = stats_by(rs, "dim", key)
            st = style(i) | ({"linestyle": "none", "markersize": 7} if len(xs) == 1 else {})
            line(ax, xs, ys, sds, label=points, **st)
        if limit is not None:
            ax.axhline(limit, color="#555555", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set(xlabel="dimension d (coordinates)", ylabel=label)
    legend(axes[-1])
    return to_svg(fig)


@plot("seed_accuracy", "Test accuracy of each run: init seeds vs data-order seeds vs badly "
                       "scaled initializations (bar: mean ± sd)")
def seed_accuracy(records: Records, baseline: Records | None = None) -> str | None:
    """{group, init_seed, order_seed, scale, test_acc}: one dot per run, grouped on the x axis
    by what varied (and by init scale), with each group's mean ± sd."""
    if not records:
        return None
    fig, (ax,) = figure()
    pct = dict(zip(map(id, records), as_pct([num(r, "test_acc") for r in records]), strict=True))
    cats = groups(records, "group", "scale")  # % or fractions decided once, over all runs
    for i, rs in enumerate(cats.values()):
        ys = [pct[id(r)] for r in rs]
        xs = [i + 0.25 * ((k % 5) / 4 - 0.5) for k in range(len(ys))]  # spread the dots
        ax.plot(xs, ys, **{**style(i), "linestyle": "none", "markersize": 5})
        mean = sum(ys) / len(ys)
        ax.hlines(mean, i - 0.3, i + 0.3, color="black", linewidth=1.5)
        if len(ys) > 1:
            ax.errorbar([i + 0.32], [mean], yerr=[_sd(ys)], color="black", capsize=3)
    ax.set_xticks(range(len(cats)), [f"{g}\nscale ×{s}" for g, s in cats])
    ax.set(ylabel="test accuracy (%)")
    return to_svg(fig)


@plot("unit_purity", "Class purity of the top-activating test images: hidden units vs random "
                     "directions")
def unit_purity(records: Records, baseline: Records | None = None) -> str | None:
    """{basis, direction, purity}: purity (%) per direction, sorted, natural vs random basis."""
    if not records:
        return None
    fig, (ax,) = figure()
    for i, ((basis,), rs) in enumerate(groups(records, "basis").items()):
        ys = sorted(as_pct([num(r, "purity") for r in rs]), reverse=True)
        st = style(i) | {"markevery": max(1, len(ys) // 12)}
        ax.plot(range(1, len(ys) + 1), ys, label=f"{basis} basis", **st)
    ax.set(xlabel="direction (rank by purity)", ylabel="purity of top images (%)",
           ylim=(-2, 102))
    legend(ax, above=True)
    return to_svg(fig)


def _mean(records: Records, key: str) -> float:
    vals = [num(r, key) for r in records if math.isfinite(num(r, key))]
    return sum(vals) / len(vals) if vals else math.nan


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
    return to_svg(fig)
