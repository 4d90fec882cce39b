"""Attack invariants on a small trained MLP, hand-made cases, and the Foolbox 3 cross-check."""

import math

import pytest
import torch
from torch import nn

from quirkbench.engine.models import make_model
from quirkbench.engine.train import predict
from quirkbench.errors import UserError
from quirkbench.methods import attacks as A
from quirkbench.runner.unit import UNIT_THREADS, torch_threads

EPS = (0.0, 0.05, 0.1, 0.2, 0.3)


@pytest.fixture(scope="module")
def trained(attack_model):
    """(model, x_test (200, 1, 28, 28), y_test): mlp-100 on 500 mnist5k digits, ~85% test."""
    return attack_model


@pytest.fixture(scope="module")
def pgd_curve(trained):
    m, x, y = trained
    return [A.success_rate(m, x, y, A.PGD(e, steps=20)(m, x, y)) for e in EPS]


def test_eps_zero_gives_zero(trained):
    m, x, y = trained
    for atk in (A.FGSM(0.0), A.PGD(0.0), A.PGD(0.0, "l2"), A.RandomNoise(0.0),
                A.RandomNoise(0.0, "l2")):
        assert A.success_rate(m, x, y, atk(m, x, y)) == 0.0


def test_success_non_decreasing_in_eps(pgd_curve):
    assert pgd_curve[-1] >= 90.0  # a natural MLP falls at ε = 0.3 (Madry)
    for a, b in zip(pgd_curve, pgd_curve[1:], strict=False):
        assert b >= a - 1.0  # PGD is a heuristic: allow one input in 100 of noise


def test_pgd_at_least_fgsm_and_noise_far_below(trained, pgd_curve):
    m, x, y = trained
    for e, pgd in zip(EPS, pgd_curve, strict=True):
        fgsm = A.success_rate(m, x, y, A.FGSM(e)(m, x, y))
        noise = A.success_rate(m, x, y, A.RandomNoise(e, seed=1)(m, x, y))
        assert pgd >= fgsm - 1.0
        if e >= 0.1:
            assert noise <= 0.2 * pgd


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 1.5)])
def test_adversarials_stay_in_range_and_ball(trained, norm, eps):
    m, x, y = trained
    for atk in (A.PGD(eps, norm, steps=10), A.RandomNoise(eps, norm),
                *([A.FGSM(eps)] if norm == "linf" else [])):
        xa = atk(m, x, y)
        assert xa.shape == x.shape
        assert xa.min() >= 0.0 and xa.max() <= 1.0
        d = (xa - x).flatten(1)
        size = d.abs().amax(1) if norm == "linf" else d.norm(dim=1)
        assert size.max() <= eps * (1 + 1e-5)


def test_success_rate_counts_only_correct_inputs():
    # the model is the identity on 2-D inputs: the prediction is the larger coordinate
    m = nn.Identity()
    x = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    y = torch.tensor([0, 0, 0, 1])  # input 2 is already wrong: it must not count
    x_adv = torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert A.success_rate(m, x, y, x_adv) == pytest.approx(200 / 3)  # 0, 3 of {0, 1, 3}


def test_margin_loss_survives_a_saturated_softmax():
    # logits ×1e4: the softmax is exactly one-hot in float32, so the CE gradient is 0
    lin = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1e4, 0.0], [0.0, 1e4]]))
    x = torch.tensor([[0.6, 0.4]])
    y = torch.tensor([0])
    assert A.success_rate(lin, x, y, A.FGSM(0.15, loss="ce", bounds=None)(lin, x, y)) == 0.0
    assert A.success_rate(lin, x, y, A.FGSM(0.15, loss="margin", bounds=None)(lin, x, y)) == 100.0


def test_pgd_keeps_an_early_adversarial_and_counts_iterations(trained):
    m, x, y = trained
    atk = A.PGD(0.2, steps=15)
    xa = atk(m, x, y)
    assert atk.iterations == 15 and atk.input_iterations == 15 * len(x)
    assert torch.equal(xa, A.PGD(0.2, steps=15)(m, x, y))  # same seed: same answer
    fast = A.PGD(0.2, steps=15, early_stop=True)
    assert torch.equal(fast(m, x, y), xa)  # early stop changes the time, never the output
    assert fast.iterations <= 15


def test_call_restores_training_mode(trained):
    m, x, y = trained
    m.train()
    A.PGD(0.1, steps=2)(m, x[:5], y[:5])
    assert m.training
    m.eval()
    A.FGSM(0.1)(m, x[:5], y[:5])
    assert not m.training


