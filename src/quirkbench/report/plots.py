"""One plot function per agreed series name, rendered by matplotlib (Agg) to inline SVG.

A plot function takes the series records of one task (every seed's records, each with a
``seed`` field added) and, where it has one, the baseline run's records of the same series,
and returns an SVG string, or ``None`` when the records hold nothing to draw. Plots only
*draw* what tasks recorded; they never recompute a metric.

Colours come from the Okabe-Ito palette (readable with colour-vision deficiencies) and every
line also differs by marker or dash, so no plot relies on colour alone.
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


def style(i: int) -> dict:
    return {"color": COLORS[i % len(COLORS)], "marker": MARKERS[i % len(MARKERS)],
            "linestyle": DASHES[i % len(DASHES)], "markersize": 4, "linewidth": 1.6}


def to_svg(fig) -> str:
    """The figure as an ``<svg>`` element (XML prolog and DOCTYPE removed, size from CSS)."""
    buf = io.StringIO()
    # text as paths: the page needs no fonts; hashsalt and no Date: same data, same bytes
    with matplotlib.rc_context({"svg.fonttype": "path", "svg.hashsalt": "quirkbench"}):
        fig.tight_layout()  # one draw; bbox_inches="tight" would draw twice
        fig.savefig(buf, format="svg", metadata={"Date": None})
    plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    # drop fixed width/height so CSS can scale it to the column (the viewBox keeps the aspect)
    return re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", svg, count=1)


def figure(ncols: int = 1, width: float = 5.6, height: float = 3.3):
    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols if ncols > 1 else width, height),
                             squeeze=False)
    for ax in axes[0]:
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)
    return fig, list(axes[0])


def as_pct(values: list[float]) -> list[float]:
    """Accuracies recorded as fractions (all ≤ 1) are drawn in %; percentages stay."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return [v * 100 for v in values] if finite and max(finite) <= 1.0 else list(values)


def num(r: dict, k: str) -> float:
    v = r.get(k)
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else math.nan


def groups(records: Records, *keys: str) -> dict[tuple, Records]:
    out: dict[tuple, Records] = defaultdict(list)
    for r in records:
        out[tuple(str(r.get(k, "")) for k in keys)].append(r)
    return dict(out)


def mean_by(records: Records, x: str, y: str) -> tuple[list[float], list[float]]:
    """Mean of ``y`` over seeds at each ``x`` (sorted by ``x``)."""
    acc: dict[float, list[float]] = defaultdict(list)
    for r in records:
        if math.isfinite(num(r, x)) and math.isfinite(num(r, y)):
            acc[num(r, x)].append(num(r, y))
    xs = sorted(acc)
    return xs, [sum(acc[v]) / len(acc[v]) for v in xs]


def legend(ax, **kw) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, frameon=False, **kw)


# --------------------------------------------------------------------------- per series

