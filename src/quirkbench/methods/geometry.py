"""Pure functions for the geometry of loss landscapes and of high-dimensional data.

* parameter vectors: flatten a model, a loss as a function of the flat vector, the loss
  along a straight line between two vectors (Goodfellow, Vinyals & Saxe 2015);
* path summaries: the largest rise of the loss along a path (0 = monotone) and the barrier
  height above the straight chord between the ends;
* curvature: top Hessian eigenvalue by power iteration on Hessian-vector products, and
  Keskar et al.'s (2017) ε-sharpness maximised by projected sign-gradient ascent;
* distances: nearest/farthest ratio, mean pairwise distance, mean pairwise angle;
* units: class purity of the top-k inputs along a direction of a feature space.

Nothing here trains or reads data; the tasks do, and the tests check each definition on
a case with a known answer.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

LossFn = Callable[[torch.Tensor], torch.Tensor]  # flat parameter vector (P,) → scalar loss


# --------------------------------------------------------------------------- parameter vectors

def params_vector(model: nn.Module) -> torch.Tensor:
    """All parameters of ``model`` as one detached flat vector (P,)."""
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def unflatten(model: nn.Module, theta: torch.Tensor) -> dict[str, torch.Tensor]:
    """The flat vector (P,) as a name → tensor dict shaped like ``model``'s parameters."""
    out, i = {}, 0
    for name, p in model.named_parameters():
        out[name] = theta[i:i + p.numel()].view_as(p)
        i += p.numel()
    if i != theta.numel():
        raise ValueError(f"vector has {theta.numel()} entries, the model {i} parameters")
    return out