def test_minimal_perturbation_finds_small_flips(trained):
    m, x, y = trained
    ok = predict(m, x).argmax(1) == y
    for norm, eps_max in (("linf", 0.5), ("l2", 8.0)):
        mp = A.MinimalPerturbation(norm, eps_max, steps=10, search_steps=6)
        xa = mp(m, x, y)
        d = mp.distances
        found = torch.isfinite(d) & ok
        assert found.float().mean() > 0.9 * ok.float().mean()
        assert bool((predict(m, xa[found]).argmax(1) != y[found]).all())
        flat = (xa - x).flatten(1)
        actual = flat.abs().amax(1) if norm == "linf" else flat.norm(dim=1)
        assert torch.allclose(actual[found], d[found], atol=1e-5)
        assert float(d[found].max()) <= eps_max + 1e-5
    assert A.szegedy_distortion(x + 0.1, x).allclose(torch.full((len(x),), 0.1))


def test_fooling_images_reach_confidence(trained):
    m, x, _ = trained
    x0 = torch.rand(20, *x.shape[1:], generator=torch.Generator().manual_seed(0))
    _, need = A.fool_from_noise(m, x0, torch.arange(20) % 10, steps=100)
    assert (need >= 0).float().mean() >= 0.5


def test_unbounded_data_are_not_clipped():
    m = make_model("mlp-20", (40,), 10, seed=0)
    x = torch.randn(8, 40) * 5
    y = torch.zeros(8, dtype=torch.long)
    xa = A.PGD(0.5, steps=3, bounds=None)(m, x, y)
    assert (xa - x).abs().max() <= 0.5 + 1e-6 and xa.abs().max() > 1.0


@pytest.mark.parametrize("make", [
    lambda: A.PGD(-0.1), lambda: A.FGSM(-1.0), lambda: A.RandomNoise(-0.5, "l2"),
    lambda: A.PGD(0.1, norm="l3"), lambda: A.RandomNoise(0.1, norm="l1"),
    lambda: A.PGD(0.1, loss="hinge"), lambda: A.FGSM(1.5), lambda: A.PGD(2.0),
    lambda: A.PGD(0.1, steps=0), lambda: A.PGD(math.nan),
])
def test_bad_attack_settings_are_user_errors(make):
    with pytest.raises(UserError):
        make()


def test_l2_eps_beyond_the_box_diagonal_is_refused(trained):
    m, x, y = trained
    with pytest.raises(UserError, match="exceeds the data range"):
        A.PGD(29.0, "l2")(m, x[:2], y[:2])  # the 28×28 box's diagonal is 28


# --------------------------------------------------------------------------- Foolbox 3

def test_pgd_and_fgsm_match_or_beat_foolbox(trained, pgd_curve):
    fb = pytest.importorskip("foolbox")
    m, x, y = trained
    m.eval()
    ok = predict(m, x).argmax(1) == y
    fmodel = fb.PyTorchModel(m, bounds=(0, 1))
    steps = 20
    _, _, fb_pgd = fb.attacks.LinfPGD(steps=steps, rel_stepsize=2.5 / steps)(
        fmodel, x, y, epsilons=list(EPS))
    _, fb_adv, _ = fb.attacks.FGSM()(fmodel, x, y, epsilons=list(EPS))
    for i, e in enumerate(EPS):
        theirs = 100.0 * float((fb_pgd[i] & ok).sum()) / float(ok.sum())
        assert pgd_curve[i] >= theirs - 1.5, (e, pgd_curve[i], theirs)
        ours_fgsm = A.success_rate(m, x, y, A.FGSM(e)(m, x, y))
        assert ours_fgsm == pytest.approx(A.success_rate(m, x, y, fb_adv[i]), abs=1.0)


def test_pgd_leaves_its_input_untouched(trained):
    # the L∞ step updates the iterate in place: it must never be the caller's tensor
    m, x, y = trained
    for start in (False, True):
        before = x.clone()
        A.PGD(0.1, steps=3, random_start=start)(m, x, y)
        assert torch.equal(x, before)


def _autograd_grad(model, x, y):
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(A.attack_loss(model(xg), y, "ce"), xg)
    return g


@pytest.mark.parametrize("transposed", [True, False])
def test_hand_derived_mlp_gradient_is_autograds_bit_for_bit(trained, monkeypatch, transposed):
    """Both ways of the logits' gradient (transposed where this CPU's kernels agree, else
    as autograd lays it out), at batch sizes on and off the padding's multiple."""
    from quirkbench.methods.attacks import gradients

    if transposed and not gradients.transposed_log_softmax_agrees(10, torch.float32, "cpu"):
        pytest.skip("this CPU's log-softmax kernels give other bits transposed")
    monkeypatch.setattr(gradients, "transposed_log_softmax_agrees", lambda *a: transposed)
    m, x, y = trained
    deep = make_model("mlp-64-32", (1, 28, 28), 10, seed=1)
    for model in (m, deep):
        model.requires_grad_(False)
        try:
            layers = A.MLPGradient.match(model, "ce")
            assert layers is not None
            fast = A.MLPGradient(layers, len(x), x)
            assert fast.transposed is transposed
            for n in (len(x), 37, 64, 1, 37):  # the whole batch, then the buffers' first rows
                flipped, g = fast(x[:n], y[:n])
                assert torch.equal(g, _autograd_grad(model, x[:n], y[:n])), n
                assert torch.equal(flipped, predict(model, x[:n]).argmax(1) != y[:n])
        finally:
            model.requires_grad_(True)


