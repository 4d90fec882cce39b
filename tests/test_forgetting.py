"""The forgetting task: metric formulas on hand-made matrices, the protocols are what they say,
EWC's merged penalty, a tiny end-to-end run, and bad input refused with exit 2."""

import numpy as np
import pytest
import torch

from quirkbench.engine.data import Dataset
from quirkbench.engine.models import make_model
from quirkbench.methods import continual as C
from quirkbench.metrics import Metric
from quirkbench.tasks import Context, get

# R[i, j]: accuracy on task j after training task i (percent)
R1 = np.array([[90.0, 10.0, 5.0],
               [60.0, 95.0, 10.0],
               [40.0, 70.0, 80.0]])
# best earlier accuracy of task 0 is after task 1 (80), not on the diagonal (50)
R2 = np.array([[50.0, 0.0, 0.0],
               [80.0, 90.0, 0.0],
               [60.0, 90.0, 70.0]])


def test_metric_formulas_on_hand_made_matrix():
    assert C.average_accuracy(R1) == pytest.approx((40 + 70 + 80) / 3)
    assert C.bwt(R1) == pytest.approx(((40 - 90) + (70 - 95)) / 2)  # -37.5
    assert C.chaudhry_forgetting(R1) == pytest.approx(((90 - 40) + (95 - 70)) / 2)  # 37.5
    assert C.forgetting_pct(R1) == pytest.approx(100 * (50 / 90 + 25 / 95) / 2)  # 40.94


def test_chaudhry_uses_the_best_earlier_row_and_bwt_the_diagonal():
    assert C.bwt(R2) == pytest.approx(((60 - 50) + (90 - 90)) / 2)  # +5: later training helped
    assert C.chaudhry_forgetting(R2) == pytest.approx(((80 - 60) + (90 - 90)) / 2)  # 10
    # forgetting % is against the diagonal R[j, j]: task 0 went 50 → 60 (-20%), task 1 90 → 90
    assert C.forgetting_pct(R2) == pytest.approx(100 * (-10 / 50) / 2)  # -10
    assert C.average_accuracy(R2) == pytest.approx(220 / 3)


def test_no_forgetting_and_total_forgetting():
    eye = np.array([[100.0, 0.0], [100.0, 100.0]])
    assert C.forgetting_pct(eye) == 0 and C.chaudhry_forgetting(eye) == 0 and C.bwt(eye) == 0
    lost = np.array([[100.0, 0.0], [0.0, 100.0]])
    assert C.forgetting_pct(lost) == 100 and C.chaudhry_forgetting(lost) == 100
    assert C.bwt(lost) == -100
    with pytest.raises(ValueError):
        C.bwt(np.zeros((1, 1)))


