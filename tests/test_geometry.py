"""geometry.py: each definition checked on a case with a known answer."""

import math

import pytest
import torch

from quirkbench.engine.models import make_model
from quirkbench.methods import geometry as G

# --------------------------------------------------------------------------- paths

def test_convex_quadratic_is_monotone_along_the_line_to_its_minimum():
    alphas = torch.linspace(0, 1, 25)
    losses = [(1 + 3 * (a - 1) ** 2).item() for a in alphas]  # minimum at α = 1
    assert G.max_relative_rise(losses) == 0.0
    assert G.barrier_height(losses) == 0.0  # convex: below its chord everywhere


def test_relative_rise_and_barrier_on_hand_made_paths():
    assert G.max_relative_rise([2.0, 1.0, 1.5, 0.5]) == pytest.approx(0.25)  # climbs 0.5 of 2.0
    assert G.max_relative_rise([1.0, 0.5, 0.8, 0.2, 0.6]) == pytest.approx(0.4)  # 0.2 → 0.6
    assert G.barrier_height([0.0, 1.0, 0.0]) == pytest.approx(1.0)
    assert G.barrier_height([1.0, 2.5, 3.0]) == pytest.approx(0.5)  # chord at the middle: 2.0


def test_interpolation_path_ends_at_the_two_models():
    x, y = torch.rand(50, 1, 4, 4), torch.randint(0, 3, (50,))
    a, b = (make_model("mlp-8", (1, 4, 4), 3, seed=s) for s in (0, 1))
    ta, tb = G.params_vector(a), G.params_vector(b)
    path = G.interpolation_path(a, ta, tb, x, y, n_points=5)
    assert [p["alpha"] for p in path] == [0.0, 0.25, 0.5, 0.75, 1.0]
    for model, point in ((a, path[0]), (b, path[-1])):
        logits = model(x)
        assert point["loss"] == pytest.approx(torch.nn.functional.cross_entropy(logits, y).item(),
                                              rel=1e-5)
        assert point["acc"] == pytest.approx(100 * (logits.argmax(1) == y).float().mean().item())


def _path_weight_by_weight(model, ta, tb, x, y, n_points):
    """The definition: the whole model evaluated at every point's blended weights."""
    from torch.func import functional_call

    out = []
    for alpha in torch.linspace(0, 1, n_points).tolist():
        logits = functional_call(model, G.unflatten(model, torch.lerp(ta, tb, alpha)), (x,))
        out.append((torch.nn.functional.cross_entropy(logits, y).item(),
                    100 * (logits.argmax(1) == y).float().mean().item()))
    return out


@pytest.mark.parametrize("name", ["mlp-32", "mlp-16-8"])
def test_an_mlp_path_blends_its_first_layer_and_agrees_with_the_definition(name, monkeypatch):
    x, y = torch.rand(300, 1, 8, 8), torch.randint(0, 4, (300,))
    a, b = (make_model(name, (1, 8, 8), 4, seed=s) for s in (0, 1))
    ta, tb = G.params_vector(a), G.params_vector(b)
    linear, first = torch.nn.functional.linear, []

    def spy(inp, weight, bias=None):
        if weight.shape[1] == 64:  # the first layer (8 × 8 inputs)
            first.append(weight)
        return linear(inp, weight, bias)

    monkeypatch.setattr(torch.nn.functional, "linear", spy)
    path = G.interpolation_path(a, ta, tb, x, y, n_points=9)
    assert len(first) == 2  # the first layer: once at each end, not once a point
    monkeypatch.undo()
    want = _path_weight_by_weight(a, ta, tb, x, y, 9)
    for p, (loss, acc) in zip(path, want, strict=True):
        assert p["loss"] == pytest.approx(loss, rel=1e-5)
        assert p["acc"] == pytest.approx(acc, abs=1 / 3)  # one input at most, at a tie
    assert (path[0]["loss"], path[-1]["loss"]) == (want[0][0], want[-1][0])  # the ends exactly


def test_other_models_are_evaluated_weight_by_weight():
    x, y = torch.rand(20, 1, 12, 12), torch.randint(0, 3, (20,))
    a, b = (make_model("lenet5", (1, 12, 12), 3, seed=s) for s in (0, 1))
    ta, tb = G.params_vector(a), G.params_vector(b)
    path = G.interpolation_path(a, ta, tb, x, y, n_points=4)
    assert [(p["loss"], p["acc"]) for p in path] == _path_weight_by_weight(a, ta, tb, x, y, 4)