def flat_loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> LossFn:
    """Mean cross-entropy of ``model`` on (x, y) as a function of its flat parameters."""
    def loss(theta: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(functional_call(model, unflatten(model, theta), (x,)), y)
    return loss


@torch.no_grad()
def interpolation_path(model: nn.Module, theta_a: torch.Tensor, theta_b: torch.Tensor,
                       x: torch.Tensor, y: torch.Tensor, n_points: int = 25) -> list[dict]:
    """Loss and accuracy at θ(α) = (1 − α) θ_a + α θ_b for ``n_points`` α evenly in [0, 1].

    x: (N, *input_shape), y: (N,). Returns records {alpha, loss (nats), acc (%)}.
    """
    out = []
    first = _first_layer_ends(model, theta_a, theta_b, x)
    for alpha in torch.linspace(0, 1, n_points).tolist():
        theta = torch.lerp(theta_a, theta_b, alpha)
        if first is None:
            logits = functional_call(model, unflatten(model, theta), (x,))
        else:  # the first layer's output is affine in its weights: blend its two ends
            rest, params, h_a, h_b = first
            p = unflatten(model, theta)
            logits = functional_call(rest, {k: p[f"net.{k}"] for k in params},
                                     (torch.lerp(h_a, h_b, alpha),))
        out.append({"alpha": alpha, "loss": F.cross_entropy(logits, y).item(),
                    "acc": 100 * (logits.argmax(1) == y).float().mean().item()})
    return out


def _first_layer_ends(model: nn.Module, theta_a: torch.Tensor, theta_b: torch.Tensor,
                      x: torch.Tensor):
    """For the zoo's MLP (Flatten, then Linear first): (the layers after the first Linear,
    their parameter names, its output at θ_a, at θ_b). Along the line its output is exactly
    the same blend of those two, so each point runs only the layers after it: the first
    layer, most of an MLP's work on images, runs twice a path instead of once a point
    (the same values up to float rounding). None for any other model."""
    from ..engine.models import MLP

    if type(model) is not MLP or not isinstance(model.net[1], nn.Linear):
        return None
    rest = model.net[2:]
    names = [k for k, _ in rest.named_parameters()]
    pa, pb = unflatten(model, theta_a), unflatten(model, theta_b)
    flat = model.net[0](x)
    return (rest, names, F.linear(flat, pa["net.1.weight"], pa["net.1.bias"]),
            F.linear(flat, pb["net.1.weight"], pb["net.1.bias"]))


def max_relative_rise(losses: list[float]) -> float:
    """The largest increase of the loss after any earlier point, over the start's loss.

    max_{i<j} (L_j − L_i) / L_0, floored at 0: 0 for a monotonically decreasing path, 0.1
    when somewhere the loss climbs back by 10% of where the path started.
    """
    if len(losses) < 2:
        return 0.0
    lowest, rise = losses[0], 0.0
    for v in losses[1:]:
        rise = max(rise, v - lowest)
        lowest = min(lowest, v)
    if losses[0] == 0:
        return math.inf if rise > 0 else 0.0
    return rise / abs(losses[0])


def barrier_height(losses: list[float]) -> float:
    """max_t [L(t) − ((1 − t) L(0) + t L(1))] over evenly spaced t: the loss barrier above
    the straight chord between the two ends (Frankle et al. 2020); 0 for a convex path."""
    n = len(losses)
    if n < 2:
        return 0.0
    chord = [losses[0] + (losses[-1] - losses[0]) * i / (n - 1) for i in range(n)]
    return max(0.0, max(v - c for v, c in zip(losses, chord, strict=True)))


# --------------------------------------------------------------------------- curvature

def hvp(loss_fn: LossFn, theta: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Hessian-vector product H(θ) v (P,) by double backpropagation."""
    theta = theta.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(loss_fn(theta), theta, create_graph=True)
    (hv,) = torch.autograd.grad(g @ v, theta)
    return hv.detach()


def top_hessian_eigenvalue(loss_fn: LossFn, theta: torch.Tensor, iters: int = 20,
                           tol: float = 1e-3, seed: int = 0) -> float:
    """The Hessian eigenvalue of largest magnitude at θ (P,), by power iteration on HVPs.

    Stops after ``iters`` products or when the Rayleigh quotient changes by less than
    ``tol`` relative. For a trained net's training loss this is the top (positive) curvature.
    """
    g = torch.Generator(device="cpu").manual_seed(seed)
    v = torch.randn(theta.shape, generator=g).to(theta)
    v /= v.norm()
    lam = 0.0
    for _ in range(iters):
        hv = hvp(loss_fn, theta, v)
        new = float(v @ hv)
        norm = hv.norm()
        if norm == 0:
            return 0.0
        v = hv / norm
        if abs(new - lam) <= tol * abs(new):
            return new
        lam = new
    return lam


def eps_sharpness(loss_fn: LossFn, theta: torch.Tensor, eps: float = 1e-3, steps: int = 10,
                  seed: int = 0) -> float:
    """Keskar et al. 2017, Metric 2.1, with A = I, in percent:

        φ(ε) = 100 · (max_{z ∈ C_ε} f(θ + z) − f(θ)) / (1 + f(θ)),
        C_ε  = {z : |z_i| ≤ ε (|θ_i| + 1)}.

    The inner max (L-BFGS-B in the paper) is approximated by ``steps`` projected
    sign-gradient ascent steps of half the box width from a random corner-ward start,
    keeping the best point seen: a lower bound on the true maximum.
    """
    theta = theta.detach()
    box = eps * (theta.abs() + 1)
    with torch.no_grad():
        f0 = float(loss_fn(theta))
    g = torch.Generator(device="cpu").manual_seed(seed)
    z = ((torch.rand(theta.shape, generator=g) * 2 - 1).to(theta)) * box * 0.5
    best = f0
    for _ in range(steps):
        z = z.detach().requires_grad_(True)
        f = loss_fn(theta + z)
        best = max(best, float(f.detach()))
        (grad,) = torch.autograd.grad(f, z)
        z = torch.maximum(torch.minimum(z.detach() + 0.5 * box * grad.sign(), box), -box)
    with torch.no_grad():
        best = max(best, float(loss_fn(theta + z)))
    return 100 * (best - f0) / (1 + f0)


# --------------------------------------------------------------------------- distances

def nearest_farthest_ratio(points: torch.Tensor) -> float:
    """Mean over points of (distance to its nearest other point) / (to its farthest).

    points: (N, d), N ≥ 3. → 1 as distances concentrate in high dimension (Beyer et al. 1999).
    """
    d = torch.cdist(points, points)
    n = len(points)
    far = d.max(1).values
    d = d + torch.diag(torch.full((n,), math.inf, dtype=d.dtype, device=d.device))
    near = d.min(1).values
    return float((near / far).mean())


def mean_pairwise_distance(points: torch.Tensor) -> float:
    """Mean Euclidean distance over distinct pairs of points (N, d)."""
    n = len(points)
    return float(torch.cdist(points, points).sum() / (n * (n - 1)))


def mean_pairwise_angle(points: torch.Tensor) -> float:
    """Mean angle in degrees between distinct pairs of vectors (N, d) (rows, as given: centre
    them first to measure angles seen from the centre). → 90° in high dimension."""
    u = F.normalize(points, dim=1)
    cos = (u @ u.T).clamp(-1, 1)
    n = len(points)
    off = ~torch.eye(n, dtype=torch.bool, device=points.device)
    return float(torch.rad2deg(torch.arccos(cos[off])).mean())


# --------------------------------------------------------------------------- units

def top_k_purity(scores: torch.Tensor, labels: torch.Tensor, k: int) -> torch.Tensor:
    """Class purity of the k inputs that score highest along each direction.

    scores: (N, D) projection of N inputs on D directions; labels: (N,) class indices.
    Returns (D,): for each direction, the fraction of its top-k inputs in their most
    common class (1 = all one class; about the largest class share for a random set).
    """
    if not 1 <= k <= len(labels):
        raise ValueError(f"k must be in [1, {len(labels)}], got {k}")
    top = scores.topk(k, dim=0).indices  # (k, D)
    lab = labels[top]  # (k, D)
    counts = F.one_hot(lab, int(labels.max()) + 1).sum(0)  # (D, C)
    return counts.max(1).values.float() / k


def chance_purity(labels: torch.Tensor, k: int, draws: int = 1000, seed: int = 0) -> float:
    """Expected purity of k inputs drawn at random without replacement (the floor)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    scores = torch.rand(len(labels), draws, generator=g).to(labels.device)
    return float(top_k_purity(scores, labels, k).mean())