def _toy(n=200, classes=10, shape=(1, 4, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    yt = torch.arange(n // 2) % classes
    return Dataset("toy", torch.rand(n, *shape, generator=g), y,
                   torch.rand(n // 2, *shape, generator=g), yt, classes)


def test_permutations_fixed_per_task_and_identical_across_calls():
    a = C.permutations(784, 5, seed=3)
    b = C.permutations(784, 5, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a, b, strict=True))
    assert torch.equal(a[0], torch.arange(784))  # task 0 is the identity
    assert all(sorted(p.tolist()) == list(range(784)) for p in a)  # each is a permutation
    assert len({tuple(p.tolist()) for p in a}) == 5  # one per task, all different
    assert not torch.equal(C.permutations(784, 5, seed=4)[1], a[1])  # the seed matters
    ds = _toy()
    prot = C.make_protocol("permuted", ds, 3, seed=3)
    perms = C.permutations(16, 3, seed=3)
    for task, p in zip(prot.tasks, perms, strict=True):
        assert torch.equal(task.x_train.reshape(200, -1), ds.x_train.reshape(200, -1)[:, p])
        assert torch.equal(task.x_test.reshape(100, -1), ds.x_test.reshape(100, -1)[:, p])
        assert torch.equal(task.y_train, ds.y_train)  # same labels, same 10-way head


@pytest.mark.parametrize("name", ["split-task", "split-class"])
def test_splits_are_disjoint_class_pairs(name):
    ds = _toy()
    prot = C.make_protocol(name, ds, 5, seed=0)
    assert [t.classes for t in prot.tasks] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    seen: set[int] = set()
    for t in prot.tasks:
        got = set(t.y_train.tolist()) | set(t.y_test.tolist())
        assert got == set(t.classes) and not got & seen
        seen |= got
    assert sum(len(t.y_train) for t in prot.tasks) == len(ds.y_train)  # every example once
    assert (prot.group_of is not None) == (name == "split-task")


def test_task_incremental_masks_logits_to_the_task_pair():
    prot = C.make_protocol("split-task", _toy(), 5, seed=0)
    logits = torch.zeros(2, 10)
    logits[:, 9] = 10.0  # a class of the last task dominates
    out = prot.logits(logits, torch.tensor([2, 5]))  # examples of tasks 1 and 2
    assert torch.isinf(out[0, [0, 1, 4, 5, 9]]).all() and torch.isfinite(out[0, [2, 3]]).all()
    assert out[1].argmax() in (4, 5)
    assert torch.isfinite(prot.loss(logits, torch.tensor([2, 5])))
    single = C.make_protocol("split-class", _toy(), 5, seed=0)
    assert torch.equal(single.logits(logits, torch.tensor([2, 5])), logits)  # no task given


def test_split_needs_enough_classes():
    from quirkbench.errors import UserError

    with pytest.raises(UserError, match="n_tasks ≤ 5"):
        C.make_protocol("split-class", _toy(), 6, seed=0)


def test_ewc_merged_penalty_has_the_gradient_of_the_sum_over_tasks():
    torch.manual_seed(0)
    model = make_model("mlp-8", (1, 4, 4), 10, seed=0)
    pen = C.EWCPenalty(lam=3.0)
    fishers, stars = [], []
    for _ in range(3):
        f = {k: torch.rand_like(p) for k, p in model.named_parameters()}
        fishers.append(f)
        stars.append({k: p.detach().clone() for k, p in model.named_parameters()})
        pen.add(model, f)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
    assert pen.tasks == 3
    direct = 1.5 * sum((f[k] * (p - s[k]) ** 2).sum() for f, s in zip(fishers, stars, strict=True)
                       for k, p in model.named_parameters())
    g1 = torch.autograd.grad(pen(model), list(model.parameters()))
    g2 = torch.autograd.grad(direct, list(model.parameters()))
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(g1, g2, strict=True))


def test_fisher_is_a_mean_of_squared_per_example_gradients():
    model = make_model("mlp-8", (1, 4, 4), 10, seed=0)
    ds = _toy(n=20)
    fisher = C.fisher_diagonal(model, ds.x_train, ds.y_train, torch.nn.functional.cross_entropy)
    # by hand for the last bias: squared gradient of each example's loss, averaged
    ref = torch.zeros(10)
    for i in range(20):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(ds.x_train[i:i + 1]), ds.y_train[i:i + 1])
        loss.backward()
        ref += model.net[-1].bias.grad ** 2
    assert torch.allclose(fisher["net.3.bias"], ref / 20, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_run():
    task = get("forgetting")
    cfg = task.make_config("smoke", {"protocols": ("split-class",),
                                     "strategies": ("naive", "replay"), "n_tasks": 3})
    return cfg, task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))


def test_class_incremental_naive_forgets_and_replay_helps(tiny_run):
    cfg, out = tiny_run
    m = {(x.name, x.tags["strategy"]): x for x in out.metrics}
    naive, replay = m["average_accuracy", "naive"], m["average_accuracy", "replay"]
    # only the last pair is still predicted: at most 1/T (less when the last task is underfit)
    assert naive.value <= 100 / 3 + cfg.chance_margin_pp and naive.holds is not None
    assert replay.value > naive.value + 20
    assert m["forgetting_pct", "replay"].value < m["forgetting_pct", "naive"].value
    assert m["forgetting_pct", "naive"].unit == "%" and m["bwt", "naive"].unit == "pp"
    assert m["chaudhry_forgetting", "naive"].unit == "pp"
    rows = out.series["accuracy_matrix"]
    assert len(rows) == 2 * 3 * 3 and set(rows[0]) == {"protocol", "strategy", "i", "j", "acc"}
    assert all(isinstance(x, Metric) for x in out.metrics)


def test_same_seed_same_metrics():
    task = get("forgetting")
    cfg = task.make_config("smoke", {"protocols": ("permuted",), "strategies": ("ewc",),
                                     "n_tasks": 2, "train.max_steps": 5, "n_train": 200})
    runs = [task.run(cfg, Context("mnist5k", 1, torch.device("cpu"))) for _ in range(2)]
    vals = [[(x.key, x.value) for x in r.metrics if x.kind != "timing"] for r in runs]
    assert vals[0] == vals[1]


@pytest.mark.parametrize("setting, words", [
    ("forgetting.n_tasks=1", "n_tasks"),
    ("forgetting.memory_per_task=-1", "memory_per_task"),
    ("forgetting.strategies=['naive','lwf']", "strategy"),
    ("forgetting.protocols=['split-domain']", "protocol"),
    ("forgetting.n_tasks=6", "n_tasks ≤ 5"),
    ("forgetting.test_fraction=1", "test_fraction"),
    ("forgetting.folds=3", "folds"),
    ("forgetting.repeats=['permuted/ewc']", "repeats"),
    ("forgetting.repeats=['permuted/lwf:2']", "repeats"),
    ("forgetting.repeats=['permuted/ewc:0']", "repeats"),
    ("forgetting.split_seed=-1", "split_seed"),
    ("forgetting.permutation_seed=1.5", "permutation_seed"),
])
def test_bad_input_exits_2_with_one_line(run_cli, tmp_path, setting, words):
    code, _, err = run_cli("run", "--suite", "smoke", "--tasks", "forgetting", "--no-report",
                           "--out", tmp_path / "r.json", "--set", setting, "--set",
                           "forgetting.protocols=['split-class']" if "n_tasks=6" in setting
                           else "forgetting.ewc_lambda=1.0")
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words in err


def _seq(R, classes=2):
    return C.SequenceResult(np.array(R, dtype=float), 1.0, 10, (classes,) * len(R))


def test_a_task_not_learned_reports_not_learned_instead_of_forgetting():
    """The last pair stuck at one class (50%): no forgetting figure, failed checks with the
    reason, and the 'learned' check itself fails."""
    from quirkbench.tasks.forgetting import ForgettingConfig, measure

    cfg = ForgettingConfig(n_tasks=3, protocols=("split-class",), strategies=("naive", "replay"))
    stuck = _seq([[99.0, 0, 0], [0, 98.0, 0], [0, 0, 50.0]])
    fine = _seq([[99.0, 0, 0], [60.0, 98.0, 0], [50.0, 60.0, 97.0]])
    out = measure(cfg, {("split-class", "naive"): stuck, ("split-class", "replay"): fine})
    m = {(x.name, x.tags["strategy"]): x for x in out.metrics}
    assert np.isnan(m["forgetting_pct", "naive"].value)
    assert np.isnan(m["average_accuracy", "naive"].value)
    assert m["average_accuracy", "naive"].holds is False
    assert m["min_learned_accuracy", "naive"].holds is False
    assert m["min_learned_accuracy", "naive"].value == 50.0
    assert m["min_learned_accuracy", "replay"].holds is True
    reasons = out.info["check_reasons"]
    assert reasons["average_accuracy[protocol=split-class,strategy=naive]"] == "task 2 not learned"
    # replay's check is against naive's forgetting, which does not exist here
    assert m["forgetting_pct", "replay"].holds is False
    assert "not learned" in reasons["forgetting_pct[protocol=split-class,strategy=replay]"]
    assert out.info["not_learned"] == {"split-class/naive": [2]}


def test_forgetting_is_measured_against_the_diagonal_when_every_task_is_learned():
    from quirkbench.tasks.forgetting import ForgettingConfig, measure

    cfg = ForgettingConfig(n_tasks=3, protocols=("permuted",), strategies=("naive",))
    out = measure(cfg, {("permuted", "naive"): _seq(R1.tolist(), classes=10)})
    m = {x.name: x for x in out.metrics}
    assert m["forgetting_pct"].value == pytest.approx(100 * (50 / 90 + 25 / 95) / 2)
    assert m["min_learned_accuracy"].value == 80.0 and m["min_learned_accuracy"].holds
    assert out.info["check_reasons"] == {}


def test_learning_accuracy_is_the_headline_and_the_step_count_a_cost():
    """Learning accuracy = the mean of R's diagonal (how well each task was learned before the
    next), a headline on Permuted naive; the steps a sequence took (its budget plus the
    learned criterion's extra steps: a point mass with a one-sided tail over seeds) are
    reported, never a headline."""
    from quirkbench.tasks.forgetting import ForgettingConfig, measure

    cfg = ForgettingConfig(n_tasks=3, protocols=("permuted", "split-class"))
    out = measure(cfg, {(p, s): _seq(R1.tolist(), classes=10 if p == "permuted" else 2)
                        for p in cfg.protocols for s in cfg.strategies})
    m = {(x.name, x.tags["protocol"], x.tags["strategy"]): x for x in out.metrics}
    la = m["learning_accuracy", "permuted", "naive"]
    assert la.value == pytest.approx((90 + 95 + 80) / 3) and la.unit == "%"
    assert la.headline and la.direction == "higher"
    assert not m["learning_accuracy", "split-class", "naive"].headline
    assert not m["learning_accuracy", "permuted", "replay"].headline
    steps = [x for x in out.metrics if x.name == "train_steps"]
    assert len(steps) == 6 and not any(x.headline for x in steps)
    budget = {x.tags["strategy"]: x for x in out.metrics if x.name == "budget_steps"
              and x.tags["protocol"] == "permuted"}
    assert budget["naive"].headline and not budget["replay"].headline


def test_learned_criterion_is_halfway_from_chance():
    assert C.learned_criterion(2) == 75.0 and C.learned_criterion(10) == 55.0
    assert C.unlearned_tasks(np.array([[80.0, 0], [0, 74.0]]), [2, 2]) == [1]


def test_training_that_cannot_learn_reports_not_learned():
    """End to end: a learning rate of ~0 learns nothing; the unit says so."""
    task = get("forgetting")
    cfg = task.make_config("smoke", {"protocols": ("split-class",), "strategies": ("naive",),
                                     "n_tasks": 2, "train.lr": 1e-12, "n_train": 200})
    out = task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))
    m = {x.name: x for x in out.metrics}
    assert np.isnan(m["forgetting_pct"].value) and m["average_accuracy"].holds is False
    assert "not learned" in out.info["check_reasons"][
        "average_accuracy[protocol=split-class,strategy=naive]"]
    # the extra steps the learned criterion asked for count in train_steps, not the budget's
    assert m["budget_steps"].value == cfg.n_tasks * cfg.train.max_steps < m["train_steps"].value


