"""Compression: masks, ratios, the iso-accuracy search, int8 and bit counts, the task end to end."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from quirkbench.cli import main
from quirkbench.engine.models import count_params, make_model
from quirkbench.engine.train import TrainConfig, evaluate, train
from quirkbench.methods import pruning as C
from quirkbench.tasks import Context, get


@pytest.fixture(scope="module")
def tiny():
    """A small MLP on random-but-learnable data (no data set load): (model, x, y)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(256, 1, 8, 8, generator=g)
    y = (x.reshape(256, -1)[:, :10].argmax(1))  # the brightest of the first 10 pixels
    return x, y


def _model():
    return make_model("mlp-32-16", (1, 8, 8), 10, seed=0)


# --------------------------------------------------------------------------- masks and ratios

def test_prune_masks_global_magnitude_keeps_largest():
    w = {"a": torch.tensor([[0.1, -5.0], [0.2, 0.3]]), "b": torch.tensor([[4.0, -0.05, 3.0]])}
    m = C.prune_masks(w, 3, "magnitude")
    assert m["a"].tolist() == [[0, 1], [0, 0]] and m["b"].tolist() == [[1, 0, 1]]  # one threshold


def test_prune_masks_are_nested_and_random_is_seeded():
    w = {"a": torch.randn(20, 30, generator=torch.Generator().manual_seed(1))}
    m1 = C.prune_masks(w, 300, "random", generator=torch.Generator().manual_seed(0))
    m2 = C.prune_masks(w, 100, "random", masks=m1, generator=torch.Generator().manual_seed(1))
    assert int(m1["a"].sum()) == 300 and int(m2["a"].sum()) == 100
    assert bool((m2["a"] <= m1["a"]).all())  # survivors of the second cut survived the first
    again = C.prune_masks(w, 300, "random", generator=torch.Generator().manual_seed(0))
    assert torch.equal(again["a"], m1["a"])


def test_masks_hold_zeros_through_finetuning_and_ratio_counts_what_remains(tiny):
    x, y = tiny
    model = _model()
    train(model, x, y, TrainConfig(lr=0.1, max_epochs=3, target_train_acc=None, eval_test=False))
    total = count_params(model)
    weights = C.prunable(model)
    assert all(p.dim() == 2 for p in weights.values()) and len(weights) == 3  # no biases
    biases = total - sum(p.numel() for p in weights.values())
    keep = C.keep_for_ratio(total, biases, 8.0)
    masks = C.prune_masks(weights, keep, "magnitude")
    train(model, x, y, TrainConfig(lr=0.1, max_epochs=3, target_train_acc=None, eval_test=False),
          masks=masks)
    for name, p in C.prunable(model).items():
        assert bool((p[masks[name] == 0] == 0).all()), f"{name}: pruned weights moved"
    remaining = count_params(model, nonzero=True)
    assert remaining == keep + biases  # biases were trained, none is exactly zero
    assert C.compression_ratio(model) == pytest.approx(total / remaining)
    assert C.compression_ratio(model) == pytest.approx(8.0, rel=0.02)


def test_magnitude_beats_random_at_the_same_ratio(tiny):
    """The phenomenon in miniature: which weights survive matters (no fine-tuning here)."""
    x, y = tiny
    model = _model()
    train(model, x, y, TrainConfig(lr=0.1, max_epochs=20, target_train_acc=None, eval_test=False))
    dense = {k: v.clone() for k, v in model.state_dict().items()}
    accs = {}
    for method in C.PRUNING_METHODS:
        model.load_state_dict(dense)
        g = torch.Generator().manual_seed(0)
        masks = C.prune_masks(C.prunable(model), 250, method, generator=g)
        with torch.no_grad():
            for k, p in C.prunable(model).items():
                p.mul_(masks[k])
        accs[method] = evaluate(model, x, y)[0]
    assert accs["magnitude"] > accs["random"] + 0.1


