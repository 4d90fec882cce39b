"""What the speed of an attack is measured against: its peers (other libraries' versions,
seeded so every repeat draws the same start), the bare matmuls of one iteration (the
matmul-bound limit) and the FLOPs of one iteration. The throughput task times them."""

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


def iteration_flops(model, x, y) -> int:
    """FLOPs of one attack iteration: forward + the gradient w.r.t. the input (parameters
    frozen, so no weight gradient), counted by ``torch.utils.flop_counter``."""
    xg = x.detach().clone().requires_grad_(True)
    with FlopCounterMode(display=False) as fc:
        F.cross_entropy(model(xg), y, reduction="sum").backward()
    return fc.get_total_flops()