@plot("train_curve", "Training accuracy vs steps, per condition")
def train_curve(records: Records, baseline: Records | None = None) -> str | None:
    """{condition, epoch, step, seconds, train_acc, test_acc}: one line per condition and seed."""
    if not records:
        return None
    fig, (ax, ax2) = figure(2, 4.4)
    for i, ((cond,), rs) in enumerate(groups(records, "condition").items()):
        for j, (_seed, seed_rs) in enumerate(groups(rs, "seed").items()):
            seed_rs = sorted(seed_rs, key=lambda r: num(r, "step"))
            steps = [num(r, "step") for r in seed_rs]
            label = cond if j == 0 else None
            every = max(1, len(steps) // 12)  # ~12 markers a line: legible, and a small SVG
            ax.plot(steps, as_pct([num(r, "train_acc") for r in seed_rs]), label=label,
                    markevery=every, **style(i))
            ax2.plot(steps, as_pct([num(r, "test_acc") for r in seed_rs]), markevery=every,
                     **style(i))
    ax.set(xlabel="optimizer steps", ylabel="training accuracy (%)", title="train", ylim=(0, 102))
    ax2.set(xlabel="optimizer steps", ylabel="test accuracy (%)", title="test", ylim=(0, 102))
    if len(ax.get_legend_handles_labels()[0]) > 3:  # many conditions: beside the plots
        handles, labels = ax.get_legend_handles_labels()
        ax2.legend(handles, labels, fontsize=8, frameon=False, loc="upper left",
                   bbox_to_anchor=(1.02, 1.0))
    else:
        legend(ax, loc="lower right")
    return to_svg(fig)


@plot("success_curve", "Attack success rate vs ε, with the random-noise control")
def success_curve(records: Records, baseline: Records | None = None) -> str | None:
    """{attack, norm, eps, success_rate, noise_success_rate}: mean over seeds per attack."""
    if not records:
        return None
    by_norm = groups(records, "norm")
    fig, axes = figure(len(by_norm), 4.6 if len(by_norm) > 1 else 5.6)
    for ax, ((norm,), rs) in zip(axes, by_norm.items(), strict=False):
        for i, ((attack,), ars) in enumerate(groups(rs, "attack").items()):
            xs, ys = mean_by(ars, "eps", "success_rate")
            ax.plot(xs, as_pct(ys), label=attack, **style(i))
            xs, ys = mean_by(ars, "eps", "noise_success_rate")
            if xs:
                ax.plot(xs, as_pct(ys), color=style(i)["color"], linestyle=":", marker="x",
                        markersize=4, linewidth=1, label=f"{attack}: noise of same norm")
        ax.set(xlabel=f"ε ({norm})" if norm else "ε", ylabel="success rate (%)", ylim=(-2, 102))
        legend(ax, loc="best")
    return to_svg(fig)


@plot("accuracy_vs_ratio", "Test accuracy vs compression ratio, with the iso-accuracy line")
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
        xs, ys = mean_by(rs, "ratio", "test_acc")
        ax.plot(xs, as_pct(ys), label=method, **style(i))
    if dense:
        level = sum(dense) / len(dense) - delta_pp
        ax.axhline(level, color="#555555", linestyle="--", linewidth=1)
        ax.annotate(f"iso-accuracy: dense − {delta_pp:g} pp", (0.99, level), ha="right",
                    va="top", xycoords=("axes fraction", "data"), xytext=(0, -3),
                    textcoords="offset points", fontsize=8, color="#333333")
    ax.set_xscale("log")
    ax.set(xlabel="compression ratio (dense / remaining weights, ×)", ylabel="test accuracy (%)")
    legend(ax, loc="lower left")
    return to_svg(fig)


@plot("accuracy_matrix", "Accuracy matrix R[i, j] (test accuracy on task j after training task i)")
def accuracy_matrix(records: Records, baseline: Records | None = None) -> str | None:
    """{protocol, strategy, i, j, acc}: one heat map per protocol × strategy, mean over seeds."""
    if not records:
        return None
    panels = groups(records, "protocol", "strategy")
    cols = min(len(panels), 3)
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.9 * cols, 2.7 * rows), squeeze=False)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    for ax, ((protocol, strategy), rs) in zip(axes.flat, panels.items(), strict=False):
        cells: dict[tuple[int, int], list[float]] = defaultdict(list)
        for r, a in zip(rs, as_pct([num(r, "acc") for r in rs]), strict=True):
            if math.isfinite(a):
                cells[int(num(r, "i")), int(num(r, "j"))].append(a)
        n = max(max(i, j) for i, j in cells) + 1 if cells else 1
        grid = [[math.nan] * n for _ in range(n)]
        for (i, j), v in cells.items():
            grid[i][j] = sum(v) / len(v)
        ax.imshow(grid, vmin=0, vmax=100, cmap="viridis")
        for (i, j), v in cells.items():
            m = sum(v) / len(v)  # the number is printed, so the colour is never the only cue
            ax.text(j, i, f"{m:.0f}", ha="center", va="center", fontsize=7,
                    color="white" if m < 60 else "black")
        ax.set_title(f"{protocol} · {strategy}", fontsize=9)
        ax.set(xlabel="evaluated on task j", ylabel="after training task i",
               xticks=range(n), yticks=range(n))
        ax.tick_params(labelsize=7)
    return to_svg(fig)


@plot("throughput", "Throughput per model, batch and variant (black tick: the baseline run, "
                    "when one is given)")
def throughput(records: Records, baseline: Records | None = None) -> str | None:
    """{model, batch, variant, samples_per_s}: bars per model@batch and variant, mean over
    seeds; the baseline run's value is drawn as a black tick on each bar."""
    if not records:
        return None
    bars = groups(records, "model", "batch")
    variants = list(groups(records, "variant"))
    base = {k: _mean(rs, "samples_per_s")
            for k, rs in groups(baseline or [], "model", "batch", "variant").items()}
    per_bar = {k: list(groups(rs, "variant").items()) for k, rs in bars.items()}
    most = max(len(v) for v in per_bar.values())
    fig, (ax,) = figure(width=min(11.0, max(5.6, 0.7 * sum(len(v) for v in per_bar.values()))))
    width = 0.8 / most
    hatches = ["", "//", "..", "xx", "\\\\", "++"]
    labelled = set()
    for b, ((model, batch), present) in enumerate(per_bar.items()):
        for k, ((variant,), rs) in enumerate(present):
            v = variants.index((variant,))
            value = _mean(rs, "samples_per_s")
            if not math.isfinite(value):
                continue
            x = b + (k - (len(present) - 1) / 2) * width  # only the variants this group has
            ax.bar(x, value, width * 0.9, color=COLORS[v % len(COLORS)],
                   hatch=hatches[v % len(hatches)], edgecolor="white",
                   label=None if variant in labelled else variant)
            labelled.add(variant)
            old = base.get((model, batch, variant))
            if old is not None and math.isfinite(old):
                ax.plot([x - width * 0.45, x + width * 0.45], [old, old], color="black",
                        linewidth=2, label=None if "\0base" in labelled else "baseline run")
                labelled.add("\0base")
    ax.set_xticks(range(len(bars)), [f"{m}\nbatch {b}" for m, b in bars], fontsize=8)
    ax.set(ylabel="samples/s")
    legend(ax)
    return to_svg(fig)