def test_first_task_is_trained_once_per_protocol_and_the_results_are_the_same(monkeypatch):
    """Every strategy trains the first task alike: with ``first_task`` shared, the later
    sequences take its weights instead of training it again, and R and the steps are those
    of a sequence that trained it itself; a model that starts elsewhere trains it."""
    from quirkbench.engine import data

    ds = data.load("mnist5k", seed=0, n_train=300, n_test=100)
    prot = C.make_protocol("split-class", ds, 3, 0)
    cfg = get("forgetting").make_config("smoke", {}).train
    trained = []
    real = C.train
    monkeypatch.setattr(C, "train", lambda m, x, *a, **k: trained.append(x) or
                        real(m, x, *a, **k))

    def run(strategy, shared, seed=0):
        model = make_model("mlp-32", ds.input_shape, ds.num_classes, seed=seed)
        r = C.run_sequence(prot, strategy, model, cfg, seed=0, fisher_samples=20,
                           memory_per_task=10, first_task=shared)
        return r.R.tolist(), r.steps

    alone = {s: run(s, None) for s in ("naive", "ewc", "replay")}
    trained.clear()
    shared: dict = {}
    assert {s: run(s, shared) for s in ("naive", "ewc", "replay")} == alone
    def firsts():
        return sum(x is prot.tasks[0].x_train for x in trained)

    assert firsts() == 1  # the first task once, for naive only
    other = run("naive", shared, seed=1)
    assert firsts() == 2 and other == run("naive", None, seed=1)


