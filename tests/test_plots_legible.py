"""Figures a reader can read at the page's width: no text under 10 pt (drawn 1 pt = 1 px),
a unit on every value axis, ± sd error bars where a mean is over several seeds, legends
outside the data, a colour bar on the heat maps."""

from __future__ import annotations

import re

import pytest
from report_docs import outputs

from quirkbench.report import draw, plots

Y = {"success_curve": ["success_rate"], "accuracy_vs_ratio": ["test_acc"],
     "throughput": ["samples_per_s"], "interpolation": ["loss", "acc"],
     "concentration": ["ratio", "distance", "angle"], "train_curve": ["train_acc", "test_acc"],
     "accuracy_matrix": ["acc"], "seed_accuracy": ["test_acc"], "unit_purity": ["purity"],
     "sharpness": ["top_hessian_eigenvalue", "eps_sharpness", "test_acc"],
     "attack_agreement": ["ours", "theirs"], "compressed_robustness": ["success"]}


def records(series: str) -> list[dict]:
    """Two seeds' records of ``series``; seed 1's values 3% lower, so means have a spread."""
    out = []
    for seed in (0, 1):
        for task_out in outputs(0, 1.0, extra=True).values():
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
    real = draw.to_svg

    def keep(fig, tight=True):
        svg = real(fig, tight)
        fig.canvas.draw()
        figs.append(fig)
        return svg

    monkeypatch.setattr(draw, "to_svg", keep)
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
                  "seed_accuracy", "sharpness", "attack_agreement", "compressed_robustness"):
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
    plots.history(pts, ["aaaaaaa", "bbbbbbb", "ccccccc*"], "1", settings_changed=[2])
    (fig,) = drawn
    ax = fig.axes[0]
    assert plots.min_font(fig) >= plots.MIN_FONT
    assert ax.get_ylabel() == "value (no unit)" and ax.get_xlabel() == "commit (oldest run left)"
    # the commits on the axis, not run numbers
    assert [t.get_text() for t in ax.get_xticklabels()] == ["aaaaaaa", "bbbbbbb", "ccccccc*"]
    assert all(t.get_rotation() == 0 for t in ax.get_xticklabels())
    assert ax.containers  # error bars: sd over seeds
    # the settings change: a dashed line between runs 1 and 2, named in a legend
    marks = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
    assert len(marks) == 1 and list(marks[0].get_xdata()) == [1.5, 1.5]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["settings changed"]


def test_history_ticks_thin_out_without_overlap(drawn):
    commits = [f"{i:07x}" for i in range(20)]
    plots.history([{"x": i, "value": 1.0} for i in range(20)], commits, "%")
    ax = drawn[0].axes[0]
    labels = [t for t in ax.get_xticklabels() if t.get_text()]
    assert 3 <= len(labels) <= 6
    boxes = sorted((t.get_window_extent().x0, t.get_window_extent().x1) for t in labels)
    assert all(a[1] < b[0] for a, b in zip(boxes, boxes[1:], strict=False))  # no overlap

def test_every_series_a_task_records_has_a_plot():
    from quirkbench.tasks import load_all

    for task in load_all().values():
        for fig in task.figures:
            assert fig.plot_name in plots.PLOTS, (task.name, fig.series)
    assert "sharpness" in [f.series for f in load_all()["sharpness"].figures]


@pytest.mark.parametrize("series, names", [
    ("success_curve", {"linf": {"fgsm", "pgd-linf"}, "l2": {"pgd-l2"}}),
    ("compressed_robustness", {"linf": {"dense", "pruned"}, "l2": {"dense", "pruned"}})])
def test_every_panel_has_its_own_legend(series, names, drawn):
    """Each norm's panel names its own lines: the L∞ panel's fgsm and pgd-linf as well."""
    key = "attack" if series == "success_curve" else "model"
    rec = [{"seed": s, "norm": n, "eps": e, key: w, "success_rate": 50.0 + s, "success": 50.0}
           for s in (0, 1) for n, ws in names.items() for w in ws for e in (0.1, 0.2)]
    plots.PLOTS[series].fn(rec, None)
    axes = [ax for ax in drawn[0].axes if ax.has_data()]
    assert len(axes) == 2
    for ax, want in zip(axes, names.values(), strict=True):
        assert ax.get_legend() is not None
        shown = {t.get_text() for t in ax.get_legend().get_texts()}
        assert want <= shown, (shown, want)


def test_attack_speed_has_its_own_axis_and_unit(drawn):
    """Training rows are samples/s; attack rows are input-iterations/s, never on one axis."""
    rec = [{"seed": 0, "model": "mlp", "batch": 128, "variant": "engine", "samples_per_s": 9e3},
           {"seed": 0, "model": "lenet", "batch": 64, "variant": "pgd-linf-ours",
            "samples_per_s": 2e4},  # a document from before the attack rows had their key
           {"seed": 0, "model": "lenet", "batch": 64, "variant": "torchattacks",
            "attack": "pgd-l2", "input_iterations_per_s": 1.5e4}]
    plots.PLOTS["throughput"].fn(rec, None)
    axes = [ax for ax in drawn[0].axes if ax.has_data()]
    assert [ax.get_ylabel() for ax in axes] == ["training throughput (samples/s)",
                                                "attack speed (input-iterations/s)"]
    assert [t.get_text() for t in axes[1].get_xticklabels()] == [
        "pgd-linf\nlenet, batch 64", "pgd-l2\nlenet, batch 64"]
    assert {t.get_text() for t in axes[1].get_legend().get_texts()} == {"ours", "torchattacks"}
    assert len(axes[0].patches) == 1 and len(axes[1].patches) == 2