def test_flat_loss_round_trips_the_parameters():
    m = make_model("mlp-8", (1, 4, 4), 3, seed=0)
    theta = G.params_vector(m)
    assert theta.numel() == sum(p.numel() for p in m.parameters())
    x, y = torch.rand(10, 1, 4, 4), torch.randint(0, 3, (10,))
    ref = torch.nn.functional.cross_entropy(m(x), y).item()
    assert G.flat_loss(m, x, y)(theta).item() == pytest.approx(ref, rel=1e-6)


# --------------------------------------------------------------------------- curvature

def test_top_hessian_eigenvalue_of_a_quadratic_form():
    # f(θ) = θᵀAθ has Hessian 2A; A's eigenvalues are 5, 2, 1, 0.5 (rotated by Q)
    q, _ = torch.linalg.qr(torch.randn(4, 4, dtype=torch.float64))
    a = q @ torch.diag(torch.tensor([5.0, 2.0, 1.0, 0.5], dtype=torch.float64)) @ q.T
    lam = G.top_hessian_eigenvalue(lambda t: t @ a @ t, torch.randn(4, dtype=torch.float64),
                                   iters=200, tol=1e-10)
    assert lam == pytest.approx(10.0, rel=1e-6)


def test_hvp_matches_the_full_hessian_of_a_small_net():
    m = make_model("mlp-3", (2,), 2, seed=0)
    x, y = torch.randn(20, 2), torch.randint(0, 2, (20,))
    f = G.flat_loss(m, x, y)
    theta = G.params_vector(m)
    h = torch.autograd.functional.hessian(f, theta)
    v = torch.randn_like(theta)
    assert torch.allclose(G.hvp(f, theta, v), h @ v, atol=1e-5)


def test_eps_sharpness_of_a_linear_loss_is_its_box_maximum():
    # f(θ) = cᵀθ + 2: the max over |z_i| ≤ ε(|θ_i| + 1) is ε Σ |c_i| (|θ_i| + 1), at a corner
    c = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    theta = torch.tensor([0.0, 3.0, -1.0], dtype=torch.float64)
    eps = 1e-2
    f0 = (c @ theta + 2).item()
    top = eps * (c.abs() * (theta.abs() + 1)).sum().item()
    phi = G.eps_sharpness(lambda t: c @ t + 2, theta, eps=eps, steps=5)
    assert phi == pytest.approx(100 * top / (1 + f0), rel=1e-9)


def test_eps_sharpness_of_a_diagonal_quadratic_reaches_a_corner():
    a = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64)
    phi = G.eps_sharpness(lambda t: (a * t * t).sum(), torch.zeros(3, dtype=torch.float64),
                          eps=0.1, steps=5)
    assert phi == pytest.approx(100 * 0.01 * a.sum().item(), rel=1e-9)  # f0 = 0, max ε² Σ a_i


# --------------------------------------------------------------------------- distances

def test_nearest_farthest_ratio_on_three_points_on_a_line():
    pts = torch.tensor([[0.0], [1.0], [3.0]])
    # point 0: 1/3, point 1: 1/2, point 3: 2/3 → mean 1/2
    assert G.nearest_farthest_ratio(pts) == pytest.approx(0.5)
    assert G.mean_pairwise_distance(pts) == pytest.approx(2.0)  # (1 + 3 + 2) / 3


def test_mean_pairwise_angle():
    assert G.mean_pairwise_angle(torch.eye(3)) == pytest.approx(90.0)
    assert G.mean_pairwise_angle(torch.tensor([[1.0, 0.0], [1.0, 1.0]])) == pytest.approx(45.0)


def test_uniform_cube_distance_tends_to_one_over_root_six():
    g = torch.Generator().manual_seed(0)
    pts = torch.rand(300, 2000, generator=g, dtype=torch.float64)
    assert G.mean_pairwise_distance(pts) / math.sqrt(2000) == pytest.approx(1 / math.sqrt(6),
                                                                             abs=0.005)


# --------------------------------------------------------------------------- units

def test_top_k_purity_on_constructed_scores():
    labels = torch.tensor([0, 0, 0, 1, 1, 2])
    scores = torch.tensor([[9.0, 1.0], [8.0, 9.0], [7.0, 2.0],
                           [1.0, 8.0], [2.0, 7.0], [0.0, 3.0]])
    # direction 0 picks rows 0,1,2 (all class 0); direction 1 picks rows 1,3,4 (0,1,1)
    assert G.top_k_purity(scores, labels, 3).tolist() == pytest.approx([1.0, 2 / 3])
    with pytest.raises(ValueError):
        G.top_k_purity(scores, labels, 7)


def test_chance_purity_bounds():
    assert G.chance_purity(torch.zeros(20, dtype=torch.long), k=5) == 1.0
    balanced = torch.arange(100) % 10
    assert 0.1 < G.chance_purity(balanced, k=10, draws=500) < 0.4