def test_task_incremental_learned_criterion_reads_the_masked_accuracy():
    """Split MNIST task-incremental: a pair is learned when its accuracy *within the pair*
    (what its tests read) passes the criterion, so no task trains on past its budget. Read
    unmasked (10-way), the criterion was rarely met and each task trained up to 5× longer."""
    task = get("forgetting")
    cfg = task.make_config("smoke", {"protocols": ("split-task",), "strategies": ("naive",),
                                     "n_train": 1000})
    out = task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))
    m = {x.name: x for x in out.metrics}
    assert m["min_learned_accuracy"].holds
    assert m["train_steps"].value == cfg.n_tasks * cfg.train.max_steps
    assert m["budget_steps"].value == cfg.n_tasks * cfg.train.max_steps


def test_test_fraction_tests_every_task_on_the_larger_split(monkeypatch):
    """test_fraction 0.5 on mnist5k: the protocols are built from 2,500 test digits."""
    seen = []
    make = C.make_protocol

    def spy(name, ds, *a, **kw):
        seen.append((len(ds.y_train), len(ds.y_test)))
        return make(name, ds, *a, **kw)

    monkeypatch.setattr(C, "make_protocol", spy)
    task = get("forgetting")
    cfg = task.make_config("smoke", {"protocols": ("permuted",), "strategies": ("naive",),
                                     "n_tasks": 2, "train.max_steps": 2, "n_train": None,
                                     "n_test": None, "test_fraction": 0.5})
    task.run(cfg, Context("mnist5k", 0, torch.device("cpu")))
    assert seen == [(2500, 2500)]