def test_keep_for_ratio_refuses_ratio_at_most_one():
    from quirkbench.errors import UserError

    with pytest.raises(UserError):
        C.keep_for_ratio(1000, 10, 1.0)


# --------------------------------------------------------------------------- iso-accuracy search

def test_iso_search_returns_a_point_that_meets_delta_and_the_next_does_not():
    ratios = [1, 2, 4, 8, 16, 32, 64]
    accs = [95.0, 95.3, 94.8, 94.0, 94.5, 93.9, 80.0]  # dips below δ at 8×, recovers at 16×
    i = C.iso_accuracy_index(ratios, accs, 95.0, 1.0)
    assert ratios[i] == 16 and C.meets(accs[i], 95.0, 1.0)
    assert not C.meets(accs[i + 1], 95.0, 1.0)
    assert all(not C.meets(a, 95.0, 1.0) for a in accs[i + 1:])
    assert C.iso_accuracy_index(ratios, accs, 95.0, 0.0) == 1  # δ = 0: only 2× (95.3 ≥ 95)
    assert C.iso_accuracy_index([2, 4], [90.0, 80.0], 95.0, 1.0) is None


def test_bisect_ratio_converges_between_pass_and_fail():
    probed = []

    def probe(r):
        probed.append(r)
        return r <= 20.0  # the true iso-accuracy ratio

    r = C.bisect_ratio(16.0, 32.0, probe, 3)
    assert 16.0 <= r <= 20.0 and len(probed) == 3
    assert probed[0] == pytest.approx(math.sqrt(16 * 32))


def test_crossing_ratio_interpolates_in_log_ratio_between_the_bracket():
    # 91.5% at 16×, 90.5% at 32×: 91.0% is crossed halfway in log-ratio, at 16·√2
    assert C.crossing_ratio((16.0, 91.5), (32.0, 90.5), 91.0) == pytest.approx(16 * 2 ** 0.5)
    # a quarter of the way down the accuracy gap is a quarter of the way in log-ratio
    assert C.crossing_ratio((8.0, 92.0), (16.0, 88.0), 91.0) == pytest.approx(8 * 2 ** 0.25)
    assert C.crossing_ratio((8.0, 91.0), (16.0, 90.0), 91.0) == pytest.approx(8.0)  # lo on it
    for lo, hi in (((8.0, 90.0), (16.0, 89.0)),   # lo misses the threshold
                   ((8.0, 92.0), (16.0, 91.5)),   # hi meets it
                   ((16.0, 92.0), (8.0, 90.0))):  # hi is not the larger ratio
        with pytest.raises(ValueError):
            C.crossing_ratio(lo, hi, 91.0)


class _FakePruner:
    """A pruning path whose accuracy is a known function of the ratio (no training): each
    fold falls ``slope`` pp per doubling from ``top``; records what each probe started from."""

    def __init__(self, method, model, dense_state, ds, ratios, finetune, seed, draw=0):
        self.method, self.ratios, self.seed = method, ratios, seed
        self.top, self.slope = ds
        self.dense = {"ratio": 1.0, "state": "dense", "masks": None}
        self.starts = []

    def step(self, start, target, train_seed):
        self.starts.append(start.get("ratio"))
        return {"target": target, "ratio": target, "params": 1000 / target, "steps": 1,
                "test_acc": self.top - self.slope * math.log2(target), "state": target,
                "masks": None}


def _fake_folds(monkeypatch, curves, **cfg):
    from quirkbench.tasks import compression as T

    monkeypatch.setattr(T, "Pruner", _FakePruner)
    monkeypatch.setattr(T, "count_params", lambda model, nonzero=False: 1000)
    made = [T.Fold((top, slope), None, i, None, top, "reference", top)
            for i, (top, slope) in enumerate(curves)]
    config = T.CompressionConfig(methods=("magnitude-iterative",), folds=len(curves),
                                 test_fraction=0.5, **cfg)
    ctx = Context("mnist5k", 0, torch.device("cpu"))
    return T, made, config, ctx


