"""The five 'beyond' tasks: each smoke run yields its metrics with units, the phenomenon
checks that are reliable at smoke size hold, and bad settings exit with status 2."""

import json

import pytest
import torch

from quirkbench.tasks import Context, get
from quirkbench.tasks.sensitivity import scaled, spread

TASKS = ("landscape", "sharpness", "sensitivity", "units", "dimensionality")
EXPECTED = {  # metric name → unit, at least these per task
    "landscape": {"max_relative_loss_rise": "%", "barrier_height": "nats",
                  "accuracy_barrier": "pp"},
    "sharpness": {"test_acc": "%", "generalization_gap": "pp", "top_hessian_eigenvalue": "1",
                  "eps_sharpness": "%", "sharpness_ratio": "×"},
    "sensitivity": {"test_acc_std": "pp", "test_acc_range": "pp", "bad_init_shortfall": "pp"},
    "units": {"top_k_purity": "%", "purity_difference": "pp"},
    "dimensionality": {"nearest_farthest_ratio": "1", "distance_over_diagonal": "1",
                       "mean_angle": "°"},
}


@pytest.fixture(scope="module")
def one_thread():
    """Tiny MLPs gain nothing from a second thread, and on a shared, loaded 2-core machine
    two OpenMP threads per process made every step ~30× slower (spin-waiting)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def smoke(one_thread):
    ctx = Context("mnist5k", 0, torch.device("cpu"))
    return {name: get(name).run(get(name).make_config("smoke"), ctx) for name in TASKS}


@pytest.mark.parametrize("name", TASKS)
def test_smoke_run_gives_metrics_with_units(smoke, name):
    out = smoke[name]
    units = {m.name: m.unit for m in out.metrics}
    for metric, unit in EXPECTED[name].items():
        assert units.get(metric) == unit, (metric, units)
    assert 2 <= sum(m.headline for m in out.metrics) <= 5
    assert any(m.holds is not None for m in out.metrics)
    json.dumps(out.series)  # plain records


def test_landscape_series_and_monotone_path(smoke):
    out = smoke["landscape"]
    paths = {r["path"] for r in out.series["interpolation"]}
    assert paths == {"init-to-solution", "solution-to-solution"}
    assert set(out.series["interpolation"][0]) == {"path", "alpha", "loss", "acc"}
    rise = next(m for m in out.metrics if m.name == "max_relative_loss_rise")
    assert rise.holds  # Goodfellow et al.: init → solution is monotone


def test_sharpness_large_batch_is_sharper(smoke):
    ratio = {m.tags["measure"]: m for m in smoke["sharpness"].metrics
             if m.name == "sharpness_ratio"}
    assert ratio["hessian"].holds and ratio["hessian"].value > 1  # Keskar et al. 2017
    batch = {m.tags["batch"]: m.value for m in smoke["sharpness"].metrics
             if m.name == "batch_size"}
    assert batch == {"small": 10, "large": 50}  # large = 10% of n_train=500


def test_sensitivity_spreads_are_declared_on_the_log_scale(smoke):
    """An sd or range of a few models' accuracies varies ×/÷ from seed to seed: the noise
    model judges it on the log scale, as it does a × ratio."""
    scales = {m.name: m.scale for m in smoke["sensitivity"].metrics}
    assert scales["test_acc_std"] == scales["test_acc_range"] == "log"
    assert scales["test_acc_mean"] == scales["bad_init_shortfall"] == "linear"


def test_sensitivity_bad_init_fails_to_learn(smoke):
    short = {m.tags["scale"]: m for m in smoke["sensitivity"].metrics
             if m.name == "bad_init_shortfall"}
    assert short["0.01"].holds and short["0.01"].value > 20
    acc = {m.tags["scale"]: m.value for m in smoke["sensitivity"].metrics
           if m.name == "bad_init_test_acc"}
    assert acc["0.01"] == pytest.approx(10, abs=5)  # ×0.01 through 3 layers: stuck at chance


def test_dimensionality_ratio_rises_with_dimension(smoke):
    ratio = {int(m.tags["dim"]): m for m in smoke["dimensionality"].metrics
             if m.name == "nearest_farthest_ratio" and m.tags["points"] == "uniform"}
    assert ratio[1000].holds
    assert ratio[2].value < ratio[10].value < ratio[100].value < ratio[1000].value
    angle = {int(m.tags["dim"]): m.value for m in smoke["dimensionality"].metrics
             if m.name == "mean_angle" and m.tags["points"] == "uniform"}
    assert angle[1000] == pytest.approx(90, abs=1)


def test_units_purity_is_above_chance(smoke):
    p = {m.tags["basis"]: m.value for m in smoke["units"].metrics if m.name == "top_k_purity"}
    assert p["natural"] > p["chance"] and p["random"] > p["chance"]


def test_spread_and_scaling_helpers():
    assert spread([90.0, 92.0, 94.0]) == pytest.approx((92.0, 2.0, 4.0))
    m = scaled(torch.nn.Linear(2, 2), 0.0)
    assert all((p == 0).all() for p in m.parameters())


def test_dimensionality_runs_from_the_cli(run_cli, tmp_path):
    out = tmp_path / "d.json"
    code, stdout, _ = run_cli("run", "--suite", "smoke", "--tasks", "dimensionality",
                              "--out", out, "--no-report")
    assert code == 0 and "nearest_farthest_ratio" in stdout
    assert json.loads(out.read_text())["units"]


@pytest.mark.parametrize("setting", [
    "sharpness.large_fraction=2",
    "sharpness.small_batch=0",
    "landscape.n_points=1",
    "sensitivity.n_seeds=1",
    "sensitivity.bad_init_scales=[-1]",
    "units.top_k=0",
    "units.model=softmax",
    "dimensionality.dims=[0,10]",
    "dimensionality.n_points=2",
    "sharpness.test_fraction=0",
    "sensitivity.test_fraction=1.5",
    "sensitivity.folds=3",
    "units.folds=0",
    "sensitivity.folds=2",  # smoke's test_fraction 0.2 and n_test 200: not halves
    "landscape.split_seed=-1",
])
def test_bad_settings_exit_2_with_one_line(run_cli, tmp_path, setting):
    task = setting.split(".")[0]
    code, _, err = run_cli("run", "--suite", "smoke", "--tasks", task, "--set", setting,
                           "--out", tmp_path / "x.json", "--no-report")
    assert code == 2
    assert len(err.strip().splitlines()) == 1


def test_same_seed_gives_identical_metrics(smoke):
    task = get("landscape")
    again = task.run(task.make_config("smoke"), Context("mnist5k", 0, torch.device("cpu")))
    assert [(m.key, m.value) for m in again.metrics] == \
        [(m.key, m.value) for m in smoke["landscape"].metrics]


def test_units_pools_the_directions_of_several_models(one_thread):
    """models 2: both models' live units and random directions enter the purities (more
    natural directions than one model's 32 units), and each purity is their mean."""
    task = get("units")
    cfg = task.make_config("smoke", {"models": 2, "model": "mlp-32"})
    out = task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))
    m = {x.key: x.value for x in out.metrics}
    nat = [r["purity"] for r in out.series["unit_purity"] if r["basis"] == "natural"]
    rnd = [r["purity"] for r in out.series["unit_purity"] if r["basis"] == "random"]
    assert 32 < len(nat) == 2 * m["live_units"] and len(rnd) == 8 * len(nat)
    assert m["top_k_purity[basis=natural]"] == pytest.approx(sum(nat) / len(nat))
    assert m["top_k_purity[basis=random]"] == pytest.approx(sum(rnd) / len(rnd))
    assert out.info["models"] == 2