def test_folds_2_train_every_sequence_on_each_half_and_pool_the_matrices(monkeypatch):
    """folds 2: each half trains the sequences (from its own seed) and tests on the other
    half, so every digit is tested; R is the mean of the two folds' matrices."""
    from quirkbench.tasks import forgetting as F

    seen, folds = [], []
    make, sequences = C.make_protocol, F._sequences

    def spy(name, ds, n_tasks, seed, *a, **kw):
        seen.append((ds, seed))
        return make(name, ds, n_tasks, seed, *a, **kw)

    def keep(*a, **kw):
        folds.append(sequences(*a, **kw))
        return folds[-1]

    monkeypatch.setattr(C, "make_protocol", spy)
    monkeypatch.setattr(F, "_sequences", keep)
    task = get("forgetting")
    cfg = task.make_config("smoke", {"protocols": ("split-class",), "strategies": ("naive",),
                                     "n_tasks": 2, "train.max_steps": 3, "folds": 2})
    out = task.run(cfg, Context("mnist5k", 3, torch.device("cpu")))
    (a, seed_a), (b, seed_b) = seen
    assert (seed_a, seed_b) == (3, 3 + F.FOLD_SEED)
    assert len(a.y_test) + len(b.y_test) == 5000  # every digit tested once
    assert torch.equal(a.x_train, b.x_test) and torch.equal(b.x_train, a.x_test)
    R = (folds[0]["split-class", "naive"].R + folds[1]["split-class", "naive"].R) / 2
    assert not np.array_equal(folds[0]["split-class", "naive"].R, R)
    m = {x.name: x.value for x in out.metrics}
    assert m["average_accuracy"] == pytest.approx(C.average_accuracy(R))
    assert m["budget_steps"] == 2 * 3
    assert [r["acc"] for r in out.series["accuracy_matrix"]] == pytest.approx(R.flatten())


def test_a_task_not_learned_in_one_fold_is_not_learned():
    """Pooled, the stuck fold's 50% and the other's 100% read 75%, the criterion: learned.
    Each fold's own matrix decides, so the sequence reports the task not learned."""
    from quirkbench.tasks.forgetting import ForgettingConfig, measure, pool

    cfg = ForgettingConfig(n_tasks=2, protocols=("split-class",), strategies=("naive",))
    stuck, fine = _seq([[99.0, 0], [60.0, 50.0]]), _seq([[99.0, 0], [60.0, 100.0]])
    key = ("split-class", "naive")
    pooled = {key: pool([stuck, fine])}
    assert pooled[key].R[1, 1] == 75.0
    assert {m.name: m for m in measure(cfg, pooled).metrics}["min_learned_accuracy"].holds
    m = {x.name: x for x in measure(cfg, pooled, [{key: stuck}, {key: fine}]).metrics}
    assert m["min_learned_accuracy"].holds is False and np.isnan(m["forgetting_pct"].value)