@pytest.mark.parametrize("steps", [0, 2])
def test_iso_ratio_is_the_crossing_of_the_fold_mean_curve(monkeypatch, steps):
    """Two folds falling 0.5 and 1.5 pp per doubling from 95%: the mean curve falls 1 pp per
    doubling, so it crosses dense − 1 pp at exactly 2× whatever the probes; without
    interpolation the answer is the last probed ratio that met δ."""
    T, folds, cfg, ctx = _fake_folds(monkeypatch, [(95.0, 0.5), (95.0, 1.5)],
                                     ratios=(1.5, 3.0, 6.0), delta_pp=1.0, search_steps=steps,
                                     interpolate=True)
    probes = []
    series, iso = T.iso_accuracy("magnitude-iterative", folds, 95.0, cfg, ctx, probes)
    assert iso["iso_ratio"] == pytest.approx(2.0)
    assert [r["test_acc"] for r in series] == pytest.approx(
        [95.0] + [95.0 - math.log2(r) for r in cfg.ratios])
    assert [r["test_acc_folds"] for r in series][1] == pytest.approx(
        [95.0 - 0.5 * math.log2(1.5), 95.0 - 1.5 * math.log2(1.5)])
    (lo, a_lo), (hi, a_hi) = iso["bracket"]
    assert a_lo >= 94.0 > a_hi and lo <= 2.0 <= hi and len(probes) == steps
    # the bisection narrowed the bracket around the crossing
    assert math.log2(hi / lo) == pytest.approx(1.0 / 2 ** steps)
    plain = T.iso_accuracy("magnitude-iterative", folds, 95.0,
                           replace(cfg, interpolate=False), ctx, [])[1]
    assert plain["iso_ratio"] == pytest.approx(lo) and lo < 2.0


def test_a_fold_mean_that_misses_delta_is_a_miss_even_if_one_fold_meets_it(monkeypatch):
    """The decision is on the mean over the folds: at 4× fold 0 is 0.2 pp down (meets δ on
    its own), fold 1 is 3 pp down; the mean (1.6 pp down) misses, so the iso point is 2×."""
    T, folds, cfg, ctx = _fake_folds(monkeypatch, [(95.0, 0.1), (95.0, 1.5)],
                                     ratios=(2.0, 4.0, 8.0), delta_pp=1.0, search_steps=0)
    _, iso = T.iso_accuracy("magnitude-iterative", folds, 95.0, cfg, ctx, [])
    assert iso["iso_ratio"] == 2.0 and iso["bracket"][1][0] == 4.0


def untrained_folds(monkeypatch) -> list[int]:
    """make_folds without training: a tiny model per fold, every evaluation 50%; the list the
    folds' model seeds are appended to."""
    from quirkbench.tasks import compression as T

    monkeypatch.setattr(T, "train", lambda *a, **kw: None)
    monkeypatch.setattr(T, "evaluate", lambda model, x, y: (0.5, 0.0))
    seeds = []
    real_make = T.make_model
    monkeypatch.setattr(T, "make_model", lambda name, shape, n, seed: seeds.append(seed)
                        or real_make("mlp-32-16", shape, n, seed=0))
    return seeds


