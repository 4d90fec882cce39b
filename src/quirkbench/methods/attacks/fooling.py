"""Fooling images (Nguyen et al. 2015): inputs driven from noise to a confident target class.
Not a registered attack: it starts from noise, not from a labelled input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import Bounds, clip, view


def fool_from_noise(model: nn.Module, x0: torch.Tensor, targets: torch.Tensor, steps: int = 100,
                    step_size: float = 0.01, confidence: float = 0.99,
                    bounds: Bounds = (0.0, 1.0)) -> tuple[torch.Tensor, torch.Tensor]:
    """Signed gradient ascent on log p(target | x) from noise inputs x0 (N, ...).

    Returns (x (N, ...), steps_needed (N,) int64): the step at which each input first
    reached ``confidence`` for its target (0 = already at the start; -1 = never within
    ``steps``). Inputs stop moving once they reach the confidence.
    """
    was = model.training
    model.eval()
    x = x0.detach().clone()
    need = torch.full((len(x),), -1, dtype=torch.long, device=x.device)
    try:
        for t in range(steps + 1):
            with torch.enable_grad():
                xg = x.requires_grad_(True)
                logp = F.log_softmax(model(xg), 1).gather(1, targets[:, None])[:, 0]
                reached = (logp.detach().exp() >= confidence) & (need < 0)
                need[reached] = t
                if t == steps or bool((need >= 0).all()):
                    break
                (g,) = torch.autograd.grad(logp.sum(), xg)
            active = view((need < 0).to(x.dtype), x)
            x = clip(x.detach() + step_size * g.sign() * active, bounds)
    finally:
        model.train(was)
    return x.detach(), need
