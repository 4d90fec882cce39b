"""Plots of the other tasks' series: training curves, compression, forgetting, throughput,
the loss landscape, dimensionality, sensitivity, units and sharpness. Registered in
``draw.PLOTS`` on import (``plots`` imports this)."""

from __future__ import annotations

import math
from collections import defaultdict

from . import draw as P
from .draw import (
    COLORS,
    HATCHES,
    MIN_FONT,
    NARROW,
    WIDE,
    Records,
    _sd,
    as_pct,
    figure,
    grouped_bars,
    groups,
    legend,
    line,
    num,
    pct_scale,
    plot,
    stats_by,
    style,
)


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
    return P.to_svg(fig)


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
    return P.to_svg(fig)


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
    return P.to_svg(fig, tight=False)  # the colour bar: laid out by the figure's layout engine


ATTACK_RATE = "input_iterations_per_s"  # an attack row's rate: inputs × iterations per second


def _is_attack(r: dict) -> bool:
    """An attack-speed row (input-iterations/s), not a training one (samples/s): it carries
    ``input_iterations_per_s``, or (documents before that key) its variant is ``pgd-…``."""
    return ATTACK_RATE in r or str(r.get("variant", "")).startswith("pgd-")


def _attack_of(r: dict) -> tuple[str, str]:
    """(attack, implementation) of an attack row: its ``attack`` field and variant, or its
    variant split as ``pgd-NORM-WHO`` (``pgd-linf-ours-full`` → pgd-linf, ours-full)."""
    variant = str(r.get("variant", ""))
    if r.get("attack"):
        return str(r["attack"]), variant
    head, _, who = variant.partition("-")
    norm, _, who = who.partition("-")
    return f"{head}-{norm}", who or variant


@plot("throughput", "Training throughput per model, batch and variant, and attack speed per "
                    "implementation (mean ± sd over seeds; black tick: the baseline run, when "
                    "one is given)")
def throughput(records: Records, baseline: Records | None = None) -> str | None:
    """{model, batch, variant, samples_per_s} (training) or {…, input_iterations_per_s}
    (attacks): bars per model@batch and variant, mean ± sd over seeds. Training and attack
    speed have panels of their own, as their units differ (samples/s vs
    input-iterations/s); an attack's bars are grouped per attack, one per implementation
    (ours, ours-full, each peer library). The baseline run's value is a black tick."""
    if not records:
        return None
    train = (lambda r: f"{r.get('model')}\nbatch {r.get('batch')}",
             lambda r: str(r.get("variant")), lambda r: num(r, "samples_per_s"))
    attack = (lambda r: f"{_attack_of(r)[0]}\n{r.get('model')}, batch {r.get('batch')}",
              lambda r: _attack_of(r)[1],
              lambda r: num(r, ATTACK_RATE) if ATTACK_RATE in r else num(r, "samples_per_s"))
    panels = [(label, keys, [r for r in records if _is_attack(r) == is_attack],
               [r for r in baseline or [] if _is_attack(r) == is_attack])
              for label, keys, is_attack in (
                  ("training throughput (samples/s)", train, False),
                  ("attack speed (input-iterations/s)", attack, True))]
    panels = [p for p in panels if p[2]]
    n_bars = len({(r.get("model"), r.get("batch"), r.get("variant")) for r in records})
    fig, axes = figure(len(panels), WIDE if len(panels) > 1 or n_bars > 8 else NARROW)
    for ax, (ylabel, keys, rs, base) in zip(axes, panels, strict=True):
        grouped_bars(ax, rs, *keys, baseline=base)
        ax.set(ylabel=ylabel)
        legend(ax)
    return P.to_svg(fig)


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
    return P.to_svg(fig)


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
    return P.to_svg(fig)


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
    return P.to_svg(fig)


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
    return P.to_svg(fig)






@plot("sharpness", "Small vs large batch: sharpness of the minimum and test accuracy (mean ± sd "
                   "over seeds)")
def sharpness(records: Records, baseline: Records | None = None) -> str | None:
    """{batch, batch_size, top_hessian_eigenvalue, eps_sharpness, test_acc, train_acc}: one
    panel per measure, a bar per batch (small, large) with ± sd over seeds."""
    if not records:
        return None
    batches = groups(records, "batch")
    sizes = {b: sorted({int(num(r, "batch_size")) for r in rs
                        if math.isfinite(num(r, "batch_size"))}) for (b,), rs in batches.items()}
    names = [f"{b} batch\n({', '.join(map(str, sizes[b])) or '?'} examples)" for (b,) in batches]
    panels = (("top_hessian_eigenvalue", "top Hessian eigenvalue (nats / weight²)", None),
              ("eps_sharpness", "ε-sharpness (% loss rise)", None),
              ("test_acc", "test accuracy (%)", as_pct))
    fig, axes = figure(3)
    for ax, (key, ylabel, scale) in zip(axes, panels, strict=True):
        for i, rs in enumerate(batches.values()):
            vals = [num(r, key) for r in rs if math.isfinite(num(r, key))]
            vals = scale(vals) if scale and vals else vals
            if not vals:
                continue
            ax.bar(i, sum(vals) / len(vals), 0.6, color=COLORS[i % len(COLORS)],
                   hatch=HATCHES[i % len(HATCHES)], edgecolor="white",
                   yerr=_sd(vals) if len(vals) > 1 else None, capsize=3, ecolor="#333333")
        ax.set_xticks(range(len(names)), names)
        ax.set(ylabel=ylabel)
    return P.to_svg(fig)