def test_landscape_barriers_are_means_over_the_pairs(one_thread):
    task = get("landscape")
    out = task.run(task.make_config("smoke", {"pairs": 2}),
                   Context("mnist5k", 0, torch.device("cpu")))
    m = {x.name: x.value for x in out.metrics}
    pairs = out.info["pairs"]
    assert [p["models"] for p in pairs] == [[0, 1], [2, 3]]  # two independent pairs
    assert pairs[0]["barrier_height"] != pairs[1]["barrier_height"]
    assert m["barrier_height"] == pytest.approx(sum(p["barrier_height"] for p in pairs) / 2)
    assert m["accuracy_barrier"] == pytest.approx(sum(p["accuracy_barrier"] for p in pairs) / 2)
    assert len(out.info["seeds"]) == 4

    # all_pairs: the same four solutions, the barrier between every two of them (6 lines)
    out_all = task.run(task.make_config("smoke", {"pairs": 2, "all_pairs": True}),
                       Context("mnist5k", 0, torch.device("cpu")))
    m_all = {x.name: x.value for x in out_all.metrics}
    every = out_all.info["pairs"]
    assert [p["models"] for p in every] == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert every[0] == pairs[0] and every[5] == pairs[1]  # the disjoint pairs among them
    for key in ("barrier_height", "accuracy_barrier"):
        assert m_all[key] == pytest.approx(sum(p[key] for p in every) / 6)
    assert m_all["max_relative_loss_rise"] == m["max_relative_loss_rise"]  # init lines: as before