def test_hand_derived_gradient_only_where_it_is_exact(trained):
    m, _, _ = trained
    m.requires_grad_(False)
    try:
        assert A.MLPGradient.match(m, "margin") is None  # amax's tie rule: autograd's
        assert A.MLPGradient.match(make_model("lenet5", (1, 28, 28), 10, seed=0), "ce") is None
        h = m.net[1].register_forward_hook(lambda *a: None)
        assert A.MLPGradient.match(m, "ce") is None  # a hook could change the output
        h.remove()
        assert A.MLPGradient.match(m, "ce") is not None
    finally:
        m.requires_grad_(True)
    assert A.MLPGradient.match(m, "ce") is None  # trainable: autograd (no out= ops)


@pytest.mark.parametrize("norm,eps", [("linf", 0.2), ("l2", 2.0)])
def test_per_input_early_stop_same_answer_less_work_no_weight_grads(trained, norm, eps):
    """Bit for bit at the thread count every unit computes with: with more threads a matmul's
    row can round differently when the batch it sits in shrinks, as it does here."""
    m, x, y = trained
    for p in m.parameters():
        p.grad = None
    with torch_threads(UNIT_THREADS):
        full = A.PGD(eps, norm, steps=15)
        xa = full(m, x, y)
        stop = A.PGD(eps, norm, steps=15, early_stop=True)
        xb = stop(m, x, y)
    assert torch.equal(xa, xb) and torch.equal(full.found, stop.found)
    assert full.input_iterations == 15 * len(x)
    # flipped inputs leave the batch: the work is what the unflipped ones still needed
    assert stop.input_iterations < 0.6 * full.input_iterations
    assert all(p.requires_grad and p.grad is None for p in m.parameters())


def test_the_last_iterate_is_checked_only_when_found_is_read(trained):
    """No returned example depends on whether the last iterate is misclassified, so PGD
    skips that forward pass unless ``found`` is read; read, it is the same answer."""
    m, x, y = trained
    calls = []
    h = m.register_forward_hook(lambda *a: calls.append(1))  # a hook: the autograd path
    try:
        atk = A.PGD(0.05, steps=4)
        xa = atk(m, x, y)
        assert len(calls) == 4  # one per gradient, none for the last iterate
        found = atk.found
        assert len(calls) == 5 and torch.equal(atk.found, found)  # checked once, on read
    finally:
        h.remove()
    assert torch.equal(xa, A.PGD(0.05, steps=4)(m, x, y))
    ref = A.PGD(0.05, steps=4)
    ref(m, x, y)
    flipped_last = predict(m, xa).argmax(1) != y  # xa is the last iterate where not found
    assert torch.equal(found, ref.found) and bool((flipped_last & ~found).sum() == 0)


@pytest.mark.parametrize("norm,eps", [("linf", 0.2), ("l2", 2.0)])
def test_steps_to_success_is_the_first_flipped_iterate(trained, norm, eps):
    """PGD cut to k steps (the same step size) flips exactly the inputs whose first
    misclassified iterate came within k steps; early stopping changes none of it; a halved
    step needs more steps."""
    m, x, y = trained
    step = 2.5 * eps / 8
    with torch_threads(UNIT_THREADS):
        full = A.PGD(eps, norm, steps=8, step_size=step)
        full(m, x, y)
        at = full.steps_to_success
        assert torch.equal((at >= 0), full.found) and int(at.max()) <= 8
        assert int((at > 1).sum()) > 10  # not all flipped at the start
        stop = A.PGD(eps, norm, steps=8, step_size=step, early_stop=True)
        stop(m, x, y)
        assert torch.equal(stop.steps_to_success, at)
        for k in (1, 2, 3, 5):
            short = A.PGD(eps, norm, steps=k, step_size=step)
            short(m, x, y)
            assert torch.equal(short.found, (at >= 0) & (at <= k)), k
        half = A.PGD(eps, norm, steps=8, step_size=step / 2)
        half(m, x, y)
    ok = predict(m, x).argmax(1) == y
    hit = ok & (at >= 0)
    slow = half.steps_to_success[hit].double()
    assert float(torch.where(slow < 0, 9.0, slow).mean()) > 1.3 * float(at[hit].double().mean())


def test_steps_to_success_at_an_empty_ball(trained):
    m, x, y = trained
    atk = A.PGD(0.0, steps=5)
    atk(m, x, y)
    wrong = predict(m, x).argmax(1) != y
    assert torch.equal(atk.steps_to_success, torch.where(wrong, 0, -1))