def test_folds_two_swap_the_halves_with_their_own_seed(monkeypatch):
    """Fold 1 trains on fold 0's test digits and is tested on its training digits, from a
    seed of its own; every digit of the data set is a test digit once."""
    from quirkbench.errors import UserError
    from quirkbench.tasks import compression as T

    seeds = untrained_folds(monkeypatch)
    cfg = get("compression").make_config("quick", {"folds": 2})
    folds = T.make_folds(cfg, Context("mnist5k", 7, torch.device("cpu")))
    a, b = folds[0].ds, folds[1].ds
    assert torch.equal(a.x_train, b.x_test) and torch.equal(a.y_test, b.y_train)
    assert len(a.y_test) + len(b.y_test) == 5000 and seeds == [7, 7 + T.FOLD_SEED]
    with pytest.raises(UserError, match="folds"):
        get("compression").make_config("quick", {"folds": 2, "test_fraction": 0.2})
    with pytest.raises(UserError, match="folds"):
        get("compression").make_config("quick", {"folds": 3})
    ctx = Context("mnist5k", 0, torch.device("cpu"))
    official = replace(a, x_test=a.x_test[:100], y_test=a.y_test[:100])
    monkeypatch.setattr(Context, "load_data", lambda self, **kw: official)
    with pytest.raises(UserError, match="official test split"):
        T.make_folds(cfg, ctx)


def test_split_seed_gives_every_seed_the_same_splits(monkeypatch):
    """split_seed: split p comes from split_seed + 2p × FOLD_SEED whatever the run's seed; the
    folds' models still draw their inits from the run's seed."""
    from quirkbench.tasks import compression as T

    seeds = untrained_folds(monkeypatch)
    cfg = get("compression").make_config("quick", {"split_seed": 3})
    a = T.make_folds(cfg, Context("mnist5k", 7, torch.device("cpu")))
    b = T.make_folds(cfg, Context("mnist5k", 8, torch.device("cpu")))
    assert len(a) == len(b) == 4
    for fa, fb in zip(a, b, strict=True):
        assert torch.equal(fa.ds.x_train, fb.ds.x_train) and torch.equal(fa.ds.y_test,
                                                                         fb.ds.y_test)
    assert not torch.equal(a[0].ds.x_train, a[2].ds.x_train)  # two splits, not one twice
    own = T.make_folds(get("compression").make_config("quick"),
                       Context("mnist5k", 3, torch.device("cpu")))
    assert torch.equal(a[2].ds.x_train, own[2].ds.x_train)  # seed 3's second split
    assert seeds[:4] == [7 + T.FOLD_SEED * f for f in range(4)] and seeds[4] == 8


# --------------------------------------------------------------------------- int8 and bits

def test_int8_keeps_zeros_and_is_close(tiny):
    x, y = tiny
    model = _model()
    train(model, x, y, TrainConfig(lr=0.1, max_epochs=3, target_train_acc=None, eval_test=False))
    masks = C.prune_masks(C.prunable(model), 500, "magnitude")
    with torch.no_grad():
        for k, p in C.prunable(model).items():
            p.mul_(masks[k])
    before = {k: p.clone() for k, p in C.prunable(model).items()}
    acc0 = evaluate(model, x, y)[0]
    scales = C.quantize_int8_(model)
    for k, p in C.prunable(model).items():
        assert torch.equal(p == 0, before[k] == 0)  # the sparsity pattern survives
        q = p / scales[k]
        assert torch.allclose(q, q.round(), atol=1e-3) and q.abs().max() <= 127 + 1e-3
        assert (p - before[k]).abs().max() <= scales[k] / 2 + 1e-6
    assert abs(evaluate(model, x, y)[0] - acc0) <= 0.05


def test_index_bits_on_a_hand_made_mask():
    mask = torch.zeros(1, 100)
    mask[0, [0, 3, 50]] = 1  # gaps 1, 3, 47
    assert C.index_bits(mask, "bitmask") == (100, 0)
    # 4-bit gaps cover ≤ 16: 47 needs ceil(47/16) = 3 entries, 2 of them fillers
    assert C.index_bits(mask, "relative-4") == (5 * 4, 2)
    assert C.index_bits(mask, "relative-8") == (3 * 8, 0)