def test_repeats_train_a_sequence_again_from_its_own_seed_and_pool_the_matrices(monkeypatch):
    """repeats permuted/ewc:3 on one split: permuted EWC trained three times (the seed, then
    seed + r × REPEAT_SEED, each with its own permutations), naive once; EWC's R is the mean
    of its three matrices, and a task not learned in any run is not learned."""
    from quirkbench.tasks import forgetting as F

    seen, runs = [], []
    make, sequences = C.make_protocol, F._sequences

    def spy(name, ds, n_tasks, seed, *a, **kw):
        seen.append(seed)
        return make(name, ds, n_tasks, seed, *a, **kw)

    def keep(*a, **kw):
        runs.append(sequences(*a, **kw))
        return runs[-1]

    monkeypatch.setattr(C, "make_protocol", spy)
    monkeypatch.setattr(F, "_sequences", keep)
    task = get("forgetting")
    cfg = task.make_config("smoke", {"protocols": ("permuted",), "strategies": ("naive", "ewc"),
                                     "n_tasks": 2, "train.max_steps": 3,
                                     "repeats": ("permuted/ewc:3",)})
    out = task.run(cfg, Context("mnist5k", 3, torch.device("cpu")))
    assert seen == [3, 3 + F.REPEAT_SEED, 3 + 2 * F.REPEAT_SEED]
    assert [sorted(r) for r in runs] == [[("permuted", "ewc"), ("permuted", "naive")],
                                         [("permuted", "ewc")], [("permuted", "ewc")]]
    ewc = [r["permuted", "ewc"].R for r in runs]
    assert not np.array_equal(ewc[0], ewc[1])  # another init, order and permutation
    R = sum(ewc) / 3
    m = {(x.name, x.tags["strategy"]): x.value for x in out.metrics if "strategy" in x.tags}
    assert m["forgetting_pct", "ewc"] == pytest.approx(C.forgetting_pct(R))
    assert m["forgetting_pct", "naive"] == pytest.approx(C.forgetting_pct(runs[0]["permuted",
                                                                                "naive"].R))

    key = ("split-class", "replay")
    stuck, fine = _seq([[99.0, 0], [60.0, 50.0]]), _seq([[99.0, 0], [60.0, 100.0]])
    cfg = F.ForgettingConfig(n_tasks=2, protocols=("split-class",), strategies=("replay",))
    m = {x.name: x for x in F.measure(cfg, {key: F.pool([fine, stuck])},
                                      [{key: fine}, {key: stuck}]).metrics}
    assert m["min_learned_accuracy"].holds is False


@pytest.mark.parametrize("folds", [1, 2])
def test_split_seed_trains_every_seed_on_one_split(monkeypatch, folds):
    """split_seed: every seed trains and tests on the digits of that seed's split (with two
    folds, its halves and their subsets); without it each seed draws its own."""
    import quirkbench.tasks.forgetting as F
    from quirkbench.engine import data

    class Seen(Exception):
        pass

    seen = []

    def spy(cfg, ds, ctx, seed, only=None):
        seen.append((ds.x_train.clone(), ds.x_test.clone()))
        raise Seen

    monkeypatch.setattr(F, "_sequences", spy)
    task = get("forgetting")

    def digits(seed, **over):
        cfg = task.make_config("smoke", {"n_train": 200, "folds": folds, **over})
        with pytest.raises(Seen):
            task.run(cfg, Context("mnist5k", seed, torch.device("cpu")))
        return seen[-1], cfg

    (a, cfg), (b, _) = digits(1, split_seed=7), digits(2, split_seed=7)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    if folds == 1:
        own = data.load("mnist5k", seed=7, n_train=200, test_fraction=cfg.test_fraction)
        assert torch.equal(a[0], own.x_train)
    (c, _), (d, _) = digits(1), digits(2)
    assert not torch.equal(c[0], d[0])  # the seed's own split


def test_permutation_seed_gives_every_run_one_sequence_of_permutations(monkeypatch):
    """permutation_seed: every seed, and every repeat of a seed, trains on the permutations
    drawn from that seed, while its init stays its own; without it each run draws its own."""
    import quirkbench.tasks.forgetting as F
    from quirkbench.methods import continual

    drawn, inits = [], []
    real = continual.make_protocol

    def spy_protocol(name, ds, n_tasks, seed, classes_per_task=2):
        drawn.append(seed)
        return real(name, ds, n_tasks, seed, classes_per_task)

    def spy_run(protocol, strategy, model, *a, seed, **kw):
        inits.append(seed)
        return _seq([[90.0, 0.0], [70.0, 90.0]])

    monkeypatch.setattr(continual, "make_protocol", spy_protocol)
    monkeypatch.setattr(F, "run_sequence", spy_run)
    task = get("forgetting")

    def seeds(seed, **over):
        drawn.clear(), inits.clear()
        cfg = task.make_config("smoke", {"n_train": 200, "protocols": ("permuted",),
                                         "strategies": ("naive",), "n_tasks": 2,
                                         "repeats": ("permuted/naive:2",), **over})
        task.run(cfg, Context("mnist5k", seed, torch.device("cpu")))
        return list(drawn), list(inits)

    assert seeds(1, permutation_seed=7) == ([7, 7], [1, 1 + F.REPEAT_SEED])
    assert seeds(2, permutation_seed=7)[0] == [7, 7]
    assert seeds(2) == ([2, 2 + F.REPEAT_SEED], [2, 2 + F.REPEAT_SEED])
