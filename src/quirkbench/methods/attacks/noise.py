"""Random noise of an attack's size: the control every attack is compared with."""

from __future__ import annotations

import math

import torch

from .base import (
    Attack,
    AttackSettings,
    Bounds,
    check_attack,
    check_l2_range,
    clip,
    largest,
    norms,
    register,
    unit_l2,
    view,
)


@register
class RandomNoise(Attack):
    """The control: x + ε·(random sign) for L∞, x + ε·(random unit direction) for L2,
    clipped to bounds. Same budget as the attack it is compared with, no gradient.

    ``eps`` may be a tensor (N,) of per-input sizes. ``clipped_size`` (L2, bounded data):
    the direction is rescaled per input, by bisection, so that the noise *after clipping*
    has L2 norm ε (clipping shrinks a plainly scaled direction, most on MNIST where most
    pixels sit at 0). In L∞ clipping keeps the size wherever any pixel can move by ε."""

    name = "noise"
    norms = ("linf", "l2")
    description = "random signs (L∞) or a random direction (L2) of size ε: the control"

    def __init__(self, eps: float | torch.Tensor, norm: str = "linf",
                 bounds: Bounds = (0.0, 1.0), seed: int = 0, clipped_size: bool = False):
        per_input = isinstance(eps, torch.Tensor)
        check_attack(largest(eps), norm, "ce", None if per_input else bounds)
        self.eps = eps if per_input else float(eps)
        self.norm, self.bounds, self.seed, self.clipped_size = norm, bounds, seed, clipped_size

    @classmethod
    def configure(cls, eps: float, norm: str, settings: AttackSettings) -> RandomNoise:
        """Reads bounds and seed."""
        return cls(eps, norm, settings.bounds, settings.seed)

    def forward(self, model, x, y):
        self.iterations = 0
        return self.perturb(x)

    def perturb(self, x: torch.Tensor) -> torch.Tensor:
        """The noisy inputs (N, ...); needs no model."""
        per_input = isinstance(self.eps, torch.Tensor)
        eps = view(self.eps, x) if per_input else self.eps
        if self.norm == "l2" and not per_input:
            check_l2_range(self.eps, x, self.bounds)
        g = torch.Generator(device=x.device).manual_seed(self.seed)
        if self.norm == "linf":
            d = torch.randint(0, 2, x.shape, generator=g, device=x.device).to(x.dtype) * 2 - 1
            return clip(x + eps * d, self.bounds)
        d = unit_l2(torch.randn(x.shape, generator=g, device=x.device))
        if not self.clipped_size or self.bounds is None:
            return clip(x + eps * d, self.bounds)
        return self._clipped(x, d)

    def _clipped(self, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """clip(x + s·d) with s per input such that ‖clip(x + s·d) − x‖₂ = ε (40 halvings;
        the clipped size is non-decreasing in s)."""
        lo_b, hi_b = self.bounds
        target = self.eps if isinstance(self.eps, torch.Tensor) else torch.full(
            (len(x),), self.eps, device=x.device)
        lo = torch.zeros_like(target)
        hi = torch.full_like(target, float(hi_b - lo_b) * math.sqrt(x[0].numel()) * 4)
        for _ in range(40):
            mid = (lo + hi) / 2
            size = norms((x + view(mid, x) * d).clamp(lo_b, hi_b) - x, "l2")
            short = size < target
            lo, hi = torch.where(short, mid, lo), torch.where(short, hi, mid)
        hi = torch.where(target > 0, hi, torch.zeros_like(hi))
        return (x + view(hi, x) * d).clamp(lo_b, hi_b)
