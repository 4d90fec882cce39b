"""What the speed of an attack is measured against: its peers (other libraries' versions,
seeded so every repeat draws the same start), the bare matmuls of one iteration (the
matmul-bound limit), the least a PGD call costs beyond them (``floor_runner``) and the FLOPs
of one iteration. The throughput task times them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from .references import reference_run


def peer_run(peer: str, attack: str, norm: str, model, x, y, eps: float, step: float,
             steps: int, bounds, seed: int):
    """A ``run() -> x_adv`` of ``peer``'s version of ``attack`` with our settings (random
    start, ``steps`` steps of ``step``), seeded so every repeat draws the same start; None
    when the peer is not installed or has no version that runs here."""
    try:
        call = reference_run(peer, attack, model, x, y, eps=eps, norm=norm, steps=steps,
                             step_size=step, bounds=bounds)
    except ImportError:
        return None
    if call is None:
        return None

    def run():
        torch.manual_seed(seed)  # peers draw their random start from torch's global RNG
        return call()

    return run


def gemm_runner(model, n: int, device) -> object | None:
    """``run()`` doing exactly the matmuls of one PGD iteration on an MLP (forward addmm and
    input-gradient mm per Linear, into preallocated buffers): the same shapes at the CPU's own
    matmul rate, the attack loop's limit. None for other models."""
    lins = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    if not lins or any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        return None
    kw = dict(device=device)
    acts = [torch.empty(n, m.out_features, **kw) for m in lins]
    grads = [torch.empty(n, m.in_features, **kw) for m in lins]
    x = torch.rand(n, lins[0].in_features, **kw)

    def run():
        h = x
        for m, a in zip(lins, acts, strict=True):
            torch.addmm(m.bias, h, m.weight.t(), out=a)
            h = a
        for m, g in zip(reversed(lins), reversed(grads), strict=True):
            torch.mm(h, m.weight, out=g)
            h = g

    return run


def floor_runner(model, x: torch.Tensor, steps: int, norm: str, eps: float, step: float,
                 bounds=(0.0, 1.0)) -> object | None:
    """``run()`` doing the least any PGD call with a random start costs on an MLP: the
    random start drawn from a seeded generator (L∞: a uniform number per input feature; L2:
    a Gaussian direction and a radius), the ε-box, and ``steps`` times the iteration's
    matmuls (``gemm_runner``) plus its update's elementwise passes over the iterate: sign,
    step, clamp to the box (L∞); step along the normalised gradient, project onto the ball,
    clamp to the bounds (L2). No early stop, no bookkeeping. Its time over the matmuls' is
    the best share of the matmul-bound limit an eager implementation can reach here. None
    for other models."""
    gemm = gemm_runner(model, len(x), x.device)
    if gemm is None:
        return None
    x = x.detach().clone()
    g = torch.randn_like(x)
    d = torch.empty_like(x)
    gen = torch.Generator(device=x.device)
    view = (-1,) + (1,) * (x.dim() - 1)

    def start() -> torch.Tensor:
        gen.manual_seed(0)
        if norm == "linf":  # uniform in the box
            d = torch.rand(x.shape, generator=gen, device=x.device).mul_(2).sub_(1).mul_(eps)
        else:  # a Gaussian direction at a uniform fraction of the radius
            d = torch.randn(x.shape, generator=gen, device=x.device)
            r = torch.rand(len(x), generator=gen, device=x.device)
            d.mul_((eps * r / d.flatten(1).norm(dim=1).clamp_min(1e-12)).view(view))
        return d.add_(x).clamp_(*bounds)

    def run():
        xa = start()
        lo, hi = (x - eps).clamp_(min=bounds[0]), (x + eps).clamp_(max=bounds[1])
        for _ in range(steps):
            gemm()
            if norm == "linf":
                xa.add_(torch.sign(g, out=d), alpha=step).clamp_(lo, hi)
            else:
                xa.addcmul_(g, step / g.flatten(1).norm(dim=1).clamp_min(1e-12).view(view))
                torch.sub(xa, x, out=d)
                scale = (eps / d.flatten(1).norm(dim=1).clamp_min(1e-12)).clamp(max=1.0)
                torch.addcmul(x, d, scale.view(view), out=xa).clamp_(*bounds)

    return run


def iteration_flops(model, x, y) -> int:
    """FLOPs of one attack iteration: forward + the gradient w.r.t. the input (parameters
    frozen, so no weight gradient), counted by ``torch.utils.flop_counter``."""
    xg = x.detach().clone().requires_grad_(True)
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(model(xg), y, reduction="sum").backward()
    return fc.get_total_flops()
