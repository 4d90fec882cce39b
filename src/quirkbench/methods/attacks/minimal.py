"""The minimal-distortion attack: per input, the smallest successful perturbation found by
bisection over a per-input ε, with PGD at every probe (Szegedy et al. 2014's "minimum
distortion", measured from above)."""

from __future__ import annotations

import math

import torch

from ...errors import UserError
from .base import (
    NORMS,
    Attack,
    AttackSettings,
    Bounds,
    check_attack,
    check_l2_range,
    norms,
    register,
    view,
)
from .pgd import PGD


@register
class MinimalPerturbation(Attack):
    """Per-input smallest successful distortion in ``norm``, by bisection over a per-input ε
    in [0, eps_max] with PGD (``steps`` iterations) at every probe; ``search_steps``
    halvings give a resolution of eps_max / 2**search_steps. Returns the successful x_adv
    of smallest distortion (x itself where none was found); ``distances`` (N,) holds that
    distortion as a raw norm (``inf`` where PGD failed even at eps_max). The measured
    distortion is an upper bound on the true minimum (PGD is a heuristic)."""

    name = "minimal"
    norms = NORMS
    description = "smallest successful ε per input: bisection with PGD at every probe " \
                  "(Szegedy et al. 2014)"

    def __init__(self, norm: str = "l2", eps_max: float | None = None, steps: int = 20,
                 search_steps: int = 10, loss: str = "ce", bounds: Bounds = (0.0, 1.0),
                 seed: int = 0):
        check_attack(0.0 if eps_max is None else eps_max, norm, loss, bounds)
        if eps_max is None and bounds is None:
            raise UserError("MinimalPerturbation needs eps_max when the data are unbounded")
        if search_steps < 1 or steps < 1:
            raise UserError("MinimalPerturbation steps and search_steps must be ≥ 1")
        self.norm, self.eps_max, self.steps, self.search_steps = norm, eps_max, steps, search_steps
        self.loss, self.bounds, self.seed = loss, bounds, seed

    @classmethod
    def configure(cls, eps: float | None, norm: str,
                  settings: AttackSettings) -> MinimalPerturbation:
        """``eps``: the largest distortion searched (None: the whole input box). Reads
        steps (per probe), search_steps, loss, bounds and seed."""
        s = settings
        return cls(norm, eps, s.steps, s.search_steps, loss=s.loss, bounds=s.bounds, seed=s.seed)

    def forward(self, model, x, y):
        if self.eps_max is not None:
            hi_eps = float(self.eps_max)
        else:  # the whole input box: every L∞ / L2 distance between inputs fits
            span = self.bounds[1] - self.bounds[0]
            hi_eps = span if self.norm == "linf" else span * math.sqrt(x[0].numel())
        if self.norm == "l2":
            check_l2_range(hi_eps, x, self.bounds)
        lo = torch.zeros(len(x), device=x.device)
        hi = torch.full((len(x),), hi_eps, device=x.device)
        best = x.clone()
        dist = torch.full((len(x),), math.inf, device=x.device)
        self.iterations = 0
        for k in range(self.search_steps + 1):
            mid = hi if k == 0 else (lo + hi) / 2  # probe eps_max first: who can be flipped at all
            pgd = PGD(mid, self.norm, self.steps, loss=self.loss, bounds=self.bounds,
                      seed=self.seed + k, early_stop=True)
            x_adv = pgd.forward(model, x, y)
            self.iterations += pgd.iterations
            d = norms(x_adv - x, self.norm)
            better = pgd.found & (d < dist)
            best = torch.where(view(better, x), x_adv, best)
            dist = torch.where(better, d, dist)
            hi = torch.where(pgd.found, torch.minimum(mid, d), hi)
            lo = torch.minimum(torch.where(pgd.found, lo, mid), hi)  # PGD is noisy: keep lo ≤ hi
        self.distances = dist
        return best