@plot("interpolation", "Loss and accuracy along linear interpolation paths")
def interpolation(records: Records, baseline: Records | None = None) -> str | None:
    """{path, alpha, loss, acc}: alpha = 0 at the path's start, 1 at its end."""
    if not records:
        return None
    fig, (ax, ax2) = figure(2, 4.4)
    for i, ((path,), rs) in enumerate(groups(records, "path").items()):
        xs, ys = mean_by(rs, "alpha", "loss")
        ax.plot(xs, ys, label=path, **style(i))
        xs, ys = mean_by(rs, "alpha", "acc")
        ax2.plot(xs, as_pct(ys), **style(i))
    ax.set(xlabel="α (0 = start, 1 = end)", ylabel="loss")
    ax2.set(xlabel="α (0 = start, 1 = end)", ylabel="accuracy (%)", ylim=(-2, 102))
    legend(ax)
    return to_svg(fig)


@plot("concentration", "Distance concentration vs dimension (uniform points; the data set "
                       "at its own dimension)")
def concentration(records: Records, baseline: Records | None = None) -> str | None:
    """{points, dim, ratio, distance, angle}: nearest/farthest distance ratio, mean distance
    over the cube's diagonal (→ 1/√6 ≈ 0.408) and mean angle (→ 90°) vs dimension (log axis)."""
    if not records:
        return None
    fig, axes = figure(3, 3.1)
    panels = (("ratio", "nearest / farthest distance", None),
              ("distance", "mean distance / diagonal", 1 / math.sqrt(6)),
              ("angle", "mean angle (°)", 90.0))
    for ax, (key, label, limit) in zip(axes, panels, strict=True):
        for i, ((points,), rs) in enumerate(groups(records, "points").items()):
            xs, ys = mean_by(rs, "dim", key)
            st = style(i) | ({"linestyle": "none", "markersize": 7} if len(xs) == 1 else {})
            ax.plot(xs, ys, label=points, **st)
        if limit is not None:
            ax.axhline(limit, color="#555555", linestyle="--", linewidth=1)
        ax.set_xscale("log")
        ax.set(xlabel="dimension d", ylabel=label)
    legend(axes[0])
    return to_svg(fig)


@plot("seed_accuracy", "Test accuracy of each run: init seeds vs data-order seeds vs badly "
                       "scaled initializations")
def seed_accuracy(records: Records, baseline: Records | None = None) -> str | None:
    """{group, init_seed, order_seed, scale, test_acc}: one dot per run, grouped on the x axis
    by what varied (and by init scale), with each group's mean as a bar."""
    if not records:
        return None
    fig, (ax,) = figure()
    pct = dict(zip(map(id, records), as_pct([num(r, "test_acc") for r in records]), strict=True))
    cats = groups(records, "group", "scale")  # % or fractions decided once, over all runs
    for i, rs in enumerate(cats.values()):
        ys = [pct[id(r)] for r in rs]
        xs = [i + 0.25 * ((k % 5) / 4 - 0.5) for k in range(len(ys))]  # spread the dots
        ax.plot(xs, ys, **{**style(i), "linestyle": "none", "markersize": 5})
        ax.hlines(sum(ys) / len(ys), i - 0.3, i + 0.3, color="black", linewidth=1.5)
    ax.set_xticks(range(len(cats)), [f"{g}\nscale ×{s}" for g, s in cats], fontsize=8)
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
    ax.set(xlabel="direction (sorted by purity)", ylabel="purity of top images (%)",
           ylim=(-2, 102))
    legend(ax)
    return to_svg(fig)


def _mean(records: Records, key: str) -> float:
    vals = [num(r, key) for r in records if math.isfinite(num(r, key))]
    return sum(vals) / len(vals) if vals else math.nan


# --------------------------------------------------------------------------- history

def history(points: list[dict], labels: list[str], unit: str) -> str:
    """One headline metric over runs: ``points`` [{x, value, spread, verdict}], x = run index.

    Regressions (verdict ``regressed``) are drawn as a red ✗ with the word beside it, not
    colour alone. The metric's name is the figure's HTML caption (it wraps; a title would not).
    """
    fig, (ax,) = figure(width=4.6, height=2.6)
    xs = [p["x"] for p in points]
    ys = [p["value"] for p in points]
    err = [p.get("spread") or 0.0 for p in points]
    ax.errorbar(xs, ys, yerr=err if any(err) else None, color=COLORS[0], marker="o", markersize=4,
                linewidth=1.4, capsize=2)
    bad = [p for p in points if p.get("verdict") == "regressed"]
    for p in bad:
        ax.plot(p["x"], p["value"], linestyle="none", marker="X", markersize=10, color="#D55E00")
        ax.annotate("regressed", (p["x"], p["value"]), xytext=(7, 4), textcoords="offset points",
                    fontsize=8, color="#B3261E", fontweight="bold")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_xlim(-0.5, max(len(labels) - 0.5, 0.5))
    ax.set_ylabel(unit or "value", fontsize=8)
    return to_svg(fig)