def test_bits_breakdown_formula():
    model = make_model("mlp", (1, 4, 4), 2, seed=0)  # one 2×16 weight matrix + 2 biases
    with torch.no_grad():
        model.net[1].weight.zero_()
        model.net[1].weight[0, 0] = 1.0
        model.net[1].weight[1, 15] = -1.0
    b = C.bits_breakdown(model, 8, "bitmask")
    assert b["dense_bits"] == 32 * 34
    assert b["compressed_bits"] == 2 * 8 + 32 + 32 + 2 * 32  # values, bitmask, scale, biases
    assert b["ratio"] == pytest.approx(32 * 34 / 144)


def test_distillation_loss_is_t_squared_soft_cross_entropy():
    logits = torch.tensor([[2.0, 0.0, -1.0]])
    target = C.soft_targets(torch.tensor([[1.0, 0.5, 0.0]]), 2.0)
    assert target.sum().item() == pytest.approx(1.0)
    expected = -(target * torch.log_softmax(logits / 2.0, -1)).sum() * 4.0
    assert C.distillation_loss(2.0)(logits, target).item() == pytest.approx(expected.item())


# --------------------------------------------------------------------------- the task

@pytest.fixture(scope="module")
def smoke_output():
    task = get("compression")
    cfg = task.make_config("smoke")
    return cfg, task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))


def test_task_smoke_reports_units_curve_and_headlines(smoke_output):
    cfg, out = smoke_output
    by = {m.key: m for m in out.metrics}
    ratio = by["compression_ratio[delta_pp=1,method=magnitude-iterative]"]
    assert ratio.unit == "×" and ratio.value >= 1 and ratio.holds is not None
    assert by["distillation_gain[T=4,student=mlp-100,transfer=0.1]"].unit == "pp"
    n = cfg.random_draws
    draws = by[f"compression_ratio_mean[delta_pp=1,draws={n},method=random]"]
    assert draws.value >= 1 and by[f"compression_ratio_std[delta_pp=1,draws={n},method=random]"]
    assert len(out.info["random_draw_ratios"]) == n
    assert out.info["random_draw_ratios"][0] == by[
        "compression_ratio[delta_pp=1,method=random]"].value
    assert by["test_acc[model=dense-start]"].unit == "%"
    assert 2 <= sum(m.headline for m in out.metrics) <= 5
    curve = out.series["accuracy_vs_ratio"]
    methods = {r["method"] for r in curve}
    assert methods == set(cfg.methods)
    for method in methods:
        pts = [r for r in curve if r["method"] == method]
        assert len(pts) == len(cfg.ratios) + 1  # the dense point plus one per target
        assert [r["ratio"] for r in pts] == sorted(r["ratio"] for r in pts)
        assert pts[-1]["ratio"] == pytest.approx(cfg.ratios[-1], rel=0.05)
    assert by["bits_compression_ratio[index=relative-5,method=magnitude-iterative]"].value > 1


def test_task_is_deterministic(smoke_output):
    cfg, out = smoke_output
    again = get("compression").run(cfg, Context("mnist5k", 0, torch.device("cpu")))
    assert [m.value for m in again.metrics] == [m.value for m in out.metrics]


@pytest.mark.parametrize("setting", ["compression.delta_pp=-1", "compression.methods=['lottery']",
                                     "compression.ratios=[1.0,4.0]", "compression.ratios=[0.5]",
                                     "compression.split_seed=-2"])
