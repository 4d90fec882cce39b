"""The engine: it fits, stops at the target, keeps masks, and K-at-once equals K one by one."""

import pytest
import torch

from quirkbench.engine import data
from quirkbench.engine.models import count_params, make_model
from quirkbench.engine.train import TrainConfig, evaluate, train, train_many
from quirkbench.errors import UserError


@pytest.fixture(scope="module")
def digits():
    return data.load("digits", seed=0, n_train=400, n_test=200)


def test_fits_to_target_and_records_curve(digits):
    m = make_model("mlp-128", digits.input_shape, seed=0)
    cfg = TrainConfig(lr=0.1, batch_size=64, max_epochs=100)
    r = train(m, digits.x_train, digits.y_train, cfg, x_test=digits.x_test, y_test=digits.y_test)
    assert r.fitted and r.train_acc == 1.0 and evaluate(m, digits.x_train, digits.y_train)[0] == 1.0
    assert r.steps == r.curve[-1]["step"] and r.epochs == pytest.approx(r.steps / (400 // 64))
    assert r.test_acc > 0.8 and {"epoch", "train_acc", "test_acc", "seconds"} <= set(r.curve[0])


def test_budget_stops_unfitted(digits):
    y = torch.randint(0, 10, (400,), generator=torch.Generator().manual_seed(0))
    m = make_model("mlp-16", digits.input_shape, seed=0)
    r = train(m, digits.x_train, y, TrainConfig(max_steps=5), seed=0)
    assert not r.fitted and r.steps == 5


def test_same_seed_same_weights(digits):
    cfg = TrainConfig(max_epochs=2, target_train_acc=None, optimizer="adam", lr=1e-3)
    ws = []
    for _ in range(2):
        m = make_model("mlp-32", digits.input_shape, seed=3)
        train(m, digits.x_train, digits.y_train, cfg, seed=3)
        ws.append(torch.cat([p.flatten() for p in m.parameters()]))
    assert torch.equal(ws[0], ws[1])


def test_masks_keep_pruned_weights_zero(digits):
    m = make_model("mlp-64", digits.input_shape, seed=0)
    mask = (torch.rand(64, 64) > 0.7).float()
    mask = {"net.1.weight": (torch.rand_like(m.net[1].weight) > 0.7).float()}
    train(m, digits.x_train, digits.y_train, TrainConfig(max_epochs=3, target_train_acc=None),
          masks=mask)
    assert torch.all(m.net[1].weight[mask["net.1.weight"] == 0] == 0)
    assert count_params(m, nonzero=True) < count_params(m)


def test_soft_targets_and_penalty(digits):
    m = make_model("mlp-32", digits.input_shape, seed=0)
    soft = torch.nn.functional.one_hot(digits.y_train, 10).float()
    calls = []
    pen = lambda model: calls.append(1) or 0.0 * sum(p.sum() for p in model.parameters())  # noqa: E731
    r = train(m, digits.x_train, soft, TrainConfig(max_epochs=30, lr=0.1), penalty=pen)
    assert r.train_acc > 0.9 and len(calls) == r.steps


def test_k_at_once_equals_k_one_by_one(digits):
    cfg = TrainConfig(max_epochs=3, target_train_acc=None, lr=0.05)
    seeds = [0, 1, 2]
    solo = []
    for s in seeds:
        m = make_model("mlp-32", digits.input_shape, seed=s)
        solo.append(train(m, digits.x_train, digits.y_train, cfg, seed=s, x_test=digits.x_test,
                          y_test=digits.y_test))
    many_models = [make_model("mlp-32", digits.input_shape, seed=s) for s in seeds]
    many = train_many(many_models, digits.x_train, digits.y_train, cfg, seeds=seeds,
                      x_test=digits.x_test, y_test=digits.y_test)
    for a, b, m in zip(solo, many, many_models, strict=True):
        assert a.steps == b.steps
        assert a.train_acc == pytest.approx(b.train_acc, abs=1e-6)
        assert a.test_acc == pytest.approx(b.test_acc, abs=1e-6)
        assert b.test_acc == pytest.approx(evaluate(m, digits.x_test, digits.y_test)[0], abs=1e-6)


def test_k_at_once_on_per_model_labels_stops_each_at_its_fit(digits):
    y_rand = torch.randint(0, 10, (400,), generator=torch.Generator().manual_seed(0))
    ys = torch.stack([digits.y_train, y_rand])
    ms = [make_model("mlp-128", digits.input_shape, seed=0) for _ in range(2)]
    rs = train_many(ms, digits.x_train, ys, TrainConfig(lr=0.1, max_epochs=300), seeds=[0, 0])
    assert all(r.fitted for r in rs)
    assert rs[1].steps > rs[0].steps  # random labels take longer: the phenomenon, in the engine
    assert evaluate(ms[0], digits.x_train, digits.y_train)[0] == 1.0


def test_bad_train_settings_are_user_errors():
    with pytest.raises(UserError, match="sgd, adam"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(UserError, match="fraction"):
        TrainConfig(target_train_acc=100)


def _fit_with(monkeypatch, digits, shortcut: bool):
    """200 random labels fitted with a probe every step; without ``shortcut`` every probe is
    a full pass. (steps, fitted, curve, the full passes' count, the probes' count)."""
    import quirkbench.engine.train as T

    y = torch.randint(0, 10, (200,), generator=torch.Generator().manual_seed(1))
    full, probes = [0], [0]
    real_full, real_reached = T._FitProbe.full, T._FitProbe.reached

    def counted_full(self, model):
        full[0] += 1
        return real_full(self, model)

    def reached(self, model):
        probes[0] += 1
        if not shortcut:
            return self.full(model)[0] >= self.target
        return real_reached(self, model)

    monkeypatch.setattr(T._FitProbe, "full", counted_full)
    monkeypatch.setattr(T._FitProbe, "reached", reached)
    m = make_model("mlp-128", digits.input_shape, seed=0)
    r = train(m, digits.x_train[:200], y, TrainConfig(lr=0.1, batch_size=32, max_epochs=300,
                                                      check_every=1), seed=0)
    curve = [(p["step"], p["train_acc"], p["train_loss"]) for p in r.curve]
    return r.steps, r.fitted, curve, full[0], probes[0]


def test_fit_probe_gives_the_full_pass_answer_with_fewer_full_passes(digits, monkeypatch):
    """The fit probe looks at the last full pass's wrong examples first: the step it stops
    at and the curve are those of a full pass at every probe, with far fewer full passes."""
    steps, fitted, curve, full, probes = _fit_with(monkeypatch, digits, shortcut=True)
    steps0, fitted0, curve0, full0, probes0 = _fit_with(monkeypatch, digits, shortcut=False)
    assert fitted and (steps, fitted, curve) == (steps0, fitted0, curve0)
    assert probes == probes0 > 30 and full0 - full > probes / 2  # most probes: no full pass


def test_final_train_eval_off_skips_the_last_pass(digits, monkeypatch):
    """Without a target, the end-of-training pass over the training set runs only when asked;
    otherwise train_acc is the last epoch's running accuracy and the weights are the same."""
    import quirkbench.engine.train as T

    calls = []
    real = T.evaluate
    monkeypatch.setattr(T, "evaluate", lambda *a, **k: calls.append(1) or real(*a, **k))
    cfg = TrainConfig(max_epochs=2, target_train_acc=None, eval_test=False)
    ws = []
    for final in (True, False):
        m = make_model("mlp-32", digits.input_shape, seed=0)
        r = train(m, digits.x_train, digits.y_train, cfg, seed=0, final_train_eval=final)
        ws.append(torch.cat([p.flatten() for p in m.parameters()]))
        assert len(calls) == (1 if final else 0) and 0 < r.train_acc <= 1
        calls.clear()
    assert torch.equal(ws[0], ws[1])


def test_head_decides_which_logits_the_accuracy_reads():
    """A task-incremental head masks other tasks' classes: the same model reads 100% through
    it (the pair {0, 1} separated) and 0% without it (class 9 dominates every logit row)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    y = (x[:, 0] > 0).long()  # classes 0 and 1
    m = torch.nn.Linear(4, 10)
    with torch.no_grad():
        m.weight.zero_()
        m.weight[1, 0], m.weight[0, 0] = 10.0, -10.0
        m.bias.zero_()
        m.bias[9] = 100.0

    def pair(logits, labels):  # every example's task is the pair {0, 1}
        keep = torch.zeros(logits.shape[1], dtype=torch.bool)
        keep[:2] = True
        return logits.masked_fill(~keep, float("-inf"))

    cfg = TrainConfig(lr=1e-12, max_steps=1, target_train_acc=None)
    assert evaluate(m, x, y)[0] == 0.0 and evaluate(m, x, y, head=pair)[0] == 1.0
    assert train(m, x, y, cfg, head=pair).train_acc == 1.0
    assert train(m, x, y, cfg).train_acc == 0.0
    # a target read through the head is met on the first epoch's confirmation pass
    r = train(m, x, y, TrainConfig(lr=1e-12, max_steps=50, target_train_acc=0.9), head=pair)
    assert r.fitted and r.steps == 256 // 128


def test_the_parameter_check_finds_every_non_finite_value_and_passes_huge_finite_ones():
    from quirkbench.engine.health import all_finite

    g = torch.Generator().manual_seed(0)
    for shape in [(1,), (7,), (16,), (17,), (33, 5), (512, 784)]:
        n = torch.Size(shape).numel()
        for pos in {0, n - 1, int(torch.randint(n, (1,), generator=g))}:
            for bad in (float("nan"), float("inf"), -float("inf")):
                p = torch.randn(shape, generator=g)
                p.view(-1)[pos] = bad
                assert not bool(all_finite([torch.randn(3, generator=g), p])), (shape, pos, bad)
        assert bool(all_finite([torch.randn(shape, generator=g)]))
    # finite values whose float32 sum overflows are finite all the same
    assert bool(all_finite([torch.full((1000,), 3e38), torch.full((9,), -3e38)]))
    assert bool(all_finite([torch.empty(0), torch.ones(2)]))