def test_landscape_split_seed_trains_every_seed_on_one_split(one_thread, monkeypatch):
    """split_seed: the data split and subsets come from that seed whatever the run's seed,
    so seeds differ only in the models (their seeds still follow the run's)."""
    import quirkbench.engine.data as data

    task, loaded, real = get("landscape"), [], data.load

    def spy(*a, **kw):
        loaded.append(kw["seed"])
        return real(*a, **kw)

    monkeypatch.setattr(data, "load", spy)

    def run(seed, **kw):
        out = task.run(task.make_config("smoke", kw), Context("mnist5k", seed,
                                                               torch.device("cpu")))
        return {m.name: m.value for m in out.metrics}, out.info["seeds"]

    plain, seeds = run(3)
    same, seeds_same = run(3, split_seed=3)
    assert same == plain and seeds_same == seeds  # its own seed's split: the same run
    fixed, seeds_fixed = run(3, split_seed=0)
    assert seeds_fixed == seeds and fixed != plain  # the same models, seed 0's data
    assert loaded == [3, 3, 0]


@pytest.mark.parametrize("name", ["sharpness", "sensitivity"])
def test_test_fraction_holds_out_more_digits(one_thread, name):
    """n_test none, test_fraction 0.75 on mnist5k: 3,750 test digits instead of 1,000."""
    task = get(name)
    cfg = task.make_config("smoke", {"n_test": None, "test_fraction": 0.75})
    out = task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))
    assert " / 3750 test" in out.info["dataset"]


def test_sensitivity_folds_2_test_every_digit_on_the_other_half(one_thread, monkeypatch):
    """folds 2: the two halves of the data, each trained on n_train of its own digits and
    tested on all of the other's; every metric is the mean over the two folds."""
    from quirkbench.tasks import sensitivity as S

    task = get("sensitivity")
    cfg = task.make_config("smoke", {"folds": 2, "test_fraction": 0.5, "n_test": None,
                                     "n_train": 300})
    ctx = Context("digits", 0, torch.device("cpu"))
    a, b = S.halves(cfg, ctx)

    def rows(x):
        return [tuple(r) for r in x.flatten(1).tolist()]

    assert len(a.y_train) == len(b.y_train) == 300
    assert len(a.y_test) + len(b.y_test) == 1797  # every digit is tested once
    assert set(rows(a.x_train)) <= set(rows(b.x_test))  # a trains on b's test half
    assert set(rows(b.x_train)) <= set(rows(a.x_test))
    tested = []
    real = S.train_many

    def spy(models, x, y, *args, **kw):
        tested.append(len(kw["y_test"]))
        return real(models, x, y, *args, **kw)

    monkeypatch.setattr(S, "train_many", spy)
    out = task.run(cfg, ctx)
    assert sorted(tested) == sorted([len(a.y_test), len(b.y_test)])
    by = {m.key: m.value for m in out.metrics}
    acc = [r["test_acc"] for r in out.series["seed_accuracy"]]
    assert by["bad_init_shortfall[scale=0.01]"] == pytest.approx(
        sum(acc[:cfg.n_seeds]) / cfg.n_seeds - by["bad_init_test_acc[scale=0.01]"])


def test_units_folds_2_choose_each_folds_top_k_from_the_other_half(one_thread, monkeypatch):
    """folds 2: ``models`` models per half, each fold's pool the other half's digits, and the
    purities pooled over both folds' directions."""
    from quirkbench.engine.data import halves_both_ways
    from quirkbench.tasks import units as U

    task = get("units")
    cfg = task.make_config("smoke", {"folds": 2, "models": 2, "model": "mlp-32",
                                     "n_train": 300})
    ctx = Context("digits", 0, torch.device("cpu"))
    folds = []
    real = U._fold

    def spy(cfg_, ds, ctx_):
        out = real(cfg_, ds, ctx_)
        folds.append((len(ds.y_train), len(ds.y_test), out))
        return out

    monkeypatch.setattr(U, "_fold", spy)
    out = task.run(cfg, ctx)
    a, b = halves_both_ways(ctx.load_data(test_fraction=0.5), 300, 0)
    assert [(n, m) for n, m, _ in folds] == [(300, len(a.y_test)), (300, len(b.y_test))]
    assert len(a.y_test) + len(b.y_test) == 1797
    by = {m.key: m.value for m in out.metrics}
    natural = torch.cat([p[0] for _, _, p in folds])
    assert by["top_k_purity[basis=natural]"] == pytest.approx(100 * natural.mean().item())
    assert out.info["models"] == 4
    assert by["live_units"] == pytest.approx(sum(p[2] for _, _, p in folds) / 4)