def test_bad_input_exits_2_with_one_line(setting, capsys, tmp_path):
    rc = main(["run", "--suite", "smoke", "--tasks", "compression", "--set", setting,
               "--out", str(tmp_path / "r.json"), "--no-report"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert "compression" in err or "pruning method" in err


def test_dense_reference_gets_the_pruning_paths_budget(monkeypatch):
    """The reference is trained on for one fine-tune per cut of the schedule, so no pruned
    point has had more training than the accuracy it is held against."""
    from quirkbench.tasks import compression as T

    seen = []
    monkeypatch.setattr(T, "train", lambda model, x, y, cfg, **kw: seen.append(cfg))
    monkeypatch.setattr(T, "evaluate", lambda model, x, y: (0.9, 0.1))
    cfg = T.CompressionConfig(ratios=(2.0, 4.0, 8.0))
    model = torch.nn.Linear(3, 2)
    ds = type("D", (), {"x_train": None, "y_train": None, "x_test": None, "y_test": None})
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _, acc = T.dense_reference(model, ds, cfg, seed=0)
    assert acc == 90.0 and len(seen) == 1
    assert seen[0].max_epochs == 3 * cfg.finetune.max_epochs and seen[0].lr == cfg.finetune.lr
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_quick_suite_measures_iso_accuracy_on_half_of_mnist5k():
    """The iso point moves with the test sample's noise: quick holds out 2,500 digits."""
    from quirkbench.engine import data
    from quirkbench.errors import UserError
    from quirkbench.tasks import get

    task = get("compression")
    cfg = task.make_config("quick")
    ds = data.load("mnist5k", seed=0, test_fraction=cfg.test_fraction)
    assert len(ds.y_test) == 2500 and len(ds.y_train) == 2500
    # quick and pr: two splits used both ways, interpolated on the schedule's own points
    assert (cfg.folds, cfg.interpolate, cfg.search_steps) == (4, True, 0)
    pr = task.make_config("pr")
    assert (pr.folds, pr.interpolate, pr.search_steps, pr.test_fraction) == (4, True, 0, 0.5)
    assert pr.distill_all_folds and not cfg.distill_all_folds
    assert task.make_config("nightly").folds == 1
    for bad in (0.0, 1.0):
        with pytest.raises(UserError, match="test_fraction"):
            task.make_config("quick", {"test_fraction": bad})


def test_moved_methods_are_still_found_under_their_old_module():
    """quantize_int8_ & co. moved to methods/quantization.py and methods/distillation.py;
    ``pruning.X`` (and the old ``quirkbench.compression`` alias of it) still finds them."""
    from quirkbench.methods import distillation, pruning, quantization

    assert pruning.quantize_int8_ is quantization.quantize_int8_
    assert pruning.bits_breakdown is quantization.bits_breakdown
    assert pruning.soft_targets is distillation.soft_targets
    with pytest.raises(AttributeError):
        pruning.no_such_method  # noqa: B018


def test_distillation_on_every_fold_reports_the_folds_means(monkeypatch):
    """distill_all_folds: each fold's reference teaches its own students (on its data, with
    its seed), and the test accuracies are the folds' means; without it, fold 0 alone."""
    from quirkbench.tasks import compression as T

    calls = []

    def fake(teacher, ds, *, seed, **kw):
        calls.append((ds, seed, teacher.weight.detach().clone()))
        return {"hard-labels": 80.0 + seed, "distilled": 84.0 + 3 * seed}, 10, 40

    monkeypatch.setattr(T, "distill", fake)
    teacher = torch.nn.Linear(2, 2)
    folds = [T.Fold(f"data{i}", None, i, None, 0.0,
                    {"weight": torch.full((2, 2), float(i)), "bias": torch.zeros(2)}, 0.0)
             for i in range(2)]
    ctx = Context("mnist5k", 0, torch.device("cpu"))
    both = T.CompressionConfig(folds=2, test_fraction=0.5, distill_all_folds=True)
    students, _, _ = T.distill_folds(teacher, folds, both, ctx)
    assert [(d, s) for d, s, _ in calls] == [("data0", 0), ("data1", 1)]
    assert calls[1][2].eq(1.0).all()  # fold 1's own reference taught fold 1's students
    assert students == {"hard-labels": 80.5, "distilled": 85.5}
    calls.clear()
    one = T.CompressionConfig(folds=2, test_fraction=0.5)
    students, _, _ = T.distill_folds(teacher, folds, one, ctx)
    assert len(calls) == 1 and students == {"hard-labels": 80.0, "distilled": 84.0}
