"""Figures a reader can read at the page's width: no text under 10 pt (drawn 1 pt = 1 px),
a unit on every value axis, ± sd error bars where a mean is over several seeds, legends
outside the data, a colour bar on the heat maps."""

from __future__ import annotations

import re

import pytest
from report_docs import outputs

from quirkbench.report import plots

Y = {"success_curve": ["success_rate"], "accuracy_vs_ratio": ["test_acc"],
     "throughput": ["samples_per_s"], "interpolation": ["loss", "acc"],
     "concentration": ["ratio", "distance", "angle"], "train_curve": ["train_acc", "test_acc"],
     "accuracy_matrix": ["acc"], "seed_accuracy": ["test_acc"], "unit_purity": ["purity"]}


def records(series: str) -> list[dict]:
    """Two seeds' records of ``series``; seed 1's values 3% lower, so means have a spread."""
    out = []
    for seed in (0, 1):
        for task_out in outputs(0, 1.0).values():
            for r in task_out.series.get(series, []):
                r = {**r, "seed": seed}
                for k in Y[series]:
                    if seed and isinstance(r.get(k), int | float):
                        r[k] = r[k] * 0.97
                out.append(r)
    return [r for r in out if "i" in r or series != "accuracy_matrix"]


@pytest.fixture
def drawn(monkeypatch):
    figs = []
    real = plots.to_svg

    def keep(fig, tight=True):
        svg = real(fig, tight)
        fig.canvas.draw()
        figs.append(fig)
        return svg

    monkeypatch.setattr(plots, "to_svg", keep)
    return figs


@pytest.mark.parametrize("series", sorted(Y))
def test_plot_is_legible(series, drawn):
    svg = plots.PLOTS[series].fn(records(series), None)
    assert svg and 'data-min-font="' in svg
    (fig,) = drawn
    assert plots.min_font(fig) >= plots.MIN_FONT
    width = float(re.search(r"max-width: (\d+)px", svg).group(1))
    assert width in (plots.NARROW, plots.WIDE)  # drawn at the size it is shown
    data_axes = [ax for ax in fig.axes if ax.has_data() and ax.get_label() != "<colorbar>"]
    assert data_axes
    for ax in data_axes:
        if series == "accuracy_matrix":  # task indices on both axes; the colour bar's unit
            continue
        y = ax.get_ylabel()
        assert re.search(r"\(.+\)$", y), f"{series}: y axis {y!r} names no unit"
        assert " 1)" not in y and "(1)" not in y  # dimensionless: no unit "1"
        x = ax.get_xlabel()
        categorical = all(t.get_text() and not re.fullmatch(r"[−\-\d.,$\\{}^a-z]+",
                                                            t.get_text())
                          for t in ax.get_xticklabels() if t.get_text())
        assert x or categorical, f"{series}: x axis has neither a label nor category names"
        if x and not x.startswith(("evaluated on", "direction")):
            assert re.search(r"\(.+\)", x), f"{series}: x axis {x!r} names no unit"
        legend = ax.get_legend()
        if legend is not None:  # outside the data area
            lb, ab = legend.get_window_extent(), ax.get_window_extent()
            overlap = (min(lb.x1, ab.x1) - max(lb.x0, ab.x0)) * (min(lb.y1, ab.y1) -
                                                                  max(lb.y0, ab.y0))
            assert not (lb.x1 > ab.x0 and lb.x0 < ab.x1 and lb.y1 > ab.y0 and lb.y0 < ab.y1
                        and overlap > 1), f"{series}: the legend covers the data"
    if series in ("success_curve", "accuracy_vs_ratio", "throughput", "interpolation",
                  "seed_accuracy"):
        assert any(ax.containers for ax in data_axes), f"{series}: no ± sd error bars"
    if series == "train_curve":  # a ± sd band around each mean line
        assert any(ax.collections for ax in data_axes)
    if series == "accuracy_matrix":
        bars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
        assert len(bars) == 1 and bars[0].get_ylabel() == "test accuracy (%)"


def test_one_seed_draws_no_error_bars(drawn):
    one = [r for r in records("success_curve") if r["seed"] == 0]
    plots.PLOTS["success_curve"].fn(one, None)
    assert not any(ax.containers for ax in drawn[0].axes)


def test_history_axes(drawn):
    pts = [{"x": i, "value": v, "spread": 0.1, "verdict": "regressed" if i == 2 else None}
           for i, v in enumerate([1.0, 1.1, 0.5])]
    plots.history(pts, ["0: a", "1: b", "2: c"], "1")
    (fig,) = drawn
    ax = fig.axes[0]
    assert plots.min_font(fig) >= plots.MIN_FONT
    assert ax.get_ylabel() == "value (no unit)" and ax.get_xlabel() == "run (oldest = 0)"
    assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())
    assert ax.containers  # error bars: sd over seeds
